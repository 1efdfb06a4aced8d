"""ctx.shared: an artifact built once per atlas output folder, loaded with weights_only=True."""

from __future__ import annotations

import json
import multiprocessing as mp
import time
from pathlib import Path

import pytest
import torch

from terrainlab.atlas import Context
from terrainlab.atlas.runner import run_atlas
from terrainlab.atlas.schema import validate_entry

FIX = "_atlas_runner_fixtures"


def _tiny(counter: Path, sleep: float = 0.0):
    def build():
        time.sleep(sleep)
        with open(counter, "a", encoding="utf-8") as f:
            f.write("built\n")
        return {"state_dict": {"w": torch.arange(4.0)}, "meta": {"steps": 4, "note": "tiny"}}

    return build


def _builds(counter: Path) -> int:
    return len(counter.read_text().splitlines()) if counter.exists() else 0


class _NotWeights:
    """A custom class: torch.save pickles it, torch.load(weights_only=True) refuses it."""

    def __init__(self):
        self.x = 1


def test_built_once_then_loaded(tmp_path):
    counter = tmp_path / "count.txt"
    a = Context(out_dir=tmp_path, exp_id="ch93.a")
    got_a = a.shared("m", build=_tiny(counter), version=1)
    b = Context(out_dir=tmp_path, exp_id="ch93.b")
    got_b = b.shared("m", build=_tiny(counter), version=1)
    assert _builds(counter) == 1
    assert torch.equal(got_a["state_dict"]["w"], got_b["state_dict"]["w"])
    assert got_a["meta"] == got_b["meta"] == {"steps": 4, "note": "tiny"}  # nothing added to meta
    assert a.shared_used == {"shared/m-v1-s0.pt": "built"}
    assert b.shared_used == {"shared/m-v1-s0.pt": "loaded"}
    assert (tmp_path / "shared" / "m-v1-s0.pt").is_file()
    assert not list(tmp_path.rglob("*.tmp"))
    # a new version is a new artifact
    b.shared("m", build=_tiny(counter), version=2)
    assert _builds(counter) == 2 and b.shared_used["shared/m-v2-s0.pt"] == "built"


def test_a_build_that_raises_writes_nothing_and_the_next_caller_builds(tmp_path):
    ctx = Context(out_dir=tmp_path, exp_id="x")

    def broken():
        raise OSError("disk on fire")

    with pytest.raises(OSError, match="disk on fire"):
        ctx.shared("m", build=broken, version=0)
    assert not ctx.shared_path("m", 0).exists() and ctx.shared_used == {}
    counter = tmp_path / "count.txt"
    ctx.shared("m", build=_tiny(counter), version=0)
    assert _builds(counter) == 1 and ctx.shared_used == {"shared/m-v0-s0.pt": "built"}


def _race(out: str, counter: str, q, barrier) -> None:
    ctx = Context(out_dir=Path(out), exp_id="race")
    barrier.wait(timeout=30)  # both ask at once: neither finds the file, one waits on the lock
    art = ctx.shared("raced", build=_tiny(Path(counter), sleep=0.3), version=0)
    q.put((ctx.shared_used["shared/raced-v0-s0.pt"], float(art["state_dict"]["w"].sum())))


