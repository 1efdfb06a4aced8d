"""Linear least squares as a landscape: the book's loss, its exact minimiser, gradient descent on it as a
core rollout, and the exact contraction factor of that descent.

With the book's loss (*The Terrain of Learning*, §10.1)

    L(θ) = (1/n)‖y − Xθ‖²,   ∇L(θ) = (2/n)Xᵀ(Xθ − y),   H = ∇²L = (2/n)XᵀX,

the minimiser solves the normal equations XᵀXθ* = Xᵀy (Gauss 1809; Legendre 1805) and gradient descent
θ_{t+1} = θ_t − η∇L(θ_t) moves the error by the fixed matrix e_{t+1} = (I − ηH)e_t. Its per-step factor in
the Euclidean norm is therefore the spectral radius of I − ηH,

    ρ(η) = max_i |1 − ηλ_i(H)|,

(e.g. Nesterov 2004, *Introductory Lectures on Convex Optimization*, §1.2.3; Polyak 1987), which equals the
book's 1 − ηλ_min only while η ≤ 2/(λ_min + λ_max); past that the largest eigenvalue sets the rate, and past
2/λ_max descent diverges.
"""

from __future__ import annotations

import math

import torch

from ..core import Trajectory, rollout

__all__ = ["least_squares_loss", "least_squares_hessian", "ols", "gd_linear_regression", "quadratic_rate"]


def _check_design(X, y) -> None:
    if not isinstance(X, torch.Tensor) or X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"X must be a non-empty 2-D tensor (n, d), got {getattr(X, 'shape', type(X).__name__)}")
    if not X.is_floating_point():
        raise ValueError(f"X must be a floating-point tensor, got dtype {X.dtype}")
    if not isinstance(y, torch.Tensor) or y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(f"y must be a 1-D tensor of length n = {X.shape[0]}, got {getattr(y, 'shape', type(y).__name__)}")
    if y.dtype != X.dtype or y.device != X.device:
        raise ValueError(f"y must share X's dtype and device ({X.dtype}, {X.device}), got ({y.dtype}, {y.device})")
    if not bool(torch.isfinite(X).all()):
        raise ValueError("X must be finite")
    if not bool(torch.isfinite(y).all()):
        raise ValueError("y must be finite")


def _check_eta(eta) -> float:
    if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not math.isfinite(eta) or eta <= 0:
        raise ValueError(f"eta must be a finite number > 0, got {eta!r}")
    return float(eta)


