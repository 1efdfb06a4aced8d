"""Fields: callables ``F(state, t) -> tangent`` with the state's shape.

The one equation of terrainlab is S_{t+1} = S_t + η·F(S_t, t). A *field* is the F. Any callable with
that signature is a field; this module only builds the common ones.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.func import grad

Field = Callable[[torch.Tensor, float], torch.Tensor]


def gradient_field(loss_fn: Callable[[torch.Tensor], torch.Tensor]) -> Field:
    """The steepest-descent field F(θ) = −∇L(θ), by autograd.

    ``loss_fn`` maps a batch of states of shape ``(..., d)`` to losses of shape ``(...)`` (one loss
    per state, states independent of each other). The field is computed as −∇_θ Σ L(θ_b), which is
    the per-state gradient because the states do not interact. It is built on ``torch.func.grad`` so
    it composes with ``torch.func.jacrev``/``jvp``/``vmap`` (the dynamics toolkit takes Jacobians of
    GD maps through it) and with ordinary autograd.

    Gradient flow θ' = −∇L(θ) (Cauchy 1847); explicit Euler on it is gradient descent.

    Example:
        >>> F = gradient_field(lambda th: (th ** 2).sum(-1))
        >>> F(torch.tensor([[1.0, 2.0]]), 0.0)
        tensor([[-2., -4.]])
    """
    if not callable(loss_fn):
        raise ValueError(f"loss_fn must be callable, got {type(loss_fn).__name__}")

    def total(state: torch.Tensor) -> torch.Tensor:
        return loss_fn(state).sum()

    g = grad(total)

    def field(state: torch.Tensor, t: float = 0.0) -> torch.Tensor:
        return -g(state)

    field.loss_fn = loss_fn  # type: ignore[attr-defined]
    return field


def linear_field(A: torch.Tensor) -> Field:
    """F(x) = A x for a batch of row vectors x (shape (..., d)); the linear test problem."""
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"A must be a square matrix, got shape {tuple(A.shape)}")

    def field(state: torch.Tensor, t: float = 0.0) -> torch.Tensor:
        return state @ A.T

    return field


def as_map(field: Field, eta: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """The explicit Euler map T(S) = S + η·F(S). Its fixed points are exactly the zeros of F."""
    if not eta > 0:
        raise ValueError(f"eta must be > 0, got {eta}")

    def T(state: torch.Tensor, t: float = 0.0) -> torch.Tensor:
        return state + eta * field(state, t)

    return T


def map_field(T: Callable[[torch.Tensor], torch.Tensor]) -> Field:
    """The residual field F(S) = T(S) − S of a map T; Euler with η = 1 on it iterates T."""

    def field(state: torch.Tensor, t: float = 0.0) -> torch.Tensor:
        return T(state) - state

    return field
