"""Logistic regression as a landscape: the cross-entropy, its gradient and Hessian, gradient descent on it as
a core rollout, and the implicit bias of that descent on separable data.

For labels y_i ∈ {0, 1} and σ(u) = 1/(1 + e^{−u}) (Cox 1958; the book's §10.1):

    L(θ) = −(1/n) Σ [y_i log σ(x_iᵀθ) + (1 − y_i) log(1 − σ(x_iᵀθ))] = (1/n) Σ log(1 + e^{−s_i x_iᵀθ}),
    ∇L(θ) = (1/n) Xᵀ(σ(Xθ) − y),       ∇²L(θ) = (1/n) Σ σ_i(1 − σ_i) x_i x_iᵀ,

with s_i = 2y_i − 1 ∈ {−1, +1}. The Hessian weighs each point by σ(1 − σ) ≤ ¼, largest for the points
near the boundary xᵀθ = 0, not where the data are dense. On linearly separable data (some θ with
s_i x_iᵀθ > 0 for all i) L has no minimiser: L(cθ) → 0 as c → ∞. Gradient descent with a small enough
step then has ‖θ_t‖ → ∞ while θ_t = ŵ log t + O(1), so its direction converges to that of the hard-margin
SVM through the origin, ŵ = argmin ‖w‖ s.t. s_i x_iᵀw ≥ 1 — with an angle that falls only like 1/log t
(Soudry, Hoffer, Nacson, Gunasekar & Srebro 2018, "The implicit bias of gradient descent on separable
data", JMLR 19(70), Theorem 3).

Every function takes ``X`` of shape (..., n, d) (leading batch dimensions: several data sets at once),
``y`` of shape (..., n) in {0, 1} and ``theta`` of shape (..., d) with the same leading dimensions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..core import Trajectory, rollout
from .svm import hard_margin_svm

__all__ = [
    "logistic_loss",
    "logistic_grad",
    "logistic_hessian",
    "gd_logistic_regression",
    "ImplicitBiasPath",
    "implicit_bias_path",
]


def _check(theta, X, y) -> None:
    if not isinstance(X, torch.Tensor) or X.ndim < 2 or X.shape[-2] == 0 or X.shape[-1] == 0:
        raise ValueError(f"X must be a tensor of shape (..., n, d) with n, d ≥ 1, got {getattr(X, 'shape', type(X).__name__)}")
    if not X.is_floating_point() or not bool(torch.isfinite(X).all()):
        raise ValueError("X must be a finite floating-point tensor")
    if not isinstance(y, torch.Tensor) or tuple(y.shape) != tuple(X.shape[:-1]):
        raise ValueError(f"y must be a tensor of shape {tuple(X.shape[:-1])} (X's without d), got {getattr(y, 'shape', type(y).__name__)}")
    if not bool(((y == 0) | (y == 1)).all()):
        raise ValueError("y must hold labels in {0, 1}")
    if theta is not None:
        if not isinstance(theta, torch.Tensor) or tuple(theta.shape) != tuple(X.shape[:-2]) + (X.shape[-1],):
            raise ValueError(f"theta must be a tensor of shape {tuple(X.shape[:-2]) + (X.shape[-1],)}, got {getattr(theta, 'shape', theta)}")
        if theta.dtype != X.dtype:
            raise ValueError(f"theta must have X's dtype {X.dtype}, got {theta.dtype}")


def _logits(theta, X):
    return (X @ theta.unsqueeze(-1)).squeeze(-1)


def logistic_loss(theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The mean cross-entropy L(θ) = (1/n) Σ log(1 + exp(−s_i x_iᵀθ)), s_i = 2y_i − 1, computed stably
    (softplus). Shape: X's leading dimensions.

    >>> X = torch.tensor([[1.0], [-1.0]]); y = torch.tensor([1.0, 0.0])
    >>> round(float(logistic_loss(torch.zeros(1), X, y)), 6)   # log 2 at θ = 0
    0.693147
    """
    _check(theta, X, y)
    s = 2 * y.to(X.dtype) - 1
    return torch.nn.functional.softplus(-s * _logits(theta, X)).mean(-1)


