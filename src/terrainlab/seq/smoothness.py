"""Ruggedness of an output belief's terrain, and power-law fits with a bootstrap interval.

The answer energy of a classifier (or of a language model's answer set) with logits z ∈ R^K is
E_y(z) = −log softmax(z)_y. Its Hessian in logit coordinates does not depend on y:

    ∇²_z E_y = diag(p) − p pᵀ,   p = softmax(z),

and restricted to the tangent space {v : Σv = 0} (orthonormal Helmert basis B, from
:func:`terrainlab.core.geometry.simplex_tangent_basis`) it has K−1 eigenvalues, all > 0 inside the
simplex — the same matrix :func:`terrainlab.seq.answer_hessian` builds by autograd, here in closed form
and batched, so it is cheap enough to log every epoch on every test input.

The monograph's ruggedness (ch09 Def. 1) is the coefficient of variation of Hessian eigenvalues pooled
over a path from the start belief to the answer:

    κ(p_0 → p*) = std({λ_i(p_s)}_{i,s}) / mean({λ_i(p_s)}_{i,s})      (population std).

A feed-forward classifier has no iterative inference; :func:`belief_path_ruggedness` uses the
*temperature path* p_s = softmax(s·z), s = 0, 1/(S−1), …, 1, which runs from the uniform belief (s = 0,
all eigenvalues 1/K, κ = 0) to the model's output belief (s = 1) along the straight line in logit space.
``kappa_output`` is the CV at the output belief alone (s = 1). Both are scale-free: they measure the
*spread* of the spectrum, not its size (the trace 1 − Σp² measures the size).

:func:`fit_power_law` fits log y = c + b log x by least squares with a percentile bootstrap interval for
b that resamples the replicates *within* each distinct x (the design keeps its x values); the book's
ch09 Theorem 4, κ^(N) = O(N^{−α}), is the statement b = −α < 0.

Example:
    >>> import torch
    >>> lam = logit_hessian_eigenvalues(torch.zeros(3))       # uniform belief: (1/3, 1/3)
    >>> [round(v, 4) for v in lam.tolist()]
    [0.3333, 0.3333]
    >>> r = belief_path_ruggedness(torch.tensor([[4.0, 0.0, 0.0]]), n_points=5)
    >>> bool(r.kappa[0] > 0), round(float(r.trace[0]), 4)
    (True, 0.0688)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..core.geometry import simplex_tangent_basis
from ..core.validate import check_choice, check_int, check_number, check_tensor

__all__ = [
    "BeliefRuggedness",
    "PowerLawFit",
    "belief_path_ruggedness",
    "coefficient_of_variation",
    "fit_power_law",
    "logit_hessian_eigenvalues",
]


def logit_hessian_eigenvalues(logits: torch.Tensor) -> torch.Tensor:
    """Eigenvalues (…, K−1), ascending, of Bᵀ(diag p − ppᵀ)B at p = softmax(``logits``): the tangent
    Hessian of −log p_y in logit coordinates (any y), batched over leading axes, in the logits' dtype.

    Example:
        >>> import torch
        >>> lam = logit_hessian_eigenvalues(torch.tensor([[0.0, 0.0], [10.0, 0.0]], dtype=torch.float64))
        >>> [round(v, 5) for v in lam[:, 0].tolist()]       # 2p(1 − p) for K = 2: 1/2, then ≈ 9.1e-5
        [0.5, 9e-05]
    """
    check_tensor(logits, "logits", min_ndim=1)
    K = logits.shape[-1]
    if K < 2:
        raise ValueError(f"logits must have at least 2 classes on the last axis, got shape {tuple(logits.shape)}")
    p = torch.softmax(logits, -1)
    H = torch.diag_embed(p) - p[..., :, None] * p[..., None, :]
    B = simplex_tangent_basis(K, dtype=logits.dtype, device=logits.device)
    M = B.T @ H @ B
    return torch.linalg.eigvalsh(0.5 * (M + M.transpose(-1, -2)))


def coefficient_of_variation(x: torch.Tensor, dim: int | tuple[int, ...] = -1) -> torch.Tensor:
    """std/mean over ``dim`` (population std, the book's κ when x are eigenvalues). A mean ≤ 0 or a
    non-finite entry gives NaN for that slice (a status, not an exception).

    Example:
        >>> import torch
        >>> round(float(coefficient_of_variation(torch.tensor([1.0, 3.0]))), 4)
        0.5
    """
    check_tensor(x, "x", min_ndim=1)
    m = x.mean(dim)
    s = x.std(dim, unbiased=False)
    return torch.where(m > 0, s / m, torch.full_like(m, float("nan")))


@dataclass(frozen=True)
class BeliefRuggedness:
    """Per row of logits (leading shape …): kappa — κ pooled over the temperature path p_s =
    softmax(s·z), s ∈ ``s``; kappa_output — κ of the K−1 eigenvalues at the output belief (s = 1);
    trace — 1 − Σp² = the Hessian's trace at the output belief; top — its largest eigenvalue there."""

    kappa: torch.Tensor
    kappa_output: torch.Tensor
    trace: torch.Tensor
    top: torch.Tensor
    s: torch.Tensor


def belief_path_ruggedness(logits: torch.Tensor, *, n_points: int = 11) -> BeliefRuggedness:
    """κ of the tangent-Hessian eigenvalues of −log p_y pooled along p_s = softmax(s·z), s from 0 to 1
    in ``n_points`` equal steps (see the module docstring), with the trace, the top eigenvalue and the
    CV at the output belief alone. Batched over the leading axes of ``logits`` (…, K).

    Example:
        >>> import torch
        >>> r = belief_path_ruggedness(torch.zeros(2, 4))   # a uniform output belief: a flat path
        >>> [round(v, 6) for v in r.kappa.tolist()], [round(v, 4) for v in r.trace.tolist()]
        ([0.0, 0.0], [0.75, 0.75])
    """
    check_tensor(logits, "logits", min_ndim=1, finite=True)
    n_points = check_int(n_points, "n_points", minimum=2)
    s = torch.linspace(0, 1, n_points, dtype=logits.dtype, device=logits.device)
    path = s.reshape(-1, *([1] * logits.ndim)) * logits  # (S, …, K)
    lam = logit_hessian_eigenvalues(path)  # (S, …, K−1)
    pooled = lam.movedim(0, -2).flatten(-2)  # (…, S·(K−1))
    out = lam[-1]
    return BeliefRuggedness(
        kappa=coefficient_of_variation(pooled),
        kappa_output=coefficient_of_variation(out),
        trace=out.sum(-1),
        top=out[..., -1],
        s=s,
    )


@dataclass(frozen=True)
class PowerLawFit:
    """log y = intercept + slope·log x. ci: the (lo, hi) percentile bootstrap interval of the slope at
    ``level``; boot_slopes: the n_boot resampled slopes; residual_std: of the log-log residuals."""

    slope: float
    intercept: float
    ci: tuple[float, float]
    level: float
    n_boot: int
    residual_std: float
    boot_slopes: torch.Tensor


def _ls_slope(lx: torch.Tensor, ly: torch.Tensor) -> torch.Tensor:
    """Least-squares slopes over the last axis."""
    mx, my = lx.mean(-1, keepdim=True), ly.mean(-1, keepdim=True)
    return ((lx - mx) * (ly - my)).sum(-1) / ((lx - mx) ** 2).sum(-1)


def fit_power_law(x: torch.Tensor, y: torch.Tensor, *, n_boot: int = 2000, level: float = 0.95,
                  resample: str = "within", generator: torch.Generator | None = None) -> PowerLawFit:
    """Fit y ≈ e^c x^b by least squares on (log x, log y), with a percentile bootstrap interval for b
    (Efron & Tibshirani 1993, ch. 13).

    ``resample="within"``: within each distinct x, that x's replicates are drawn with replacement — every
    resample keeps the design's x values; the interval reflects replicate (seed) noise only.
    ``resample="levels"``: whole x levels (each with all its replicates) are drawn with replacement — a
    cluster bootstrap whose interval also widens when the points do not lie on one line (lack of fit);
    resamples that hold a single distinct x have no slope and are dropped (n_boot counts the kept ones).

    Args:
        x, y: (n,) positive, finite; at least two distinct x.
        n_boot: bootstrap resamples. level: the interval's coverage in (0, 1).
        resample: ``"within"`` | ``"levels"``.
        generator: a seeded ``torch.Generator`` for reproducible intervals.

    Example:
        >>> import torch
        >>> x = torch.tensor([8.0, 8.0, 64.0, 64.0, 512.0, 512.0])
        >>> fit = fit_power_law(x, 3 * x ** -0.5, generator=torch.Generator().manual_seed(0))
        >>> round(fit.slope, 6), [round(v, 6) for v in fit.ci]
        (-0.5, [-0.5, -0.5])
    """
    x = check_tensor(x, "x", ndim=1, finite=True)
    y = check_tensor(y, "y", ndim=1, finite=True)
    if y.shape != x.shape:
        raise ValueError(f"y must have the shape of x {tuple(x.shape)}, got {tuple(y.shape)}")
    if not bool((x > 0).all()):
        raise ValueError("x must be positive for a log-log fit")
    if not bool((y > 0).all()):
        raise ValueError("y must be positive for a log-log fit")
    n_boot = check_int(n_boot, "n_boot", minimum=1)
    check_choice(resample, "resample", ("within", "levels"))
    level = float(check_number(level, "level", minimum=0.0, maximum=1.0))
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    levels = torch.unique(x)
    if levels.numel() < 2:
        raise ValueError("x must hold at least two distinct values")
    dt = torch.float64
    lx, ly = x.to(dt).log(), y.to(dt).log()
    slope = _ls_slope(lx, ly)
    intercept = ly.mean() - slope * lx.mean()
    resid = ly - (intercept + slope * lx)
    groups = [torch.nonzero(x == v).flatten() for v in levels]
    if resample == "within":
        bx, by = [], []
        for idx in groups:
            pick = torch.randint(len(idx), (n_boot, len(idx)), generator=generator, device=x.device)
            bx.append(lx[idx][pick])
            by.append(ly[idx][pick])
        boot = _ls_slope(torch.cat(bx, -1), torch.cat(by, -1))
    else:
        L = len(groups)
        pick = torch.randint(L, (n_boot, L), generator=generator, device=x.device)
        onehot = torch.zeros(len(x), L, dtype=dt, device=x.device)  # point i belongs to level j
        for j, idx in enumerate(groups):
            onehot[idx, j] = 1.0
        counts = torch.zeros(n_boot, L, dtype=dt, device=x.device).scatter_add_(
            1, pick, torch.ones(n_boot, L, dtype=dt, device=x.device))
        w = counts @ onehot.T  # (n_boot, n): how often each point is drawn
        keep = (counts > 0).sum(-1) >= 2
        w = w[keep]
        sw = w.sum(-1, keepdim=True)
        mx, my = (w * lx).sum(-1, keepdim=True) / sw, (w * ly).sum(-1, keepdim=True) / sw
        boot = (w * (lx - mx) * (ly - my)).sum(-1) / (w * (lx - mx) ** 2).sum(-1)
        if boot.numel() == 0:
            raise ValueError("resample='levels' needs resamples with two distinct x; add x levels or n_boot")
    q = torch.quantile(boot, torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=dt, device=boot.device))
    return PowerLawFit(slope=float(slope), intercept=float(intercept), ci=(float(q[0]), float(q[1])), level=level,
                       n_boot=int(boot.numel()), residual_std=float(resid.std(unbiased=False)), boot_slopes=boot)
