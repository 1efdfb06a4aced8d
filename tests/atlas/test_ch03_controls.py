"""Issue 17 §2 for chapter 3: each experiment's control, claim kind and verdict, and every branch of its decide_*."""

import math

import pytest

from terrainlab.atlas import discover, run_one
from terrainlab.atlas.chapters.ch03.bumpy_bowl_critical_points import (
    decide_bumpy_bowl_critical_points,
)
from terrainlab.atlas.chapters.ch03.euler_steps import decide_euler_limit
from terrainlab.atlas.chapters.ch03.landscape_slices import decide_landscape
from terrainlab.atlas.chapters.ch03.momentum_as_physics import (
    decide_momentum_physics,
    naive_mapping,
)
from terrainlab.atlas.chapters.ch03.nearest_minimum import decide_nearest_minimum
from terrainlab.atlas.chapters.ch03.sharp_vs_flat import decide_sharp_vs_flat


@pytest.fixture(scope="module", autouse=True)
def _registry():
    discover()


# ---------------------------------------------------------------- ch03.bumpy_bowl_critical_points
def test_decide_bumpy_bowl_every_branch():
    d = decide_bumpy_bowl_critical_points
    assert d(2, 1, 0, 0, 1e-12, False) == "holds"
    assert d(1, 0, 0, 0, 1e-12, True) == "fails"
    assert d(1, 0, 0, 0, 1e-12, False) == "inconclusive"  # no certificate
    assert d(2, 0, 0, 0, 1e-12, True) == "inconclusive"  # Morse sum ≠ 1
    assert d(1, 0, 0, 0, math.nan, True) == "inconclusive"  # residual not trustworthy
    # the control (a bowl past A*) must read holds, else nothing is decided
    assert d(1, 0, 0, 0, 1e-12, True, control_verdict="fails") == "inconclusive"
    assert d(2, 1, 0, 0, 1e-12, True, control_verdict="inconclusive") == "inconclusive"
    with pytest.raises(ValueError, match="control_verdict"):
        d(1, 0, 0, 0, 1e-12, True, control_verdict="maybe")


