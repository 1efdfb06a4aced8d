"""terrainlab.terrains — the book's analytic landscapes as batched torch functions, and their
critical points.

A :class:`Terrain` is L: R^d → R on batches ``(..., d)`` with a plotting box, a formula and known
minima; :func:`critical_points` solves ∇L = 0 from a grid (damped Newton, float64, batched) and
:func:`classify` names a point by its Hessian (min / max / saddle / degenerate).
:mod:`terrainlab.terrains.closed_form` holds losses as plain functions with their exact gradients
and Hessians (Rosenbrock, the 1-D double well), used by the optimizer tests and experiments.

Example:
    >>> from terrainlab.terrains import get, critical_points
    >>> cp = critical_points(get("double_well_2d"))
    >>> [(p.kind, tuple(round(v, 6) + 0.0 for v in p.location)) for p in cp]
    [('min', (-1.0, 0.0)), ('min', (1.0, 0.0)), ('saddle', (0.0, 0.0))]
"""

from .catalogue import (
    CATALOGUE,
    anisotropic_bowl,
    beale,
    bowl,
    bumpy_bowl,
    double_well_1d,
    double_well_2d,
    flat,
    get,
    himmelblau,
    quadratic,
    ring,
    rosenbrock,
    saddle,
    sharp,
)
from .critical import (
    KINDS,
    CriticalPoint,
    CriticalPoints,
    classify,
    classify_eigenvalues,
    critical_points,
)
from .terrain import Terrain, check_box

__all__ = [
    "Terrain",
    "check_box",
    "CATALOGUE",
    "get",
    "bowl",
    "anisotropic_bowl",
    "bumpy_bowl",
    "double_well_1d",
    "double_well_2d",
    "saddle",
    "rosenbrock",
    "sharp",
    "flat",
    "ring",
    "quadratic",
    "himmelblau",
    "beale",
    "KINDS",
    "CriticalPoint",
    "CriticalPoints",
    "classify",
    "classify_eigenvalues",
    "critical_points",
]
