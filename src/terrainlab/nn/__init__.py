"""terrainlab.nn — the hidden-state world: layers as integrators and equilibria.

- :class:`ODEStack`: a residual network as an integrator of h' = f(h, t) with a core scheme
  (ResNet = explicit Euler, η = 1); re-run the same weights with other schemes and step counts.
- :class:`NeuralODE`: y(t1) of y' = f(y, t) by the core integrator (adaptive Dormand–Prince /
  Bogacki–Shampine with a PI controller, or a fixed grid), direct or adjoint gradients, NFE reported.
- :class:`ImplicitEulerStep`: y = h + η f(y) solved by fixed point or Newton–Krylov, implicit
  gradients.
- :class:`DEQ`: z* = f(z*, x) by core's root finders (Picard / Anderson / Broyden / Newton), per-sample convergence,
  implicit / JFB / unrolled gradients, never raising on divergence.
- Utilities: :func:`spectral_norm`, :func:`lipschitz_upper_bound`, :func:`jacobian_spectrum`,
  :func:`jacobian_regularizer`, :func:`fixed_point`, :func:`gmres`.
- Attention geometry: :func:`attention` (output and weights), :func:`bilinear_form` (M = W_Q W_Kᵀ per head),
  :func:`metric_report`, :func:`attention_entropy`, :func:`saturation_curve`.
- LoRA: :class:`LoRALinear` (W + (α/r)·B A), :func:`inject_lora`, :func:`merge_lora`, :func:`delta_w_spectrum`,
  :func:`principal_angles`.
"""

from ..core.controllers import PIController
from ..core.linalg.gmres import KrylovResult, gmres
from ..core.schemes import Bosh3, Dopri5, EmbeddedRK
from .adaptive import odeint_adaptive, odeint_fixed
from .adjoint import ODEBackwardStats
from .attention import (
    AttentionResult,
    MetricReport,
    SaturationCurve,
    attention,
    attention_entropy,
    bilinear_form,
    metric_report,
    saturation_curve,
)
from .deq import DEQ, DEQInfo
from .implicit import (
    BackwardStats,
    ImplicitEulerStep,
    ImplicitStepResult,
    attach_implicit_grad,
    make_adjoint_solver,
)
from .lipschitz import (
    SpectralEstimate,
    SpectralNorm,
    jacobian_regularizer,
    jacobian_spectrum,
    lipschitz_upper_bound,
    spectral_norm,
)
from .lora import (
    DeltaSpectrum,
    LoRALinear,
    delta_w_spectrum,
    inject_lora,
    merge_lora,
    principal_angles,
)
from .neural_ode import NeuralODE, ODESolution
from .odestack import ODEStack, StackResult
from .solvers import Anderson, Broyden, Newton, NewtonKrylov, Picard, RootResult, fixed_point

__all__ = [
    "ODEStack",
    "StackResult",
    "NeuralODE",
    "ODESolution",
    "ODEBackwardStats",
    "EmbeddedRK",
    "Dopri5",
    "Bosh3",
    "PIController",
    "odeint_adaptive",
    "odeint_fixed",
    "ImplicitEulerStep",
    "ImplicitStepResult",
    "BackwardStats",
    "attach_implicit_grad",
    "make_adjoint_solver",
    "DEQ",
    "DEQInfo",
    "RootResult",
    "Picard",
    "Newton",
    "NewtonKrylov",
    "Anderson",
    "Broyden",
    "fixed_point",
    "SpectralNorm",
    "spectral_norm",
    "lipschitz_upper_bound",
    "SpectralEstimate",
    "jacobian_spectrum",
    "jacobian_regularizer",
    "gmres",
    "KrylovResult",
    "attention",
    "AttentionResult",
    "bilinear_form",
    "metric_report",
    "MetricReport",
    "attention_entropy",
    "saturation_curve",
    "SaturationCurve",
    "LoRALinear",
    "inject_lora",
    "merge_lora",
    "DeltaSpectrum",
    "delta_w_spectrum",
    "principal_angles",
]


def __getattr__(name):  # deprecated aliases (FixedPointSolver, FixedPointResult) live in .solvers
    from . import solvers

    return getattr(solvers, name)
