"""terrainlab.dynamics — fixed points, stability classes, basins, bifurcations, Lyapunov exponents,
cycles, Langevin escape and Lyapunov-function checks, for any map or field terrainlab can express
(closed forms, gradient-descent maps, belief fields on the simplex, RNN cells, DEQ layers).
"""

from ..core.cycles import CycleResult, detect_cycle
from ._util import simplex_tangent_basis
from .basins import (
    CYCLE,
    DIVERGED,
    NONE,
    BasinResult,
    basin_map,
    dirichlet_starts,
    gaussian_ball_starts,
    grid_starts,
    plot_basins,
)
from .bifurcation import (
    BifurcationScan,
    ContinuationResult,
    Fold,
    OrbitDiagram,
    bifurcation_scan,
    continuation,
    orbit_diagram,
    period_doubling_points,
)
from .classify import classify_flow, classify_map, euler_flip_eta, euler_flip_etas, euler_map_eigs
from .fixed_points import FixedPointResult, find_fixed_points
from .jacobian import jacobian
from .langevin import (
    ArrheniusFit,
    EscapeResult,
    KramersRate,
    arrhenius_fit,
    escape_times,
    eyring_kramers_rate,
    langevin_rollout,
    mfpt_1d,
)
from .lyapunov import (
    LyapunovResult,
    OrbitClassification,
    classify_orbit,
    largest_lyapunov,
    lyapunov_spectrum,
)
from .lyapunov_function import LyapunovCheck, lyapunov_check

__all__ = [
    "jacobian",
    "simplex_tangent_basis",
    "classify_flow",
    "classify_map",
    "euler_flip_eta",
    "euler_flip_etas",
    "euler_map_eigs",
    "find_fixed_points",
    "FixedPointResult",
    "basin_map",
    "BasinResult",
    "plot_basins",
    "grid_starts",
    "dirichlet_starts",
    "gaussian_ball_starts",
    "NONE",
    "DIVERGED",
    "CYCLE",
    "bifurcation_scan",
    "BifurcationScan",
    "continuation",
    "ContinuationResult",
    "Fold",
    "orbit_diagram",
    "OrbitDiagram",
    "period_doubling_points",
    "lyapunov_spectrum",
    "largest_lyapunov",
    "LyapunovResult",
    "classify_orbit",
    "OrbitClassification",
    "detect_cycle",
    "CycleResult",
    "langevin_rollout",
    "escape_times",
    "EscapeResult",
    "arrhenius_fit",
    "ArrheniusFit",
    "eyring_kramers_rate",
    "KramersRate",
    "mfpt_1d",
    "lyapunov_check",
    "LyapunovCheck",
]
