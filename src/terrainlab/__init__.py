"""terrainlab: learning, inference, reasoning and generation as motion along a vector field,

    S_{t+1} = S_t + η · F_θ(S_t, x),

in four worlds: parameters (training), hidden states (ResNets, DEQs), beliefs on the simplex
(reasoning) and data points (diffusion). The engine lives in :mod:`terrainlab.core`; each world and
instrument is a subpackage imported on demand.
"""

from .core import (
    RK4,
    CycleDetect,
    DivergenceBound,
    Euclidean,
    Euler,
    EulerMaruyama,
    Heun,
    ImplicitEuler,
    KLFreeze,
    Leapfrog,
    Midpoint,
    Simplex,
    StepTolerance,
    SymplecticEuler,
    Trajectory,
    gradient_field,
    project_simplex,
    rollout,
)

__version__ = "0.1.0"

#: Subpackages imported on first attribute access (``terrainlab.curvature`` after ``import terrainlab``),
#: so importing terrainlab stays cheap and each world loads only when used.
_SUBPACKAGES = (
    "core",
    "terrains",
    "dynamics",
    "curvature",
    "landscape",
    "optim",
    "nn",
    "belief",
    "diffusion",
    "seq",
    "classical",
    "aleph",
    "atlas",
    "plotting",
)


def __getattr__(name: str):
    if name in _SUBPACKAGES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "rollout",
    "Trajectory",
    "gradient_field",
    "project_simplex",
    "Euler",
    "ImplicitEuler",
    "Heun",
    "Midpoint",
    "RK4",
    "SymplecticEuler",
    "Leapfrog",
    "EulerMaruyama",
    "Euclidean",
    "Simplex",
    "StepTolerance",
    "DivergenceBound",
    "KLFreeze",
    "CycleDetect",
    "__version__",
]
