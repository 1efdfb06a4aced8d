"""Limited-memory "good" Broyden on the root problem r(z) = g(z) − z = 0.

The inverse Jacobian of r is approximated by H = −I + Σ_{i ≤ m} u_i v_iᵀ, the step is
z⁺ = z − H·r(z), and each step adds the rank-one Sherman–Morrison correction

    v = Hᵀ·Δz,   u = (Δz − H·Δr) / (vᵀ·Δr).

References: Broyden, "A class of methods for solving nonlinear simultaneous equations" (Math.
Comp. 1965), in the inverse form used by Bai, Kolter & Koltun, "Deep Equilibrium Models"
(NeurIPS 2019).
"""

from __future__ import annotations

import torch

from ..validate import check_int, check_number
from .base import AbstractRootFinder

__all__ = ["Broyden"]


class Broyden(AbstractRootFinder):
    """Restarted limited-memory Broyden with memory ``m``.

    At most ``m`` pairs are kept: when the memory is full it restarts from H = −I, and a row whose
    residual grows above ``reset_factor``× its best is sent back to its best iterate with a fresh
    memory (a safeguard in place of a line search). Memory is 2·B·m·n numbers whatever the
    iteration count.
    """

    name = "broyden"

    def __init__(self, m: int = 16, reset_factor: float = 1e3, tol: float = 1e-4, max_iter: int = 50,
                 divergence_factor: float = 1e4):
        self.m = check_int(m, "m", minimum=1)
        self.reset_factor = float(check_number(reset_factor, "reset_factor", minimum=1, strict_min=True))
        super().__init__(tol, max_iter, divergence_factor)

    def _init(self, x, g_rows):
        B, n = x.shape
        return {
            "U": x.new_zeros(B, self.m, n),
            "V": x.new_zeros(B, self.m, n),
            "count": torch.zeros(B, dtype=torch.long, device=x.device),
            "prev": None,
            "best": None,
        }

    @staticmethod
    def _H(U, V, r):  # H r = −r + Σ u_i (v_i·r)
        return (V * r[:, None, :]).sum(dim=2)[:, :, None].mul(U).sum(dim=1) - r

    @staticmethod
    def _Ht(U, V, r):  # Hᵀ r = −r + Σ v_i (u_i·r)
        return (U * r[:, None, :]).sum(dim=2)[:, :, None].mul(V).sum(dim=1) - r

    def _propose(self, st, x, gx, alive, k):
        U, V, count = st["U"], st["V"], st["count"]
        if torch.is_grad_enabled() and x.requires_grad:  # unrolled: keep the autograd graph valid
            U, V = U.clone(), V.clone()
            st["U"], st["V"] = U, V
        r = gx - x
        rn = r.norm(dim=1)
        if st["best"] is None:
            st["best"] = (x, r, rn)
        bx, br, bn = st["best"]
        improved = rn < bn
        bx = torch.where(improved[:, None], x, bx)
        br = torch.where(improved[:, None], r, br)
        bn = torch.where(improved, rn, bn)
        st["best"] = (bx, br, bn)
        reset = ~torch.isfinite(rn) | (rn > self.reset_factor * bn)
        full = count >= self.m
        wipe = (reset | full)[:, None, None].to(x.dtype)
        if bool((reset | full).any()):
            U.mul_(1 - wipe)
            V.mul_(1 - wipe)
            count = torch.where(reset | full, torch.zeros_like(count), count)
        x = torch.where(reset[:, None], bx, x)
        r = torch.where(reset[:, None], br, r)
        prev = st["prev"]
        used = int(count.max()) + 1 if prev is not None else 0
        Uu, Vu = U[:, : max(used, 1)], V[:, : max(used, 1)]  # slots beyond every count are zero
        if prev is not None:
            x_old, r_old = prev
            dx, dr = x - x_old, r - r_old
            v = self._Ht(Uu, Vu, dx)
            denom = (v * dr).sum(dim=1)
            ok = alive & ~reset & torch.isfinite(denom) & (denom.abs() > 1e-30)
            u = (dx - self._H(Uu, Vu, dr)) / torch.where(ok, denom, torch.ones_like(denom))[:, None]
            slot = count.clamp(max=self.m - 1)
            okf = ok[:, None].to(x.dtype)
            idx = slot[:, None, None].expand(-1, 1, x.shape[1])
            U.scatter_(1, idx, (u * okf)[:, None, :] + U.gather(1, idx) * (1 - okf)[:, None, :])
            V.scatter_(1, idx, (v * okf)[:, None, :] + V.gather(1, idx) * (1 - okf)[:, None, :])
            count = count + ok.long()
        st["count"] = count
        st["prev"] = (x, r)
        used = min(int(count.max()), self.m)
        return x - self._H(U[:, :used], V[:, :used], r) if used else x + r
