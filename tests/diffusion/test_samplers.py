"""Samplers on the exact oracle: weight recovery, convergence order, dtype/device, statuses."""

import math

import pytest
import torch

from terrainlab.core import RK4, Euler, Heun
from terrainlab.diffusion import (
    GaussianMixture,
    VESchedule,
    VPSchedule,
    mixture_weights,
    sample_annealed_langevin,
    sample_pc,
    sample_pf_ode,
    sample_reverse_sde,
)

# Three well-separated components: a sample's MAP component is its true one (overlap < 1e-6),
# so recovered fractions are binomial: with n = 20 000 the s.d. of a fraction is ≤ 0.0036 and
# ±3 % is ≥ 8 s.d. — a sampler that gets the weights wrong cannot pass by luck.
GM = GaussianMixture.isotropic([[-2.0, 0.0], [2.0, 0.0], [0.0, 2.5]], std=0.3, weights=[0.5, 0.3, 0.2])
N = 20_000


def _samplers(score, sched, g):
    return {
        "reverse_sde_em": lambda x: sample_reverse_sde(score, x, sched, 250, generator=g),
        "pf_ode_euler": lambda x: sample_pf_ode(score, x, sched, 100, scheme=Euler()),
        "pf_ode_heun": lambda x: sample_pf_ode(score, x, sched, 30, scheme=Heun()),
        "pf_ode_rk4": lambda x: sample_pf_ode(score, x, sched, 15, scheme=RK4()),
        "annealed_langevin": lambda x: sample_annealed_langevin(score, x, sched, 100, 3, generator=g),
        "predictor_corrector": lambda x: sample_pc(score, x, sched, 120, corrector_steps=1, generator=g),
    }


@pytest.mark.parametrize("name", ["reverse_sde_em", "pf_ode_euler", "pf_ode_heun", "pf_ode_rk4",
                                  "annealed_langevin", "predictor_corrector"])
def test_every_sampler_recovers_mixture_weights(name):
    sched = VPSchedule()
    g = torch.Generator().manual_seed(7)
    xT = sched.prior_sample(N, 2, generator=g)
    res = _samplers(GM.score_fn(sched), sched, g)[name](xT)
    assert res.status == "max_steps" and res.method == name
    assert res.samples.shape == (N, 2) and res.n_score_evals > 0
    w = mixture_weights(res.samples, GM)
    assert float(w.sum()) == pytest.approx(1.0)
    assert float((w - GM.weights).abs().max()) < 0.03, (name, w.tolist())
    # the samples land on the clusters (not just in the right half-planes)
    d = torch.cdist(res.samples.double(), GM.means).min(1).values
    assert float((d < 4 * 0.3).double().mean()) > 0.97


def test_starting_from_data_noise_is_not_enough():
    # Control: the same weight check fails when the "sampler" ignores the score.
    sched = VPSchedule()
    g = torch.Generator().manual_seed(0)
    xT = sched.prior_sample(N, 2, generator=g)
    res = sample_pf_ode(lambda x, t: -x, xT, sched, 20)      # the prior's score, not the data's
    assert float((mixture_weights(res.samples, GM) - GM.weights).abs().max()) > 0.03


def test_ve_schedule_samplers():
    sched = VESchedule(0.01, 10.0)
    g = torch.Generator().manual_seed(3)
    xT = sched.prior_sample(4000, 2, generator=g)
    for res in (sample_pf_ode(GM.score_fn(sched), xT, sched, 40, scheme=Heun(), warp="karras"),
                sample_reverse_sde(GM.score_fn(sched), xT, sched, 300, generator=g, warp="log_snr")):
        assert float((mixture_weights(res.samples, GM) - GM.weights).abs().max()) < 0.04


def _order(scheme, Ns, sched, score, xT, ref):
    errs = []
    for n in Ns:
        x = sample_pf_ode(score, xT, sched, n, scheme=scheme, t_eps=1e-2).samples
        errs.append(float((x - ref).norm(dim=1).max()))
    return [math.log(errs[i] / errs[i + 1]) / math.log(Ns[i + 1] / Ns[i]) for i in range(len(Ns) - 1)]


