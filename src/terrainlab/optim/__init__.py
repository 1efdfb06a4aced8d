"""terrainlab.optim — optimizers written as integrators of a flow, with their stability limits.

Every optimizer here is a ``torch.optim.Optimizer`` for ordinary training loops *and* a core scheme
(``opt.as_scheme()``, or the scheme classes directly) that :func:`terrainlab.core.rollout` drives
on a gradient field. Each states the continuous-time flow it discretises (``flow``), its largest
stable step on a quadratic (``stability_limit(λ_max)``, scanned from the amplification R(z)) and,
where known, its modified loss (``modified_loss``).

=====================  =====================================================  ==================
optimizer              flow it discretises (scheme)                           torch.optim twin
=====================  =====================================================  ==================
GD                     θ' = −∇L (explicit Euler)                              SGD
HeavyBall              mθ'' + γθ' = −∇L                                       SGD(momentum)
Nesterov               same, gradient at the look-ahead; or Su–Boyd–Candès    SGD(nesterov=True)
Adam / AdamW           θ' = −P⁻¹m, P = diag(√v̂)+ε frozen per step            Adam / AdamW
ProximalPoint          θ' = −∇L (implicit Euler)                              –
ProximalGradient       θ' ∈ −∇L − ∂r (forward–backward; ISTA, elastic net)    –
MirrorDescent          d/dt ∇ψ(θ) = −∇L                                       –
NaturalGradient        θ' = −F⁻¹∇L (damped)                                   –
=====================  =====================================================  ==================

Example:
    >>> import torch
    >>> from terrainlab.optim import Adam
    >>> model = torch.nn.Linear(3, 1)
    >>> opt = Adam(model.parameters(), lr=1e-2)
    >>> loss = model(torch.randn(8, 3)).pow(2).mean(); loss.backward(); opt.step()
"""

from .mirror import BregmanGenerator, NegativeEntropy, SquaredEuclidean, mirror_step
from .natural import DenseFisher, DiagonalFisher, per_sample_jacobian
from .optimizers import (
    GD,
    Adam,
    AdamW,
    HeavyBall,
    HeavyBallPhysics,
    IntegratorOptimizer,
    MirrorDescent,
    NaturalGradient,
    Nesterov,
    ProximalGradient,
    ProximalPoint,
    heavy_ball_from_physics,
    heavy_ball_physics,
)
from .regularizers import (
    RidgeEquivalence,
    elastic_net_penalty,
    input_noise_ridge,
    l1_penalty,
    l2_penalty,
    one_sided_derivatives,
    prox_elastic_net,
    prox_l1,
)
from .schedules import (
    CosineLR,
    FunctionLR,
    StepDecayLR,
    TriangularLR,
    WarmupCosineLR,
    cosine,
    cyclical_triangular,
    step_decay,
    warmup_cosine,
)
from .schemes import (
    AdamScheme,
    GradientDescentScheme,
    HeavyBallScheme,
    MirrorDescentScheme,
    NaturalGradientScheme,
    NesterovScheme,
    OptimizerScheme,
    ProximalGradientScheme,
    ProximalPointScheme,
    nesterov_convex_beta,
)
from .stability import (
    QuadraticTrace,
    StabilityRegion,
    one_step_eta,
    plot_stability_regions,
    quadratic_trace,
    stability_region,
    stability_threshold,
)

__all__ = [
    "IntegratorOptimizer", "GD", "HeavyBall", "Nesterov", "Adam", "AdamW", "ProximalPoint",
    "ProximalGradient", "MirrorDescent", "NaturalGradient",
    "HeavyBallPhysics", "heavy_ball_physics", "heavy_ball_from_physics",
    "OptimizerScheme", "GradientDescentScheme", "HeavyBallScheme", "NesterovScheme", "AdamScheme",
    "ProximalGradientScheme", "ProximalPointScheme", "MirrorDescentScheme", "NaturalGradientScheme",
    "nesterov_convex_beta",
    "BregmanGenerator", "SquaredEuclidean", "NegativeEntropy", "mirror_step",
    "DenseFisher", "DiagonalFisher", "per_sample_jacobian",
    "step_decay", "cosine", "warmup_cosine", "cyclical_triangular",
    "FunctionLR", "StepDecayLR", "CosineLR", "WarmupCosineLR", "TriangularLR",
    "stability_threshold", "one_step_eta", "quadratic_trace", "QuadraticTrace", "stability_region",
    "StabilityRegion", "plot_stability_regions",
    "prox_l1", "prox_elastic_net", "l1_penalty", "l2_penalty", "elastic_net_penalty",
    "one_sided_derivatives", "input_noise_ridge", "RidgeEquivalence",
]
