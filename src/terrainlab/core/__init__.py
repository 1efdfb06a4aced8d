"""terrainlab.core — the one equation S_{t+1} = S_t + η·F(S_t, t) and its parts.

Fields (what pushes), schemes (how a step is taken), geometries (how it lands), stop rules (when
to stop), and :func:`rollout`, which runs them and returns a :class:`Trajectory`.
"""

from .controllers import AbstractController, ConstantStepSize, PIController
from .cycles import CycleResult, detect_cycle
from .fields import Field, MapField, as_field, as_map, gradient_field, linear_field, map_field
from .geometry import Euclidean, Simplex, project_simplex, simplex_tangent_basis
from .integrate import Solution, integrate
from .rollout import Trajectory, rollout
from .root_finders import (
    AbstractRootFinder,
    Anderson,
    Broyden,
    Newton,
    NewtonKrylov,
    Picard,
    RootResult,
)
from .schemes import (
    RK4,
    AbstractScheme,
    Bosh3,
    Dopri5,
    EmbeddedRK,
    Euler,
    EulerMaruyama,
    Heun,
    ImplicitEuler,
    Leapfrog,
    Midpoint,
    StepResult,
    SymplecticEuler,
)
from .status import STATUSES, Status
from .stop import CycleDetect, DivergenceBound, KLFreeze, StepTolerance, StopRule

__all__ = [
    "Field",
    "gradient_field",
    "linear_field",
    "as_map",
    "map_field",
    "MapField",
    "as_field",
    "Euclidean",
    "Simplex",
    "project_simplex",
    "simplex_tangent_basis",
    "rollout",
    "Trajectory",
    "integrate",
    "Solution",
    "AbstractController",
    "PIController",
    "ConstantStepSize",
    "EmbeddedRK",
    "Dopri5",
    "Bosh3",
    "STATUSES",
    "Status",
    "AbstractScheme",
    "StepResult",
    "Euler",
    "ImplicitEuler",
    "Heun",
    "Midpoint",
    "RK4",
    "SymplecticEuler",
    "Leapfrog",
    "EulerMaruyama",
    "AbstractRootFinder",
    "RootResult",
    "Newton",
    "NewtonKrylov",
    "Picard",
    "Anderson",
    "Broyden",
    "StopRule",
    "StepTolerance",
    "DivergenceBound",
    "KLFreeze",
    "CycleDetect",
    "detect_cycle",
    "CycleResult",
]
