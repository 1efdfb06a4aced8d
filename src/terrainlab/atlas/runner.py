"""The atlas runner: every experiment in its own process, a cache, resume, and atomic reports.

Each registered experiment (``@experiment``, see :mod:`terrainlab.atlas.registry`) tests one claim of
the book about the one equation S_{t+1} = S_t + η·F(S_t, x). :func:`run_atlas` runs them:

* **isolation** — one worker process per experiment ("forkserver" where the platform has it, else
  "spawn"); an exception, a crash (segfault, ``os._exit``) or a timeout becomes an *error entry*
  with the traceback or the reason, and the other experiments still run;
* **parallelism** — ``jobs`` workers at a time, each with ``max(1, cores // jobs)`` torch threads;
* **cache and resume** — each finished experiment's entry is written atomically to
  ``DIR/cache/<id>.json`` together with ``quick``, ``seed`` and the terrainlab version; with
  ``resume=True`` a cached entry with the same ``quick`` and ``seed`` (and whose figures still exist)
  is reused, so a killed run recomputes nothing it had finished. Errors are never cached;
* **reports** — ``DIR/results.json`` (validated by :func:`terrainlab.atlas.schema.validate_results`)
  and ``DIR/index.html`` (:mod:`terrainlab.atlas.report`), written atomically. ``results.json``
  holds every registered experiment that has a result for this ``quick``/``seed`` in the cache,
  so a partial run (``only=...``) adds to, rather than discards, earlier results.

Example::

    from terrainlab.atlas.runner import run_atlas
    run = run_atlas("atlas", quick=True, only=["ch03"], jobs=2)
    print(run.exit_code, run.results["totals"])
"""

from __future__ import annotations

import fnmatch
import importlib
import json
import multiprocessing as mp
import multiprocessing.connection as mpc
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .registry import Experiment, discover, jsonable, registry, run_one
from .schema import SCHEMA_VERSION, totals, validate_entry, validate_results

DEFAULT_PACKAGE = "terrainlab.atlas.chapters"
DEFAULT_TIMEOUT = 600.0


def _version() -> str:
    try:
        from terrainlab import __version__

        return __version__
    except Exception:  # noqa: BLE001 - a broken core must not stop the report
        return "unknown"


# --------------------------------------------------------------------------------------------------
# atomic files


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(jsonable(obj), indent=2, ensure_ascii=False) + "\n")


# --------------------------------------------------------------------------------------------------
# selection


def _chapter_prefix(pattern: str) -> str | None:
    """'ch5' / 'ch05' / 'CH05' -> 'ch05'; anything else -> None."""
    m = re.fullmatch(r"ch(\d+)", pattern.strip().lower())
    return f"ch{int(m.group(1)):02d}" if m else None


def parse_only(only: str | Sequence[str] | None) -> list[str] | None:
    """Split ``--only`` ("ch05,ch03.euler_*") into patterns; ``None`` / empty means everything."""
    if only is None:
        return None
    items = only.split(",") if isinstance(only, str) else list(only)
    pats = [p.strip() for p in items if p and p.strip()]
    if not pats:
        raise ValueError(f"only must name at least one id pattern or chapter, got {only!r}")
    return pats


def matches(exp_id: str, patterns: list[str] | None) -> bool:
    """Whether ``exp_id`` is selected: a glob on the id, or a chapter prefix like "ch05"."""
    if patterns is None:
        return True
    for p in patterns:
        ch = _chapter_prefix(p)
        if ch is not None and exp_id.lower().startswith(ch + "."):
            return True
        if fnmatch.fnmatchcase(exp_id, p):
            return True
    return False


def _short_id(module: str) -> str:
    """terrainlab.atlas.chapters.ch05.energy -> ch05.energy (for --only on import errors)."""
    parts = module.split(".")
    return ".".join(parts[-2:]) if len(parts) >= 2 else module


def _chapter_of(module: str) -> int:
    m = re.search(r"(?:^|\.)ch(\d+)(?:\.|$)", module)
    return int(m.group(1)) if m else 0


# --------------------------------------------------------------------------------------------------
# the worker (runs in its own process)


def _watch_parent(conn) -> None:
    """Exit when the parent goes away (its end of the pipe closes), so a killed run leaves no
    orphaned experiment behind."""
    try:
        conn.poll(None)
    except Exception:  # noqa: BLE001
        pass
    os._exit(70)


