"""Batched Krylov solver used by the implicit layers: GMRES on independent per-sample systems.

Each row b of a (B, n) right-hand side is its own linear system A_b x_b = b_b; ``matvec`` applies all
A_b at once (e.g. one JVP or VJP of a batched layer). Per-sample inner products keep the systems
apart, so every sample gets its own Krylov coefficients (Saad & Schultz 1986, "GMRES").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class KrylovResult:
    """Solution of a batched linear solve: ``x`` (B, n), per-sample relative ``residual``,
    ``iterations`` (matvecs) and ``converged`` (residual ≤ tol)."""

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

    Minimises ‖b − A x‖ over the Krylov space span{b, Ab, …, A^{k−1}b} per sample, built by
    modified Gram–Schmidt; stops when every sample's relative residual is ≤ ``tol``.

    Example:
        >>> A = torch.tensor([[2.0, 1.0], [0.0, 3.0]])
        >>> r = gmres(lambda v: v @ A.T, torch.ones(4, 2), tol=1e-10)
        >>> torch.allclose(r.x @ A.T, torch.ones(4, 2), atol=1e-5)
        True
    """
    if b.ndim != 2:
        raise ValueError(f"b must have shape (batch, n), got {tuple(b.shape)}")
    if not (isinstance(max_iter, int) and max_iter >= 1):
        raise ValueError(f"max_iter must be an int >= 1, got {max_iter!r}")
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


def linearize(f: Callable[[torch.Tensor], torch.Tensor], z: torch.Tensor):
    """Linearise f at z with reverse-mode autograd only: returns (f(z), jvp, vjp) where
    jvp(v) = J v and vjp(w) = Jᵀ w, J = ∂f/∂z.

    J v is obtained as the gradient of ⟨Jᵀu, v⟩ with respect to u (the "double-vjp" trick), so one
    graph serves every product and no forward-mode AD (with its one-off start-up cost) is needed.
    """
    with torch.enable_grad():
        z_ = z.detach().requires_grad_(True)
        out = f(z_)
        u = torch.zeros_like(out, requires_grad=True)
        (g,) = torch.autograd.grad(out, z_, u, create_graph=True, allow_unused=True)
    if g is None:  # f does not depend on z
        g = torch.zeros_like(z_)

    def jvp(v):
        if not g.requires_grad:
            return torch.zeros_like(out)
        (jv,) = torch.autograd.grad(g, u, v, retain_graph=True, allow_unused=True)
        return torch.zeros_like(out) if jv is None else jv

    def vjp(w):
        (jw,) = torch.autograd.grad(out, z_, w, retain_graph=True, allow_unused=True)
        return torch.zeros_like(z_) if jw is None else jw

    return out.detach(), jvp, vjp
