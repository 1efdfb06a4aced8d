"""Chapter 4 controls, part 1 (helper E1): decision branches and quick verdicts with their controls.

The quick run of ch04.edge_of_stability is asserted in tests/atlas/test_curvature_experiments.py
(verdict, control ratio); here are its decision branches.
"""

import math

import pytest

from terrainlab.atlas import discover, run_one
from terrainlab.atlas.chapters.ch04.edge_of_stability import decide_eos
from terrainlab.atlas.chapters.ch04.flatness_bias import decide_flatness_bias
from terrainlab.atlas.chapters.ch04.gd_bifurcation import decide_gd_bifurcation
from terrainlab.atlas.chapters.ch04.learning_rate_stability import decide_critical_damping
from terrainlab.atlas.chapters.ch04.sgd_escape_vs_eta_over_b import decide_sgd_escape


@pytest.fixture(scope="module", autouse=True)
def _discovered():
    discover()


def test_decide_eos_branches():
    assert decide_eos(1.05, 0.01, 0.2, False) == "fails"  # sharpened to the edge
    assert decide_eos(0.3, 0.01, 0.2, True) == "holds"  # below the edge, dropped in every seed
    assert decide_eos(0.3, 0.01, 0.2, False) == "holds-with-correction"
    assert decide_eos(0.82, 0.02, 0.2, False) == "inconclusive"  # 0.8 inside mean ± 2 SE
    assert decide_eos(1.05, 0.01, 0.85, False) == "inconclusive"  # control at the edge as well
    assert decide_eos(1.05, 0.01, math.nan, False) == "inconclusive"


def test_decide_flatness_bias_branches():
    assert decide_flatness_bias(0.0, 0.38, 0.01) == "holds"
    assert decide_flatness_bias(0.002, 0.38, 0.01) == "fails"  # one run settled in the sharp minimum
    assert decide_flatness_bias(0.0, 0.01, 0.02) == "inconclusive"  # control not above 0 beyond 2 SE
    assert decide_flatness_bias(0.0, 0.0) == "inconclusive"
    with pytest.raises(ValueError, match="sharp_above"):
        decide_flatness_bias(-0.1, 0.3)


def test_flatness_bias_quick(tmp_path):
    res, figs = run_one("ch04.flatness_bias", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "holds" and n["claim_kind"] == "theorem-check"
    assert n["max_sharp_fraction_eta_above_limit"] == 0 and len(n["seeds"]) == 3
    assert n["control_verdict"] == "settles in sharp"
    assert n["control_sharp_fraction_mean"] - 2 * n["control_sharp_fraction_se"] > 0.1
    assert len(figs) == 2 and all((tmp_path / f).stat().st_size > 1000 for f in figs)


def test_decide_gd_bifurcation_branches():
    assert decide_gd_bifurcation(0.001, 4, True, 20.0, control_converged=1.0) == "holds-with-correction"
    assert decide_gd_bifurcation(0.001, 1, False, 20.0, control_converged=1.0) == "holds"
    assert decide_gd_bifurcation(0.1, 4, True, 20.0, control_converged=1.0) == "fails"
    assert decide_gd_bifurcation(0.001, 4, True, 20.0, control_converged=0.95) == "inconclusive"  # control
    assert decide_gd_bifurcation(math.nan, 0, False, 20.0) == "inconclusive"


def test_gd_bifurcation_quick_with_control(tmp_path):
    res, _ = run_one("ch04.gd_bifurcation", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "holds-with-correction" and n["claim_kind"] == "theorem-check"
    assert n["control_rows"] > 50 and n["control_converged_fraction"] == 1.0
    assert n["control_max_lyapunov"] < 0 and n["control_verdict"] == "converges to the fixed point"


def test_decide_critical_damping_branches():
    assert decide_critical_damping(1.0, control_residual=0.0) == "fails"
    assert decide_critical_damping(0.0, control_residual=0.0) == "holds"
    assert decide_critical_damping(1.0, control_residual=0.5) == "inconclusive"  # control not one step
    with pytest.raises(ValueError, match="control_residual"):
        decide_critical_damping(1.0, control_residual=math.nan)


def test_learning_rate_stability_quick_with_control(tmp_path):
    res, _ = run_one("ch04.learning_rate_stability", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "fails" and n["claim_kind"] == "theorem-check"
    assert n["one_step_ratio"]["0.5"] == pytest.approx(1.0, abs=1e-12)
    assert n["control_one_step_ratio"] <= 1e-6 and n["control_verdict"] == "one step to the minimum"


def test_decide_sgd_escape_branches():
    good = dict(delta_mean=0.6, delta_se=0.02, sharp_minus_flat_mean=0.6, sharp_minus_flat_se=0.02)
    assert decide_sgd_escape(**good, collapse_mean=0.1, collapse_se=0.03, control_escape=0.0) == "holds"
    assert decide_sgd_escape(**good, collapse_mean=0.6, collapse_se=0.05, control_escape=0.0) == "holds-with-correction"
    assert decide_sgd_escape(**good, collapse_mean=0.24, collapse_se=0.05, control_escape=0.0) == "inconclusive"
    assert decide_sgd_escape(**good, collapse_mean=0.1, collapse_se=0.03, control_escape=0.01) == "inconclusive"
    assert decide_sgd_escape(-0.3, 0.02, 0.6, 0.02, 0.1, 0.03, 0.0) == "fails"  # escape falls with η/B
    assert decide_sgd_escape(0.6, 0.02, -0.2, 0.02, 0.1, 0.03, 0.0) == "fails"  # flat escapes more
    assert decide_sgd_escape(0.02, 0.02, 0.6, 0.02, 0.1, 0.03, 0.0) == "inconclusive"  # Δ inside ± 2 SE
    with pytest.raises(ValueError, match="control_escape"):
        decide_sgd_escape(0.6, 0.02, 0.6, 0.02, 0.1, 0.03, math.nan)


def test_sgd_escape_quick(tmp_path):
    res, figs = run_one("ch04.sgd_escape_vs_eta_over_b", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "holds" and n["claim_kind"] == "empirical" and len(n["seeds"]) == 3
    assert n["control_escape_fraction"] == 0.0 and n["control_verdict"] == "never escapes"
    assert n["delta_mean"] - 2 * n["delta_se"] > 0.3
    assert n["sharp_minus_flat_mean"] - 2 * n["sharp_minus_flat_se"] > 0.3
    assert n["collapse_index_mean"] + 2 * n["collapse_index_se"] < n["collapse_tol"]
    assert len(figs) == 2 and all((tmp_path / f).stat().st_size > 1000 for f in figs)