def test_pf_ode_measured_convergence_order():
    sched = VPSchedule()
    gm = GaussianMixture.isotropic([[-2.0, 0.0], [2.0, 0.0], [0.0, 2.0]], std=0.5, weights=[0.5, 0.3, 0.2])
    score = gm.score_fn(sched)
    xT = sched.prior_sample(64, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ref = sample_pf_ode(score, xT, sched, 1000, scheme=RK4(), t_eps=1e-2).samples
    e = _order(Euler(), [100, 200, 400], sched, score, xT, ref)
    h = _order(Heun(), [50, 100, 200], sched, score, xT, ref)
    r = _order(RK4(), [25, 50, 100], sched, score, xT, ref)
    assert all(abs(s - 1) < 0.25 for s in e), e
    assert all(abs(s - 2) < 0.25 for s in h), h
    assert all(abs(s - 4) < 0.4 for s in r), r


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_and_device_follow_x_T(dtype):
    sched = VPSchedule()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for dev in devices:
        g = torch.Generator(device=dev).manual_seed(0)
        xT = sched.prior_sample(256, 2, generator=g, dtype=dtype, device=dev)
        assert xT.dtype == dtype and xT.device.type == dev
        score = GM.score_fn(sched)
        for res in (
            sample_reverse_sde(score, xT, sched, 20, generator=g, record="all"),
            sample_pf_ode(score, xT, sched, 10, scheme=Heun(), record=5, denoise=True),
            sample_annealed_langevin(score, xT, sched, 5, 2, generator=g, record="all"),
            sample_pc(score, xT, sched, 5, generator=g, record="all"),
        ):
            assert res.samples.dtype == dtype and res.samples.device.type == dev
            assert res.trajectory.dtype == dtype and res.trajectory.shape[1:] == (256, 2)
            assert res.times.shape[0] == res.trajectory.shape[0]
            assert bool(torch.isfinite(res.samples).all())


def test_trajectories_evals_and_times():
    sched = VPSchedule()
    xT = sched.prior_sample(100, 2, generator=torch.Generator().manual_seed(0))
    score = GM.score_fn(sched)
    res = sample_pf_ode(score, xT, sched, 12, scheme=RK4(), record="all", t_eps=1e-2)
    assert res.n_score_evals == 48
    assert res.trajectory.shape == (13, 100, 2)
    assert torch.equal(res.trajectory[0], xT)
    assert res.times[0] == pytest.approx(1.0) and res.times[-1] == pytest.approx(1e-2)
    assert bool((res.times[1:] < res.times[:-1]).all())
    res = sample_pf_ode(score, xT, sched, 12, record="last", denoise=True)
    assert res.n_score_evals == 13 and res.trajectory.shape == (1, 100, 2)
    res = sample_pc(score, xT, sched, 10, corrector_steps=2)
    assert res.n_score_evals == 30
    res = sample_annealed_langevin(score, xT, sched, 7, 4)
    assert res.n_score_evals == 28


def test_reproducible_with_generator_and_nonfinite_status():
    sched = VPSchedule()
    xT = sched.prior_sample(50, 2, generator=torch.Generator().manual_seed(0))
    a = sample_reverse_sde(GM.score_fn(sched), xT, sched, 10, generator=torch.Generator().manual_seed(1))
    b = sample_reverse_sde(GM.score_fn(sched), xT, sched, 10, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a.samples, b.samples)
    bad = sample_pf_ode(lambda x, t: x * float("nan"), xT, sched, 5)
    assert bad.status == "nonfinite"
    bad = sample_pc(lambda x, t: x * float("nan"), xT, sched, 3)
    assert bad.status == "nonfinite"


def test_sampler_bad_arguments():
    sched = VPSchedule()
    xT = torch.zeros(4, 2)
    with pytest.raises(ValueError, match="steps"):
        sample_pf_ode(GM.score_fn(sched), xT, sched, 0)
    with pytest.raises(ValueError, match="score"):
        sample_reverse_sde(None, xT, sched, 3)
    with pytest.raises(ValueError, match="scheme"):
        sample_pf_ode(GM.score_fn(sched), xT, sched, 3, scheme="heun")
    with pytest.raises(ValueError, match="x_T"):
        sample_pf_ode(GM.score_fn(sched), [[0.0, 0.0]], sched, 3)
    with pytest.raises(ValueError, match="schedule"):
        sample_pc(GM.score_fn(sched), xT, "vp", 3)