def test_two_processes_racing_build_once(tmp_path):
    counter = tmp_path / "count.txt"
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    q, barrier = ctx.Queue(), ctx.Barrier(2)
    procs = [ctx.Process(target=_race, args=(str(tmp_path), str(counter), q, barrier)) for _ in range(2)]
    for p in procs:
        p.start()
    got = sorted(q.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    assert _builds(counter) == 1
    assert got == [("built", 6.0), ("loaded", 6.0)]


def test_an_artifact_that_is_not_weights_only_is_refused(tmp_path):
    ctx = Context(out_dir=tmp_path, exp_id="x")
    path = ctx.shared_path("evil", 0)
    path.parent.mkdir(parents=True)
    torch.save({"obj": _NotWeights()}, path)
    with pytest.raises(RuntimeError, match="weights_only"):
        ctx.shared("evil", build=lambda: pytest.fail("build must not run when the file exists"), version=0)
    # a build returning such an object is refused before anything is written
    with pytest.raises(RuntimeError, match="weights_only"):
        ctx.shared("evil2", build=lambda: {"obj": _NotWeights()}, version=0)
    assert not ctx.shared_path("evil2", 0).exists()
    assert not list(tmp_path.rglob("*.tmp"))
    assert ctx.shared_used == {}


def test_quick_full_and_seeds_do_not_collide(tmp_path):
    counter = tmp_path / "count.txt"
    full = Context(out_dir=tmp_path, exp_id="x", quick=False)
    quick = Context(out_dir=tmp_path, exp_id="x", quick=True)
    other_seed = Context(out_dir=tmp_path, exp_id="x", quick=False, seed=7)
    for ctx in (full, quick, other_seed, full, quick):
        ctx.shared("m", build=_tiny(counter), version=1)
    assert _builds(counter) == 3
    assert quick.shared_path("m", 1).name == "m-v1-s0-quick.pt"
    assert full.shared_path("m", 1).name == "m-v1-s0.pt"
    assert other_seed.shared_path("m", 1).name == "m-v1-s7.pt"
    assert quick.shared_used == {"shared/m-v1-s0-quick.pt": "built"}  # the first use says how


@pytest.mark.parametrize("name", ["", "a/b", "a\\b", "..", ".hidden", "-x", "a b", None, 3])
def test_bad_name_raises_value_error_naming_it(tmp_path, name):
    ctx = Context(out_dir=tmp_path, exp_id="x")
    with pytest.raises(ValueError, match="^name"):
        ctx.shared(name, build=lambda: {}, version=0)


@pytest.mark.parametrize("version", [-1, 1.0, "1", True, None])
def test_bad_version_raises_value_error_naming_it(tmp_path, version):
    ctx = Context(out_dir=tmp_path, exp_id="x")
    with pytest.raises(ValueError, match="^version"):
        ctx.shared("m", build=lambda: {}, version=version)
    with pytest.raises(ValueError, match="^build"):
        ctx.shared("m", build=None, version=0)
    assert not (tmp_path / "shared").exists() or not list((tmp_path / "shared").iterdir())


def test_runner_records_shared_use_and_never_rebuilds(tmp_path, fixtures):
    counter = tmp_path / "shared_builds.txt"
    run = run_atlas(tmp_path, package=None, modules=[FIX], only="ch93.fixture_shared_a", quick=True)
    assert run.exit_code == 0 and _builds(counter) == 1
    (a,) = run.results["experiments"]
    assert a["shared"] == {"shared/fixture_model-v1-s0-quick.pt": "built"}
    # --resume: a is reused from the cache, b runs and loads what a built
    run = run_atlas(tmp_path, package=None, modules=[FIX], only="ch93.*", quick=True, resume=True, jobs=2)
    assert run.exit_code == 0 and run.reused == ("ch93.fixture_shared_a",)
    assert _builds(counter) == 1
    e = {x["id"]: x for x in json.loads((tmp_path / "results.json").read_text())["experiments"]}
    assert e["ch93.fixture_shared_b"]["shared"] == {"shared/fixture_model-v1-s0-quick.pt": "loaded"}
    assert e["ch93.fixture_shared_a"]["cached"]
    assert e["ch93.fixture_shared_a"]["shared"] == {"shared/fixture_model-v1-s0-quick.pt": "built"}
    # a rerun without --resume recomputes both experiments, still without rebuilding
    run = run_atlas(tmp_path, package=None, modules=[FIX], only="ch93.*", quick=True, jobs=2)
    assert run.exit_code == 0 and set(run.ran) == {"ch93.fixture_shared_a", "ch93.fixture_shared_b"}
    assert _builds(counter) == 1
    assert all(x["shared"] == {"shared/fixture_model-v1-s0-quick.pt": "loaded"} for x in run.results["experiments"])
    assert all(x["numbers"]["w_sum"] == 3.0 for x in run.results["experiments"])


def test_schema_accepts_entries_without_shared_and_checks_it_when_present():
    entry = {"id": "ch01.x", "chapter": 1, "title": "t", "claim": "c", "module": "m", "status": "ok",
             "verdict": "holds", "numbers": {}, "threshold": "t", "explanation": "e", "corrected": None,
             "figures": [], "seconds": 0.1, "cached": False, "error": None}
    validate_entry(entry)  # written before shared artifacts existed
    validate_entry({**entry, "shared": {"shared/m-v0-s0.pt": "loaded"}})
    with pytest.raises(ValueError, match="shared"):
        validate_entry({**entry, "shared": {"shared/m-v0-s0.pt": "stolen"}})
    with pytest.raises(ValueError, match="shared"):
        validate_entry({**entry, "shared": {"../m.pt": "built"}})
    with pytest.raises(ValueError, match="shared"):
        validate_entry({**entry, "shared": ["shared/m.pt"]})
