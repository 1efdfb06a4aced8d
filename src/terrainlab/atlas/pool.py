"""The atlas's process pool: each experiment in its own worker process, ``jobs`` at a time.

Workers fork from a warm "forkserver" (torch, matplotlib's Agg backend and ``torch.func`` already
imported, see :mod:`terrainlab.atlas._warm`) where the platform has one, else they are spawned. A
worker runs one experiment with ``max(1, cores // jobs)`` torch threads and sends back the fields
of its entry; an exception, a crash (segfault, ``os._exit``) or a timeout becomes an error with the
traceback or the reason and the log's tail. A worker exits by itself when its parent dies, so a
killed run leaves nothing running.

The pool knows nothing about the cache or the report: :func:`run_processes` hands each finished
experiment's fields to ``on_result`` and the runner (:mod:`terrainlab.atlas.runner`) records them.
"""

from __future__ import annotations

import importlib
import json
import multiprocessing as mp
import multiprocessing.connection as mpc
import os
import shutil
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

from ._io import jsonable
from .registry import Experiment, run_one_context

#: What the fork server imports once, before any experiment forks from it.
PRELOAD = ["terrainlab.atlas.registry", "terrainlab.plotting", "terrainlab.atlas._warm"]


def start_method() -> str:
    """"forkserver" where available (``TERRAINLAB_ATLAS_START_METHOD`` overrides), else "spawn"."""
    forced = os.environ.get("TERRAINLAB_ATLAS_START_METHOD")
    if forced:
        return forced
    return "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"


def mp_context(start: bool = False):
    """The multiprocessing context of the workers; ``start=True`` starts the fork server now, so
    its imports (torch, numpy, matplotlib, once for all experiments) overlap with discovery."""
    method = start_method()
    ctx = mp.get_context(method)
    if method == "forkserver":
        ctx.set_forkserver_preload(PRELOAD)
        if start:
            from multiprocessing import forkserver

            forkserver.ensure_running()
    return ctx


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


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

        import matplotlib
        import numpy as np
        import torch

        matplotlib.use("Agg")  # this process only draws into files (a spawned worker has no fork server)
        torch.set_num_threads(task["threads"])
        random.seed(task["seed"])
        np.random.seed(task["seed"] % 2**32)
        torch.manual_seed(task["seed"])
        importlib.import_module(task["module"])
        t0 = time.perf_counter()
        res, ctx = run_one_context(task["id"], Path(task["out_dir"]), quick=task["quick"], seed=task["seed"])
        msg = {
            "status": "ok",
            "verdict": res.verdict,
            "numbers": jsonable(res.numbers),
            "threshold": res.threshold,
            "explanation": res.explanation,
            "corrected": res.corrected,
            "figures": [str(f).replace(os.sep, "/") for f in ctx.figures],
            "shared": dict(ctx.shared_used),
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


def run_processes(
    out: Path,
    todo: Sequence[Experiment],
    *,
    quick: bool,
    seed: int,
    jobs: int,
    timeout: float,
    on_result: Callable[[Experiment, dict], None],
    on_start: Callable[[str], None] | None = None,
) -> None:
    """Run ``todo`` in worker processes, ``jobs`` at a time; call ``on_result(exp, fields)`` as each
    ends (``fields["status"]`` is "ok" or "error"). A KeyboardInterrupt kills the running workers
    and propagates."""
    if not todo:
        return
    ctx = mp_context()
    threads = max(1, cores() // jobs)
    (out / "logs").mkdir(parents=True, exist_ok=True)
    pending = deque(todo)
    running: dict[str, tuple] = {}
    try:
        while pending or running:
            while pending and len(running) < jobs:
                exp = pending.popleft()
                running[exp.id] = _start(ctx, out, exp, quick=quick, seed=seed, threads=threads)
                if on_start:
                    on_start(exp.id)
            waitables = [r[2] for r in running.values()] + [r[1].sentinel for r in running.values()]
            mpc.wait(waitables, timeout=0.25)
            now = time.monotonic()
            for eid in list(running):
                exp, proc, conn, t0, log = running[eid]
                fields = _poll(proc, conn, now - t0, log, timeout)
                if fields is None:
                    continue
                del running[eid]
                conn.close()
                proc.join(timeout=5)
                if proc.is_alive():
                    proc.kill()
                    proc.join(timeout=5)
                on_result(exp, fields)
    finally:
        for _exp, proc, conn, _t0, _log in running.values():  # interrupted: leave nothing behind
            proc.kill()
            conn.close()
        for _exp, proc, _conn, _t0, _log in running.values():
            proc.join(timeout=5)


def _start(ctx, out: Path, exp: Experiment, *, quick: bool, seed: int, threads: int) -> tuple:
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
    return exp, proc, parent_conn, time.monotonic(), log


def _poll(proc, conn, elapsed: float, log: Path, timeout: float) -> dict | None:
    """The worker's fields if it has finished (a message, a crash or a timeout), else None."""
    if conn.poll():
        try:
            return conn.recv()
        except (EOFError, OSError):
            return _crash_fields(proc, elapsed, log)
        except Exception:  # noqa: BLE001 - an unpicklable message
            return {"status": "error", "error": traceback.format_exc(), "seconds": elapsed}
    if not proc.is_alive():
        return _crash_fields(proc, elapsed, log)
    if elapsed > timeout:
        proc.kill()
        return {
            "status": "error",
            "error": f"timed out after {timeout:g} s (killed)\n" + _tail(log),
            "seconds": elapsed,
        }
    return None


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
