"""Gradients of an ODE solve by the adjoint method: a second solve, backwards in time.

For y' = f_θ(y, t) on [t0, t1] and a loss L(y(t1)), the adjoint a(t) = ∂L/∂y(t) satisfies

    a' = −aᵀ ∂f/∂y,   a(t1) = ∂L/∂y(t1),     ∂L/∂θ = ∫_{t1}^{t0} −aᵀ ∂f/∂θ dt,

so the augmented state s = (y, a, a_θ) is integrated from t1 back to t0 by the same core integrator
(:func:`terrainlab.core.integrate`), with one vector–Jacobian product of f per evaluation; memory
does not grow with the number of steps (Chen, Rubanova, Bettencourt & Duvenaud, "Neural ordinary
differential equations", NeurIPS 2018). With ``seminorm`` the step-size control looks at (y, a)
only: a_θ is an integral that nothing downstream of it feeds back into (Kidger, Chen & Lyons,
"'Hey, that's not an ODE': faster ODE adjoints via seminorms", ICML 2021).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch


@dataclass
class ODEBackwardStats:
    """Filled by the adjoint backward pass: evaluations, trial steps (= accepted + rejected), status,
    seconds — the same counts as :class:`terrainlab.core.Solution`."""

    n_evals: int = 0
    n_steps: int = 0
    n_accepted: int = 0
    n_rejected: int = 0
    status: str | None = None
    seconds: float = 0.0


def augmented_field(f, y_like: torch.Tensor, params: tuple):
    """F(s, t) for s = (y, a, a_θ) flattened: (f(y, t), −aᵀ∂f/∂y, −aᵀ∂f/∂θ)."""
    n = y_like.numel()

    def aug(s, t):
        y = s[:n].view_as(y_like)
        a = s[n : 2 * n].view_as(y_like)
        with torch.enable_grad():
            y_ = y.detach().requires_grad_(True)
            fy = f(y_, t)
            grads = torch.autograd.grad(fy, (y_, *params), -a, allow_unused=True)
        parts = [fy.detach().reshape(-1), grads[0].reshape(-1)]
        for gp, p in zip(grads[1:], params):
            parts.append((torch.zeros_like(p) if gp is None else gp).reshape(-1))
        return torch.cat(parts)

    return aug


class AdjointSolve(torch.autograd.Function):
    """y(t1) forward without a graph; backward integrates the augmented state from t1 to t0.

    ``node`` provides ``_f`` (the field), ``t0``, ``t1``, ``seminorm`` and
    ``_solve_between(f, y0, t0, t1, n_norm=None)``; the forward :class:`Solution` is appended to
    ``holder`` so the caller can report it, and ``stats`` (an :class:`ODEBackwardStats`) is filled
    when the backward pass runs.
    """

    @staticmethod
    def forward(ctx, y0, node, holder, stats, *params):
        with torch.no_grad():
            sol = node._solve_between(node._f, y0.detach(), node.t0, node.t1)
        holder.append(sol)
        ctx.node, ctx.stats = node, stats
        ctx.save_for_backward(sol.y1, *params)
        return sol.y1.clone()

    @staticmethod
    def backward(ctx, g):
        start = time.perf_counter()
        node, st = ctx.node, ctx.stats
        y1, *params = ctx.saved_tensors
        n = y1.numel()
        aug = augmented_field(node._f, y1, tuple(params))
        s1 = torch.cat([y1.reshape(-1), g.reshape(-1)] + [p.new_zeros(p.numel()) for p in params])
        bsol = node._solve_between(aug, s1, node.t1, node.t0, n_norm=2 * n if node.seminorm else None)
        st.n_evals += bsol.n_evals
        st.n_steps += bsol.n_steps
        st.n_accepted += bsol.n_accepted
        st.n_rejected += bsol.n_rejected
        st.status = bsol.status
        st.seconds += time.perf_counter() - start
        s0 = bsol.y1
        grads, off = [], 2 * n
        for p in params:
            grads.append(s0[off : off + p.numel()].view(p.shape))
            off += p.numel()
        return (s0[n : 2 * n].view_as(y1), None, None, None, *grads)
