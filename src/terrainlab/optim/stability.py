"""Stability instruments: where a step size stops being safe, computed from amplification factors.

- :func:`stability_threshold` ``(H)`` = 2/λ_max(H): the gradient-descent limit on a quadratic with
  Hessian H (a local, linear condition at a minimum; global only for quadratics).
- :func:`quadratic_trace`: GD on L = (λ/2)θ², θ_{t+1} = (1 − ηλ)θ_t, with |1 − ηλ| and a status.
- :func:`stability_region` / :func:`plot_stability_regions`: |R(z)| ≤ 1 over the complex plane
  z = ηλ for any scheme with ``R`` (core schemes and the optimizer schemes).

Example:
    >>> stability_threshold(torch.diag(torch.tensor([4.0, 1.0])))
    0.5
    >>> quadratic_trace(4.0, 0.5, steps=3).status      # η = 2/λ: a period-2 orbit, not convergence
    'period-2'
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..core.validate import check_int, check_positive


def _eigs(H) -> np.ndarray:
    if torch.is_tensor(H):
        H = H.detach().cpu().double().numpy()
    H = np.asarray(H, dtype=float)
    if H.ndim == 1:
        return H
    if H.ndim != 2 or H.shape[0] != H.shape[1]:
        raise ValueError(f"H must be a square matrix or a 1-D array of eigenvalues, got shape {H.shape}")
    return np.linalg.eigvalsh(0.5 * (H + H.T))


def stability_threshold(H) -> float:
    """2/λ_max(H) for a symmetric Hessian (or its eigenvalues); ``inf`` when λ_max ≤ 0."""
    lam = float(_eigs(H).max())
    return 2.0 / lam if lam > 0 else float("inf")


def one_step_eta(lam: float) -> float:
    """η = 1/λ: the step that lands on the minimum of (λ/2)θ² in one step (R = 0)."""
    check_positive(lam, "lam")
    return 1.0 / lam


@dataclass(frozen=True)
class QuadraticTrace:
    """GD on (λ/2)θ²: iterates ``theta`` (length steps + 1), ``factor`` = 1 − ηλ,
    ``amplification`` = |1 − ηλ| and ``status`` ∈ {one-step, converges, period-2, stalls, diverges}."""

    lam: float
    eta: float
    theta: np.ndarray
    factor: float
    amplification: float
    status: str


def quadratic_trace(lam: float, eta: float, theta0: float = 1.0, steps: int = 20) -> QuadraticTrace:
    """Iterate θ_{t+1} = (1 − ηλ)θ_t and classify the orbit from the factor, not from the iterates."""
    check_int(steps, "steps", minimum=0)
    check_positive(eta, "eta")
    factor = 1.0 - eta * lam
    theta = theta0 * factor ** np.arange(steps + 1, dtype=float)
    amp = abs(factor)
    tol = 1e-12
    if amp <= tol:
        status = "one-step"
    elif amp < 1 - tol:
        status = "converges"
    elif abs(factor + 1) <= tol:
        status = "period-2"
    elif abs(factor - 1) <= tol:
        status = "stalls"
    else:
        status = "diverges"
    return QuadraticTrace(float(lam), float(eta), theta, factor, amp, status)


@dataclass(frozen=True)
class StabilityRegion:
    """|R(z)| on a grid of the complex z = ηλ plane, and the stable interval on the negative real
    axis: a stable step needs z = −η·curvature ∈ (``real_left``, 0)."""

    re: np.ndarray
    im: np.ndarray
    amplification: np.ndarray  # shape (len(im), len(re))
    real_left: float


def stability_region(scheme, re=(-5.0, 1.0), im=(-3.0, 3.0), n: int = 241) -> StabilityRegion:
    """Evaluate |R(z)| of ``scheme`` on an n×n grid; ``real_left`` from ``scheme.stability_limit(1)``."""
    if not hasattr(scheme, "R"):
        raise ValueError(f"scheme must have R(z), got {scheme!r}")
    x = np.linspace(re[0], re[1], n)
    y = np.linspace(im[0], im[1], n)
    Z = x[None, :] + 1j * y[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):  # poles of implicit schemes' R
        amp = np.abs(np.asarray(scheme.R(Z), dtype=complex)).real
    amp = np.where(np.isfinite(amp), amp, np.inf)
    return StabilityRegion(x, y, amp, -float(scheme.stability_limit(1.0)))


def plot_stability_regions(schemes: dict, ax, re=(-5.0, 1.0), im=(-3.0, 3.0), n: int = 241, colors=None):
    """Draw the boundary |R(z)| = 1 of each named scheme (filled lightly) on ``ax``."""
    from ..plotting import OKABE_ITO

    colors = colors or OKABE_ITO
    handles = []
    for i, (name, sch) in enumerate(schemes.items()):
        reg = stability_region(sch, re, im, n)
        c = colors[i % len(colors)]
        ax.contourf(reg.re, reg.im, reg.amplification, levels=[0, 1], colors=[c], alpha=0.12)
        ax.contour(reg.re, reg.im, reg.amplification, levels=[1], colors=[c], linewidths=1.2)
        handles.append(ax.plot([], [], color=c, label=f"{name}: ηλ_max < {-reg.real_left:.3g}")[0])
    ax.axhline(0, color="0.6", lw=0.5)
    ax.axvline(0, color="0.6", lw=0.5)
    ax.set_xlabel("Re z  (z = ηλ)")
    ax.set_ylabel("Im z")
    ax.set_aspect("equal")
    return handles
