"""The ``terrainlab`` command: ``terrainlab atlas`` runs the book's experiments, ``terrainlab claims``
prints the verdict table of the last run.

Every experiment tests one claim about the one equation S_{t+1} = S_t + η·F(S_t, x). Example::

    terrainlab atlas --out atlas --quick --jobs 2     # writes atlas/index.html and results.json
    terrainlab atlas --out atlas --only ch03,ch05.energy_* --resume
    terrainlab claims --out atlas                      # the verdict table; --json for JSON

While the atlas runs, each finished experiment prints its line with the count done so far, the
elapsed wall time and an ETA (:class:`Eta`: the experiments' times in the previous results.json of
the same mode where there is one, else the mean time of those finished so far, shared by the
workers).

Exit codes: 0 when every experiment of the run produced a verdict, 1 when any errored, 2 for bad
arguments (or no results to show), 130 when interrupted (rerun with ``--resume``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

VERDICT_STYLE = {
    "holds": "bold #009E73",
    "holds-with-correction": "bold #E69F00",
    "fails": "bold #D55E00",
    "inconclusive": "bold grey50",
    "error": "bold reverse",
}


class Eta:
    """The remaining wall time of an atlas run, estimated from the experiments' times.

    Each experiment still to finish is expected to take ``prior[id]`` seconds (its time in the
    previous results.json of the same mode) when known, else the mean time of the experiments
    finished in this run, else the mean of ``prior``; a running one counts what is left of that,
    and one that has overrun its estimate a tenth of its run time so far (never "0:00" while an
    experiment still runs). With W the work left, n the experiments left, and c ≥ 1 the measured ratio of
    wall time (start to finish, worker start-up included) to experiment time so far::

        ETA = c · max(W / min(jobs, n), longest single remainder)

    ``None`` while nothing is known to estimate from. ``clock`` is injectable for tests.

    >>> t = [0.0]
    >>> eta = Eta(jobs=2, prior={"a": 10.0, "b": 20.0}, clock=lambda: t[0])
    >>> eta.plan(["a", "b", "c"])
    >>> eta.start("a"); eta.start("b")
    >>> round(eta.seconds_left(), 1)      # (10 + 20 + mean 15) / 2 workers
    22.5
    >>> t[0] = 10.0; eta.finish("a", 10.0); eta.start("c")
    >>> round(eta.seconds_left(), 1)      # b: 10 s left; c (new): this run's mean, 10 s
    10.0
    """

    def __init__(self, jobs: int = 1, prior: dict[str, float] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.jobs = max(1, int(jobs))
        self.prior = {k: float(v) for k, v in (prior or {}).items() if _finite_nonneg(v)}
        self.clock = clock
        self.t0 = clock()
        self.todo: list[str] = []
        self.started: dict[str, float] = {}
        self.finished: dict[str, float] = {}  # id -> experiment seconds (this run only)
        self.walls: dict[str, float] = {}  # id -> wall seconds start to finish

    def plan(self, ids) -> None:
        """The ids this run will compute (not the cached ones)."""
        self.todo = list(ids)

    def start(self, exp_id: str) -> None:
        self.started.setdefault(exp_id, self.clock())

    def finish(self, exp_id: str, seconds: float) -> None:
        """``exp_id`` has ended after ``seconds`` of experiment time (ignored if it never started:
        a cached entry or a module that failed to import)."""
        if exp_id not in self.started or exp_id in self.finished:
            return
        self.finished[exp_id] = float(seconds) if _finite_nonneg(seconds) else 0.0
        self.walls[exp_id] = self.clock() - self.started[exp_id]

    def elapsed(self) -> float:
        return self.clock() - self.t0

    def _estimate(self, exp_id: str) -> float | None:
        if exp_id in self.prior:
            return self.prior[exp_id]
        if self.finished:
            return sum(self.finished.values()) / len(self.finished)
        if self.prior:
            return sum(self.prior.values()) / len(self.prior)
        return None

    def _overhead(self) -> float:
        work, wall = sum(self.finished.values()), sum(self.walls.values())
        if work < 1.0:  # too little measured: worker start-up would dominate the ratio
            return 1.0
        return min(5.0, max(1.0, wall / work))

    def seconds_left(self) -> float | None:
        """The estimated wall seconds until the last experiment finishes (None: no estimate yet)."""
        planned = set(self.todo)
        ids = list(self.todo) + [i for i in self.started if i not in planned]
        left = [i for i in ids if i not in self.finished]
        if not left:
            return 0.0
        now = self.clock()
        rem = []
        for i in left:
            est = self._estimate(i)
            if est is None:
                return None
            if i in self.started:
                ran = now - self.started[i]
                rem.append(max(est - ran, 0.1 * ran))
            else:
                rem.append(est)
        c = self._overhead()
        return c * max(sum(rem) / min(self.jobs, len(rem)), max(rem))


def _finite_nonneg(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0


def fmt_duration(seconds: float | None) -> str:
    """``75.2`` → "1:15", ``3725`` → "1:02:05"; ``None`` → "?"."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    s = int(round(max(0.0, seconds)))
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def previous_times(out: Path, quick: bool) -> dict[str, float]:
    """Each experiment's seconds in ``out/results.json`` when it was written in the same mode
    (``quick``) and the entry finished; {} when there is no such file or it cannot be read."""
    try:
        old = json.loads((Path(out) / "results.json").read_text(encoding="utf-8"))
        if not isinstance(old, dict) or old.get("quick") is not bool(quick):
            return {}
        return {
            e["id"]: float(e["seconds"])
            for e in old.get("experiments", [])
            if isinstance(e, dict) and e.get("status") == "ok" and isinstance(e.get("id"), str)
            and _finite_nonneg(e.get("seconds"))
        }
    except (OSError, ValueError, TypeError, KeyError):
        return {}


