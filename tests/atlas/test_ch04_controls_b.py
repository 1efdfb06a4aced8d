"""Chapter 4 under issue 17 §2, part b: the controls added to adam_is_not_curvature,
augmentation_is_ridge, elastic_net_kink and l1_vs_l2, and the new dropout_rescaling — every decide
function once per branch, every experiment once (quick) with its verdict and its control's outcome."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from terrainlab.atlas import discover, run_one
from terrainlab.atlas.chapters.ch04.adam_is_not_curvature import (
    decide_adam_curvature,
    secant_curvature,
)
from terrainlab.atlas.chapters.ch04.augmentation_is_ridge import (
    decide_augmentation,
    monte_carlo_fit,
)
from terrainlab.atlas.chapters.ch04.dropout_rescaling import bias_ratio, decide_dropout, make_net
from terrainlab.atlas.chapters.ch04.elastic_net_kink import decide_elastic_net_kink
from terrainlab.atlas.chapters.ch04.l1_vs_l2 import decide_l1_vs_l2


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    errors = discover()
    bad = {k: v for k, v in errors.items() if ".ch04." in k}
    assert not bad, bad
    return tmp_path_factory.mktemp("ch04b")


def _check(res, figs, out, verdict, kind):
    assert res.verdict == verdict, (res.verdict, res.numbers)
    assert res.threshold and res.explanation
    assert (res.corrected is not None) == (verdict in ("fails", "holds-with-correction"))
    json.dumps(res.numbers, default=float)
    assert res.numbers["claim_kind"] == kind
    assert any(k.startswith("control") for k in res.numbers)
    assert figs and all((out / f).exists() for f in figs)


# ---------------------------------------------------------------- ch04.adam_is_not_curvature
def test_decide_adam_curvature_branches():
    assert decide_adam_curvature(10.9, 1.0) == "fails"
    assert decide_adam_curvature(1.0, 100.0) == "holds"
    assert decide_adam_curvature(1.0, 50.0) == "inconclusive"
    assert decide_adam_curvature(10.9, 1.0, control_verdict="fails") == "inconclusive"
    with pytest.raises(ValueError, match="scale_ratio"):
        decide_adam_curvature(0.0, 1.0)
    with pytest.raises(ValueError, match="equal_gradient_ratio"):
        decide_adam_curvature(1.0, float("nan"))
    with pytest.raises(ValueError, match="tol"):
        decide_adam_curvature(1.0, 1.0, tol=0.05)


def test_secant_is_the_curvature():

    th = np.array([[1.0, 1.0], [0.5, 0.9], [0.2, 0.7]])
    sec = secant_curvature(th)
    assert np.isnan(sec[0]).all() and np.allclose(sec[1:], [[100.0, 1.0], [100.0, 1.0]])


def test_adam_quick(out):
    res, figs = run_one("ch04.adam_is_not_curvature", out, quick=True)
    _check(res, figs, out, "fails", "theorem-check")
    n = res.numbers
    assert n["control_verdict"] == "holds"
    assert abs(n["control_scale_ratio_10x_start"] - 1) < 1e-6 and abs(n["control_ratio_at_equal_gradients"] - 100) < 1e-6
    assert 8 < n["sqrt_vhat_scale_ratio_10x_start"] < 12 and abs(n["sqrt_vhat_ratio_at_equal_gradients"] - 1) < 0.01
    assert abs(n["sqrt_vhat_ratio_step1_from_1_1"] - 100) < 1e-6


# ---------------------------------------------------------------- ch04.augmentation_is_ridge
def test_decide_augmentation_branches():
    assert decide_augmentation(0.1459, 0.1477, 6.86) == "fails"
    assert decide_augmentation(0.1459, 1e-9, 6.86) == "holds"
    assert decide_augmentation(0.1459, 0.10, 6.86) == "holds-with-correction"
    assert decide_augmentation(0.1459, 0.1477, 6.86, 0.002) == "inconclusive"  # ±2 SE straddles no change
    assert decide_augmentation(0.1459, 0.1477, 6.86, 1e-4, control_lam_min=0.1459, control_lam_min_se=0.0) == "fails"
    assert decide_augmentation(0.1459, 0.1477, 6.86, 1e-4, control_lam_min=0.1470) == "inconclusive"  # control moved
    with pytest.raises(ValueError, match="lam_min_plain"):
        decide_augmentation(0.0, 0.1, 6.86)
    with pytest.raises(ValueError, match="lam_min_aug_se"):
        decide_augmentation(0.1459, 0.1477, 6.86, -1.0)


def test_monte_carlo_fit_control_is_plain():
    w, ev = monte_carlo_fit(np.random.default_rng(0), 10, jitter=0.0)
    assert np.allclose(w, [2.0, 0.0]) and np.allclose(ev, np.linalg.eigvalsh([[5.0, 3.0], [3.0, 2.0]]))
    with pytest.raises(ValueError, match="copies"):
        monte_carlo_fit(np.random.default_rng(0), 0)


def test_augmentation_quick(out):
    res, figs = run_one("ch04.augmentation_is_ridge", out, quick=True)
    _check(res, figs, out, "fails", "theorem-check")
    n = res.numbers
    assert n["control_outcome"] == "no change" and n["control_lambda_min_rel_change_mean"] == pytest.approx(0, abs=1e-12)
    assert n["lambda_min_rel_change_mean"] - 2 * n["lambda_min_rel_change_se"] > 0
    assert len(n["lambda_min_rel_change_per_seed"]) == 3


# ---------------------------------------------------------------- ch04.elastic_net_kink
def test_decide_elastic_net_kink_branches():
    assert decide_elastic_net_kink([1.0, 1.0, 1.0]) == "fails"
    assert decide_elastic_net_kink([0.0, 0.001, 0.0]) == "holds"
    assert decide_elastic_net_kink([1.0, 0.5]) == "inconclusive"
    assert decide_elastic_net_kink([1.0, 1.0], control_jump_ratio=2e-7) == "fails"
    assert decide_elastic_net_kink([1.0, 1.0], control_jump_ratio=1.0) == "inconclusive"  # control sees a kink
    with pytest.raises(ValueError, match="jump_ratios"):
        decide_elastic_net_kink([])
    with pytest.raises(ValueError, match="control_jump_ratio"):
        decide_elastic_net_kink([1.0], control_jump_ratio=float("nan"))


def test_elastic_net_quick(out):
    res, figs = run_one("ch04.elastic_net_kink", out, quick=True)
    _check(res, figs, out, "fails", "theorem-check")
    n = res.numbers
    assert n["control_verdict"] == "no kink" and abs(n["control_jump_over_2lambda1"]) < 1e-6
    assert n["control_prox_exact_zeros_on_grid"] == 0 < n["prox_exact_zeros_on_grid"]
    assert min(n["jump_over_2lambda1"]) > 0.99


# ---------------------------------------------------------------- ch04.l1_vs_l2
def test_decide_l1_vs_l2_branches():
    assert decide_l1_vs_l2(17, 15, 0) == "holds"
    assert decide_l1_vs_l2(17, 0, 0) == "holds-with-correction"
    assert decide_l1_vs_l2(0, 0, 0) == "fails"
    assert decide_l1_vs_l2(17, 0, 3) == "inconclusive"  # the ridge control has exact zeros too
    assert decide_l1_vs_l2(17.0, 0.67, 0.0, 0.0, 0.67, 0.0) == "inconclusive"  # subgradient straddles 0.5
    assert decide_l1_vs_l2(16.7, 0.0, 0.0, 0.33, 0.0, 0.0) == "holds-with-correction"
    with pytest.raises(ValueError, match="zeros_ridge"):
        decide_l1_vs_l2(17, 0, -1)
    with pytest.raises(ValueError, match="se_prox"):
        decide_l1_vs_l2(17, 0, 0, se_prox=float("nan"))


def test_l1_vs_l2_quick(out):
    res, figs = run_one("ch04.l1_vs_l2", out, quick=True)
    _check(res, figs, out, "holds-with-correction", "empirical")
    n = res.numbers
    assert n["control_verdict"] == "no exact zeros" and n["control_ridge_zeros_mean"] == 0
    assert n["exact_zeros_per_seed"]["ista"] == n["sklearn_lasso_zeros_per_seed"] and n["ista_support_matches_sklearn"]
    assert n["ista_zeros_mean"] > 10 and n["subgradient_zeros_mean"] == 0 and len(n["seeds"]) == 3


# ---------------------------------------------------------------- ch04.dropout_rescaling (new)
def test_decide_dropout_branches():
    assert decide_dropout(1.0, 0.01, 6.8, 0.2, 0.0) == "holds-with-correction"
    assert decide_dropout(1.0, 0.01, 1.1, 0.05, 0.0) == "holds"
    assert decide_dropout(9.0, 0.5, 9.0, 0.5, 0.0) == "fails"
    assert decide_dropout(1.0, 0.01, 2.5, 0.3, 0.0) == "inconclusive"  # post-ReLU ratio straddles 3
    assert decide_dropout(1.0, 0.01, 6.8, 0.2, 5.0) == "inconclusive"  # the p = 0 control shows a bias
    with pytest.raises(ValueError, match="nl_ratio_se"):
        decide_dropout(1.0, 0.01, 6.8, -0.2, 0.0)
    with pytest.raises(ValueError, match="threshold"):
        decide_dropout(1.0, 0.01, 6.8, 0.2, 0.0, threshold=0)


def test_bias_ratio_unbiased_and_biased():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4000, 50, generator=g, dtype=torch.float64)
    assert 0.8 < bias_ratio(x, torch.zeros(50, dtype=torch.float64)) < 1.2
    assert bias_ratio(x + 0.5, torch.zeros(50, dtype=torch.float64)) > 20
    assert bias_ratio(torch.ones(5, 3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)) == 0.0
    with pytest.raises(ValueError, match="samples"):
        bias_ratio(torch.ones(1, 3), torch.ones(3))
    with pytest.raises(ValueError, match="p must"):
        make_net(0, p=1.0)


def test_dropout_quick(out):
    state = torch.random.get_rng_state()
    res, figs = run_one("ch04.dropout_rescaling", out, quick=True)
    assert torch.equal(state, torch.random.get_rng_state())  # masks drawn inside fork_rng
    _check(res, figs, out, "holds-with-correction", "empirical")
    n = res.numbers
    assert n["control_verdict"] == "no gap" and n["control_max_bias_ratio"] < 0.01 and n["control_relu_gap"] < 1e-12
    assert n["linear_bias_ratio_mean"] + 2 * n["linear_bias_ratio_se"] < 3 < n["relu_bias_ratio_mean"] - 2 * n["relu_bias_ratio_se"]
    assert n["relu_mean_shift_mean"] > 0  # ReLU is convex: E relu(z) ≥ relu(E z)
    assert abs(n["variance_over_p_over_1mp_h2_mean"] - 1) < 0.01 and n["kept_unit_scale_max_err"] < 1e-12
    assert abs(n["linear_error_slope_vs_masks_mean"] + 0.5) < 0.1
