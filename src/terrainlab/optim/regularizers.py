"""Regularisers, their proximal maps, and input noise as ridge.

- penalties: l1 = λ‖θ‖₁, l2 = (λ/2)‖θ‖², elastic net = λ1‖θ‖₁ + (λ2/2)‖θ‖² (Zou & Hastie 2005);
- proximal maps prox_{τr}(x) = argmin_u r(u) + ‖u − x‖²/(2τ) — soft thresholding for L1
  (Donoho 1995), S_τ1(x)/(1 + τ2) for the elastic net;
- :func:`input_noise_ridge`: E_ε‖(X + ε)w + b − y‖²/n with ε ~ N(0, σ²I) equals
  ‖Xw + b − y‖²/n + σ²‖w‖² (Bishop 1995, "Training with noise is equivalent to Tikhonov
  regularization"); returns the minimiser and the Hessian of both objectives.

Example:
    >>> prox_l1(torch.tensor([-2.0, 0.05, 1.0]), 0.1)
    tensor([-1.9000,  0.0000,  0.9000])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..core.validate import check_nonnegative


def l1_penalty(theta: torch.Tensor, lam: float) -> torch.Tensor:
    return lam * theta.abs().sum()


def l2_penalty(theta: torch.Tensor, lam: float) -> torch.Tensor:
    return 0.5 * lam * (theta * theta).sum()


def elastic_net_penalty(theta: torch.Tensor, l1: float, l2: float) -> torch.Tensor:
    return l1_penalty(theta, l1) + l2_penalty(theta, l2)


def prox_l1(x: torch.Tensor, tau: float) -> torch.Tensor:
    """S_τ(x) = sign(x)·max(|x| − τ, 0)."""
    check_nonnegative(tau, "tau")
    return torch.sign(x) * torch.clamp(x.abs() - tau, min=0)


def prox_elastic_net(x: torch.Tensor, tau1: float, tau2: float) -> torch.Tensor:
    """prox of τ1‖·‖₁ + (τ2/2)‖·‖²: S_τ1(x)/(1 + τ2)."""
    check_nonnegative(tau2, "tau2")
    return prox_l1(x, tau1) / (1 + tau2)


def one_sided_derivatives(fn, x: float, h: float = 1e-7) -> tuple[float, float]:
    """(f'(x⁻), f'(x⁺)) by one-sided differences in float64: unequal values mean a kink at x."""
    f0 = float(fn(torch.tensor(x, dtype=torch.float64)))
    left = (f0 - float(fn(torch.tensor(x - h, dtype=torch.float64)))) / h
    right = (float(fn(torch.tensor(x + h, dtype=torch.float64))) - f0) / h
    return left, right


@dataclass(frozen=True)
class RidgeEquivalence:
    """Least squares y ≈ wx + b with and without input noise σ: minimisers (w, b) and Hessians."""

    plain: np.ndarray
    noisy: np.ndarray
    hessian_plain: np.ndarray
    hessian_noisy: np.ndarray


def input_noise_ridge(X, y, sigma: float) -> RidgeEquivalence:
    """Closed form for L(w, b) = mean((Xw + b − y)²) and its input-noise average L + σ²‖w‖².

    X: (n, d), y: (n,). Parameters are (w, b); the Hessians are with respect to (w, b).
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2 or y.shape != (X.shape[0],):
        raise ValueError(f"X must be (n, d) and y (n,), got {X.shape} and {y.shape}")
    check_nonnegative(sigma, "sigma")
    n, d = X.shape
    A = np.hstack([X, np.ones((n, 1))])
    H = 2 * A.T @ A / n
    R = np.zeros((d + 1, d + 1))
    R[:d, :d] = 2 * sigma**2 * np.eye(d)
    rhs = 2 * A.T @ y / n
    plain = np.linalg.lstsq(H, rhs, rcond=None)[0]
    noisy = np.linalg.solve(H + R, rhs)
    return RidgeEquivalence(plain, noisy, H, H + R)