def _worker(conn, task: dict) -> None:
    """Run one experiment in this process and send its entry fields through ``conn``."""
    log = open(task["log"], "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - lives as long as we do
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout = sys.stderr = log
    threading.Thread(target=_watch_parent, args=(conn,), daemon=True).start()
    for p in reversed(task.get("sys_path", [])):
        if p not in sys.path:
            sys.path.insert(0, p)
    t0 = time.perf_counter()
    try:
        import random

        import numpy as np
        import torch

        torch.set_num_threads(task["threads"])
        random.seed(task["seed"])
        np.random.seed(task["seed"] % 2**32)
        torch.manual_seed(task["seed"])
        importlib.import_module(task["module"])
        t0 = time.perf_counter()
        res, figs = run_one(task["id"], Path(task["out_dir"]), quick=task["quick"], seed=task["seed"])
        msg = {
            "status": "ok",
            "verdict": res.verdict,
            "numbers": jsonable(res.numbers),
            "threshold": res.threshold,
            "explanation": res.explanation,
            "corrected": res.corrected,
            "figures": [str(f).replace(os.sep, "/") for f in figs],
            "seconds": time.perf_counter() - t0,
            "error": None,
        }
        json.dumps(msg)  # fail here, as this experiment's error, if something is not JSON
    except BaseException:  # noqa: BLE001 - everything an experiment does wrong is its error entry
        msg = {"status": "error", "error": traceback.format_exc(), "seconds": time.perf_counter() - t0}
    print(f"[terrainlab atlas] {task['id']}: {msg['status']} in {msg['seconds']:.2f} s", flush=True)
    conn.send(msg)
    conn.close()


# --------------------------------------------------------------------------------------------------
# the parent


@dataclass(frozen=True)
class AtlasRun:
    """What :func:`run_atlas` did. ``results`` is the content of results.json; ``ran`` the ids
    computed in this run, ``reused`` those taken from the cache; ``exit_code`` is 1 when any entry
    of this run is an error (130 when interrupted), else 0."""

    out_dir: Path
    results: dict
    ran: tuple[str, ...]
    reused: tuple[str, ...]
    errors: tuple[str, ...]
    wall_seconds: float
    exit_code: int
    interrupted: bool = False


def _entry(exp: Experiment, fields: dict, *, cached: bool) -> dict:
    return {
        "id": exp.id,
        "chapter": exp.chapter,
        "title": exp.title,
        "claim": exp.claim,
        "module": exp.module,
        "status": fields["status"],
        "verdict": fields["verdict"] if fields["status"] == "ok" else "error",
        "numbers": fields.get("numbers") or {},
        "threshold": fields.get("threshold"),
        "explanation": fields.get("explanation"),
        "corrected": fields.get("corrected"),
        "figures": list(fields.get("figures") or []),
        "seconds": float(fields.get("seconds") or 0.0),
        "cached": cached,
        "error": fields.get("error"),
    }


def _import_error_entry(module: str, tb: str) -> dict:
    return {
        "id": module,
        "chapter": _chapter_of(module),
        "title": f"module {module} failed to import",
        "claim": "",
        "module": module,
        "status": "error",
        "verdict": "error",
        "numbers": {},
        "threshold": None,
        "explanation": None,
        "corrected": None,
        "figures": [],
        "seconds": 0.0,
        "cached": False,
        "error": tb,
    }


def _cache_path(out_dir: Path, exp_id: str) -> Path:
    return out_dir / "cache" / f"{exp_id}.json"


def load_cached(out_dir: Path, exp: Experiment, *, quick: bool, seed: int) -> dict | None:
    """The cached entry of ``exp`` if it finished with this ``quick``/``seed`` and its figures exist."""
    path = _cache_path(Path(out_dir), exp.id)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("quick") != quick or data.get("seed") != seed:
        return None
    entry = data.get("entry")
    if not isinstance(entry, dict) or entry.get("status") != "ok" or entry.get("id") != exp.id:
        return None
    if not all((Path(out_dir) / f).is_file() for f in entry.get("figures", [])):
        return None
    # the registry (title, claim, chapter) is the truth; the cache holds what was measured
    out = _entry(exp, entry, cached=True)
    try:
        validate_entry(out)
    except ValueError:
        return None  # written by an older, different version: recompute
    return out


def _collect(
    package: str | None, modules: Iterable[str]
) -> tuple[list[Experiment], dict[str, str]]:
    """Import the experiment modules; return the experiments they registered and import errors."""
    errors: dict[str, str] = {}
    wanted: set[str] = set()
    if package:
        errors.update(discover(package))
    for name in modules:
        wanted.add(name)
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - reported as an error entry
            errors[name] = traceback.format_exc()
    exps = [
        e
        for e in registry().values()
        if (package and (e.module == package or e.module.startswith(package + ".")))
        or e.module in wanted
    ]
    return exps, errors


def _start_method() -> str:
    forced = os.environ.get("TERRAINLAB_ATLAS_START_METHOD")
    if forced:
        return forced
    return "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"


def _mp_context(start: bool = False):
    """The multiprocessing context of the workers; ``start=True`` starts the fork server now, so
    its imports (torch, numpy, matplotlib, once for all experiments) overlap with discovery."""
    method = _start_method()
    ctx = mp.get_context(method)
    if method == "forkserver":
        ctx.set_forkserver_preload(["terrainlab.atlas.registry", "terrainlab.plotting", "terrainlab.atlas._warm"])
        if start:
            from multiprocessing import forkserver

            forkserver.ensure_running()
    return ctx


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def run_atlas(
    out_dir: str | os.PathLike,
    *,
    quick: bool = False,
    only: str | Sequence[str] | None = None,
    resume: bool = False,
    jobs: int = 1,
    seed: int = 0,
    timeout: float = DEFAULT_TIMEOUT,
    package: str | None = DEFAULT_PACKAGE,
    modules: Sequence[str] = (),
    on_start: Callable[[str], None] | None = None,
    on_finish: Callable[[dict], None] | None = None,
    on_plan: Callable[[int, int], None] | None = None,
) -> AtlasRun:
    """Run the atlas into ``out_dir``; write results.json, index.html and figures; return an AtlasRun.

    ``package`` is discovered (all its modules imported) and ``modules`` are imported too (extra
    experiment modules, e.g. from tests; they must be importable in a fresh process). Only
    experiments registered by those modules are run. ``on_plan(n_total, n_reused)``,
    ``on_start(id)`` and ``on_finish(entry)`` are progress callbacks (the CLI draws its progress bar
    with them). Bad arguments raise ``ValueError`` naming the argument.
    """
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ValueError(f"jobs must be an int ≥ 1, got {jobs!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be an int ≥ 0, got {seed!r}")
    if not (isinstance(timeout, (int, float)) and timeout > 0):
        raise ValueError(f"timeout must be a number of seconds > 0, got {timeout!r}")
    if package is None and not modules:
        raise ValueError("package or modules must name where the experiments are")
    patterns = parse_only(only)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir must be a folder, got the file {out}")
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    _mp_context(start=not resume)  # with resume, most runs need no worker at all

    exps, import_errors = _collect(package, modules)
    selected = [e for e in exps if matches(e.id, patterns)]
    selected_errors = {
        m: tb
        for m, tb in import_errors.items()
        if patterns is None or matches(m, patterns) or matches(_short_id(m), patterns)
    }
    if patterns is not None and not selected and not selected_errors:
        known = ", ".join(e.id for e in exps) or "none"
        raise ValueError(f"only={patterns} matches no experiment (registered: {known})")

    this_run: dict[str, dict] = {}
    for m, tb in selected_errors.items():
        this_run[m] = _import_error_entry(m, tb)
    todo: list[Experiment] = []
    reused: list[str] = []
    for e in selected:
        cached = load_cached(out, e, quick=quick, seed=seed) if resume else None
        if cached is not None:
            this_run[e.id] = cached
            reused.append(e.id)
        else:
            todo.append(e)
    if on_plan:
        on_plan(len(selected) + len(selected_errors), len(reused))
    for m in selected_errors:
        if on_finish:
            on_finish(this_run[m])
    for eid in reused:
        if on_finish:
            on_finish(this_run[eid])

    interrupted = False
    try:
        _run_processes(out, todo, quick, seed, jobs, timeout, this_run, on_start, on_finish)
    except KeyboardInterrupt:
        interrupted = True

    # results.json: every experiment of these modules with a result now or a valid cached one
    entries: dict[str, dict] = dict(this_run)
    for e in exps:
        if e.id not in entries:
            cached = load_cached(out, e, quick=quick, seed=seed)
            if cached is not None:
                entries[e.id] = cached
    for m, tb in import_errors.items():  # a broken module is always shown
        entries.setdefault(m, _import_error_entry(m, tb))
    ordered = sorted(entries.values(), key=lambda d: (d["chapter"], d["id"]))
    wall = time.perf_counter() - t_start
    results = {
        "schema": SCHEMA_VERSION,
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "version": _version(),
        "quick": bool(quick),
        "seed": int(seed),
        "only": patterns,
        "wall_seconds": wall,
        "totals": totals(ordered),
        "experiments": ordered,
    }
    validate_results(results)
    atomic_write_json(out / "results.json", results)
    from .report import write_html

    write_html(out, results)
    errors = tuple(i for i, d in this_run.items() if d["status"] == "error")
    ran = tuple(e.id for e in todo if e.id in this_run)
    code = 130 if interrupted else (1 if errors else 0)
    return AtlasRun(out, results, ran, tuple(reused), errors, wall, code, interrupted)


def _run_processes(out, todo, quick, seed, jobs, timeout, this_run, on_start, on_finish) -> None:
    if not todo:
        return
    ctx = _mp_context()
    threads = max(1, _cores() // jobs)
    (out / "logs").mkdir(parents=True, exist_ok=True)
    pending = deque(todo)
    running: dict[str, tuple] = {}

    def finish(exp: Experiment, fields: dict) -> None:
        entry = _entry(exp, fields, cached=False)
        try:
            validate_entry(entry)
        except ValueError as exc:  # e.g. a figure path outside DIR: this experiment's error
            entry = _entry(exp, {"status": "error", "error": f"invalid result: {exc}",
                                 "seconds": entry["seconds"]}, cached=False)
        this_run[exp.id] = entry
        cache = _cache_path(out, exp.id)
        if entry["status"] == "ok":
            atomic_write_json(cache, {"quick": quick, "seed": seed, "version": _version(), "entry": entry})
        elif cache.exists():
            cache.unlink()  # a stale success must not come back in a later results.json
        if on_finish:
            on_finish(entry)

    try:
        while pending or running:
            while pending and len(running) < jobs:
                exp = pending.popleft()
                fig_dir = out / "figures" / exp.id
                if fig_dir.exists():
                    shutil.rmtree(fig_dir)  # figures of an older run of this experiment
                log = out / "logs" / f"{exp.id}.log"
                log.write_text("", encoding="utf-8")
                task = {
                    "id": exp.id,
                    "module": exp.module,
                    "out_dir": str(out.resolve()),
                    "quick": bool(quick),
                    "seed": int(seed),
                    "threads": threads,
                    "log": str(log),
                    "sys_path": list(sys.path),
                }
                parent_conn, child_conn = ctx.Pipe(duplex=True)
                proc = ctx.Process(target=_worker, args=(child_conn, task), name=f"atlas:{exp.id}")
                proc.start()
                child_conn.close()
                running[exp.id] = (exp, proc, parent_conn, time.monotonic(), log)
                if on_start:
                    on_start(exp.id)
            waitables = [r[2] for r in running.values()] + [r[1].sentinel for r in running.values()]
            mpc.wait(waitables, timeout=0.25)
            now = time.monotonic()
            for eid in list(running):
                exp, proc, conn, t0, log = running[eid]
                fields = None
                if conn.poll():
                    try:
                        fields = conn.recv()
                    except (EOFError, OSError):
                        fields = _crash_fields(proc, now - t0, log)
                    except Exception:  # noqa: BLE001 - an unpicklable message
                        fields = {"status": "error", "error": traceback.format_exc(), "seconds": now - t0}
                elif not proc.is_alive():
                    fields = _crash_fields(proc, now - t0, log)
                elif now - t0 > timeout:
                    proc.kill()
                    fields = {
                        "status": "error",
                        "error": f"timed out after {timeout:g} s (killed)\n" + _tail(log),
                        "seconds": now - t0,
                    }
                if fields is None:
                    continue
                del running[eid]
                conn.close()
                proc.join(timeout=5)
                if proc.is_alive():
                    proc.kill()
                    proc.join(timeout=5)
                finish(exp, fields)
    finally:
        for _exp, proc, conn, _t0, _log in running.values():  # interrupted: leave nothing behind
            proc.kill()
            conn.close()
        for _exp, proc, _conn, _t0, _log in running.values():
            proc.join(timeout=5)


def _tail(log: Path, n: int = 4000) -> str:
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return ("log tail:\n" + text[-n:]) if text.strip() else ""


def _crash_fields(proc, seconds: float, log: Path) -> dict:
    proc.join(timeout=5)
    code = proc.exitcode
    if code is not None and code < 0:
        import signal

        try:
            why = f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            why = f"killed by signal {-code}"
    else:
        why = f"exited with code {code}"
    return {
        "status": "error",
        "error": f"worker process {why} before returning a result\n" + _tail(log),
        "seconds": seconds,
    }
