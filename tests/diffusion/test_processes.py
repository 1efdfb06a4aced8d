"""Schedules, closed forms against iteration, and the exact mixture oracle."""

import math

import pytest
import torch

from terrainlab.diffusion import (
    GaussianMixture,
    TimeWarp,
    VESchedule,
    VPSchedule,
    forward_chain,
    forward_sde,
    gmm_log_density,
    gmm_score,
    q_sample,
    q_sample_discrete,
)


def test_linear_vp_continuous_matches_discrete():
    s = VPSchedule()
    assert s.beta(0.0) == pytest.approx(0.1) and s.beta(1.0) == pytest.approx(20.0)
    for i in (1, 10, 100, 500, 900, 1000):
        ab_disc = float(s.alphas_bar[i - 1])
        ab_cont = s.alpha_bar(i / s.T)
        assert abs(math.log(ab_disc) - math.log(ab_cont)) < 0.02 * max(1.0, -math.log(ab_cont))
    # tensor and float times agree
    t = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
    assert torch.allclose(s.alpha(t), torch.tensor([s.alpha(0.1), s.alpha(0.5), s.alpha(0.9)], dtype=torch.float64))
    assert torch.allclose(s.alpha(t) ** 2 + s.sigma(t) ** 2, torch.ones(3, dtype=torch.float64))


@pytest.mark.parametrize("sched", [VPSchedule(), VPSchedule("cosine"), VESchedule()])
def test_sigma_tilde_inverse_and_warps(sched):
    for t in (0.01, 0.2, 0.6, 0.95):
        assert sched.t_from_sigma_tilde(float(sched.sigma_tilde(t))) == pytest.approx(t, abs=1e-7)
    for kind in ("uniform", "karras", "log_snr"):
        w = TimeWarp(sched, t_lo=1e-2, kind=kind)
        assert w.t(0.0) == pytest.approx(sched.t_max) and w.t(1.0) == pytest.approx(1e-2)
        ts = w.times(20)
        assert all(a > b for a, b in zip(ts, ts[1:]))
        for u in (0.1, 0.5, 0.9):      # dt/du against a central difference
            h = 1e-5
            fd = (w.t(u + h) - w.t(u - h)) / (2 * h)
            assert w.dt_du(u) == pytest.approx(fd, rel=1e-3)


def test_cosine_and_ve_discrete_chains_consistent():
    s = VPSchedule("cosine")
    assert float(s.betas.max()) <= 0.999 and float(s.alphas_bar[-1]) < 1e-3
    v = VESchedule(0.01, 10.0)
    assert v.sigma(1.0) == pytest.approx(math.sqrt(100 - 1e-4))
    assert v.discrete_marginal(v.T)[1] == pytest.approx(v.sigma(1.0), rel=1e-9)


