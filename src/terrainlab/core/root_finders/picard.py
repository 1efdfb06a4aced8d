"""Damped Picard (Banach) iteration z ← (1 − β)·z + β·g(z).

Converges linearly at rate Lip(g) when Lip(g) < 1 (Banach 1922); β < 1 tames oscillating maps
(eigenvalues of the Jacobian near −1). The cheapest finder: one evaluation of g per iteration and
no memory.
"""

from __future__ import annotations

from ..validate import check_probability
from .base import AbstractRootFinder

__all__ = ["Picard"]


class Picard(AbstractRootFinder):
    """z ← (1 − β)·z + β·g(z).

    Example:
        >>> import torch
        >>> r = Picard(tol=1e-10, max_iter=200).solve(lambda z: 0.5 * z + 1.0, torch.zeros(2, 3))
        >>> r.status, round(float(r.z[0, 0]), 6)
        ('converged', 2.0)
    """

    name = "picard"

    def __init__(self, beta: float = 1.0, tol: float = 1e-4, max_iter: int = 50, divergence_factor: float = 1e4):
        self.beta = float(check_probability(beta, "beta", open_left=True))
        super().__init__(tol, max_iter, divergence_factor)

    def _propose(self, st, x, gx, alive, k):
        if self.beta == 1.0:
            return gx
        return x + self.beta * (gx - x)
