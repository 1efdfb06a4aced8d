"""Moved: the fixed-point solvers are core's root finders (:mod:`terrainlab.core.root_finders`).

``terrainlab.nn.Anderson is terrainlab.core.Anderson``; ``fixed_point`` is core's. The old names
``FixedPointSolver`` and ``FixedPointResult`` are deprecated aliases of
:class:`~terrainlab.core.root_finders.AbstractRootFinder` and
:class:`~terrainlab.core.root_finders.RootResult`.
"""

from __future__ import annotations

import warnings

from ..core.root_finders import (
    AbstractRootFinder,
    Anderson,
    Broyden,
    Newton,
    NewtonKrylov,
    Picard,
    RootResult,
    fixed_point,
)

__all__ = ["Anderson", "Broyden", "Newton", "NewtonKrylov", "Picard", "RootResult", "fixed_point"]

_DEPRECATED = {"FixedPointSolver": ("AbstractRootFinder", AbstractRootFinder),
               "FixedPointResult": ("RootResult", RootResult)}


def __getattr__(name):
    if name in _DEPRECATED:
        new, obj = _DEPRECATED[name]
        warnings.warn(f"terrainlab.nn.{name} is deprecated; use terrainlab.core.{new}", DeprecationWarning,
                      stacklevel=2)
        return obj
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
