
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.func import hessian

from terrainlab.belief import (
    contraction_audit,
    energy,
    energy_step,
    eta_crit_tangent,
    eta_max_book,
    exponentiated_gradient_step,
    fisher_metric_tangent,
    from_xy,
    grad_energy,
    hess_energy,
    hessian_tangent,
    kappa_book,
    kl,
    logit_step,
    natural_gradient,
    project_simplex,
    projected_step,
    sample_dirichlet,
    simplex_grid,
    tangent_basis,
    theta_max,
    threshold_scan,
    to_xy,
)

D = torch.float64
SET = settings(max_examples=50, deadline=None)
PSTAR = torch.tensor([0.7, 0.2, 0.1], dtype=D)


@SET
@given(st.lists(st.lists(st.floats(-3, 3), min_size=5, max_size=5), min_size=1, max_size=4))
def test_projection_idempotent_and_optimal(rows):
    v = torch.tensor(rows, dtype=D)
    p = project_simplex(v)
    assert bool((p >= 0).all()) and torch.allclose(p.sum(-1), torch.ones(len(rows), dtype=D))
    assert torch.allclose(project_simplex(p), p, atol=1e-12)
    # variational inequality <v − p, q − p> ≤ 0 for all q in the simplex (vertices suffice)
    eye = torch.eye(5, dtype=D)
    vi = ((v - p)[:, None, :] * (eye[None] - p[:, None, :])).sum(-1)
    assert bool((vi <= 1e-10).all())


@SET
@given(st.integers(0, 10**6))
def test_steps_stay_on_simplex_and_agree_to_first_order(seed):
    g = torch.Generator().manual_seed(seed)
    p = sample_dirichlet(6, 4, generator=g, dtype=D) * 0.9 + 0.025
    gr = torch.randn(6, 4, generator=g, dtype=D)
    for step in (projected_step, exponentiated_gradient_step, logit_step):
        q = step(p, gr, 0.3)
        assert bool((q >= 0).all()) and torch.allclose(q.sum(-1), torch.ones(6, dtype=D))
    # mirror step and natural-gradient step agree to first order in η
    h = 1e-5
    m = exponentiated_gradient_step(p, gr, h)
    assert float((m - (p - h * natural_gradient(p, gr))).abs().max()) < 1e-8
    # mirror step is the argmin of <g,q> + KL(q||p)/η: beats random points
    q = sample_dirichlet(200, 4, generator=g, dtype=D)
    eta = 0.7
    m = exponentiated_gradient_step(p[:1], gr[:1], eta)
    obj = lambda x: (gr[:1] * x).sum(-1) + kl(x, p[:1]) / eta  # noqa: E731
    assert bool((obj(q) >= obj(m) - 1e-12).all())


def test_mirror_keeps_zero_coordinates_and_logit_gradient():
    p = torch.tensor([0.5, 0.5, 0.0], dtype=D)
    assert float(exponentiated_gradient_step(p, torch.tensor([1.0, 0.0, -50.0], dtype=D), 1.0)[2]) == 0.0
    # logit step = GD on z for E(softmax z): compare with autograd
    z = torch.tensor([0.3, -0.1, 0.4], dtype=D, requires_grad=True)
    E = energy(torch.softmax(z, -1), PSTAR)
    (gz,) = torch.autograd.grad(E, z)
    pz = torch.softmax(z.detach(), -1)
    expect = torch.softmax(z.detach() - 0.1 * gz, -1)
    assert torch.allclose(logit_step(pz, grad_energy(pz, PSTAR), 0.1), expect)
    assert torch.allclose(energy_step(pz, PSTAR, 0.1, "logit"), expect)
    with pytest.raises(ValueError, match="projection"):
        energy_step(pz, PSTAR, 0.1, "bogus")
    with pytest.raises(ValueError, match="eta"):
        exponentiated_gradient_step(pz, pz, -1.0)


@pytest.mark.parametrize("K", [2, 3, 7])
def test_tangent_basis_orthonormal(K):
    B = tangent_basis(K, dtype=D)
    assert torch.allclose(B.T @ B, torch.eye(K - 1, dtype=D), atol=1e-12)
    assert torch.allclose(B.sum(0), torch.zeros(K - 1, dtype=D), atol=1e-12)
    with pytest.raises(ValueError, match="K"):
        tangent_basis(1)


