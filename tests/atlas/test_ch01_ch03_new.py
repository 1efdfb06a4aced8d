"""New chapter 1 and 3 experiments: each decide_* branch, bad input, and a quick run asserting the verdict
and the control's outcome."""

import math

import pytest
import torch

from terrainlab.atlas import discover, run_one
from terrainlab.atlas.chapters.ch01.gd_path_bends import decide_gd_path_bends, path_geometry


@pytest.fixture(scope="module", autouse=True)
def _discover():
    discover()


# ---------------------------------------------------------------- ch01.gd_path_bends


def test_decide_gd_path_bends_branches():
    assert decide_gd_path_bends(0.07, 1e-16, 1e-16) == "holds"
    assert decide_gd_path_bends(0.01, 1e-16, 1e-16) == "fails"  # no bend
    assert decide_gd_path_bends(0.07, 1e-3, 1e-16) == "fails"  # contraction factors wrong
    assert decide_gd_path_bends(0.07, 1e-16, 1e-3) == "inconclusive"  # control not straight
    assert decide_gd_path_bends(math.nan, 1e-16, 1e-16) == "inconclusive"
    with pytest.raises(ValueError, match="min_deviation"):
        decide_gd_path_bends(-1.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="control_deviation"):
        decide_gd_path_bends(0.1, 0.0, "x")


def test_path_geometry():
    dev, ratio = path_geometry(torch.tensor([[1.0, 1.0], [1.0, 0.0], [0.0, 0.0]]))
    assert dev == pytest.approx(1 / 2)  # (1, 0) is 1/√2 from the diagonal chord of length √2
    assert ratio == pytest.approx(2 / math.sqrt(2))
    with pytest.raises(ValueError, match="path"):
        path_geometry(torch.zeros(3))
    with pytest.raises(ValueError, match="path"):
        path_geometry(torch.zeros(3, 2))


