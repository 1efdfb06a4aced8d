import math

import pytest
import torch
from torch.func import grad

from terrainlab.belief import (
    CrossEntropyEnergy,
    GradientField,
    MapField,
    MultiWellEnergy,
    ReasoningField,
    energy,
    estimate_contraction,
    field_diagnostics,
    freeze_bound_book,
    freeze_error_bound,
    kl,
    kl_freeze,
    langevin_orbit,
    literal_def1_field,
    orbit,
    ruggedness,
    sample_dirichlet,
    simplex_fixed_points,
    stability_margin,
    steps_to_eps,
    with_reward,
    with_verifier,
)

D = torch.float64
PSTAR = torch.tensor([0.7, 0.2, 0.1], dtype=D)
ANCH = torch.tensor([[0.72, 0.14, 0.14], [0.12, 0.76, 0.12], [0.1, 0.1, 0.8]], dtype=D)


def test_literal_def1_field_is_identically_zero_but_a_real_field_is_not():
    g = torch.Generator().manual_seed(0)
    W = torch.randn(4, 4, generator=g, dtype=D) * 3
    b = torch.randn(4, generator=g, dtype=D)
    F = literal_def1_field(lambda p: torch.tanh(p @ W.T) * 2 + b)
    p = sample_dirichlet(50, 4, generator=g, dtype=D)
    assert float(F(p).abs().max()) < 1e-12
    # the same model's score toward a target is not zero (so the zero is not an artefact)
    score = grad(lambda x: torch.log_softmax(torch.tanh(x @ W.T) * 2 + b, -1)[..., 0].sum())(p)
    assert float(score.abs().max()) > 1e-2


def test_gradient_fields_are_tangent_and_have_the_right_zeros():
    E = lambda p: energy(p, PSTAR)  # noqa: E731
    p = sample_dirichlet(20, 3, dtype=D) * 0.9 + 0.1 / 3
    for natural in (False, True):
        F = GradientField(E, natural=natural)
        assert isinstance(F, ReasoningField)
        assert float(F(p).sum(-1).abs().max()) < 1e-12
        assert float(F(PSTAR[None]).abs().max()) < 1e-12
    # natural gradient of KL(p*||p) is p* − p
    assert torch.allclose(GradientField(E, natural=True)(p), PSTAR - p)
    # closed-form multi-well gradient equals autograd
    Mw = MultiWellEnergy(ANCH, [0.7, 0.2, 0.1], 0.1)
    assert torch.allclose(Mw.grad(p), grad(lambda x: Mw(x).sum())(p), atol=1e-10)
    M = MapField(lambda q: 0.5 * (q + PSTAR))
    assert torch.allclose(M(p), 0.5 * (PSTAR - p))
    with pytest.raises(ValueError, match="anchors"):
        MultiWellEnergy(torch.tensor([[0.5, 0.6]]))
    with pytest.raises(ValueError, match="energy"):
        GradientField(3)


def test_orbits_in_three_landings_converge_to_target():
    F = GradientField(lambda p: energy(p, PSTAR), natural=True)
    p0 = torch.full((4, 3), 1 / 3, dtype=D)
    for proj in ("euclid", "mirror", "logit"):
        tr = orbit(F, p0, 0.5, 400, proj=proj, record="last")
        assert tr.status == "max_steps" and float((tr.final - PSTAR).abs().max()) < 1e-8
    with pytest.raises(ValueError, match="proj"):
        orbit(F, p0, 0.5, 10, proj="kl")


def test_langevin_orbit_noise_level_and_reproducibility():
    F = GradientField(lambda p: energy(p, PSTAR), natural=True)
    p0 = PSTAR.expand(4000, 3).clone()
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    a = langevin_orbit(F, p0, 0.01, 1e-4, 300, generator=g1, record="last").final
    b = langevin_orbit(F, p0, 0.01, 1e-4, 300, generator=g2, record="last").final
    assert torch.equal(a, b)
    # stationary spread of the OU process p' = p* − p + noise: per-direction variance T (tangent)
    var = (a - PSTAR).var(0).sum()
    assert 0.5 * 2e-4 < float(var) < 1.6 * 2e-4
    with pytest.raises(ValueError, match="T"):
        langevin_orbit(F, p0, 0.01, -1.0, 10)


def test_verifier_and_reward():
    Mw = MultiWellEnergy(ANCH, [0.7, 0.2, 0.1], 0.1)
    F = GradientField(Mw)
    V = lambda p: -kl(ANCH[1].to(p).expand_as(p), p)  # noqa: E731  (push away from anchor 2: V = −KL)
    Fv = with_verifier(F, lambda p: -V(p), 0.0)
    p = sample_dirichlet(5, 3, dtype=D) * 0.9 + 0.1 / 3
    assert torch.allclose(Fv(p), F(p))
    Fv = with_verifier(F, V, 0.3)
    assert float(Fv(p).sum(-1).abs().max()) < 1e-12
    assert not torch.allclose(Fv(p), F(p))
    E2 = with_reward(Mw, lambda q: q[..., 0], 2.0)
    assert torch.allclose(E2(p), Mw(p) - 2 * p[:, 0])
    with pytest.raises(ValueError, match="eta_v"):
        with_verifier(F, V, -1.0)


