"""Bad arguments to the diffusion world: a ValueError naming the argument the caller wrote.

Each case was a raw crash, a message naming an internal argument, or a silent wrong answer before
(issue 16's fuzz of bad-input calls); statuses are core Status members.
"""

from __future__ import annotations

import pytest
import torch

from terrainlab.core import Status
from terrainlab.diffusion import (
    GaussianMixture,
    VESchedule,
    VPSchedule,
    q_sample,
    sample_annealed_langevin,
    sample_pc,
    sample_pf_ode,
    sample_reverse_sde,
    sliced_wasserstein,
)

GM = GaussianMixture.isotropic([[-1.0, 0.0], [1.0, 0.0]], std=0.3)
X = torch.randn(20, 2, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("p", [0, -1, 0.5, float("nan"), True])
def test_sliced_wasserstein_p_below_one_names_p(p):
    with pytest.raises(ValueError, match=r"^p must"):
        sliced_wasserstein(X, X + 1, n_projections=8, p=p)


@pytest.mark.parametrize("sampler", [sample_pf_ode, sample_reverse_sde, sample_pc])
@pytest.mark.parametrize("t_eps", [0.0, -1e-3, 1.5, float("nan")])
def test_sampler_t_eps_is_named_t_eps(sampler, t_eps):
    sched = VPSchedule()
    with pytest.raises(ValueError, match=r"^t_eps must"):
        sampler(GM.score_fn(sched), X, sched, 3, t_eps=t_eps)


def test_sampler_warp_and_t_hi_are_named_as_the_caller_wrote_them():
    sched = VPSchedule()
    for sampler in (sample_pf_ode, sample_reverse_sde, sample_pc):
        with pytest.raises(ValueError, match=r"^warp must be one of 'uniform', 'karras', 'log_snr', got 'foo'"):
            sampler(GM.score_fn(sched), X, sched, 3, warp="foo")
        with pytest.raises(ValueError, match=r"^t_hi must"):
            sampler(GM.score_fn(sched), X, sched, 3, t_eps=0.5, t_hi=0.1)
    with pytest.raises(ValueError, match=r"^warp must"):
        sample_annealed_langevin(GM.score_fn(sched), X, sched, 3, warp="foo")


@pytest.mark.parametrize("t", [float("nan"), 2.0, -0.1, float("inf")])
def test_q_sample_time_outside_the_schedule_names_t(t):
    with pytest.raises(ValueError, match=r"^t must"):
        q_sample(X, t, VPSchedule())
    with pytest.raises(ValueError, match=r"^t must"):
        q_sample(X, torch.full((X.shape[0],), t), VPSchedule())


def test_q_sample_accepts_the_whole_range():
    for sched in (VPSchedule(), VPSchedule("cosine"), VESchedule()):
        for t in (0.0, sched.t_max, torch.linspace(0, sched.t_max, X.shape[0])):
            xt, _ = q_sample(X, t, sched)
            assert bool(torch.isfinite(xt).all())


@pytest.mark.parametrize("std", [-1.0, 0.0, float("nan")])
def test_isotropic_mixture_std_must_be_positive(std):
    with pytest.raises(ValueError, match=r"^std must"):
        GaussianMixture.isotropic([[0.0, 0.0]], std=std)


def test_statuses_are_core_status_members():
    sched = VPSchedule()
    ok = sample_pf_ode(GM.score_fn(sched), X, sched, 3)
    bad = sample_reverse_sde(lambda x, t: x * float("nan"), X, sched, 3)
    assert ok.status is Status.MAX_STEPS and bad.status is Status.NONFINITE