class _EtaColumn(ProgressColumn):
    """The live ETA in the progress bar."""

    def __init__(self, eta: Eta):
        super().__init__()
        self.eta = eta

    def render(self, task) -> Text:
        return Text(f"ETA {fmt_duration(self.eta.seconds_left())}", style="progress.remaining")


def _int_at_least(name: str, lo: int):
    def parse(s: str) -> int:
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {s!r}") from None
        if v < lo:
            raise argparse.ArgumentTypeError(f"{name} must be ≥ {lo}, got {v}")
        return v

    return parse


def _timeout(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--timeout must be a number of seconds, got {s!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"--timeout must be > 0, got {v}")
    return v


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="terrainlab",
        description="terrainlab: learning, inference, reasoning and generation as motion along a "
        "vector field, S_{t+1} = S_t + η·F(S_t, x).",
    )
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("atlas", help="run the atlas experiments and write the report")
    a.add_argument("--out", default="atlas", type=Path, help="output folder (default: atlas)")
    a.add_argument("--quick", action="store_true", help="the small version of every experiment")
    a.add_argument(
        "--only",
        default=None,
        help="comma-separated id globs or chapters, e.g. 'ch05' or 'ch03.euler_*,ch06'",
    )
    a.add_argument("--resume", action="store_true", help="reuse finished results from DIR/cache")
    a.add_argument("--jobs", type=_int_at_least("--jobs", 1), default=1, help="parallel workers")
    a.add_argument("--seed", type=_int_at_least("--seed", 0), default=0, help="seed handed to every experiment")
    a.add_argument(
        "--timeout", type=_timeout, default=600.0, help="seconds per experiment (default 600)"
    )
    # extra experiment modules (tests register throwaway experiments this way); hidden
    a.add_argument("--module", action="append", default=[], help=argparse.SUPPRESS)
    a.add_argument("--package", default="terrainlab.atlas.chapters", help=argparse.SUPPRESS)
    c = sub.add_parser("claims", help="print the verdict table of the last atlas run")
    c.add_argument("--out", default="atlas", type=Path, help="the atlas folder (default: atlas)")
    c.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return p


def _console() -> Console:
    return Console(highlight=False, soft_wrap=False)


def cmd_atlas(args, console: Console) -> int:
    from terrainlab.atlas.runner import run_atlas

    package = args.package if args.package not in ("", "none") else None
    eta = Eta(jobs=args.jobs, prior=previous_times(args.out, args.quick))
    progress = Progress(
        TextColumn("[bold]atlas"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        _EtaColumn(eta),
        TextColumn("{task.description}"),
        console=console,
        transient=True,
    )
    state = {"task": None, "running": [], "done": 0, "total": 0}

    def on_plan(total: int, reused: int) -> None:
        state["task"] = progress.add_task("", total=total)
        state["total"] = total
        if reused:
            console.print(f"resuming: {reused} finished experiment(s) taken from the cache")

    def on_start(exp_id: str) -> None:
        state["running"].append(exp_id)
        eta.start(exp_id)
        progress.update(state["task"], description=", ".join(state["running"]))

    def on_finish(e: dict) -> None:
        if e["id"] in state["running"]:
            state["running"].remove(e["id"])
        eta.finish(e["id"], e["seconds"])
        state["done"] += 1
        style = VERDICT_STYLE.get(e["verdict"], "")
        note = " (cached)" if e.get("cached") else ""
        left = eta.seconds_left() if state["done"] < state["total"] else 0.0
        clock = (
            f"{state['done']:>{len(str(state['total']))}}/{state['total']} · "
            f"{fmt_duration(eta.elapsed())} elapsed · ETA {fmt_duration(left)}"
        )
        console.print(
            f"{escape(e['id']):<40} [{style}]{e['verdict']:<21}[/] {e['seconds']:7.1f} s{note}"
            f"  [dim]{clock}[/]",
            markup=True,
            soft_wrap=True,
        )
        if e["status"] == "error" and e.get("error"):
            lines = [ln for ln in e["error"].strip().splitlines() if ln.strip()]
            # a traceback ends with the exception; a crash or timeout starts with the reason
            why = (lines[-1] if lines[0].startswith("Traceback") else lines[0]) if lines else ""
            console.print(f"    [dim]{escape(why[:200])}[/]", markup=True)
        progress.update(state["task"], advance=1, description=", ".join(state["running"]))

    try:
        with progress:
            run = run_atlas(
                args.out,
                quick=args.quick,
                only=args.only,
                resume=args.resume,
                jobs=args.jobs,
                seed=args.seed,
                timeout=args.timeout,
                package=package,
                modules=args.module,
                on_plan=on_plan,
                on_start=on_start,
                on_finish=on_finish,
                on_todo=eta.plan,
            )
    except ValueError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True)
        return 2
    t = run.results["totals"]
    counts = ", ".join(f"{t[v]} {v}" for v in VERDICT_STYLE if t.get(v))
    if t.get("reproductions"):  # reproductions test no claim: counted apart from the verdicts
        counts += f"{', ' if counts else ''}{_reproductions(t['reproductions'])}"
    console.print(
        f"[bold]total[/]: {len(run.ran)} run, {len(run.reused)} from cache in "
        f"{run.wall_seconds:.1f} s wall; results.json holds {t['experiments']} "
        f"({counts or 'none'}; {t['seconds']:.1f} s of experiments)",
        markup=True,
        soft_wrap=True,
    )
    if run.interrupted:
        console.print("interrupted: rerun with --resume to finish", style="bold")
    elif run.errors:
        console.print(f"[bold red]{len(run.errors)} error(s)[/]: " + escape(", ".join(run.errors)), markup=True)
    console.print(f"report: {(run.out_dir / 'index.html').resolve()}", markup=False)
    return run.exit_code


