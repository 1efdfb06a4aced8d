"""Closed forms beside the catalogue: losses as plain functions, and exact gradients and Hessians.

The optimizer tests and the ch03/ch04 atlas experiments compare iterations against exact
derivatives; these are the ones they use. Losses are batched over leading dimensions (a state of
shape (..., d) gives a loss of shape (...)) and come from the catalogue (:mod:`.catalogue`) where it
has the terrain, so a formula is written once.

Example:
    >>> import torch
    >>> th = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    >>> rosenbrock_loss(th).tolist(), rosenbrock_field()(th)[0].abs().tolist()   # min at (1, 1)
    ([0.0, 1.0], [0.0, 0.0])
    >>> rosenbrock_hessian(1.0, 1.0)     # ∇²L at the minimum (b = 10)
    [[82.0, -40.0], [-40.0, 20.0]]
"""

from __future__ import annotations

import torch

from .catalogue import get


def rosenbrock_loss(theta: torch.Tensor, b: float = 10.0) -> torch.Tensor:
    """L = (1 − θ1)² + b(θ2 − θ1²)²; minimum 0 at (1, 1) (the catalogue's ``rosenbrock``)."""
    return get("rosenbrock", b=b).fn(theta)


def bowl_loss(theta: torch.Tensor, center=(1.0, 1.0)) -> torch.Tensor:
    """L = ‖θ − c‖²; minimum 0 at c."""
    c = torch.as_tensor(center, dtype=theta.dtype, device=theta.device)
    return ((theta - c) ** 2).sum(-1)


#: The book's 1-D double well L = θ⁴/4 − 2θ² + θ + 6 (state shape (..., 1)), from the catalogue.
double_well_loss = get("double_well_1d").fn


def double_well_grad(x):
    """L'(θ) = θ³ − 4θ + 1 of :data:`double_well_loss` (numpy arrays and tensors alike)."""
    return x**3 - 4 * x + 1


def rosenbrock_field(b: float = 10.0):
    """F = −∇L of :func:`rosenbrock_loss` in closed form (a core field, batched over rows)."""

    def field(theta: torch.Tensor, t: float = 0.0) -> torch.Tensor:
        x, y = theta[..., 0], theta[..., 1]
        r = y - x * x
        return torch.stack([2 * (1 - x) + 4 * b * x * r, -2 * b * r], -1)

    return field


def rosenbrock_hessian(x: float, y: float, b: float = 10.0):
    """∇²L of :func:`rosenbrock_loss` at (x, y) as a 2×2 nested list."""
    return [[2 - 4 * b * (y - x * x) + 8 * b * x * x, -4 * b * x], [-4 * b * x, 2 * b]]


__all__ = ["rosenbrock_loss", "bowl_loss", "double_well_loss", "double_well_grad", "rosenbrock_field",
           "rosenbrock_hessian"]
