"""Fields: callables ``F(state, t) -> tangent`` with the state's shape.

The one equation of terrainlab is S_{t+1} = S_t + η·F(S_t, t). A *field* is the F. Any callable with
that signature is a field; this module builds the common ones and adapts the rest:
:func:`as_field` turns a callable written ``F(s)`` or ``F(s, t)`` — or an ``nn.Module`` whose
``forward`` takes ``(h)`` or ``(h, t)`` — into the ``F(s, t)`` every scheme calls.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
from torch.func import grad

from .validate import check_callable

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


class MapField:
    """The residual field F(S) = T(S) − S of a one-step update T; Euler with η = 1 on it iterates T.

    Zeros of F are exactly the fixed points T(S) = S, so every fixed-point, basin and stability tool
    written for fields serves maps too. ``update`` is called as ``T(S)``.

    Example:
        >>> F = MapField(lambda s: 0.5 * s)
        >>> F(torch.tensor([2.0]), 0.0)
        tensor([-1.])
    """

    def __init__(self, update: Callable[[torch.Tensor], torch.Tensor]):
        self.update = check_callable(update, "update")

    def __call__(self, state: torch.Tensor, t: float = 0.0) -> torch.Tensor:
        return self.update(state) - state

    def __repr__(self) -> str:
        return f"MapField({self.update!r})"


def map_field(T: Callable[[torch.Tensor], torch.Tensor]) -> MapField:
    """F(S) = T(S) − S as a :class:`MapField` (the functional spelling of the same object)."""
    return MapField(check_callable(T, "T"))


def _positional(params) -> tuple[list, list]:
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    pos = [p for p in params if p.kind in kinds]
    return [p for p in pos if p.default is p.empty], [p for p in pos if p.default is not p.empty]


def takes_time(f) -> bool:
    """True when ``f`` (a callable, or an ``nn.Module`` through its ``forward``) takes the time t.

    It does when it has two or more required positional parameters — ``F(s, t)`` — or one required
    and an optional one named ``t`` or ``time`` — ``F(s, t=0.0)``, the signature of the fields this
    package builds. ``*args`` alone, or a signature that cannot be read (some builtins), counts as
    state-only.
    """
    target = f.forward if isinstance(f, torch.nn.Module) else f
    try:
        params = list(inspect.signature(target).parameters.values())
    except (TypeError, ValueError):
        return False
    required, optional = _positional(params)
    return len(required) >= 2 or (len(required) == 1 and any(p.name in ("t", "time") for p in optional))


def as_field(f, time_arg: bool | None = None) -> Field:
    """``f`` as a field ``F(s, t)``: the one adapter every world uses.

    ``f`` is a callable or an ``nn.Module``. With ``time_arg=None`` the signature decides
    (:func:`takes_time`): ``F(s, t)`` and ``F(s, t=0.0)`` receive t, ``F(s)`` is autonomous and t is
    dropped. ``time_arg=True``/``False`` overrides the inspection (for ``*args`` wrappers).

    Example:
        >>> F = as_field(lambda s: -s)
        >>> F(torch.tensor([1.0]), 3.0)
        tensor([-1.])
        >>> as_field(lambda s, t: t * s)(torch.tensor([1.0]), 3.0)
        tensor([3.])
    """
    if not callable(f):
        raise ValueError(f"field must be an nn.Module or a callable, got {type(f).__name__}")
    use_t = takes_time(f) if time_arg is None else bool(time_arg)
    if use_t:
        return lambda s, t=0.0: f(s, t)
    return lambda s, t=0.0: f(s)