def logistic_grad(theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """∇L(θ) = (1/n) Xᵀ(σ(Xθ) − y), shape (..., d).

    >>> X = torch.tensor([[1.0], [-1.0]]); y = torch.tensor([1.0, 0.0])
    >>> logistic_grad(torch.zeros(1), X, y)
    tensor([-0.5000])
    """
    _check(theta, X, y)
    r = torch.sigmoid(_logits(theta, X)) - y.to(X.dtype)
    return (r.unsqueeze(-2) @ X).squeeze(-2) / X.shape[-2]


def logistic_hessian(theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """∇²L(θ) = (1/n) Σ σ_i(1 − σ_i) x_i x_iᵀ, shape (..., d, d). (It does not depend on y.)

    >>> X = torch.tensor([[1.0], [-1.0]]); y = torch.tensor([1.0, 0.0])
    >>> logistic_hessian(torch.zeros(1), X, y)   # σ(1 − σ) = ¼ at the boundary
    tensor([[0.2500]])
    """
    _check(theta, X, y)
    p = torch.sigmoid(_logits(theta, X))
    wgt = p * (1 - p)
    return (X.transpose(-1, -2) * wgt.unsqueeze(-2)) @ X / X.shape[-2]


def _check_eta_steps(eta, steps) -> None:
    if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not math.isfinite(eta) or eta <= 0:
        raise ValueError(f"eta must be a finite number > 0, got {eta!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an int >= 1, got {steps!r}")


def _field(X, y):
    yy = y.to(X.dtype)
    n = X.shape[-2]

    def field(theta: torch.Tensor, t: float = 0.0) -> torch.Tensor:
        r = torch.sigmoid(_logits(theta, X)) - yy
        return -(r.unsqueeze(-2) @ X).squeeze(-2) / n

    return field


def gd_logistic_regression(
    X: torch.Tensor, y: torch.Tensor, eta: float, steps: int, theta0: torch.Tensor | None = None,
    record: str | int = "all",
) -> Trajectory:
    """Gradient descent θ_{t+1} = θ_t − η∇L(θ_t) on the cross-entropy, run by :func:`terrainlab.core.rollout`
    (Euler on F = −∇L in closed form); ``theta0`` defaults to zeros; ``record`` as in ``rollout``.

    >>> X = torch.tensor([[1.0], [-1.0]], dtype=torch.float64); y = torch.tensor([1.0, 0.0], dtype=torch.float64)
    >>> float(gd_logistic_regression(X, y, eta=1.0, steps=100).final) > 2   # separable: θ keeps growing
    True
    """
    if theta0 is None and isinstance(X, torch.Tensor) and X.ndim >= 2:
        theta0 = X.new_zeros(tuple(X.shape[:-2]) + (X.shape[-1],))
    _check(theta0, X, y)
    _check_eta_steps(eta, steps)
    return rollout(_field(X, y), theta0, eta=float(eta), steps=steps, record=record)


@dataclass(frozen=True)
class ImplicitBiasPath:
    """Gradient descent on the logistic loss read at checkpoints t: ``steps`` (K,), ``theta`` (K, ..., d),
    ``norm`` ‖θ_t‖ (K, ...), ``cos_to_svm`` cos(θ_t, w_SVM) (K, ...; NaN where the data are not
    separable), ``svm`` one :class:`SVMResult` per data set (a flat list in C order of the batch), and
    ``separable`` (a bool per data set, same order)."""

    steps: torch.Tensor
    theta: torch.Tensor
    norm: torch.Tensor
    cos_to_svm: torch.Tensor
    svm: tuple
    separable: tuple


def implicit_bias_path(X: torch.Tensor, y: torch.Tensor, eta: float, checkpoints) -> ImplicitBiasPath:
    """Run gradient descent on the logistic loss from θ = 0 (through the core, one rollout per interval
    between checkpoints) and compare its direction with the hard-margin SVM through the origin
    (:func:`~terrainlab.classical.hard_margin_svm` with ``bias=False`` on labels 2y − 1) at each checkpoint
    (increasing ints ≥ 1). For a model with an intercept append a constant feature to X: the SVM is then
    the one that also penalises the intercept, consistently with GD on the augmented θ.

    >>> X = torch.tensor([[2.0, 1.0], [1.0, 2.0], [-2.0, -1.0], [-1.0, -2.0]], dtype=torch.float64)
    >>> p = implicit_bias_path(X, torch.tensor([1.0, 1.0, 0.0, 0.0], dtype=torch.float64), 1.0, [10, 1000])
    >>> bool(p.cos_to_svm[-1] > p.cos_to_svm[0] > 0.9), p.separable
    (True, (True,))
    """
    _check(None, X, y)
    cps = [int(c) for c in checkpoints] if not isinstance(checkpoints, (int, float)) else None
    if not cps or any(c < 1 for c in cps) or any(b <= a for a, b in zip(cps, cps[1:])):
        raise ValueError(f"checkpoints must be a non-empty increasing sequence of ints >= 1, got {checkpoints!r}")
    _check_eta_steps(eta, cps[0])
    batch = tuple(X.shape[:-2])
    d = X.shape[-1]
    Xf, yf = X.reshape(-1, X.shape[-2], d), y.reshape(-1, X.shape[-2])
    svms = tuple(hard_margin_svm(Xf[b], 2 * yf[b].to(X.dtype) - 1, bias=False) for b in range(Xf.shape[0]))
    separable = tuple(r.status == "optimal" for r in svms)
    W = torch.stack([r.w if sep else torch.full_like(r.w, math.nan) for r, sep in zip(svms, separable)])
    W = W.reshape(batch + (d,))
    field = _field(X, y)
    theta = X.new_zeros(batch + (d,))
    thetas, done = [], 0
    for c in cps:
        theta = rollout(field, theta, eta=float(eta), steps=c - done, record="last", t0=done * float(eta)).final
        thetas.append(theta)
        done = c
    th = torch.stack(thetas)
    norm = th.norm(dim=-1)
    cos = (th * W).sum(-1) / (norm * W.norm(dim=-1)).clamp_min(1e-300)
    return ImplicitBiasPath(steps=torch.tensor(cps), theta=th, norm=norm, cos_to_svm=cos, svm=svms, separable=separable)
