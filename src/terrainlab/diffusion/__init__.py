"""terrainlab.diffusion — sampling as motion along the score field (the data world).

Schedules (VP/DDPM and VE), the forward chain and SDE, the reverse SDE and probability-flow ODE
as core fields, the exact Gaussian-mixture oracle, a small score network with denoising score
matching, samplers that are rollouts of terrainlab.core, and metrics (MMD, sliced Wasserstein,
mixture weights, score error, coupling cost against optimal transport).

Example:
    >>> import torch
    >>> from terrainlab.core import Heun
    >>> from terrainlab.diffusion import VPSchedule, GaussianMixture, sample_pf_ode, weight_error
    >>> sched = VPSchedule()
    >>> gm = GaussianMixture.isotropic([[-2., 0.], [2., 0.], [0., 2.]], std=0.3, weights=[.5, .3, .2])
    >>> xT = sched.prior_sample(5000, 2, generator=torch.Generator().manual_seed(0))
    >>> res = sample_pf_ode(gm.score_fn(sched), xT, sched, steps=100, scheme=Heun())
    >>> weight_error(res.samples, gm) < 0.03
    True
"""

from .data import noisy_ring, two_moons
from .metrics import (
    coupling_cost,
    median_bandwidth,
    mixture_weights,
    mmd_rbf,
    ot_cost,
    ot_pairing,
    score_error,
    score_norm_profile,
    sliced_wasserstein,
    weight_error,
)
from .models import (
    NetworkScore,
    ScoreMLP,
    TimeEmbedding,
    TrainResult,
    as_score,
    dsm_loss,
    eps_to_score,
    score_to_eps,
    score_to_x0,
    train_dsm,
    v_to_score,
    x0_to_score,
)
from .oracle import GaussianMixture, gmm_log_density, gmm_posterior, gmm_score
from .processes import (
    ForwardField,
    ReverseField,
    TimeWarp,
    forward_chain,
    forward_sde,
    forward_sde_field,
    pf_ode_field,
    q_sample,
    q_sample_discrete,
    reverse_sde_field,
)
from .samplers import (
    SampleResult,
    sample_annealed_langevin,
    sample_pc,
    sample_pf_ode,
    sample_reverse_sde,
)
from .schedules import Schedule, VESchedule, VPSchedule

__all__ = [
    "Schedule", "VPSchedule", "VESchedule",
    "TimeWarp", "ForwardField", "ReverseField", "forward_sde_field", "reverse_sde_field",
    "pf_ode_field", "q_sample", "q_sample_discrete", "forward_chain", "forward_sde",
    "GaussianMixture", "gmm_score", "gmm_log_density", "gmm_posterior",
    "ScoreMLP", "TimeEmbedding", "NetworkScore", "as_score", "dsm_loss", "train_dsm", "TrainResult",
    "eps_to_score", "score_to_eps", "x0_to_score", "score_to_x0", "v_to_score",
    "SampleResult", "sample_reverse_sde", "sample_pf_ode", "sample_annealed_langevin", "sample_pc",
    "mmd_rbf", "sliced_wasserstein", "mixture_weights", "weight_error", "score_error",
    "coupling_cost", "ot_cost", "ot_pairing", "median_bandwidth", "score_norm_profile",
    "two_moons", "noisy_ring",
]
