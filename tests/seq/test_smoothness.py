"""terrainlab.seq.smoothness: the closed-form tangent Hessian, κ along the temperature path, and the
bootstrap power-law fit."""

from __future__ import annotations

import math

import pytest
import torch

from terrainlab.seq import answer_hessian
from terrainlab.seq.smoothness import (
    belief_path_ruggedness,
    coefficient_of_variation,
    fit_power_law,
    logit_hessian_eigenvalues,
)


def test_eigenvalues_match_autograd_answer_hessian():
    g = torch.Generator().manual_seed(0)
    z = 3 * torch.randn(5, 7, generator=g, dtype=torch.float64)
    lam = logit_hessian_eigenvalues(z)
    assert lam.shape == (5, 7 - 1) and lam.dtype == torch.float64
    for y in (0, 4):  # the logit-coordinate Hessian of −log p_y does not depend on y
        ref = answer_hessian(z, y).eigenvalues
        torch.testing.assert_close(lam, ref, atol=1e-10, rtol=1e-8)
    p = torch.softmax(z, -1)
    torch.testing.assert_close(lam.sum(-1), 1 - (p ** 2).sum(-1))  # trace of diag p − ppᵀ on Σv = 0
    assert bool((lam > 0).all())


def test_eigenvalues_batched_and_float32():
    z = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(1))
    lam = logit_hessian_eigenvalues(z)
    assert lam.shape == (2, 3, 3) and lam.dtype == torch.float32
    torch.testing.assert_close(lam[1, 2], logit_hessian_eigenvalues(z[1, 2]))
    with pytest.raises(ValueError, match="logits"):
        logit_hessian_eigenvalues(torch.zeros(3, 1))


def test_coefficient_of_variation():
    x = torch.tensor([[1.0, 3.0], [2.0, 2.0], [-1.0, 0.0]])
    cv = coefficient_of_variation(x)
    assert cv[0].item() == pytest.approx(0.5) and cv[1].item() == 0.0
    assert math.isnan(cv[2].item())  # mean ≤ 0 → NaN, not an exception
    assert coefficient_of_variation(x[:2], dim=(0, 1)).item() == pytest.approx(math.sqrt(0.5) / 2)


def test_path_ruggedness_definition():
    g = torch.Generator().manual_seed(2)
    z = 2 * torch.randn(6, 5, generator=g, dtype=torch.float64)
    r = belief_path_ruggedness(z, n_points=4)
    assert r.kappa.shape == r.kappa_output.shape == r.trace.shape == r.top.shape == (6,)
    torch.testing.assert_close(r.s, torch.tensor([0, 1 / 3, 2 / 3, 1], dtype=torch.float64))
    # pooled by hand: eigenvalues at s·z for the four s, concatenated per row
    lam = torch.cat([logit_hessian_eigenvalues(s * z) for s in r.s], -1)
    torch.testing.assert_close(r.kappa, lam.std(-1, unbiased=False) / lam.mean(-1))
    out = logit_hessian_eigenvalues(z)
    torch.testing.assert_close(r.kappa_output, out.std(-1, unbiased=False) / out.mean(-1))
    torch.testing.assert_close(r.top, out[:, -1])
    # a sharper belief (same direction): smaller trace, rougher path
    r2 = belief_path_ruggedness(4 * z, n_points=4)
    assert bool((r2.trace < r.trace).all()) and bool((r2.kappa > r.kappa).all())
    with pytest.raises(ValueError, match="n_points"):
        belief_path_ruggedness(z, n_points=1)
    with pytest.raises(ValueError, match="logits"):
        belief_path_ruggedness(torch.tensor([[float("nan"), 0.0]]))


def test_power_law_fit_recovers_known_slope():
    g = torch.Generator().manual_seed(3)
    N = torch.tensor([8.0, 16, 32, 64, 128, 256, 512]).repeat_interleave(3)
    y = 2 * N ** -0.5 * torch.exp(0.05 * torch.randn(len(N), generator=g))
    fit = fit_power_law(N, y, n_boot=500, generator=torch.Generator().manual_seed(0))
    assert abs(fit.slope + 0.5) < 0.05
    assert fit.ci[0] < fit.slope < fit.ci[1] < 0 and fit.ci[0] < -0.45
    assert fit.ci[1] - fit.ci[0] < 0.1 and fit.boot_slopes.shape == (500,)
    assert math.exp(fit.intercept) == pytest.approx(2, rel=0.2)
    again = fit_power_law(N, y, n_boot=500, generator=torch.Generator().manual_seed(0))
    assert again.ci == fit.ci  # deterministic given the generator
    flat = fit_power_law(N, torch.exp(0.05 * torch.randn(len(N), generator=g)), n_boot=500,
                         generator=torch.Generator().manual_seed(0))
    assert flat.ci[0] < 0 < flat.ci[1]  # no trend: the interval holds 0


def test_power_law_fit_bad_input():
    x = torch.tensor([1.0, 2.0, 4.0])
    with pytest.raises(ValueError, match="y must be positive"):
        fit_power_law(x, torch.tensor([1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="x must be positive"):
        fit_power_law(-x, x)
    with pytest.raises(ValueError, match="two distinct"):
        fit_power_law(torch.ones(3), x)
    with pytest.raises(ValueError, match="shape"):
        fit_power_law(x, x[:2])
    with pytest.raises(ValueError, match="level"):
        fit_power_law(x, x, level=1.0)
    with pytest.raises(ValueError, match="y must be finite"):
        fit_power_law(x, torch.tensor([1.0, float("nan"), 1.0]))


def test_power_law_fit_levels_bootstrap_is_a_cluster_bootstrap():
    g = torch.Generator().manual_seed(4)
    N = torch.tensor([8.0, 16, 32, 64, 128]).repeat_interleave(2)
    y = N ** 0.1 * torch.exp(0.01 * torch.randn(len(N), generator=g))
    y[2:4] *= 1.5  # one level off the line: lack of fit that seed noise does not show
    fit = fit_power_law(N, y, n_boot=300, resample="levels", generator=torch.Generator().manual_seed(7))
    # by hand: the same draws of whole levels, points duplicated, ordinary least squares
    pick = torch.randint(5, (300, 5), generator=torch.Generator().manual_seed(7))
    lx, ly = N.double().log(), y.double().log()
    ref = []
    for row in pick:
        if row.unique().numel() < 2:
            continue
        idx = torch.cat([torch.arange(2 * j, 2 * j + 2) for j in row.tolist()])
        a, b = lx[idx], ly[idx]
        ref.append(float(((a - a.mean()) * (b - b.mean())).sum() / ((a - a.mean()) ** 2).sum()))
    assert fit.n_boot == len(ref)
    torch.testing.assert_close(fit.boot_slopes, torch.tensor(ref, dtype=torch.float64))
    within = fit_power_law(N, y, n_boot=300, generator=torch.Generator().manual_seed(7))
    assert within.slope == pytest.approx(fit.slope)
    assert fit.ci[1] - fit.ci[0] > 3 * (within.ci[1] - within.ci[0])
    exact = fit_power_law(N, 2 * N ** -1.0, n_boot=100, resample="levels", generator=torch.Generator().manual_seed(0))
    assert exact.ci == pytest.approx((-1.0, -1.0))
    with pytest.raises(ValueError, match="resample"):
        fit_power_law(N, y, resample="points")
