"""Newton's method with a dense Jacobian per row, on r(z) = z − g(z) = 0:

    (I − J_g(z_k)) δ = z_k − g(z_k),   z_{k+1} = z_k − δ,

with J_g the (n × n) Jacobian of each row, built from n vector–Jacobian products of the whole batch
(``torch.func.vjp`` under ``vmap``; rows are independent, so cotangent e_j in every row gives row j
of every row's Jacobian at once, and g may carry per-row data such as an implicit step's S).
Quadratic convergence near a root with non-singular I − J_g (Kantorovich 1948; Deuflhard, *Newton
Methods for Nonlinear Problems*, 2011) at n reverse passes per iteration: the finder for small row
dimension (a proximal-point or implicit-Euler step of a low-dimensional field). For large rows use
:class:`~terrainlab.core.root_finders.NewtonKrylov`, which never forms J.
"""

from __future__ import annotations

import torch
from torch.func import vjp, vmap

from .base import AbstractRootFinder

__all__ = ["Newton"]


class Newton(AbstractRootFinder):
    """Dense Newton on z − g(z) = 0. ``g`` must be ``torch.func``-transformable (no in-place ops on
    its input, no data-dependent Python control flow). A row whose Newton matrix is singular keeps
    its iterate (and ends ``max_steps`` unless g alone takes it to tol).

    Example:
        >>> import torch
        >>> r = Newton(tol=1e-14).solve(lambda z: z - (z**3 - 2.0), torch.full((1, 1), 1.5, dtype=torch.float64))
        >>> r.status, round(float(r.z), 12), int(r.iterations[0])
        ('converged', 1.259921049895, 6)
    """

    name = "newton"

    def __init__(self, tol: float = 1e-10, max_iter: int = 50, divergence_factor: float = 1e4):
        super().__init__(tol, max_iter, divergence_factor)

    def _init(self, x, g_rows):
        n = x.shape[1]
        eye = torch.eye(n, dtype=x.dtype, device=x.device)
        return {"g": g_rows, "eye": eye, "E": eye[:, None, :].expand(n, x.shape[0], n)}

    def _propose(self, st, x, gx, alive, k):
        _, pullback = vjp(st["g"], x)
        J = vmap(pullback)(st["E"])[0].transpose(0, 1)  # (B, n, n): J[b, j] = row j of row b's Jacobian
        st["evals"] += 1 + x.shape[1]  # one forward and one reverse pass per Jacobian row
        delta, info = torch.linalg.solve_ex(st["eye"] - J, (x - gx).unsqueeze(-1))
        delta = delta.squeeze(-1)
        ok = (info == 0) & torch.isfinite(delta).all(dim=1)
        return torch.where(ok[:, None], x - delta, x)
