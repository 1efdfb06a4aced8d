"""Jacobian-free Newton–Krylov on r(z) = z − g(z) = 0:

    solve (I − J_g(z_k)) δ = z_k − g(z_k) by batched GMRES,   z_{k+1} = z_k − δ,

where GMRES only needs products J_g v, obtained from one reverse-mode graph per Newton iteration
(:func:`~terrainlab.core.linalg.linearize`). J is never formed, so rows may be large (a hidden
state, an image); inexact inner solves (``krylov_tol``) keep the outer convergence superlinear
(Knoll & Keyes, "Jacobian-free Newton–Krylov methods: a survey of approaches and applications",
J. Comput. Phys. 2004; Dembo, Eisenstat & Steihaug 1982). Converges on stiff maps where Picard
diverges (Lip(g) ≫ 1) as long as I − J_g is non-singular.
"""

from __future__ import annotations

import torch

from ..linalg.gmres import gmres
from ..linalg.jacobian import linearize
from ..validate import check_int, check_positive
from .base import AbstractRootFinder

__all__ = ["NewtonKrylov"]


class NewtonKrylov(AbstractRootFinder):
    """Newton with GMRES inner solves of at most ``krylov_dim`` products to relative ``krylov_tol``.

    Rows that have converged are held fixed (their Krylov solve would cost products for nothing).
    ``n_evals`` counts one evaluation for each linearisation and one per Jacobian-vector product.

    Example:
        >>> import torch
        >>> r = NewtonKrylov(tol=1e-12).solve(lambda z: 1.0 - 50.0 * z, torch.zeros(3, 4, dtype=torch.float64))
        >>> r.status, round(float(r.z[0, 0]), 10)
        ('converged', 0.0196078431)
    """

    name = "newton_krylov"
    hold_converged = True

    def __init__(self, tol: float = 1e-6, max_iter: int = 50, krylov_dim: int = 30, krylov_tol: float = 1e-4,
                 divergence_factor: float = 1e4):
        self.krylov_dim = check_int(krylov_dim, "krylov_dim", minimum=1)
        self.krylov_tol = float(check_positive(krylov_tol, "krylov_tol"))
        super().__init__(tol, max_iter, divergence_factor)

    def _init(self, x, g_rows):
        return {"g": g_rows}

    def _propose(self, st, x, gx, active, k):
        _, jvp, _ = linearize(st["g"], x)
        G = x - gx
        kr = gmres(lambda v: v - jvp(v), torch.where(active[:, None], G, torch.zeros_like(G)),
                   tol=self.krylov_tol, max_iter=self.krylov_dim)
        st["evals"] += 1 + kr.iterations
        return x - torch.where(active[:, None], kr.x, torch.zeros_like(kr.x))
