"""terrainlab.landscape — slices through the parameter terrain of a real model.

Directions (:func:`random_direction` with filter normalisation, :func:`hessian_directions`,
:func:`pca_directions`, :func:`project`), vectorised slices (:func:`line`, :func:`plane`),
:func:`interpolate` with the loss barrier, hidden-unit permutations and weight matching
(:func:`permute_hidden`, :func:`weight_matching`, :mod:`.permutation`), and :func:`plot_plane` (contour + trajectory in the same
coordinates; :mod:`.plot`). Evaluation (:mod:`.slices`, :mod:`._evaluate`) and figures are separate
modules. Shares :class:`terrainlab.params.ParamSpec` with the curvature operators, so a Hessian
eigenvector is directly a slice direction.
"""

from .directions import PCADirections, hessian_directions, pca_directions, project, random_direction
from .permutation import hidden_widths, permute_hidden, weight_matching
from .plot import plot_plane
from .slices import (
    InterpolationResult,
    LineResult,
    PlaneResult,
    interpolate,
    line,
    plane,
)

__all__ = [
    "random_direction",
    "hessian_directions",
    "pca_directions",
    "project",
    "PCADirections",
    "line",
    "plane",
    "interpolate",
    "plot_plane",
    "LineResult",
    "PlaneResult",
    "InterpolationResult",
    "permute_hidden",
    "weight_matching",
    "hidden_widths",
]
