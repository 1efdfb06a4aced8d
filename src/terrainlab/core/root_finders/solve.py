"""``fixed_point(g, z0, solver=...)``: one call for a batched root solve, and the name table."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..validate import check_callable
from .anderson import Anderson
from .base import AbstractRootFinder, RootResult
from .broyden import Broyden
from .newton import Newton
from .newton_krylov import NewtonKrylov
from .picard import Picard

__all__ = ["ROOT_FINDERS", "resolve_root_finder", "fixed_point"]

#: names accepted where a root finder object is expected
ROOT_FINDERS = {"picard": Picard, "anderson": Anderson, "broyden": Broyden, "newton": Newton,
                "newton_krylov": NewtonKrylov}


def resolve_root_finder(finder, name: str = "solver", allowed: tuple[str, ...] | None = None) -> AbstractRootFinder:
    """A root finder object from an object or one of the names in :data:`ROOT_FINDERS`
    (``allowed`` narrows the names); ``name`` is the caller's argument name for messages."""
    if isinstance(finder, AbstractRootFinder):
        return finder
    names = tuple(ROOT_FINDERS) if allowed is None else allowed
    if isinstance(finder, str) and finder in names:
        return ROOT_FINDERS[finder]()
    raise ValueError(f"{name} must be a root finder object such as Anderson() or one of {names}, got {finder!r}")


def fixed_point(
    g: Callable[[torch.Tensor], torch.Tensor],
    z0: torch.Tensor,
    *,
    solver: AbstractRootFinder | str = "anderson",
    tol: float | None = None,
    max_iter: int | None = None,
    divergence_factor: float | None = None,
) -> RootResult:
    """Solve z = g(z) for a batch of independent rows (leading dimension of ``z0``).

    ``tol``/``max_iter``/``divergence_factor``, when given, override the finder's own (see
    :mod:`terrainlab.core.root_finders.base` for what ``tol`` means). An empty batch is trivially
    converged.

    Example:
        >>> r = fixed_point(lambda z: torch.tanh(0.8 * z + 0.5), torch.full((1, 1), 2.5), tol=1e-10)
        >>> r.status, round(float(r.z), 4)
        ('converged', 0.8196)
    """
    check_callable(g, "g")
    finder = resolve_root_finder(solver, "solver")
    over = {k: v for k, v in (("tol", tol), ("max_iter", max_iter), ("divergence_factor", divergence_factor))
            if v is not None}
    return (finder.replace(**over) if over else finder).solve(g, z0)