def least_squares_loss(theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The book's L(θ) = (1/n)‖y − Xθ‖² for a batch of parameter rows ``theta`` of shape (..., d).

    >>> X = torch.tensor([[1.0, 0.0], [0.0, 1.0]]); y = torch.tensor([1.0, 1.0])
    >>> least_squares_loss(torch.zeros(2), X, y)
    tensor(1.)
    """
    _check_design(X, y)
    if not isinstance(theta, torch.Tensor) or theta.ndim < 1 or theta.shape[-1] != X.shape[1]:
        raise ValueError(f"theta must be a tensor of shape (..., {X.shape[1]}), got {getattr(theta, 'shape', theta)}")
    r = theta @ X.T - y
    return (r * r).mean(-1)


def least_squares_hessian(X: torch.Tensor) -> torch.Tensor:
    """H = (2/n)XᵀX, the (constant) Hessian of the book's loss (1/n)‖y − Xθ‖² — not XᵀX.

    >>> least_squares_hessian(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
    tensor([[1., 0.],
            [0., 4.]])
    """
    if not isinstance(X, torch.Tensor) or X.ndim != 2 or X.shape[0] == 0 or not X.is_floating_point():
        raise ValueError(f"X must be a non-empty floating-point 2-D tensor (n, d), got {getattr(X, 'shape', X)!r}")
    return (2.0 / X.shape[0]) * (X.T @ X)


def ols(X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """θ* = (XᵀX)⁻¹Xᵀy, the least-squares minimiser (normal equations, Gauss/Legendre), by a Cholesky
    solve. Raises ``ValueError`` when X does not have full column rank (then no unique minimiser exists).

    >>> X = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    >>> [round(v, 12) for v in ols(X, X @ torch.tensor([2.0, -1.0], dtype=torch.float64)).tolist()]
    [2.0, -1.0]
    """
    _check_design(X, y)
    G = X.T @ X
    L, info = torch.linalg.cholesky_ex(G)
    if int(info) != 0 or int(torch.linalg.matrix_rank(X)) < X.shape[1]:
        raise ValueError(f"X must have full column rank {X.shape[1]} (XᵀX singular): no unique minimiser")
    return torch.cholesky_solve((X.T @ y)[:, None], L)[:, 0]


def gd_linear_regression(
    X: torch.Tensor, y: torch.Tensor, eta: float | torch.Tensor, steps: int, theta0: torch.Tensor | None = None,
    record: str | int = "all",
) -> Trajectory:
    """Gradient descent θ_{t+1} = θ_t − η(2/n)Xᵀ(Xθ_t − y) on the book's loss, run by
    :func:`terrainlab.core.rollout` (Euler on the steepest-descent field F(θ) = −∇L(θ), written in closed
    form). ``theta0`` (default zeros) may carry leading batch dimensions (..., d); ``record`` as in
    ``rollout``. ``eta`` may also be a 1-D tensor of k step sizes with ``theta0`` of shape (k, d): k independent
    descents with their own steps, run as one rollout of the field F_k(θ_k) = −η_k∇L(θ_k) with unit step. Returns the core :class:`~terrainlab.core.Trajectory` (states of shape (T+1, ..., d));
    a diverging run ends with status ``max_steps`` and growing states, or ``nonfinite``, never raising.

    >>> X = torch.eye(2, dtype=torch.float64); y = torch.tensor([1.0, 2.0], dtype=torch.float64)
    >>> gd_linear_regression(X, y, eta=0.5, steps=60).final
    tensor([1., 2.], dtype=torch.float64)
    """
    _check_design(X, y)
    if isinstance(eta, torch.Tensor):
        if eta.ndim != 1 or eta.numel() == 0 or not bool(torch.isfinite(eta).all()) or not bool((eta > 0).all()):
            raise ValueError(f"eta must be a number > 0 or a 1-D tensor of numbers > 0, got {eta!r}")
        if theta0 is None:
            theta0 = torch.zeros(eta.shape[0], X.shape[1], dtype=X.dtype, device=X.device)
        if not isinstance(theta0, torch.Tensor) or tuple(theta0.shape) != (eta.shape[0], X.shape[1]):
            raise ValueError(f"theta0 must have shape ({eta.shape[0]}, {X.shape[1]}) with a tensor eta, got "
                             f"{getattr(theta0, 'shape', theta0)}")
        etas = eta.to(X.dtype)[:, None]
    else:
        eta = _check_eta(eta)
        etas = None
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an int >= 1, got {steps!r}")
    if theta0 is None:
        theta0 = torch.zeros(X.shape[1], dtype=X.dtype, device=X.device)
    if not isinstance(theta0, torch.Tensor) or theta0.ndim < 1 or theta0.shape[-1] != X.shape[1]:
        raise ValueError(f"theta0 must be a tensor of shape (..., {X.shape[1]}), got {getattr(theta0, 'shape', theta0)}")
    if theta0.dtype != X.dtype:
        raise ValueError(f"theta0 must have X's dtype {X.dtype}, got {theta0.dtype}")
    scale = 2.0 / X.shape[0]

    def field(theta: torch.Tensor, t: float = 0.0) -> torch.Tensor:
        return -scale * ((theta @ X.T - y) @ X)

    if etas is not None:
        def scaled(theta: torch.Tensor, t: float = 0.0) -> torch.Tensor:
            return etas * field(theta)

        return rollout(scaled, theta0, eta=1.0, steps=steps, record=record)
    return rollout(field, theta0, eta=eta, steps=steps, record=record)


def quadratic_rate(H: torch.Tensor, eta: float) -> float:
    """ρ(η) = max_i |1 − ηλ_i(H)|: the exact per-step contraction factor (in the Euclidean norm, for the
    worst start) of gradient descent with step η on a quadratic with symmetric Hessian ``H`` — the spectral
    radius of I − ηH. Below 1 exactly when 0 < η < 2/λ_max (H positive definite); equal to 1 − ηλ_min only
    when η ≤ 2/(λ_min + λ_max).

    >>> H = torch.diag(torch.tensor([1.0, 10.0], dtype=torch.float64))
    >>> round(quadratic_rate(H, 0.1), 12), round(quadratic_rate(H, 0.19), 12)   # book's 1 − ηλ_min: 0.9, 0.81
    (0.9, 0.9)
    """
    if not isinstance(H, torch.Tensor) or H.ndim != 2 or H.shape[0] != H.shape[1] or H.shape[0] == 0:
        raise ValueError(f"H must be a non-empty square matrix, got {getattr(H, 'shape', type(H).__name__)}")
    if not H.is_floating_point() or not bool(torch.isfinite(H).all()):
        raise ValueError("H must be a finite floating-point matrix")
    if not torch.allclose(H, H.T, rtol=1e-10, atol=1e-12 * float(H.abs().max().clamp_min(1e-300))):
        raise ValueError("H must be symmetric")
    eta = _check_eta(eta)
    lam = torch.linalg.eigvalsh(H)
    return float((1.0 - eta * lam).abs().max())
