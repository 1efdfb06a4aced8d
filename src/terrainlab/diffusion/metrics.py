"""Sample-quality and transport metrics for 2-D (and small-d) diffusion experiments.

* :func:`mmd_rbf` — unbiased MMD² with a Gaussian kernel (Gretton et al. 2012, eq. 3).
* :func:`sliced_wasserstein` — SW_p over random directions (Rabin et al. 2011; Bonneel et al. 2015).
* :func:`mixture_weights` — fraction of samples assigned to each mixture component (MAP posterior).
* :func:`score_error` — σ²-weighted relative error of a score against the exact oracle.
* :func:`coupling_cost` / :func:`ot_cost` — mean ‖x − y‖² of a given pairing against the discrete
  optimal-transport cost min_π (1/n)Σ‖x_i − y_π(i)‖² (Hungarian algorithm, scipy
  ``linear_sum_assignment``; Kuhn 1955).

Example:
    >>> import torch
    >>> x, y = torch.randn(500, 2), torch.randn(500, 2)
    >>> abs(mmd_rbf(x, y)) < 0.01
    True
"""

from __future__ import annotations

import numpy as np
import torch

from ..core.validate import check_int, check_number, check_positive, check_tensor


def _pair(x, y):
    check_tensor(x, "x", floating=False, ndim=2)
    check_tensor(y, "y", floating=False, ndim=2)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same dimension, got {x.shape[1]} and {y.shape[1]}")
    if x.shape[0] < 2 or y.shape[0] < 2:
        raise ValueError("x and y need at least 2 samples each")
    return x, y.to(dtype=x.dtype, device=x.device)


def median_bandwidth(x, y, max_n: int = 1000) -> float:
    """The median heuristic: median pairwise distance of the pooled sample (first max_n of each)."""
    z = torch.cat([x[:max_n], y[:max_n]])
    return float(torch.pdist(z).median())


def mmd_rbf(x, y, bandwidth: float | list[float] | None = None) -> float:
    """Unbiased MMD² between samples x (n, d) and y (m, d), k(a, b) = Σ_h exp(−‖a − b‖²/(2h²)).

    ``bandwidth``: a length scale h, a list of them (kernel sum), or None for the median heuristic.
    Can be slightly negative when the distributions agree (unbiased estimator).
    """
    x, y = _pair(x, y)
    hs = [median_bandwidth(x, y)] if bandwidth is None else (
        [bandwidth] if isinstance(bandwidth, (int, float)) else list(bandwidth))
    if not hs:
        raise ValueError(f"bandwidth must be > 0, got {bandwidth!r}")
    for h in hs:
        check_positive(h, "bandwidth")
    n, m = x.shape[0], y.shape[0]

    def k(a, b):
        d2 = torch.cdist(a, b) ** 2
        return sum(torch.exp(-d2 / (2 * h * h)) for h in hs)

    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    sxx = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
    syy = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return float(sxx + syy - 2 * kxy.mean())


def sliced_wasserstein(x, y, n_projections: int = 256, p: int = 2, generator=None) -> float:
    """Sliced Wasserstein distance SW_p = (E_θ W_p^p(θ·x, θ·y))^{1/p} over uniform directions θ.

    1-D W_p between projections is computed by matching quantiles (sorted values at common
    quantile levels, so n ≠ m is allowed). ``p ≥ 1`` (for p < 1, W_p is not a metric).
    """
    x, y = _pair(x, y)
    check_int(n_projections, "n_projections", minimum=1)
    check_number(p, "p", minimum=1)
    gdev = generator.device if generator is not None else x.device
    th = torch.randn(x.shape[1], n_projections, generator=generator, dtype=x.dtype, device=gdev).to(x.device)
    th = th / th.norm(dim=0, keepdim=True)
    px, py = torch.sort(x @ th, dim=0)[0], torch.sort(y @ th, dim=0)[0]
    q = min(x.shape[0], y.shape[0])
    levels = (torch.arange(q, dtype=x.dtype, device=x.device) + 0.5) / q

    def quant(v):
        idx = (levels * v.shape[0]).long().clamp(max=v.shape[0] - 1)
        return v[idx]

    return float((quant(px) - quant(py)).abs().pow(p).mean() ** (1.0 / p))


def mixture_weights(samples, mixture) -> torch.Tensor:
    """Fraction of ``samples`` whose MAP component under ``mixture`` (a GaussianMixture) is k.

    Non-finite samples are counted in none of the components (fractions then sum to < 1).
    """
    check_tensor(samples, "samples", floating=False, ndim=2)
    ok = torch.isfinite(samples).all(1)
    x = samples[ok].double().cpu()
    lab = mixture.posterior(x).argmax(1)
    return torch.bincount(lab, minlength=mixture.K).double() / samples.shape[0]


def weight_error(samples, mixture) -> float:
    """max_k |recovered fraction_k − w_k|."""
    return float((mixture_weights(samples, mixture) - mixture.weights.cpu()).abs().max())


def score_error(score, oracle, x, t: float, relative: bool = True) -> float:
    """E‖s(x,t) − s*(x,t)‖² / E‖s*(x,t)‖² (relative) or σ-free absolute mean squared error.

    ``score`` and ``oracle`` are ``score(x, t)`` callables; x are points (e.g. draws of p_t).
    """
    with torch.no_grad():
        a, b = score(x, t), oracle(x, t)
    num = float(((a - b) ** 2).sum(1).mean())
    return num / float((b**2).sum(1).mean()) if relative else num


def coupling_cost(x, y) -> float:
    """Mean squared distance (1/n) Σ‖x_i − y_i‖² of the pairing (x_i, y_i)."""
    if not (torch.is_tensor(x) and torch.is_tensor(y)) or x.shape != y.shape:
        raise ValueError("x and y must be tensors of the same shape (n, d)")
    return float(((x - y.to(x.dtype)) ** 2).flatten(1).sum(1).mean())


def ot_cost(x, y) -> float:
    """Discrete OT cost min over permutations π of (1/n) Σ‖x_i − y_π(i)‖² (exact, Hungarian).

    Cost O(n³); n up to a few thousand is fine. By joint convexity of W₂² its expectation is ≥ the
    population W₂², so "coupling cost > ot_cost" beyond noise shows a coupling is not optimal.
    """
    from scipy.optimize import linear_sum_assignment

    if not (torch.is_tensor(x) and torch.is_tensor(y)) or x.shape != y.shape or x.dim() != 2:
        raise ValueError("x and y must be tensors of the same shape (n, d)")
    c = torch.cdist(x.double().cpu(), y.double().cpu()).pow(2).numpy()
    r, col = linear_sum_assignment(c)
    return float(c[r, col].mean())


def ot_pairing(x, y) -> np.ndarray:
    """The optimal permutation π (x_i ↔ y_π(i)) of :func:`ot_cost`."""
    from scipy.optimize import linear_sum_assignment

    c = torch.cdist(x.double().cpu(), y.double().cpu()).pow(2).numpy()
    return linear_sum_assignment(c)[1]


def score_norm_profile(score, directions, radii, t: float):
    """‖s(r·u, t)‖ for unit directions u (m, d) at each radius r: tensor (len(radii), m)."""
    out = []
    for r in radii:
        with torch.no_grad():
            out.append(score(r * directions, t).norm(dim=1))
    return torch.stack(out)

