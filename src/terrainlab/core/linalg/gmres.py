"""Batched GMRES: one independent linear system A_b x_b = b_b per row of a (B, n) right-hand side.

``matvec`` applies every A_b at once (one JVP or VJP of a batched layer, the Newton matrix
I − J of an implicit step). GMRES minimises ‖b − A x‖ over the Krylov space
span{b, Ab, …, A^{k−1}b} of each row, built by modified Gram–Schmidt with per-row inner products,
so each row gets its own Krylov coefficients (Saad & Schultz, "GMRES: a generalized minimal
residual algorithm for solving nonsymmetric linear systems", SIAM J. Sci. Stat. Comput. 1986).
The small Hessenberg least-squares problems are solved in float64 whatever the state's dtype.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..validate import check_callable, check_int, check_positive, check_tensor

__all__ = ["KrylovResult", "gmres"]


@dataclass(frozen=True)
class KrylovResult:
    """Solution of a batched linear solve: ``x`` (B, n), per-row relative ``residual``
    ‖b − Ax‖/‖b‖, ``iterations`` (matvecs) and ``converged`` (residual ≤ tol, per row)."""

    x: torch.Tensor
    residual: torch.Tensor
    iterations: int
    converged: torch.Tensor


def gmres(
    matvec: Callable[[torch.Tensor], torch.Tensor],
    b: torch.Tensor,
    *,
    tol: float = 1e-8,
    max_iter: int = 30,
) -> KrylovResult:
    """Solve A_b x_b = b_b for every row b (x0 = 0, no restart), batched.

    Stops when every row's relative residual is ≤ ``tol`` or after ``max_iter`` matvecs (at most
    n, where the Krylov space is the whole space).

    Example:
        >>> A = torch.tensor([[2.0, 1.0], [0.0, 3.0]])
        >>> r = gmres(lambda v: v @ A.T, torch.ones(4, 2), tol=1e-10)
        >>> torch.allclose(r.x @ A.T, torch.ones(4, 2), atol=1e-5)
        True
    """
    check_callable(matvec, "matvec")
    check_tensor(b, "b", ndim=2)
    check_positive(tol, "tol")
    check_int(max_iter, "max_iter", minimum=1)
    B, n = b.shape
    k_max = min(max_iter, n)
    work = torch.float64 if b.dtype in (torch.float16, torch.bfloat16, torch.float32) else b.dtype
    beta = b.norm(dim=1)
    safe = beta.clamp_min(torch.finfo(b.dtype).tiny)
    V = [b / safe[:, None]]
    H = torch.zeros(B, k_max + 1, k_max, dtype=work, device=b.device)
    e1 = torch.zeros(B, k_max + 1, 1, dtype=work, device=b.device)
    e1[:, 0, 0] = beta.to(work)
    y = torch.zeros(B, 0, 1, dtype=work, device=b.device)
    rel = torch.ones(B, dtype=work, device=b.device)
    k = 0
    for j in range(k_max):
        w = matvec(V[j])
        for i in range(j + 1):
            h = (w * V[i]).sum(dim=1)
            H[:, i, j] = h.to(work)
            w = w - h[:, None] * V[i]
        hn = w.norm(dim=1)
        H[:, j + 1, j] = hn.to(work)
        V.append(w / hn.clamp_min(torch.finfo(b.dtype).tiny)[:, None])
        k = j + 1
        Hk = H[:, : k + 1, :k]
        y = torch.linalg.lstsq(Hk, e1[:, : k + 1]).solution
        res = (e1[:, : k + 1] - Hk @ y).norm(dim=(1, 2))
        rel = torch.where(beta.to(work) > 0, res / safe.to(work), torch.zeros_like(res))
        if bool((rel <= tol).all()):
            break
    coeff = y[:, :, 0].to(b.dtype)
    x = torch.zeros_like(b)
    for i in range(k):
        x = x + coeff[:, i : i + 1] * V[i]
    rel = rel.to(b.dtype)
    return KrylovResult(x=x, residual=rel, iterations=k, converged=rel <= tol)