def test_bumpy_bowl_quick_verdict_and_control(tmp_path):
    res, _ = run_one("ch03.bumpy_bowl_critical_points", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "fails" and n["claim_kind"] == "theorem-check"
    assert n["control_verdict"] == "holds"
    assert n["control_counts"] == {"min": 2, "saddle": 1, "max": 0, "degenerate": 0}
    assert n["control_amplitude"] > n["saddle_node_amplitude"] > n["amplitude"]


# ---------------------------------------------------------------- ch03.sharp_vs_flat
def test_decide_sharp_vs_flat_every_branch():
    d = decide_sharp_vs_flat
    assert d(1.6, 0.0, math.sqrt(10), 4.0) == "holds-with-correction"  # degenerate flat minimum
    assert d(1.6, 0.2, 2.0, 4.0) == "holds-with-correction"  # curves cross in range
    assert d(1.6, 0.2, math.inf, 4.0) == "holds"
    assert d(1.6, 1.6, 0.0, 4.0) == "fails"
    # controls that do not come out as they must: nothing is decided
    assert d(1.6, 0.0, math.sqrt(10), 4.0, control_equal="holds") == "inconclusive"
    assert d(1.6, 0.0, math.sqrt(10), 4.0, control_quadratic="holds-with-correction") == "inconclusive"
    with pytest.raises(ValueError, match="control_equal"):
        d(1.6, 0.0, 1.0, 4.0, control_equal="no")


def test_sharp_vs_flat_quick_verdict_and_controls(tmp_path):
    res, _ = run_one("ch03.sharp_vs_flat", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "holds-with-correction" and n["claim_kind"] == "theorem-check"
    assert n["control_equal_curvature_verdict"] == "fails"
    assert n["control_equal_curvature_hessian"] == pytest.approx(1.6)
    assert n["control_flat_quadratic_verdict"] == "holds"
    assert n["control_flat_quadratic_hessian"] == pytest.approx(0.16)


# ---------------------------------------------------------------- ch03.momentum_as_physics
def test_decide_momentum_physics_every_branch():
    d = decide_momentum_physics
    assert d(1.01, 0.005) == "holds"
    assert d(1.01, 0.2) == "holds-with-correction"  # converges, but not close enough at the finest h
    assert d(1.6, 0.005) == "holds-with-correction"  # converges faster than first order
    assert d(0.1, 0.5) == "fails"
    assert d(1.01, 0.005, control_verdict="holds") == "inconclusive"  # the wrong mapping also "converges"
    assert d(math.nan, 0.005) == "inconclusive"
    with pytest.raises(ValueError, match="control_verdict"):
        d(1.0, 0.0, control_verdict="x")
    with pytest.raises(ValueError, match="h"):
        naive_mapping(0.0)


def test_momentum_as_physics_quick_verdict_and_control(tmp_path):
    res, _ = run_one("ch03.momentum_as_physics", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "holds" and n["claim_kind"] == "theorem-check"
    assert n["measured_order"] == pytest.approx(1.0, abs=0.1)
    assert n["control_verdict"] == "fails"
    assert n["control_measured_order"] < 0.5 and min(n["control_max_error"]) > 1.0


# ---------------------------------------------------------------- ch03.euler_steps
def test_decide_euler_limit_every_branch():
    d = decide_euler_limit
    good = {2: 2.04, 4: 4.16}
    assert d(0.97, control_orders=good) == "holds"
    assert d(0.02, control_orders=good) == "fails"
    assert d(1.6, control_orders=good) == "inconclusive"
    assert d(math.nan, control_orders=good) == "inconclusive"
    # a measurement that reads 1 for Heun (order 2) cannot vouch for GD's 1
    assert d(0.97, control_orders={2: 1.0, 4: 4.1}) == "inconclusive"
    assert d(0.97, control_orders={2: 2.0, 4: math.nan}) == "inconclusive"
    with pytest.raises(ValueError, match="tol"):
        d(1.0, tol=0.0)


def test_euler_steps_quick_verdict_and_control(tmp_path):
    res, _ = run_one("ch03.euler_steps", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "holds" and n["claim_kind"] == "theorem-check"
    assert n["measured_order"] == pytest.approx(1.0, abs=0.15)
    assert n["control_heun_measured_order"] == pytest.approx(2.0, abs=0.3)
    assert n["control_rk4_measured_order"] == pytest.approx(4.0, abs=0.6)
    assert n["control_reads_known_orders"] is True


# ---------------------------------------------------------------- ch03.nearest_minimum
def test_decide_nearest_minimum_every_branch():
    d = decide_nearest_minimum
    assert d(0.2) == "fails"
    assert d(0.005) == "holds"
    assert d(0.2, control_mismatch_fraction=0.05) == "inconclusive"  # the symmetric control mismatches too
    assert d(math.nan) == "inconclusive"
    with pytest.raises(ValueError, match="control_mismatch_fraction"):
        d(0.2, control_mismatch_fraction=1.5)


def test_nearest_minimum_quick_verdict_and_control(tmp_path):
    res, _ = run_one("ch03.nearest_minimum", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "fails" and n["claim_kind"] == "theorem-check"
    assert n["control_verdict"] == "holds" and n["control_mismatch_fraction"] == 0.0
    assert n["flow_regime_mismatch_fraction"] > 0.04  # the book's well mismatches even in the flow regime


# ---------------------------------------------------------------- ch03.landscape_slices
def test_decide_landscape_every_branch():
    d = decide_landscape
    ctl = {"control_ratio": 1.17, "control_ratio_se": 0.01}
    assert d(2.0, 0.95, 0.02, **ctl) == "holds"
    assert d(150.0, 0.95, 0.02, ratio_se=10.0, **ctl) == "holds-with-correction"
    assert d(150.0, 0.4, 0.02, **ctl) == "fails"  # the PCA plane misses the path
    assert d(150.0, 0.95, 0.5, **ctl) == "fails"  # the surface misses the loss along the path
    # a threshold inside mean ± 2 SE
    assert d(3.5, 0.95, 0.02, ratio_se=0.5, **ctl) == "inconclusive"
    assert d(150.0, 0.82, 0.02, pca_se=0.05, **ctl) == "inconclusive"
    assert d(150.0, 0.95, 0.09, gap_se=0.01, **ctl) == "inconclusive"
    assert d(math.inf, 0.95, 0.02, ratio_se=math.nan, **ctl) == "inconclusive"
    # the control (an isotropic terrain) must read below the threshold
    assert d(150.0, 0.95, 0.02, control_ratio=5.0) == "inconclusive"
    assert d(150.0, 0.95, 0.02, control_ratio=2.8, control_ratio_se=0.2) == "inconclusive"
    with pytest.raises(ValueError, match="ratio_se"):
        d(2.0, 0.95, 0.02, ratio_se=-1.0)


def test_landscape_slices_quick_verdict_and_control(tmp_path):
    res, figs = run_one("ch03.landscape_slices", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "holds-with-correction" and n["claim_kind"] == "empirical"
    assert len(n["per_seed"]) == 3 and len(n["seeds"]) == 3
    assert n["curvature_ratio_mean"] - 2 * n["curvature_ratio_se"] > 3.0
    assert n["pca_explained_variance_mean"] - 2 * n["pca_explained_variance_se"] > 0.8
    assert n["control_random_slices_see_curvature"] is True
    assert n["control_curvature_ratio_mean"] + 2 * n["control_curvature_ratio_se"] < 3.0
    assert len(figs) == 4