@pytest.mark.parametrize("sched", [VPSchedule(), VESchedule(0.01, 5.0, T=200)])
def test_iterated_chain_matches_closed_form(sched):
    n = 20000
    g = torch.Generator().manual_seed(1)
    x0 = torch.tensor([[1.5, -1.0]], dtype=torch.float64).expand(n, 2).contiguous()
    checkpoints = [sched.T // 10, sched.T // 2, sched.T]
    tr = forward_chain(x0, sched, generator=g, record=sched.T // 10)
    assert tr.n_steps == sched.T and tr.n_evals == sched.T
    for i in checkpoints:
        xi = tr.states[list(tr.steps).index(i)]
        a, sd = sched.discrete_marginal(i)
        mean_err = (xi.mean(0) - a * x0[0]).abs().max()
        assert mean_err < 5 * sd / math.sqrt(n) + 1e-12
        var = xi.var(0)
        assert ((var - sd**2).abs() / sd**2).max() < 5 * math.sqrt(2 / n)
        # and the closed-form sampler gives the same law (two-sample mean/var check)
        yi = q_sample_discrete(x0, i, sched, generator=g)
        assert (yi.mean(0) - xi.mean(0)).abs().max() < 7 * sd / math.sqrt(n)


def test_chain_detects_wrong_closed_form():
    # the same check must fail against a wrong marginal (e.g. using ᾱ instead of √ᾱ for the mean)
    s = VPSchedule()
    x0 = torch.full((20000, 1), 2.0, dtype=torch.float64)
    tr = forward_chain(x0, s, steps=100, generator=torch.Generator().manual_seed(0), record="last")
    ab = float(s.alphas_bar[99])
    assert abs(float(tr.final.mean()) - math.sqrt(ab) * 2) < 0.02
    assert abs(float(tr.final.mean()) - ab * 2) > 0.05


def test_forward_sde_em_matches_continuous_closed_form():
    s = VPSchedule()
    n = 40000
    x0 = torch.full((n, 1), 2.0, dtype=torch.float64)
    tr = forward_sde(x0, s, steps=400, t_end=0.4, generator=torch.Generator().manual_seed(2), record="last")
    xt, _ = q_sample(x0, 0.4, s, generator=torch.Generator().manual_seed(3))
    assert abs(float(tr.final.mean()) - 2 * s.alpha(0.4)) < 0.02
    assert abs(float(tr.final.std()) - s.sigma(0.4)) < 0.02
    assert abs(float(xt.std()) - s.sigma(0.4)) < 0.02
    # per-sample times
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)
    xt, eps = q_sample(torch.ones(2, 3, dtype=torch.float64), t, s)
    assert torch.allclose(xt[0], torch.ones(3, dtype=torch.float64))
    assert torch.allclose(xt[1], s.alpha(1.0) + s.sigma(1.0) * eps[1])


@pytest.mark.parametrize("sched", [VPSchedule(), VESchedule(0.01, 10.0)])
def test_gmm_score_is_gradient_of_log_density(sched):
    gm = GaussianMixture(
        means=[[-1.0, 0.0], [1.5, 1.0]],
        covs=[[[0.3, 0.1], [0.1, 0.2]], [[0.1, 0.0], [0.0, 0.4]]],
        weights=[0.4, 0.6],
    )
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 2, generator=g, dtype=torch.float64) * 2
    for t in (0.0, 0.05, 0.4, 1.0):
        xx = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(gm.log_prob(xx, t, sched).sum(), xx)
        assert torch.allclose(gm.score(x, t, sched), grad, atol=1e-10)
    # per-sample time tensor path agrees with scalar calls
    ts = torch.rand(64, generator=g, dtype=torch.float64)
    per = gmm_score(x, ts, gm.means, gm.covs, gm.weights, sched)
    one = torch.stack([gm.score(x[i : i + 1], float(ts[i]), sched)[0] for i in range(64)])
    assert torch.allclose(per, one, atol=1e-10)
    lp = gmm_log_density(x, ts, gm.means, gm.covs, gm.weights, sched)
    assert lp.shape == (64,)


def test_gmm_score_closed_forms():
    s = VPSchedule()
    m = torch.tensor([[1.0, -2.0]], dtype=torch.float64)
    x = torch.randn(10, 2, dtype=torch.float64)
    # single Gaussian N(m, c I) at time t: score = −(x − α m)/(α² c + σ²)
    for t in (0.0, 0.3):
        a, sg = s.alpha(t), s.sigma(t)
        want = -(x - a * m) / (a * a * 0.5 + sg * sg)
        got = gmm_score(x, t, m, torch.tensor([0.5]), torch.ones(1), s)
        assert torch.allclose(got, want)
    # at t_max the score is ≈ −x (the prior's)
    got = gmm_score(x, 1.0, m, torch.tensor([0.5]), torch.ones(1), s)
    assert torch.allclose(got, -x, atol=0.03)  # α(1)·m ≈ 0.015


def test_bad_arguments_raise_value_error():
    with pytest.raises(ValueError, match="schedule"):
        VPSchedule("quadratic")
    with pytest.raises(ValueError, match="T"):
        VPSchedule(T=1)
    with pytest.raises(ValueError, match="sigma_min"):
        VESchedule(10.0, 1.0)
    with pytest.raises(ValueError, match="weights"):
        gmm_score(torch.zeros(3, 2), 0.1, torch.zeros(2, 2), torch.ones(2), torch.tensor([0.5, 0.6]), VPSchedule())
    with pytest.raises(ValueError, match="means"):
        gmm_score(torch.zeros(3, 2), 0.1, torch.zeros(2, 3), torch.ones(2), torch.tensor([0.5, 0.5]), VPSchedule())
    with pytest.raises(ValueError, match="t_lo"):
        TimeWarp(VPSchedule(), t_lo=0.0)
    with pytest.raises(ValueError, match="kind"):
        TimeWarp(VPSchedule(), kind="cosine")
    with pytest.raises(ValueError, match="steps"):
        forward_chain(torch.zeros(2, 2), VPSchedule(), steps=2000)
    with pytest.raises(ValueError, match="covs"):
        GaussianMixture([[0.0, 0.0]], [[[1.0, 0.0], [0.0, -1.0]]], [1.0])
