"""Root finders for implicit schemes and equilibrium layers: find z with z = g(z), row by row.

One interface (:class:`AbstractRootFinder`), one result (:class:`RootResult`), one meaning of
``tol`` (a per-row relative residual; see :mod:`.base`). Five finders, one small file each:

==================  ==========================================================  ===============
``Picard(beta)``    z ← (1 − β)z + βg(z)                                        tol 1e-4
``Anderson(m, …)``  least-squares mixing of the last m iterates                 tol 1e-4
``Broyden(m, …)``   limited-memory inverse-Jacobian updates                     tol 1e-4
``Newton()``        dense (I − J)δ = z − g(z), J by ``jacrev`` per row            tol 1e-10
``NewtonKrylov()``  the same solved by GMRES with Jacobian-vector products      tol 1e-6
==================  ==========================================================  ===============

(the default ``tol`` of each is listed; ``max_iter`` defaults to 50.) :func:`fixed_point` solves
with any of them; :func:`attach_implicit_grad` differentiates through the root.
"""

from .anderson import Anderson
from .base import ROW_STATUSES, AbstractRootFinder, RootResult, relative_residual
from .broyden import Broyden
from .implicit_grad import BackwardStats, attach_implicit_grad, make_adjoint_solver
from .newton import Newton
from .newton_krylov import NewtonKrylov
from .picard import Picard
from .solve import ROOT_FINDERS, fixed_point, resolve_root_finder

__all__ = [
    "AbstractRootFinder",
    "RootResult",
    "ROW_STATUSES",
    "relative_residual",
    "Picard",
    "Anderson",
    "Broyden",
    "Newton",
    "NewtonKrylov",
    "ROOT_FINDERS",
    "resolve_root_finder",
    "fixed_point",
    "BackwardStats",
    "attach_implicit_grad",
    "make_adjoint_solver",
]
