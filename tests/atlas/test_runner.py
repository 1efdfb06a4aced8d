"""The atlas runner: isolation, errors, timeouts, cache/resume after a kill, --only, merging."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from terrainlab.atlas._io import atomic_save, atomic_write_text, file_mode
from terrainlab.atlas.runner import matches, parse_only, run_atlas
from terrainlab.atlas.schema import validate_results

HERE = Path(__file__).resolve().parent
FIX = "_atlas_runner_fixtures"
BROKEN = "_atlas_runner_broken"


def markers(out: Path, exp_id: str) -> list[str]:
    p = out / "markers" / f"{exp_id}.txt"
    return p.read_text().splitlines() if p.exists() else []


def by_id(results: dict) -> dict:
    return {e["id"]: e for e in results["experiments"]}


def test_errors_are_isolated_and_the_others_still_produce_results(tmp_path, fixtures):
    (tmp_path / "release").touch()
    run = run_atlas(tmp_path, package=None, modules=[FIX, BROKEN], jobs=2, only="ch90,ch91,_atlas*")
    assert run.exit_code == 1
    assert set(run.errors) == {"ch90.fixture_raises", "ch91.fixture_crash", "ch91.fixture_killed", BROKEN}
    on_disk = json.loads((tmp_path / "results.json").read_text())
    validate_results(on_disk)
    assert on_disk == json.loads(json.dumps(run.results))
    e = by_id(on_disk)
    assert set(e) == {
        "ch90.fixture_ok",
        "ch90.fixture_raises",
        "ch91.fixture_fails",
        "ch91.fixture_crash",
        "ch91.fixture_killed",
        BROKEN,
    }
    # an exception: its traceback; a crash: the exit code and the worker's log tail
    assert "RuntimeError: boom from the fixture" in e["ch90.fixture_raises"]["error"]
    assert "exited with code 3" in e["ch91.fixture_crash"]["error"]
    assert "about to crash" in e["ch91.fixture_crash"]["error"]
    assert "killed by signal SIGKILL" in e["ch91.fixture_killed"]["error"]
    assert "broken on purpose" in e[BROKEN]["error"] and e[BROKEN]["status"] == "error"
    # the others still produced their results, figures included
    ok = e["ch90.fixture_ok"]
    assert ok["status"] == "ok" and ok["verdict"] == "holds" and ok["numbers"]["slope"] == 1.02
    assert sorted(ok["figures"]) == ["figures/ch90.fixture_ok/curve.png", "figures/ch90.fixture_ok/curve.svg"]
    assert all((tmp_path / f).stat().st_size > 500 for f in ok["figures"])
    fails = e["ch91.fixture_fails"]
    assert fails["verdict"] == "fails" and fails["numbers"]["residual"] == "nan"
    assert fails["corrected"].startswith("η = 0.25")
    assert on_disk["totals"]["error"] == 4 and on_disk["totals"]["holds"] == 1
    # only finished experiments are cached; every experiment ran exactly once, in its own process
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [
        "ch90.fixture_ok.json",
        "ch91.fixture_fails.json",
    ]
    pids = {markers(tmp_path, i)[0].split()[0] for i in e if i != BROKEN}
    assert len(pids) == 5 and str(os.getpid()) not in pids
    # no temporary files left behind by the atomic writes
    assert not list(tmp_path.rglob("*.tmp"))


def test_timeout_kills_the_experiment_and_records_an_error(tmp_path, fixtures):
    t0 = time.perf_counter()
    run = run_atlas(tmp_path, package=None, modules=[FIX], only="ch92.*", timeout=1.0)
    assert time.perf_counter() - t0 < 20
    (entry,) = run.results["experiments"]
    assert entry["status"] == "error" and "timed out after 1 s" in entry["error"]
    assert 1.0 <= entry["seconds"] < 10
    assert run.exit_code == 1
    pid = int(markers(tmp_path, "ch92.fixture_slow")[0].split()[0])
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie of an exited child still answers kill(0); check its state
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _wait_for(cond, seconds: float) -> bool:
    t0 = time.time()
    while time.time() - t0 < seconds:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def test_resume_after_a_kill_recomputes_nothing_finished(tmp_path, fixtures):
    out = tmp_path / "atlas"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    env["OMP_NUM_THREADS"] = "1"
    only = "ch90.fixture_ok,ch91.fixture_fails,ch92.fixture_slow"
    cmd = [sys.executable, "-m", "terrainlab", "atlas", "--out", str(out), "--package", "none"]
    cmd += ["--module", FIX, "--only", only, "--jobs", "1", "--seed", "3"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        # jobs=1 runs in id order: ok, fails, then slow, which waits for a file that never comes
        started = _wait_for(lambda: markers(out, "ch92.fixture_slow") != [], 60)
        assert started, proc.stdout.read().decode() if proc.poll() is not None else "no progress"
        os.kill(proc.pid, signal.SIGKILL)  # a hard kill of the runner mid-way
        proc.wait(timeout=10)
        # the orphaned worker notices its parent is gone and exits by itself
        slow_pid = int(markers(out, "ch92.fixture_slow")[0].split()[0])
        assert _wait_for(lambda: not _alive(slow_pid), 15)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.stdout.close()
    assert not (out / "results.json").exists()
    cached = sorted(p.name for p in (out / "cache").iterdir())
    assert cached == ["ch90.fixture_ok.json", "ch91.fixture_fails.json"]
    cache_mtimes = {p: p.stat().st_mtime_ns for p in (out / "cache").iterdir()}
    assert len(markers(out, "ch90.fixture_ok")) == 1 and len(markers(out, "ch91.fixture_fails")) == 1

    (out / "release").touch()
    run = run_atlas(out, package=None, modules=[FIX], only=only, resume=True, seed=3)
    assert run.exit_code == 0
    assert run.reused == ("ch90.fixture_ok", "ch91.fixture_fails")
    assert run.ran == ("ch92.fixture_slow",)
    # nothing finished was recomputed: one start each, cache files untouched
    assert len(markers(out, "ch90.fixture_ok")) == 1 and len(markers(out, "ch91.fixture_fails")) == 1
    assert len(markers(out, "ch92.fixture_slow")) == 2
    for p, m in cache_mtimes.items():
        assert p.stat().st_mtime_ns == m
    e = by_id(run.results)
    assert e["ch90.fixture_ok"]["cached"] and not e["ch92.fixture_slow"]["cached"]
    assert e["ch90.fixture_ok"]["numbers"]["seed"] == 3
    validate_results(json.loads((out / "results.json").read_text()))

    # a different seed does not reuse the cache; an error is never cached and re-runs on resume
    run = run_atlas(out, package=None, modules=[FIX], only="ch90.*", resume=True, seed=4)
    assert run.reused == () and set(run.ran) == {"ch90.fixture_ok", "ch90.fixture_raises"}
    run = run_atlas(out, package=None, modules=[FIX], only="ch90.*", resume=True, seed=4)
    assert run.reused == ("ch90.fixture_ok",) and run.ran == ("ch90.fixture_raises",)
    assert len(markers(out, "ch90.fixture_raises")) == 2
    # a cached result whose figures were deleted is recomputed
    for f in (out / "figures" / "ch90.fixture_ok").iterdir():
        f.unlink()
    run = run_atlas(out, package=None, modules=[FIX], only="ch90.fixture_ok", resume=True, seed=4)
    assert run.ran == ("ch90.fixture_ok",)
    # so is a truncated or foreign cache file
    (out / "cache" / "ch90.fixture_ok.json").write_text('{"quick": false, "seed": 4, "entry": {"id"')
    run = run_atlas(out, package=None, modules=[FIX], only="ch90.fixture_ok", resume=True, seed=4)
    assert run.ran == ("ch90.fixture_ok",)
    assert json.loads((out / "cache" / "ch90.fixture_ok.json").read_text())["entry"]["verdict"] == "holds"


def test_only_runs_the_selection_and_merges_into_results(tmp_path, fixtures):
    (tmp_path / "release").touch()
    run = run_atlas(tmp_path, package=None, modules=[FIX], only="ch91.fixture_fails")
    assert run.ran == ("ch91.fixture_fails",) and run.exit_code == 0
    assert [e["id"] for e in run.results["experiments"]] == ["ch91.fixture_fails"]
    run = run_atlas(tmp_path, package=None, modules=[FIX], only=["ch90.*_ok"])
    assert run.ran == ("ch90.fixture_ok",)
    # results.json keeps the earlier partial run's result (same quick/seed), marked as cached
    e = by_id(json.loads((tmp_path / "results.json").read_text()))
    assert set(e) == {"ch90.fixture_ok", "ch91.fixture_fails"}
    assert e["ch91.fixture_fails"]["cached"] and not e["ch90.fixture_ok"]["cached"]
    # a quick run into the same folder does not show the full-mode results
    run = run_atlas(tmp_path, package=None, modules=[FIX], only="ch92", quick=True)
    assert [e["id"] for e in run.results["experiments"]] == ["ch92.fixture_slow"]
    assert run.results["quick"] is True
    with pytest.raises(ValueError, match="only"):
        run_atlas(tmp_path, package=None, modules=[FIX], only="ch77")
    # every file the run wrote is readable like any file the user creates (not mkstemp's 0600)
    written = [tmp_path / "results.json", tmp_path / "index.html", *(tmp_path / "cache").iterdir(),
               *(tmp_path / "figures").rglob("*.png"), *(tmp_path / "figures").rglob("*.svg")]
    assert len(written) >= 6
    assert {f.name: f.stat().st_mode & 0o777 for f in written} == {f.name: file_mode() for f in written}


def test_atomic_writes_get_the_usual_permissions_and_leave_nothing_on_failure(tmp_path):
    old = os.umask(0o022)
    try:
        assert file_mode() == 0o644
        p = atomic_write_text(tmp_path / "a" / "index.html", "<p>x</p>")
        assert p.read_text() == "<p>x</p>" and p.stat().st_mode & 0o777 == 0o644
        os.umask(0o077)
        assert atomic_write_text(tmp_path / "private.txt", "x").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)

    def broken(tmp: str) -> None:
        Path(tmp).write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_save(p, broken)
    assert p.read_text() == "<p>x</p>"  # the old file survives a failed write
    assert sorted(f.name for f in p.parent.iterdir()) == ["index.html"]


def test_selection_patterns():
    assert parse_only(None) is None
    assert parse_only("ch05, ch03.euler_*,") == ["ch05", "ch03.euler_*"]
    with pytest.raises(ValueError, match="only"):
        parse_only(" , ")
    assert matches("ch05.energy", ["ch05"]) and matches("ch05.energy", ["ch5"])
    assert not matches("ch050.energy", ["ch05"]) and not matches("ch15.energy", ["ch5"])
    assert matches("ch03.euler_steps", ["ch03.euler_*"]) and not matches("ch03.bumpy", ["ch03.euler_*"])
    assert matches("ch03.bumpy", ["ch04", "ch03.bump?"]) and matches("x", None)


def test_bad_arguments_raise_value_error_naming_them(tmp_path):
    with pytest.raises(ValueError, match="jobs"):
        run_atlas(tmp_path, jobs=0)
    with pytest.raises(ValueError, match="seed"):
        run_atlas(tmp_path, seed=-1)
    with pytest.raises(ValueError, match="timeout"):
        run_atlas(tmp_path, timeout=0)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="out_dir"):
        run_atlas(tmp_path / "file", package=None, modules=["json"])


def test_the_atlas_modules_import_each_other_without_a_cycle():
    """report/runner/pool/registry/_io: a graph of relative imports with no cycle (the report once
    imported the runner back)."""
    import ast

    import terrainlab.atlas as atlas

    folder = Path(atlas.__file__).parent
    graph = {}
    for f in folder.glob("*.py"):
        deps = set()
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                deps.update([node.module] if node.module else [a.name for a in node.names])
        graph[f.stem] = {d.split(".")[0] for d in deps} - {"chapters"}
    graph.pop("__init__")

    def reaches(a, b, seen=()):
        return any(d == b or (d not in seen and reaches(d, b, (*seen, d))) for d in graph.get(a, ()))

    assert {m for m in graph if reaches(m, m)} == set()
    assert "runner" not in graph["report"] and "_io" in graph["report"] and "_io" in graph["registry"]
