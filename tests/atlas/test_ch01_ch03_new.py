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
