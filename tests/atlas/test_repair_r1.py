"""Repaired verdicts ch07.cobweb and ch09.ruggedness_vs_failure: decide functions, one case per verdict
each can give, and one quick run each that asserts the verdict, the control and the key numbers."""

import math

import pytest

from terrainlab.atlas import discover, run_one
from terrainlab.atlas.chapters.ch07.cobweb import decide_cobweb
from terrainlab.atlas.chapters.ch09.ruggedness_vs_failure import decide_ruggedness_vs_failure


@pytest.fixture(scope="module")
def registered():
    errors = discover()
    bad = {k: v for k, v in errors.items() if "cobweb" in k or "ruggedness" in k}
    assert not bad, bad


def test_decide_cobweb():
    assert decide_cobweb(0.8, 1, True, 0, False) == "holds"
    assert decide_cobweb(1.2, 1, True, 0, False) == "holds-with-correction"  # converges, not a contraction
    assert decide_cobweb(0.8, 1, False, 0, False) == "fails"  # no convergence
    assert decide_cobweb(0.8, 2, True, 0, False) == "fails"  # fixed point not unique
    assert decide_cobweb(0.8, 1, True, 3, False) == "fails"  # Banach bound broken
    assert decide_cobweb(0.8, 1, True, 0, True) == "inconclusive"  # the control converged too
    with pytest.raises(ValueError, match="n_fixed_points"):
        decide_cobweb(0.8, -1, True, 0, False)
    with pytest.raises(ValueError, match="lipschitz_q"):
        decide_cobweb(float("nan"), 1, True, 0, False)


def test_cobweb_quick(registered, tmp_path):
    res, figs = run_one("ch07.cobweb", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "holds" and res.corrected is None
    assert n["claim_kind"] == "theorem-check"
    assert n["lipschitz_q_measured"] == pytest.approx(0.8, abs=1e-6) and n["n_fixed_points"] == 1
    assert abs(n["x_star"] - math.tanh(0.8 * n["x_star"] + 0.5)) < 1e-12
    assert n["converged"] and n["orbit_period"] == 1 and n["bound_violations"] == 0
    assert n["steps_to_1e-10_measured"] < n["steps_to_1e-10_banach_bound"]
    assert abs(n["observed_rate"] - n["local_rate_abs_fprime_at_xstar"]) < 0.01
    # the control: not a contraction, one repelling fixed point, a period-2 orbit, rule says fails
    assert n["control_lipschitz_q_measured"] > 2.9 and n["control_n_fixed_points"] == 1
    assert n["control_abs_fprime_at_fixed_point"] > 1 and n["control_orbit_period"] == 2
    assert not n["control_converged"] and n["control_verdict"] == "fails"
    assert {"ch07.cobweb/cobweb.png", "ch07.cobweb/cobweb_control.png"} <= {f.split("figures/")[-1] for f in figs}
    assert all((tmp_path / f).exists() for f in figs)


def test_decide_ruggedness_vs_failure():
    d = decide_ruggedness_vs_failure
    assert d((0.9, 1.0), (0.8, 0.9), 0.99, 0.97) == "holds"  # κ predicts even at matched margin
    assert d((0.99, 1.0), (0.45, 0.55), 0.99, 0.97) == "holds-with-correction"  # only through λ_max
    assert d((0.45, 0.6), (0.45, 0.55), 0.99, 0.97) == "fails"  # no information at fixed η
    assert d((0.1, 0.2), (0.45, 0.55), 0.99, 0.97) == "fails"  # failure falls with κ
    assert d((0.99, 1.0), (0.45, 0.55), 0.99, 0.6) == "inconclusive"  # the control's κ does not predict
    assert d((0.6, 0.8), (0.45, 0.55), 0.99, 0.97) == "inconclusive"  # threshold inside the interval
    assert d((0.99, 1.0), (0.45, 0.55), 0.7, 0.97) == "inconclusive"  # the margin does not predict either
    assert d((0.99, 1.0), (0.55, 0.75), 0.99, 0.97) == "inconclusive"
    with pytest.raises(ValueError, match="kappa_fixed_ci"):
        d((1.0, 0.5), (0.45, 0.55), 0.99, 0.97)
    with pytest.raises(ValueError, match="control_kappa_lo"):
        d((0.99, 1.0), (0.45, 0.55), 0.99, float("nan"))


def test_ruggedness_vs_failure_quick(registered, tmp_path):
    res, figs = run_one("ch09.ruggedness_vs_failure", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "holds-with-correction" and res.corrected
    assert n["claim_kind"] == "empirical" and n["n_seeds"] >= 3
    assert 0.3 < n["fixed_failure_rate"] < 0.7 and 0.3 < n["matched_failure_rate"] < 0.7
    assert n["fixed_auc_kappa_ci"][0] > 0.9 and n["fixed_corr_kappa_margin"] > 0.8
    assert 0.35 < n["matched_auc_kappa_ci"][0] and n["matched_auc_kappa_ci"][1] < 0.65
    assert n["matched_auc_margin_ci"][0] > 0.95 and abs(n["matched_corr_kappa_margin"]) < 0.3
    assert n["control_auc_kappa_ci"][0] > 0.9 and n["control_verdict"] == "holds"
    assert n["theorem_check_A_failure_range"] == 0.0 and n["theorem_check_B_failure_range"] == 1.0
    assert figs and all((tmp_path / f).exists() for f in figs)
