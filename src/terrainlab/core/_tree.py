"""Tiny helpers so a state can be one tensor or a tuple of tensors, e.g. (position, momentum).

Only the handful of operations the schemes and rollout need; no general pytree machinery.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

State = torch.Tensor | tuple


def tmap(fn: Callable, *states: State) -> State:
    """Apply ``fn`` leaf-wise to one or more states of the same structure."""
    if isinstance(states[0], tuple):
        return tuple(tmap(fn, *parts) for parts in zip(*states))
    return fn(*states)


def leaves(state: State) -> list[torch.Tensor]:
    if isinstance(state, tuple):
        out: list[torch.Tensor] = []
        for part in state:
            out.extend(leaves(part))
        return out
    return [state]


def axpy(a: float, x: State, y: State) -> State:
    """y + a·x, leaf-wise (one fused add per leaf, no temporary for a·x)."""
    return tmap(lambda xi, yi: torch.add(yi, xi, alpha=a), x, y)


def combine(base: State, terms: list[tuple[float, State]]) -> State:
    """base + Σ c_i·k_i, leaf-wise (used by the Runge–Kutta schemes)."""

    def one(b, *ks):
        (c0, _), k0 = terms[0], ks[0]
        out = torch.add(b, k0, alpha=c0)
        for (c, _), k in zip(terms[1:], ks[1:]):
            out.add_(k, alpha=c)  # in place on a fresh tensor: safe for autograd
        return out

    return tmap(one, base, *[k for _, k in terms])


def all_finite(state: State) -> torch.Tensor:
    """0-d bool tensor, True when every entry of every leaf is finite (no host sync)."""
    flags = [torch.isfinite(x).all() for x in leaves(state)]
    out = flags[0]
    for f in flags[1:]:
        out = out & f
    return out


def max_abs(state: State) -> torch.Tensor:
    vals = [x.detach().abs().amax() if x.numel() else x.new_zeros(()) for x in leaves(state)]
    return torch.stack([v.to(vals[0].dtype) for v in vals]).amax()


def sub_norm(a: State, b: State) -> torch.Tensor:
    """Max over leaves of max-abs difference: the step size a stop rule looks at (0 for empty leaves)."""
    return max_abs(tuple((x - y).detach() for x, y in zip(leaves(a), leaves(b))))
