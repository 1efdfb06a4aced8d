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

The parts live apart so nothing imports back: :mod:`terrainlab.atlas._io` (atomic writes, JSON,
cache files), :mod:`terrainlab.atlas.pool` (the worker processes), :mod:`terrainlab.atlas.report`
(index.html); this module selects, plans and records.

Example::

    from terrainlab.atlas.runner import run_atlas
    run = run_atlas("atlas", quick=True, only=["ch03"], jobs=2)
    print(run.exit_code, run.results["totals"])
"""

from __future__ import annotations

import fnmatch
import importlib
import os
import re
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ..core.validate import check_int, check_positive
from ._io import atomic_write_json, atomic_write_text, drop_cache, read_cache, write_cache
from .pool import mp_context, run_processes
from .registry import Experiment, discover, registry
from .report import write_html
from .schema import SCHEMA_VERSION, totals, validate_entry, validate_results

DEFAULT_PACKAGE = "terrainlab.atlas.chapters"
DEFAULT_TIMEOUT = 600.0

__all__ = ["AtlasRun", "run_atlas", "parse_only", "matches", "load_cached", "atomic_write_text",
           "atomic_write_json"]


def _version() -> str:
    try:
        from terrainlab import __version__

        return __version__
    except Exception:  # noqa: BLE001 - a broken core must not stop the report
        return "unknown"


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
        if p.strip().lower() in NAMED_CHAPTERS and exp_id.lower().startswith(p.strip().lower() + "."):
            return True
        if fnmatch.fnmatchcase(exp_id, p):
            return True
    return False


def _short_id(module: str) -> str:
    """terrainlab.atlas.chapters.ch05.energy -> ch05.energy (for --only on import errors)."""
    parts = module.split(".")
    return ".".join(parts[-2:]) if len(parts) >= 2 else module


# experiment folders that are not book chapters, and the section number they are reported under
NAMED_CHAPTERS = {"aleph": 13}


def _chapter_of(module: str) -> int:
    m = re.search(r"(?:^|\.)ch(\d+)(?:\.|$)", module)
    if m:
        return int(m.group(1))
    return next((NAMED_CHAPTERS[part] for part in module.split(".") if part in NAMED_CHAPTERS), 0)


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
        "shared": dict(fields.get("shared") or {}),
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
        "shared": {},
    }


def load_cached(out_dir: Path, exp: Experiment, *, quick: bool, seed: int) -> dict | None:
    """The cached entry of ``exp`` if it finished with this ``quick``/``seed`` and its figures exist."""
    entry = read_cache(out_dir, exp.id, quick=quick, seed=seed)
    if entry is None:
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
    on_todo: Callable[[list[str]], None] | None = None,
) -> AtlasRun:
    """Run the atlas into ``out_dir``; write results.json, index.html and figures; return an AtlasRun.

    ``package`` is discovered (all its modules imported) and ``modules`` are imported too (extra
    experiment modules, e.g. from tests; they must be importable in a fresh process). Only
    experiments registered by those modules are run. ``on_plan(n_total, n_reused)``,
    ``on_start(id)`` and ``on_finish(entry)`` are progress callbacks (the CLI draws its progress bar
    with them); ``on_todo(ids)`` gets the ids this run will compute, in order, before any starts
    (the CLI's ETA weighs them by their times in the previous results.json). Bad arguments raise
    ``ValueError`` naming the argument.
    """
    check_int(jobs, "jobs", minimum=1)
    check_int(seed, "seed", minimum=0)
    check_positive(timeout, "timeout", finite=False)  # seconds; inf: no limit
    if package is None and not modules:
        raise ValueError("package or modules must name where the experiments are")
    patterns = parse_only(only)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir must be a folder, got the file {out}")
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    mp_context(start=not resume)  # with resume, most runs need no worker at all

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
    if on_todo:
        on_todo([e.id for e in todo])
    for m in selected_errors:
        if on_finish:
            on_finish(this_run[m])
    for eid in reused:
        if on_finish:
            on_finish(this_run[eid])

    interrupted = False
    try:
        run_processes(out, todo, quick=quick, seed=seed, jobs=jobs, timeout=timeout, on_start=on_start,
                      on_result=lambda exp, fields: _record(out, exp, fields, quick, seed, this_run, on_finish))
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
    write_html(out, results)
    errors = tuple(i for i, d in this_run.items() if d["status"] == "error")
    ran = tuple(e.id for e in todo if e.id in this_run)
    code = 130 if interrupted else (1 if errors else 0)
    return AtlasRun(out, results, ran, tuple(reused), errors, wall, code, interrupted)


def _record(out: Path, exp: Experiment, fields: dict, quick: bool, seed: int, this_run: dict,
            on_finish: Callable[[dict], None] | None) -> None:
    """One experiment's worker has ended: validate its entry, cache a success, forget a failure."""
    entry = _entry(exp, fields, cached=False)
    try:
        validate_entry(entry)
    except ValueError as exc:  # e.g. a figure path outside DIR: this experiment's error
        entry = _entry(exp, {"status": "error", "error": f"invalid result: {exc}",
                             "seconds": entry["seconds"]}, cached=False)
    this_run[exp.id] = entry
    if entry["status"] == "ok":
        write_cache(out, entry, quick=quick, seed=seed, version=_version())
    else:
        drop_cache(out, exp.id)  # a stale success must not come back in a later results.json
    if on_finish:
        on_finish(entry)
