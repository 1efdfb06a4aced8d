"""ch03.bumpy_bowl_critical_points: the decide function both ways, the certificate, one quick run."""

from pathlib import Path

import pytest

from terrainlab.atlas import discover, run_one
from terrainlab.atlas.chapters.ch03.bumpy_bowl_critical_points import (
    decide_bumpy_bowl_critical_points as decide,
)
from terrainlab.atlas.chapters.ch03.bumpy_bowl_critical_points import (
    exclusion_certificate,
    saddle_node_amplitude,
)
from terrainlab.terrains import bumpy_bowl, critical_points


def test_decide_each_way():
    assert decide(2, 1, 0, 0, 1e-12, certified=False) == "holds"
    assert decide(4, 4, 1, 0, 1e-12, certified=True) == "holds"
    assert decide(1, 0, 0, 0, 1e-12, certified=True) == "fails"
    assert decide(1, 0, 0, 0, 1e-12, certified=False) == "inconclusive"
    # Morse count inconsistent: points were missed
    assert decide(2, 0, 0, 0, 1e-12, certified=True) == "inconclusive"
    assert decide(2, 1, 1, 0, 1e-12, certified=True) == "inconclusive"
    # untrustworthy points
    assert decide(2, 1, 0, 0, 1e-6, certified=True) == "inconclusive"
    assert decide(2, 1, 0, 0, float("nan"), certified=True) == "inconclusive"
    assert decide(2, 1, 0, 1, 1e-12, certified=True) == "inconclusive"


def test_certificate_fails_when_a_point_is_missing():
    a_star, x_star = saddle_node_amplitude()
    assert abs(x_star - 1.555) < 1e-3 and abs(a_star - 1.8344) < 1e-3
    amp = 1.2 * a_star  # past a second (pitchfork) bifurcation: 2 min, 2 saddles, 1 max
    T = bumpy_bowl(amp)
    cp = critical_points(T, n_grid=16)
    assert cp.counts == {"min": 2, "saddle": 2, "max": 1, "degenerate": 0}
    assert exclusion_certificate(T, cp.points, 0.01, amp, 1.8)["certified"]
    # drop one saddle: the certificate must notice
    partial = [p for p in cp.points if p is not cp.of_kind("saddle")[0]]
    assert not exclusion_certificate(T, partial, 0.01, amp, 1.8)["certified"]
    # and the book's bowl is certified with its single minimum
    T0 = bumpy_bowl()
    assert exclusion_certificate(T0, critical_points(T0, n_grid=8).points, 0.02, 1.5, 1.8)["certified"]


def test_quick_run(tmp_path):
    discover()
    res, figs = run_one("ch03.bumpy_bowl_critical_points", tmp_path, quick=True)
    assert res.verdict == "fails"
    n = res.numbers
    assert n["counts"] == {"min": 1, "saddle": 0, "max": 0, "degenerate": 0}
    assert n["max_grad_norm"] < 1e-8 and n["certificate"]["certified"]
    (loc,) = [p["location"] for p in n["points"]]
    assert loc[0] == pytest.approx(-0.6115, abs=1e-4) and abs(loc[1]) < 1e-10
    assert n["counts_above_Astar"]["min"] == 2 and n["counts_above_Astar"]["saddle"] == 1
    assert n["gd_status"] == "converged" and n["gd_end"][0] == pytest.approx(-0.6115, abs=1e-4)
    assert 0.3 < n["shoulder_grad_norm"] < 1.0
    assert res.corrected and "1.83" in res.corrected
    assert {Path(f).suffix for f in figs} == {".svg", ".png"}
    assert all((tmp_path / f).stat().st_size > 10_000 for f in figs)
