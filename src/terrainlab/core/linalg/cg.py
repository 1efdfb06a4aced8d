"""Batched conjugate gradients for symmetric positive-definite systems, one system per row.

Solves A x = b for a matrix-free SPD operator ``apply: v ↦ A v`` acting row-wise on a batch (B, m)
(Hestenes & Stiefel 1952): with r₀ = b, p₀ = r₀,

    α_k = ⟨r_k, r_k⟩ / ⟨p_k, A p_k⟩,  x_{k+1} = x_k + α_k p_k,  r_{k+1} = r_k − α_k A p_k,
    p_{k+1} = r_{k+1} + (⟨r_{k+1}, r_{k+1}⟩ / ⟨r_k, r_k⟩) p_k,

stopping when every row has ‖r‖ ≤ rtol·‖b‖ (or after ``max_iter``). A row whose curvature
⟨p, A p⟩ is not positive takes no step (α = 0) instead of producing a wrong or infinite update —
inexact-Newton callers then fall back on their damping.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..validate import check_callable, check_int, check_positive, check_tensor

__all__ = ["CGResult", "cg"]


@dataclass(frozen=True)
class CGResult:
    """x: (B, m) solutions; n_iter: iterations run (one ``apply`` each); converged: every row met
    ‖r‖ ≤ rtol·‖b‖; residual_norms: (B,) final ‖r‖ (the recursive residual)."""

    x: torch.Tensor
    n_iter: int
    converged: bool
    residual_norms: torch.Tensor


def cg(apply: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor, *, max_iter: int = 30,
       rtol: float = 1e-10) -> CGResult:
    """Solve ``apply(x) = b`` row by row by conjugate gradients, starting from x = 0.

    Args:
        apply: the SPD operator v ↦ A v on a (B, m) batch (rows independent).
        b: right-hand sides, shape (B, m).
        max_iter: at most this many iterations (operator applications).
        rtol: stop once every row has ‖r‖ ≤ rtol·‖b‖.

    Example:
        >>> A = torch.tensor([[4.0, 1.0], [1.0, 3.0]], dtype=torch.float64)
        >>> res = cg(lambda v: v @ A, torch.tensor([[1.0, 2.0]], dtype=torch.float64))
        >>> torch.allclose(res.x @ A, torch.tensor([[1.0, 2.0]], dtype=torch.float64)), res.converged
        (True, True)
    """
    check_callable(apply, "apply")
    check_tensor(b, "b", ndim=2)
    check_int(max_iter, "max_iter", minimum=1)
    check_positive(rtol, "rtol")
    tiny = torch.finfo(b.dtype).tiny
    x = torch.zeros_like(b)
    r = b.clone()
    p = r.clone()
    rs = (r * r).sum(-1, keepdim=True)
    bnorm = rs.sqrt().clamp(min=tiny)
    k, done = 0, False
    for k in range(1, max_iter + 1):  # noqa: B007 (k is returned)
        Ap = apply(p)
        denom = (p * Ap).sum(-1, keepdim=True)
        alpha = torch.where(denom > 0, rs / denom.clamp(min=tiny), torch.zeros_like(rs))
        x = x + alpha * p
        r = r - alpha * Ap
        rs_new = (r * r).sum(-1, keepdim=True)
        if bool((rs_new.sqrt() <= rtol * bnorm).all()):
            rs, done = rs_new, True
            break
        p = r + (rs_new / rs.clamp(min=tiny)) * p
        rs = rs_new
    return CGResult(x=x, n_iter=k, converged=done, residual_norms=rs.sqrt().squeeze(-1))