def test_gd_path_bends_quick(tmp_path):
    res, figs = run_one("ch01.gd_path_bends", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "holds"
    assert n["claim_kind"] == "theorem-check"
    assert n["control_verdict"] == "fails"  # the isotropic bowl's paths are straight
    assert n["control_max_deviation_over_chord"] < 1e-12
    assert n["min_deviation_over_starts"] > 0.05
    assert n["gd_factor_theta2_measured"] == pytest.approx(0.4, abs=1e-12)
    assert figs


# ---------------------------------------------------------------- ch03.ce_vs_mse_saturation


def test_decide_ce_vs_mse_branches():
    from terrainlab.atlas.chapters.ch03.ce_vs_mse_saturation import decide_ce_vs_mse

    assert decide_ce_vs_mse(9.0, 0.6, 1.2, 0.2) == "holds"
    assert decide_ce_vs_mse(1.5, 0.2, 1.2, 0.2) == "fails"  # MSE recovers about as fast
    assert decide_ce_vs_mse(4.2, 0.5, 1.2, 0.2) == "inconclusive"  # threshold inside ± 2 SE
    assert decide_ce_vs_mse(9.0, 0.6, 8.0, 0.5) == "inconclusive"  # control also stalls
    assert decide_ce_vs_mse(9.0, math.nan, 1.2, 0.2) == "inconclusive"
    with pytest.raises(ValueError, match="threshold"):
        decide_ce_vs_mse(9.0, 0.6, 1.2, 0.2, threshold=0.0)
    with pytest.raises(ValueError, match="ratio_mean"):
        decide_ce_vs_mse("9", 0.6, 1.2, 0.2)


def test_logit_gradients():
    from terrainlab.atlas.chapters.ch03.ce_vs_mse_saturation import logit_gradients

    z = torch.tensor([-8.0, 0.0, 3.0], dtype=torch.float64)
    g_mse, g_ce = logit_gradients(z)
    p = torch.sigmoid(z)
    assert torch.allclose(g_ce, p - 1)
    assert torch.allclose(g_mse, 2 * (p - 1) * p * (1 - p))
    with pytest.raises(ValueError, match="y"):
        logit_gradients(z, y=0.5)
    with pytest.raises(ValueError, match="z"):
        logit_gradients([0.0])


def test_ce_vs_mse_saturation_quick(tmp_path):
    res, figs = run_one("ch03.ce_vs_mse_saturation", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "holds"
    assert n["claim_kind"] == "empirical"
    assert n["control_side_of_threshold"] == "below"  # from logits ≈ 0 both learn alike
    assert n["control_steps_ratio_mean"] < 2
    assert not any(n["mse_reached_target"])
    assert n["grad_ratio_mse_over_ce_at_z_minus_8"] < 1e-3
    assert figs


# ---------------------------------------------------------------- ch03.nesterov_vs_gd_rates


def test_decide_nesterov_rates_branches():
    from terrainlab.atlas.chapters.ch03.nesterov_vs_gd_rates import decide_nesterov_rates

    gd, sched, ctrl = (-0.95, 0.02), (-1.98, 0.01), (-1.04, 0.02)
    assert decide_nesterov_rates(gd, sched, ctrl, 0.07) == "holds-with-correction"
    assert decide_nesterov_rates(gd, (-1.1, 0.02), ctrl, 0.07) == "fails"  # no acceleration
    assert decide_nesterov_rates(gd, sched, ctrl, 1.5) == "fails"  # theorem bound broken
    assert decide_nesterov_rates(gd, sched, (-1.95, 0.02), 0.07) == "inconclusive"  # control accelerates too
    assert decide_nesterov_rates((-1.9, 0.02), sched, ctrl, 0.07) == "inconclusive"  # GD fast: easy problem
    assert decide_nesterov_rates(gd, (-1.55, 0.1), ctrl, 0.07) == "inconclusive"  # split inside ± 2 SE
    assert decide_nesterov_rates(gd, sched, ctrl, math.nan) == "inconclusive"
    with pytest.raises(ValueError, match="scheduled"):
        decide_nesterov_rates(gd, (-2.0,), ctrl, 0.07)
    with pytest.raises(ValueError, match="split"):
        decide_nesterov_rates(gd, sched, ctrl, 0.07, split=1.0)


def test_fit_slope_bad_input():
    import numpy as np

    from terrainlab.atlas.chapters.ch03.nesterov_vs_gd_rates import fit_slope

    assert fit_slope(np.array([1.0, 2.0, 4.0]), np.array([1.0, 0.5, 0.25])) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="positive"):
        fit_slope(np.array([1.0, 2.0]), np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="same length"):
        fit_slope(np.array([1.0, 2.0]), np.array([1.0]))


def test_nesterov_vs_gd_rates_quick(tmp_path):
    res, figs = run_one("ch03.nesterov_vs_gd_rates", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "holds-with-correction"
    assert res.corrected
    assert n["claim_kind"] == "theorem-check"
    assert n["control_side_of_threshold"] == "above"  # constant β: no 1/t² exponent
    assert n["nesterov_scheduled_slope_mean"] < -1.6
    assert -1.2 < n["gd_slope_mean"] < -0.8
    assert n["nesterov_bound_max_ratio"] < 1
    assert figs


# ---------------------------------------------------------------- ch03.momentum_is_sum_of_gradients


def test_decide_momentum_sum_branches():
    from terrainlab.atlas.chapters.ch03.momentum_is_sum_of_gradients import decide_momentum_sum

    assert decide_momentum_sum(2e-16, 9.85, 1.0) == "holds-with-correction"  # a sum, total 1/(1 − β)
    assert decide_momentum_sum(2e-16, 0.99, 1.0) == "holds"  # weights total 1: an average
    assert decide_momentum_sum(1e-3, 9.85, 1.0) == "fails"  # not Σβ^(t−s)g_s
    assert decide_momentum_sum(2e-16, 9.85, 1.5) == "inconclusive"  # control β = 0 not an average
    assert decide_momentum_sum(2e-16, math.inf, 1.0) == "inconclusive"
    with pytest.raises(ValueError, match="identity_error"):
        decide_momentum_sum(-1.0, 9.85, 1.0)
    with pytest.raises(ValueError, match="total_weight"):
        decide_momentum_sum(0.0, None, 1.0)


def test_sum_weights():
    from terrainlab.atlas.chapters.ch03.momentum_is_sum_of_gradients import sum_weights

    assert sum_weights(0.9, 200).sum() == pytest.approx((1 - 0.9**200) / 0.1)
    assert sum_weights(0.0, 3).tolist() == [0.0, 0.0, 1.0]
    with pytest.raises(ValueError, match="beta"):
        sum_weights(1.0, 3)
    with pytest.raises(ValueError, match="t must"):
        sum_weights(0.5, 0)


def test_momentum_is_sum_of_gradients_quick(tmp_path):
    res, figs = run_one("ch03.momentum_is_sum_of_gradients", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "holds-with-correction"
    assert res.corrected
    assert n["claim_kind"] == "theorem-check"
    assert n["control_verdict"] == "holds"  # β = 0: the buffer is the current gradient, total weight 1
    assert n["control_total_weight"] == pytest.approx(1.0, abs=1e-12)
    assert n["identity_rel_error_rosenbrock"] < 1e-12
    assert n["total_weight_heavy_ball"] == pytest.approx((1 - 0.9**40) / 0.1, rel=1e-12)
    assert n["total_weight_ema_adam"] == pytest.approx(1 - 0.9**40, rel=1e-12)
    assert figs