def test_steps_to_eps_is_a_sufficient_count():
    assert steps_to_eps(1.0, 1e-6, 0.9) == math.ceil(math.log(1e-6) / math.log(0.9))
    assert steps_to_eps(1e-7, 1e-6, 0.9) == 0
    # +log(10)/log(1/k) steps per decade of D0
    a, b = steps_to_eps(1.0, 1e-6, 0.8), steps_to_eps(10.0, 1e-6, 0.8)
    assert abs((b - a) - math.log(10) / math.log(1 / 0.8)) <= 1
    # on a sequence that contracts at worst by k, the count suffices
    D = 3.0 * torch.cumprod(torch.full((200,), 0.85, dtype=torch.float64), 0)
    T = steps_to_eps(3.0, 1e-5, 0.85)
    assert float(D[T - 1]) <= 1e-5
    with pytest.raises(ValueError, match="k"):
        steps_to_eps(1.0, 1e-3, 1.5)


def test_freeze_bounds_on_a_linear_contraction():
    pstar = torch.tensor([0.5, 0.3, 0.2], dtype=D)
    v = torch.tensor([0.2, -0.05, -0.15], dtype=D)
    for c, book_ok in ((0.9, False), (0.5, True)):
        t = torch.arange(0, 400, dtype=D)
        traj = pstar + (c ** t)[:, None] * v
        eps = 1e-8
        tf = kl_freeze(traj, eps, m=3)
        assert tf is not None
        delta = float(kl(traj[tf], traj[tf - 1]))
        err = float(kl(pstar, traj[tf]))
        k_hat = estimate_contraction(traj[: tf + 1])
        assert abs(k_hat - c * c) < 5e-3  # KL increments contract by c²
        assert (err <= freeze_bound_book(delta, c * c)) == book_ok
        assert err <= 1.05 * freeze_error_bound(delta, c)
        assert err >= 0.95 * freeze_error_bound(delta, c)  # and it is tight
    assert kl_freeze(traj[:5], 1e-12) is None


def test_ruggedness_and_stability_margin():
    E = lambda p: energy(p, PSTAR)  # noqa: E731
    path = PSTAR.expand(3, 3)
    # at p* the tangent Hessian is the Fisher metric; CV of its eigenvalues, margin η·θ_max
    from terrainlab.belief import theta_max

    assert stability_margin(E, path, 0.1) == pytest.approx(0.1 * float(theta_max(PSTAR)))
    scaled = lambda p: 5 * energy(p, PSTAR)  # noqa: E731
    assert ruggedness(scaled, path) == pytest.approx(ruggedness(E, path))  # κ is scale-free
    assert stability_margin(scaled, path, 0.1) == pytest.approx(5 * stability_margin(E, path, 0.1))


def test_cross_entropy_energy_has_one_minimum_and_diagnostics():
    q = torch.tensor([0.45, 0.4, 0.15], dtype=D)
    F = GradientField(CrossEntropyEnergy(q), natural=True)
    g = torch.Generator().manual_seed(0)
    res = simplex_fixed_points(F, 3, n_starts=100, generator=g)
    assert len(res.kinds) == 1 and res.kinds[0] == "attractor"
    assert torch.allclose(res.points[0], q, atol=1e-8)
    Mw = MultiWellEnergy(ANCH, [0.7, 0.2, 0.1], 0.1)
    Fm = GradientField(Mw, natural=True)
    res = simplex_fixed_points(Fm, 3, n_starts=200, generator=g, eta=0.5)
    kinds = sorted(res.kinds)
    assert kinds.count("attractor") == 3 and kinds.count("saddle") == 3
    att = res.points[[k == "attractor" for k in res.kinds]]
    att = att[torch.argsort(Mw(att))]
    d = field_diagnostics(Fm, att, eta=0.5, n_samples=1500, n_rays=16, bisect_iters=10, proj=None,
                          generator=g)
    assert abs(float(d.coverage.sum()) - 1) < 1e-9 and float(d.coverage[0]) > float(d.coverage[1:].max())
    assert 0 < d.boundary_kl < float(d.separation_kl[1:].min())
    assert d.uniformity_cv > 0


def test_float32_end_to_end_and_bad_arguments():
    ps = PSTAR.float()
    F = GradientField(lambda p: energy(p, ps), natural=True)
    tr = orbit(F, torch.full((3, 3), 1 / 3), 0.5, 60, proj="mirror", record="last")
    assert tr.final.dtype == torch.float32 and float((tr.final - ps).abs().max()) < 1e-5
    Mw = MultiWellEnergy(ANCH.float(), [0.7, 0.2, 0.1], 0.1)
    res = simplex_fixed_points(GradientField(Mw, natural=True), 3, n_starts=60, dtype=torch.float32,
                               generator=torch.Generator().manual_seed(0))
    assert sorted(res.kinds).count("attractor") == 3
    with pytest.raises(ValueError, match="m must"):
        kl_freeze(torch.ones(3, 3) / 3, 1e-3, m=0)
    with pytest.raises(ValueError, match="update"):
        MapField(None)