def _reproductions(n: int) -> str:
    return f"{n} reproduction{'s' if n != 1 else ''} (not in the tally)"


def cmd_claims(args, console: Console) -> int:
    path = Path(args.out) / "results.json"
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        print(f"error: no results at {path}; run `terrainlab atlas --out {args.out}` first", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"error: {path} is not valid JSON: {exc}", file=sys.stderr)
        return 2
    from terrainlab.atlas.report import claim_kind, key_numbers
    from terrainlab.atlas.schema import validate_results

    try:
        validate_results(results)
    except ValueError as exc:
        print(f"error: {path} does not follow the results schema: {exc}", file=sys.stderr)
        return 2
    rows = [
        {
            "id": e["id"],
            "chapter": e["chapter"],
            "claim": e["claim"],
            "verdict": e["verdict"],
            "kind": claim_kind(e),
            "corrected": e["corrected"],
            "numbers": e["numbers"],
            "seconds": e["seconds"],
        }
        for e in results["experiments"]
    ]
    if args.json:
        payload = {k: results[k] for k in ("generated", "version", "quick", "seed", "totals")}
        payload["claims"] = rows
        print(json.dumps(payload, indent=2, ensure_ascii=False))
        return 0
    mode = "quick" if results["quick"] else "full"
    table = Table(title=f"terrainlab atlas · {mode} · seed {results['seed']} · {results['generated']}")
    wide = console.width >= 140
    # ids, verdicts and times are never cut; the claim takes whatever width is left
    id_width = max((len(r["id"]) for r in rows), default=10)
    table.add_column("experiment", no_wrap=True, min_width=id_width)
    table.add_column("verdict", no_wrap=True, min_width=max((len(r["verdict"]) for r in rows), default=7))
    table.add_column("s", justify="right", no_wrap=True, min_width=5)
    # a narrow terminal gets one line per claim (cut with …); a wide one the whole claim
    if wide:
        table.add_column("claim", ratio=3, overflow="fold")
    else:
        verdict_width = max((len(r["verdict"]) for r in rows), default=7)
        room = max(20, console.width - id_width - verdict_width - 5 - 13)  # 13: borders and padding
        table.add_column("claim", overflow="ellipsis", no_wrap=True, max_width=room)
    if wide:
        table.add_column("key numbers", ratio=2, overflow="fold")
    for r in rows:
        style = VERDICT_STYLE.get(r["verdict"], "")
        # ids, claims and numbers are data: Text, never parsed as markup
        cells = [
            Text(r["id"]),
            Text(r["verdict"], style=style),
            f"{r['seconds']:.1f}",
            Text(r["claim"]),
        ]
        if wide:
            cells.append(Text(key_numbers(r["numbers"])))
        table.add_row(*cells)
    console.print(table)
    t = results["totals"]
    line = ", ".join(f"{t[v]} {v}" for v in VERDICT_STYLE)
    if t.get("reproductions"):
        line = f"{t.get('claims', t['experiments'] - t['reproductions'])} claims: {line}; {_reproductions(t['reproductions'])}"
    console.print(line, markup=False)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``terrainlab`` console script and ``python -m terrainlab``."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    args = build_parser().parse_args(argv)
    console = _console()
    if args.command == "atlas":
        return cmd_atlas(args, console)
    return cmd_claims(args, console)


if __name__ == "__main__":
    sys.exit(main())
