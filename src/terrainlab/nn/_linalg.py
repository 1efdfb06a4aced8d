"""Moved to :mod:`terrainlab.core.linalg` (GMRES and the matrix-free Jacobian serve every world);
re-exported here for the ``nn`` modules that import them from this path."""

from ..core.linalg.gmres import KrylovResult, gmres
from ..core.linalg.jacobian import linearize

__all__ = ["KrylovResult", "gmres", "linearize"]
