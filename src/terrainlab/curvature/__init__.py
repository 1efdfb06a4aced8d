"""terrainlab.curvature — the shape of the parameter terrain of a real model.

Operators (matrix-free, on the flat vector of selected parameters): :class:`HessianOperator`,
:class:`GGNOperator`, :class:`FisherOperator` (true / empirical), :class:`DenseOperator`,
:class:`PreconditionedOperator`. Algorithms: :func:`eigs` (thick-restart Lanczos with certified
residuals), :func:`power_iteration`, :func:`trace` (Hutchinson, Hutch++, Krylov-aware Hutch++), :func:`spectral_density`
(SLQ). Every operator multiplies a block of vectors in one pass over the data (``matmat``).
The Lanczos recurrence is :func:`terrainlab.core.linalg.lanczos`; the model ↔ flat-vector code
(:class:`ParamSpec`, :class:`FunctionalModel`, :func:`module_state`) is :mod:`terrainlab.params`,
re-exported here. Training-time tracking: :class:`SharpnessTracker` and the stability thresholds of GD,
heavy-ball, Nesterov and Adam.
"""

from terrainlab.params import FunctionalModel, ParamSpec, module_state

from .algorithms import (
    DensityResult,
    EigResult,
    TraceResult,
    eigs,
    lanczos_tridiag,
    power_iteration,
    residual,
    spectral_density,
    trace,
)
from .operators import (
    CurvatureOperator,
    DenseOperator,
    FisherOperator,
    GGNOperator,
    HessianOperator,
    PreconditionedOperator,
)

__all__ = [
    "CurvatureOperator",
    "DenseOperator",
    "PreconditionedOperator",
    "HessianOperator",
    "GGNOperator",
    "FisherOperator",
    "ParamSpec",
    "FunctionalModel",
    "module_state",
    "eigs",
    "power_iteration",
    "residual",
    "trace",
    "spectral_density",
    "lanczos_tridiag",
    "EigResult",
    "TraceResult",
    "DensityResult",
]

from .tracker import (  # noqa: E402
    SharpnessRecord,
    SharpnessTracker,
    adam_preconditioner,
    plot_sharpness,
    stability_threshold,
)

__all__ += [
    "SharpnessTracker",
    "SharpnessRecord",
    "stability_threshold",
    "adam_preconditioner",
    "plot_sharpness",
]
