"""The atlas command's progress lines: done/total, elapsed and an ETA (terrainlab.cli.Eta)."""

from __future__ import annotations

import json
import re

import pytest

from terrainlab.cli import Eta, fmt_duration, main, previous_times

FIX = "_atlas_runner_fixtures"


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_eta_from_this_runs_mean_with_one_worker():
    c = Clock()
    eta = Eta(jobs=1, clock=c)
    eta.plan(["a", "b", "c", "d"])
    assert eta.seconds_left() is None  # nothing to estimate from yet
    eta.start("a")
    c.t += 4.0
    eta.finish("a", 4.0)
    assert eta.seconds_left() == pytest.approx(12.0)  # three left at 4 s each, one worker
    eta.start("b")
    c.t += 3.0  # b has run 3 s of its expected 4
    assert eta.seconds_left() == pytest.approx(1.0 + 8.0)
    c.t += 3.0  # b overruns its estimate (6 s of 4): it is given a tenth of its run time more
    assert eta.seconds_left() == pytest.approx(0.6 + 8.0)
    eta.finish("b", 6.0)  # mean is now 5 s
    assert eta.seconds_left() == pytest.approx(10.0)
    for i in ("c", "d"):
        eta.start(i)
        eta.finish(i, 5.0)
    assert eta.seconds_left() == 0.0
    assert eta.elapsed() == pytest.approx(10.0)


def test_eta_uses_previous_times_workers_and_the_longest_remainder():
    c = Clock()
    prior = {"long": 30.0, "s1": 2.0, "s2": 2.0, "bad": float("nan")}
    eta = Eta(jobs=4, prior=prior, clock=c)
    assert "bad" not in eta.prior
    eta.plan(["long", "s1", "s2", "new"])
    # 'new' has no previous time and nothing finished yet: the mean of the previous ones (34/3)
    # four workers would share 30 + 2 + 2 + 11.33, but 'long' alone takes 30
    assert eta.seconds_left() == pytest.approx(30.0)
    eta2 = Eta(jobs=2, prior={"x": 10.0, "y": 10.0, "z": 10.0}, clock=c)
    eta2.plan(["x", "y", "z"])
    assert eta2.seconds_left() == pytest.approx(15.0)  # 30 s of work on 2 workers
    # measured overhead: experiments taking twice their experiment time in wall time double the ETA
    eta2.start("x")
    c.t += 20.0
    eta2.finish("x", 10.0)
    assert eta2.seconds_left() == pytest.approx(2.0 * 10.0)  # 20 s of work on 2 workers, × 2
    # cached entries (never started) do not count as measured times
    eta2.finish("cached-one", 0.0)
    assert "cached-one" not in eta2.finished


def test_fmt_duration_and_previous_times(tmp_path):
    assert fmt_duration(None) == "?" and fmt_duration(float("inf")) == "?"
    assert fmt_duration(0.4) == "0:00" and fmt_duration(75.2) == "1:15"
    assert fmt_duration(3725) == "1:02:05" and fmt_duration(-3) == "0:00"
    assert previous_times(tmp_path, quick=True) == {}
    (tmp_path / "results.json").write_text("{not json")
    assert previous_times(tmp_path, quick=True) == {}
    old = {"quick": True, "experiments": [
        {"id": "a", "status": "ok", "seconds": 1.5},
        {"id": "b", "status": "error", "seconds": 9.0},  # an error's time says little
        {"id": "c", "status": "ok", "seconds": "x"},
    ]}
    (tmp_path / "results.json").write_text(json.dumps(old))
    assert previous_times(tmp_path, quick=True) == {"a": 1.5}
    assert previous_times(tmp_path, quick=False) == {}  # the other mode's times are not this one's


def test_atlas_prints_progress_with_eta(tmp_path, fixtures, capsys, monkeypatch):
    planned = []
    monkeypatch.setattr(Eta, "plan", lambda self, ids: planned.append(list(ids)))
    argv = ["atlas", "--out", str(tmp_path), "--package", "none", "--module", FIX, "--quick",
            "--only", "ch90.fixture_ok,ch91.fixture_fails"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert planned == [["ch90.fixture_ok", "ch91.fixture_fails"]]  # the runner's on_todo
    lines = [ln for ln in out.splitlines() if ln.startswith("ch9")]
    assert len(lines) == 2
    pat = r"(\d)/2 · \d+:\d\d elapsed · ETA (\d+:\d\d|\?)$"
    got = [re.search(pat, ln) for ln in lines]
    assert all(got), lines
    assert [m.group(1) for m in got] == ["1", "2"]
    assert got[0].group(2) != "?" and got[1].group(2) == "0:00"  # one measured: an estimate; the end: 0
    assert "total" in out and "index.html" in out

    # resumed: nothing to compute (on_todo gets no id), both lines come from the cache
    assert main([*argv, "--resume"]) == 0
    out = capsys.readouterr().out
    assert planned[-1] == [] and out.count("(cached)") == 2
    lines = [ln for ln in out.splitlines() if ln.startswith("ch9")]
    assert "resuming: 2" in out and re.search(r"2/2 · \d+:\d\d elapsed · ETA 0:00$", lines[1])
