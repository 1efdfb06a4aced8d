"""Anderson acceleration (type II) of the fixed-point iteration z ← g(z).

With residuals G_i = g(x_i) − x_i of the last m iterates, solve per row

    α = argmin ‖Σ α_i G_i‖² + λ·s·‖α‖²   subject to Σ α_i = 1,

where s = max_i ‖G_i‖² makes the regularisation scale-free (a fixed λ would swamp the least squares
once residuals are small, turning Anderson into slow averaging), then

    x⁺ = β·Σ α_i g(x_i) + (1 − β)·Σ α_i x_i.

References: Anderson, "Iterative procedures for nonlinear integral equations" (J. ACM 1965);
Walker & Ni, "Anderson acceleration for fixed-point iterations" (SIAM J. Numer. Anal. 2011).
"""

from __future__ import annotations

import torch

from ..validate import check_int, check_nonnegative, check_probability
from .base import AbstractRootFinder

__all__ = ["Anderson"]


class Anderson(AbstractRootFinder):
    """Anderson acceleration with memory ``m``, damping ``beta`` and Tikhonov ``lam``.

    The m×m Gram matrix is updated by one row per iteration and solved in float64; history lives in
    (B, m, n) ring buffers, so memory is fixed by m, not by the iteration count. A failed least
    squares falls back on the newest pair (a damped Picard step).

    Example:
        >>> import torch
        >>> W = 0.5 * torch.eye(3)
        >>> r = Anderson(m=3, tol=1e-8).solve(lambda z: torch.tanh(z @ W + 1), torch.zeros(2, 3))
        >>> r.status
        'converged'
    """

    name = "anderson"

    def __init__(self, m: int = 6, beta: float = 1.0, lam: float = 1e-8, tol: float = 1e-4, max_iter: int = 50,
                 divergence_factor: float = 1e4):
        self.m = check_int(m, "m", minimum=1)
        self.beta = float(check_probability(beta, "beta", open_left=True))
        self.lam = float(check_nonnegative(lam, "lam"))
        super().__init__(tol, max_iter, divergence_factor)

    def _init(self, x, g_rows):
        B, n = x.shape
        return {
            "X": x.new_zeros(B, self.m, n),
            "F": x.new_zeros(B, self.m, n),
            "G": x.new_zeros(B, self.m, n),
            "H": torch.zeros(B, self.m, self.m, dtype=torch.float64, device=x.device),
        }

    def _propose(self, st, x, gx, alive, k):
        X, F, G, H = st["X"], st["F"], st["G"], st["H"]
        if torch.is_grad_enabled() and x.requires_grad:  # unrolled: keep the autograd graph valid
            X, F, G, H = X.clone(), F.clone(), G.clone(), H.clone()
            st.update(X=X, F=F, G=G, H=H)
        slot = (k - 1) % self.m
        g_new = gx - x
        X[:, slot] = x
        F[:, slot] = gx
        G[:, slot] = g_new
        h = min(k, self.m)
        if h == 1:
            return x + self.beta * (gx - x)
        # Gram matrix H_ij = ⟨G_i, G_j⟩, updated by one new row/column per iteration
        row = torch.bmm(G[:, :h], g_new[:, :, None])[:, :, 0].double()
        H[:, slot, :h] = row
        H[:, :h, slot] = row
        Hh = H[:, :h, :h]
        scale = Hh.diagonal(dim1=1, dim2=2).amax(dim=1).clamp_min(1e-300)
        eye = torch.eye(h, dtype=H.dtype, device=H.device)
        A = Hh + (self.lam * scale + 1e-300)[:, None, None] * eye
        ones = torch.ones(A.shape[0], h, 1, dtype=A.dtype, device=A.device)
        w, info = torch.linalg.solve_ex(A, ones)
        w = w[:, :, 0]
        alpha = w / w.sum(dim=1, keepdim=True)
        bad = (info != 0) | ~torch.isfinite(alpha).all(dim=1)
        if bool(bad.any()):  # a failed solve falls back to the newest pair (plain damped Picard)
            alpha = torch.where(bad[:, None], torch.zeros_like(alpha), alpha)
            alpha[bad, slot] = 1.0
        alpha = alpha.to(x.dtype)[:, None, :]
        fa = torch.bmm(alpha, F[:, :h])[:, 0]
        if self.beta == 1.0:
            return fa
        xa = torch.bmm(alpha, X[:, :h])[:, 0]
        return xa + self.beta * (fa - xa)
