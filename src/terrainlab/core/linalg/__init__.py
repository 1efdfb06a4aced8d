"""Krylov linear algebra shared by every world, one small file per method.

Each method works on a *matrix-free* operator (a callable v ↦ Av on tensors) so the same code
serves a Hessian-vector product, the Jacobian of a DEQ map or the Newton matrix of an implicit step.
"""

from .cg import CGResult as CGResult
from .cg import cg as cg
from .gmres import KrylovResult as KrylovResult
from .gmres import gmres as gmres
from .jacobian import linearize as linearize
from .lanczos import LanczosResult as LanczosResult
from .lanczos import lanczos as lanczos
from .lanczos import lanczos_block as lanczos_block
from .lanczos import orthogonalize as orthogonalize