def test_energy_closed_forms_against_autograd():
    g = torch.Generator().manual_seed(1)
    p = sample_dirichlet(5, 4, generator=g, dtype=D) * 0.8 + 0.05
    ps = sample_dirichlet(5, 4, generator=g, dtype=D)
    for i in range(5):
        H = hessian(lambda x: energy(x, ps[i]))(p[i])
        assert torch.allclose(H, hess_energy(p[i], ps[i]), atol=1e-10)
        x = p[i].clone().requires_grad_(True)
        (gg,) = torch.autograd.grad(energy(x, ps[i]), x)
        assert torch.allclose(gg, grad_energy(p[i], ps[i]))
    # tangent Hessian by autograd = Bᵀ diag(p*/p²) B; at p = p* it is the Fisher metric
    B = tangent_basis(4, dtype=D)
    Ht = hessian_tangent(lambda x: energy(x, ps[0]), p)
    assert torch.allclose(Ht[0], B.T @ hess_energy(p[0], ps[0]) @ B, atol=1e-10)
    assert torch.allclose(hessian_tangent(lambda x: energy(x, ps[0]), ps[0]), fisher_metric_tangent(ps[0]))


def test_book_values():
    assert float(eta_max_book(PSTAR)) == pytest.approx(2 * 0.01 / 0.7)
    assert float(kappa_book(PSTAR)) == pytest.approx(7.0)
    u = torch.full((3,), 1 / 3, dtype=D)
    assert float(eta_max_book(u)) == pytest.approx(2 / 3)  # not 2/9
    assert float(eta_crit_tangent(u)) == pytest.approx(2 / 3)
    assert float(eta_max_book(torch.tensor([0.98, 0.01, 0.01], dtype=D))) == pytest.approx(2.04e-4, rel=1e-2)
    assert float(eta_crit_tangent(PSTAR)) == pytest.approx(0.2512, abs=1e-3)
    # η_max is largest at the uniform point
    grid = simplex_grid(30, margin=1e-9, dtype=D)
    assert float(eta_max_book(grid).max()) <= 2 / 3 + 1e-12


@SET
@given(st.lists(st.floats(0.03, 1.0), min_size=3, max_size=3))
def test_theta_max_solves_secular_equation(q):
    q = torch.tensor(q, dtype=D)
    q = q / q.sum()
    th = float(theta_max(q))
    a, b, c = q.tolist()
    # θ_max is the larger root of the secular equation P(θ) = 3abc·θ² − 2sθ + 1 = 0, s = ab + ac + bc.
    # The closed form loses half its digits near the double root (s² = 3abc, e.g. the uniform q),
    # so check the residual against the size of P's terms, and that θ is the larger root (θ ≥ the
    # vertex s/(3abc)), instead of comparing with that ill-conditioned formula.
    s = a * b + a * c + b * c
    P = 3 * a * b * c * th**2 - 2 * s * th + 1
    scale = 3 * a * b * c * th**2 + 2 * s * th + 1
    assert abs(P) <= 1e-10 * scale
    assert th >= s / (3 * a * b * c) * (1 - 1e-12)
    # the book's bound is sufficient: η_max ≤ 2/θ_max
    assert float(eta_max_book(q)) <= 2 / th + 1e-12


def test_exact_threshold_matches_a_scan_for_K4():
    g = torch.Generator().manual_seed(3)
    targets = sample_dirichlet(4, 4, generator=g, dtype=D) * 0.8 + 0.05
    targets = targets / targets.sum(-1, keepdim=True)
    etas = torch.logspace(-2.5, 0.3, 90, dtype=D)
    sc = threshold_scan(targets, etas, mode="local", steps=400, n_starts=4, noise_shape=None,
                        noise=0.005, generator=g)
    pred = eta_crit_tangent(targets)
    ratio = sc.eta_first_fail / pred
    step = float(etas[1] / etas[0])
    assert bool((ratio >= 1 / step ** 1.01).all()) and bool((ratio <= step ** 2).all())


def test_contraction_audit_detects_the_counterexample_and_passes_a_true_contraction():
    g = torch.Generator().manual_seed(0)
    eta = 0.8 * float(eta_max_book(PSTAR))
    bad = contraction_audit(lambda p: energy_step(p, PSTAR, eta), PSTAR, n_pairs=2000, n_starts=2000,
                            generator=g, extra_starts=torch.tensor([[1e-4, 0.5, 0.4999]], dtype=D))
    assert bad.pair_ratio_frac_gt1 > 0.05 and bad.n_cycles >= 1 and bad.energy_ratio_frac_inf > 0
    # a linear contraction toward p*: p ↦ p* + 0.5 (p − p*) contracts KL on every pair
    good = contraction_audit(lambda p: PSTAR + 0.5 * (p - PSTAR), PSTAR, n_pairs=2000, n_starts=2000,
                             generator=g)
    assert good.pair_ratio_frac_gt1 == 0 and good.n_cycles == 0 and good.energy_ratio_sup < 1


def test_plot_coordinates_roundtrip():
    p = sample_dirichlet(10, 3, dtype=D)
    assert torch.allclose(from_xy(to_xy(p)), p)
    with pytest.raises(ValueError):
        to_xy(torch.ones(2, 4))
