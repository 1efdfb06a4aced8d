"""Batched Jacobians of maps and fields, optionally restricted to a subspace (the simplex tangent).

For states that do not interact (row b of fn(s) depends only on row b of s), the Jacobians of all
rows are obtained from d vector–Jacobian products of the whole batch with the cotangents e_i
broadcast over rows: row i of every J_b at once (one forward pass, d reverse passes over the
retained graph). It needs only that ``fn`` is batched over its leading dimension, which is the
contract of every terrainlab field.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.func import vjp, vmap

from ._util import check_states, state_fn


def _batched_jac(g: Callable, x: torch.Tensor) -> torch.Tensor:
    """J[b] = ∂g(x)_b / ∂x_b for x (N, d) → (N, d_out, d).

    One forward pass, then d_out reverse passes over the retained graph with the cotangent e_i
    broadcast over rows (row i of every J_b at once). Falls back to ``torch.func`` (vjp + vmap)
    when ``g`` does not build an autograd graph (e.g. it is called inside a functorch transform).
    """
    return _batched_value_and_jac(g, x)[1]


def _batched_value_and_jac(g: Callable, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(g(x), J) from the same forward pass: see :func:`_batched_jac`."""
    x = x.detach()
    with torch.enable_grad():
        xr = x.requires_grad_(True)
        out = g(xr)
    if not torch.is_tensor(out) or out.shape[:-1] != x.shape[:-1]:
        raise ValueError(
            f"fn must map states (N, d) to outputs (N, d_out), got {tuple(x.shape)} -> "
            f"{tuple(out.shape) if torch.is_tensor(out) else type(out).__name__}"
        )
    d_out = out.shape[-1]
    if not out.requires_grad:  # constant in s, or a graph we cannot see: use torch.func
        return out.detach(), _batched_jac_func(g, x)
    eye = torch.eye(d_out, dtype=out.dtype, device=out.device)
    rows = []
    for i in range(d_out):
        (gi,) = torch.autograd.grad(out, xr, eye[i].expand_as(out), retain_graph=i < d_out - 1, allow_unused=True)
        rows.append(torch.zeros_like(x) if gi is None else gi)
    return out.detach(), torch.stack(rows, dim=1).detach()


def _batched_jac_func(g: Callable, x: torch.Tensor) -> torch.Tensor:
    out, pullback = vjp(g, x)
    d_out = out.shape[-1]
    eye = torch.eye(d_out, dtype=out.dtype, device=out.device)
    cot = eye[:, None, :].expand(d_out, *out.shape)
    try:
        (rows,) = vmap(pullback)(cot)  # (d_out, N, d)
    except RuntimeError:  # an op without a vmap rule: fall back to a loop of VJPs
        rows = torch.stack([pullback(c)[0] for c in cot])
    return rows.permute(1, 0, 2)


def jacobian(fn: Callable, s: torch.Tensor, *, basis: torch.Tensor | None = None, t: float = 0.0) -> torch.Tensor:
    """Jacobian of a batched map or field at states ``s`` (shape (..., d)) → (..., d, d).

    J_b = ∂fn(s)_b/∂s_b, computed with ``torch.func.vjp`` (d VJPs per batch, all rows at once).
    With ``basis`` (a d × m matrix with orthonormal columns, e.g. :func:`simplex_tangent_basis`)
    the result is the restricted Jacobian Bᵀ J B (..., m, m): on the simplex the K−1 eigenvalues
    of the tangent Jacobian are the ones that decide stability (Strogatz, *Nonlinear Dynamics and
    Chaos*, §6.3; the tangent restriction is the standard one for flows on a constraint manifold).

    ``fn`` is called as ``fn(s)`` when it takes one argument, else ``fn(s, t)``.

    Example:
        >>> from terrainlab.core import linear_field
        >>> A = torch.tensor([[0.0, 1.0], [-2.0, -3.0]])
        >>> jacobian(linear_field(A), torch.zeros(4, 2)).shape
        torch.Size([4, 2, 2])
    """
    x = check_states(s, "s")
    d = x.shape[-1]
    if basis is not None:
        if not torch.is_tensor(basis) or basis.ndim != 2 or basis.shape[0] != d:
            raise ValueError(f"basis must be a (d={d}) × m matrix with orthonormal columns, got "
                             f"{tuple(basis.shape) if torch.is_tensor(basis) else type(basis).__name__}")
    g = state_fn(fn, t)
    J = _batched_jac(g, x.detach())
    if basis is not None:
        Bm = basis.to(J.dtype)
        J = Bm.T @ J @ Bm
    return J.reshape(*s.shape[:-1], *J.shape[-2:])
