"""Atlas experiments of the dynamics toolkit: decide functions both ways, and one quick run each."""

import math
from pathlib import Path

import pytest

from terrainlab.atlas import discover, run_one
from terrainlab.atlas.chapters.ch04.gd_bifurcation import decide_gd_bifurcation
from terrainlab.atlas.chapters.ch06.lyapunov_loss import decide_lyapunov_loss
from terrainlab.atlas.chapters.ch06.phase_portrait import decide_phase_portrait
from terrainlab.atlas.chapters.ch09.arrhenius_escape import decide_arrhenius


def test_decide_gd_bifurcation():
    assert decide_gd_bifurcation(0.001, 4, True, 20.0) == "holds-with-correction"
    assert decide_gd_bifurcation(0.001, 1, False, 20.0) == "holds"
    assert decide_gd_bifurcation(0.1, 4, True, 20.0) == "fails"
    assert decide_gd_bifurcation(0.001, 4, True, 1.5) == "fails"
    assert decide_gd_bifurcation(math.nan, 0, False, 20.0) == "inconclusive"


def test_decide_phase_portrait():
    assert decide_phase_portrait(2, 1, [0.5, 0.5], 0.0) == "holds"
    assert decide_phase_portrait(1, 0, [1.0], 0.0) == "fails"
    assert decide_phase_portrait(2, 1, [0.5, 0.5], 0.2) == "fails"
    assert decide_phase_portrait(2, 1, [0.99, 0.01], 0.0) == "fails"
    assert decide_phase_portrait(2, 1, [0.5, 0.5], math.nan) == "inconclusive"


def test_decide_lyapunov_loss():
    assert decide_lyapunov_loss(0.0, 0.0, 0.3) == "holds-with-correction"
    assert decide_lyapunov_loss(0.0, 0.0, 0.0) == "holds"
    assert decide_lyapunov_loss(0.1, 0.0, 0.3) == "fails"
    assert decide_lyapunov_loss(0.0, 0.05, 0.3) == "fails"
    assert decide_lyapunov_loss(math.nan, 0.0, 0.3) == "inconclusive"


def test_decide_arrhenius():
    assert decide_arrhenius(0.02, 0.05, 0.02, 0.01) == "holds"
    assert decide_arrhenius(0.2, 0.05, 0.02, 0.01) == "fails"
    assert decide_arrhenius(0.02, 0.4, 0.02, 0.01) == "holds-with-correction"
    assert decide_arrhenius(0.02, 0.05, 0.3, 0.01) == "holds-with-correction"
    assert decide_arrhenius(0.02, 0.05, 0.02, 0.2) == "inconclusive"
    assert decide_arrhenius(math.nan, 0.05, 0.02) == "inconclusive"


@pytest.fixture(scope="module")
def discovered():
    discover()
    return True


def _figs_exist(tmp_path: Path, figs):
    assert figs and all((tmp_path / f).exists() and (tmp_path / f).stat().st_size > 1000 for f in figs)
    assert any(f.endswith(".png") for f in figs) and any(f.endswith(".svg") for f in figs)


def test_gd_bifurcation_quick(tmp_path, discovered):
    res, figs = run_one("ch04.gd_bifurcation", tmp_path, quick=True)
    _figs_exist(tmp_path, figs)
    assert res.verdict == "holds-with-correction"
    right = res.numbers["right_well"]
    assert abs(right["pd_measured"] - right["pd_predicted"]) / right["pd_predicted"] < 0.02
    assert right["n_doublings"] >= 2 and right["chaos_onset"] > right["pd_measured"]
    assert res.numbers["left_well"]["pd_measured"] == pytest.approx(2 / res.numbers["curvatures"][0], rel=0.02)


def test_phase_portrait_quick(tmp_path, discovered):
    res, figs = run_one("ch06.phase_portrait", tmp_path, quick=True)
    _figs_exist(tmp_path, figs)
    assert res.verdict == "holds"
    assert sorted(res.numbers["flow_classes"]) == ["attractor", "attractor", "saddle"]
    assert sum(res.numbers["basin_fractions"]) == pytest.approx(1.0, abs=0.02)
    assert res.numbers["misassigned_vs_separatrix"] == 0.0
    gd = res.numbers["gd_basin_tables"]["0.3"]
    assert gd["cycle"][0] > 0.5  # above η = 2/8 GD no longer converges to the minima


def test_lyapunov_loss_quick(tmp_path, discovered):
    res, figs = run_one("ch06.lyapunov_loss", tmp_path, quick=True)
    _figs_exist(tmp_path, figs)
    assert res.verdict == "holds-with-correction"
    ls = res.numbers["models"]["least squares, diabetes"]
    assert ls["flow_violating_fraction"] == 0.0
    assert 2.0 < ls["first_violation_etaL"] <= 2.1  # the quadratic's threshold is sharp
    assert res.corrected


def test_arrhenius_escape_quick(tmp_path, discovered):
    res, figs = run_one("ch09.arrhenius_escape", tmp_path, quick=True)
    _figs_exist(tmp_path, figs)
    assert res.verdict == "holds", res.numbers
    n = res.numbers
    assert abs(n["fitted_barrier"] - n["true_barrier"]) / n["true_barrier"] < 0.05
    assert n["control_verdict"] == "fails" and n["control_barrier_rel_err"] > 0.2   # high T: not Arrhenius
    assert n["true_barrier"] == pytest.approx(0.7171, abs=1e-3)
    assert all(f > 0.7 for f in n["escaped_fraction"])
