"""Mirror maps, natural gradient, proximal maps, heavy-ball physics and modified equations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from terrainlab.core import RK4, gradient_field, rollout
from terrainlab.optim import (
    DenseFisher,
    DiagonalFisher,
    GradientDescentScheme,
    HeavyBallScheme,
    MirrorDescent,
    MirrorDescentScheme,
    NaturalGradient,
    NaturalGradientScheme,
    NegativeEntropy,
    ProximalGradient,
    SquaredEuclidean,
    heavy_ball_from_physics,
    heavy_ball_physics,
    input_noise_ridge,
    one_sided_derivatives,
    prox_elastic_net,
    prox_l1,
)


def test_exponentiated_gradient_on_the_simplex():
    p0 = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64)
    c = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)  # linear loss ⟨c, p⟩
    p = p0.clone().requires_grad_(True)
    opt = MirrorDescent([p], lr=0.3, psi=NegativeEntropy())
    for _ in range(5):
        opt.zero_grad()
        (c * p).sum().backward()
        opt.step()
    expected = p0 * torch.exp(-0.3 * 5 * c)
    assert torch.allclose(p.detach(), expected / expected.sum(), atol=1e-14)
    # and the scheme face on a batch of simplex states through rollout
    F = gradient_field(lambda q: (q * c).sum(-1))
    tr = rollout(F, p0[None], eta=0.3, steps=5, scheme=MirrorDescentScheme(NegativeEntropy()), record="last")
    assert torch.allclose(tr.final[0], p.detach(), atol=1e-14)


def test_bregman_divergences():
    p = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64)
    q = torch.tensor([0.5, 0.25, 0.25], dtype=torch.float64)
    kl = (p * torch.log(p / q)).sum()
    assert torch.allclose(NegativeEntropy().divergence(p, q), kl)
    assert torch.allclose(SquaredEuclidean().divergence(p, q), 0.5 * ((p - q) ** 2).sum())


def test_euclidean_mirror_descent_is_gd():
    F = gradient_field(lambda th: (th**4).sum(-1))
    x0 = torch.tensor([[0.7, -0.4]], dtype=torch.float64)
    a = rollout(F, x0, eta=0.1, steps=20, scheme=MirrorDescentScheme(), record="last").final
    b = rollout(F, x0, eta=0.1, steps=20, scheme=GradientDescentScheme(), record="last").final
    assert torch.allclose(a, b, atol=1e-15)


def test_natural_gradient_is_gauss_newton_on_least_squares():
    """Linear Gaussian model: Fisher = XᵀX/n, so one undamped natural step with lr=1/2 solves
    least squares for L = mean squared error (∇L = 2Xᵀr/n)."""
    torch.manual_seed(0)
    X = torch.randn(40, 3, dtype=torch.float64)
    y = X @ torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64) + 0.1 * torch.randn(40, dtype=torch.float64)
    w = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    fisher = DenseFisher(lambda: X @ w)
    assert torch.allclose(fisher.matrix([w]), X.T @ X / 40)
    opt = NaturalGradient([w], lr=0.5, fisher=fisher, damping=0.0)
    opt.zero_grad()
    ((X @ w - y) ** 2).mean().backward()
    opt.step()
    w_ls = torch.linalg.lstsq(X, y[:, None]).solution.squeeze(1)
    assert torch.allclose(w.detach(), w_ls, atol=1e-10)
    d = DiagonalFisher(lambda: X @ w).precondition([w], [torch.ones(3, dtype=torch.float64)], 0.0)[0]
    assert torch.allclose(d, 1 / (X**2).mean(0))


def test_natural_gradient_scheme_on_quadratic():
    A = torch.tensor([[100.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    F = gradient_field(lambda th: 0.5 * ((th @ A) * th).sum(-1))
    sch = NaturalGradientScheme(lambda th: A.expand(*th.shape[:-1], 2, 2), damping=0.0)
    tr = rollout(F, torch.ones(1, 2, dtype=torch.float64), eta=1.0, steps=1, scheme=sch)
    assert tr.final.abs().max() < 1e-12  # Newton: one step whatever the conditioning


def test_prox_maps_and_exact_zeros():
    x = torch.tensor([-2.0, -0.05, 0.0, 0.05, 1.0])
    assert torch.equal(prox_l1(x, 0.1), torch.tensor([-1.9, 0.0, 0.0, 0.0, 0.9]))
    assert torch.allclose(prox_elastic_net(x, 0.1, 1.0), prox_l1(x, 0.1) / 2)
    # ISTA on a separable lasso ½‖θ − a‖² + λ‖θ‖₁ reaches the soft-thresholded optimum exactly
    a = torch.tensor([0.05, -0.02, 1.0, -3.0], dtype=torch.float64)
    th = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    opt = ProximalGradient([th], lr=0.5, l1=0.1)
    for _ in range(60):
        opt.zero_grad()
        (0.5 * ((th - a) ** 2).sum()).backward()
        opt.step()
    assert (th.detach()[:2] == 0).all()
    assert torch.allclose(th.detach(), prox_l1(a, 0.1), atol=1e-12)


def test_elastic_net_keeps_the_kink():
    def r(x):
        return 0.5 * x.abs() + 0.5 * x**2

    left, right = one_sided_derivatives(r, 0.0)
    assert left == pytest.approx(-0.5, abs=1e-6) and right == pytest.approx(0.5, abs=1e-6)


def test_input_noise_is_ridge_closed_form_and_monte_carlo():
    X = np.array([[1.0], [2.0]])
    y = np.array([2.0, 4.0])
    res = input_noise_ridge(X, y, sigma=0.1)
    assert np.allclose(res.plain, [2.0, 0.0], atol=1e-12)
    # stationarity of mean((wx+b−y)²) + σ²w²
    w, b = res.noisy
    gw = np.mean(2 * (w * X[:, 0] + b - y) * X[:, 0]) + 2 * 0.01 * w
    gb = np.mean(2 * (w * X[:, 0] + b - y))
    assert abs(gw) < 1e-12 and abs(gb) < 1e-12
    # Monte Carlo over jitter agrees with the closed form objective
    rng = np.random.default_rng(0)
    eps = rng.normal(0, 0.1, size=(200_000, 2))
    mc = np.mean(((1.7 * (X[:, 0] + eps) + 0.2 - y) ** 2).mean(1))
    closed = np.mean((1.7 * X[:, 0] + 0.2 - y) ** 2) + 0.01 * 1.7**2
    assert mc == pytest.approx(closed, rel=2e-3)
    assert np.linalg.eigvalsh(res.hessian_noisy).max() > np.linalg.eigvalsh(res.hessian_plain).max()


def test_heavy_ball_physics_round_trip():
    ph = heavy_ball_physics(0.01, 0.9, mass=2.0)
    lr, beta = heavy_ball_from_physics(ph.mass, ph.friction, ph.h)
    assert lr == pytest.approx(0.01) and beta == pytest.approx(0.9)
    assert ph.h == pytest.approx(math.sqrt(0.01 * 2.0 / 0.9))


def _loss(th):
    return 0.25 * th[..., 0] ** 4 + 0.5 * th[..., 1] ** 2 + 0.3 * th[..., 0] * th[..., 1]


@pytest.mark.parametrize("scheme", [GradientDescentScheme(), HeavyBallScheme(0.5)], ids=repr)
def test_modified_equation_is_second_order(scheme):
    """GD/HB stay O(η) from the plain flow but O(η²) from the flow of the modified loss."""
    th0 = torch.tensor([[1.5, -1.0]], dtype=torch.float64)
    c, T = scheme.time_scale, 1.0

    def flow_end(L):
        F = gradient_field(L)
        return rollout(lambda s, t: c * F(s, t), th0, eta=1e-2, steps=100, scheme=RK4(), record="last").final

    ref = flow_end(_loss)
    errs = {}
    for eta in (0.04, 0.02):
        s0 = scheme.init(th0)
        if isinstance(s0, tuple):  # start the velocity on the slow manifold v = ∇L/(1 − β)
            s0 = (th0, -gradient_field(_loss)(th0, 0) / (1 - scheme.beta))
        tr = rollout(gradient_field(_loss), s0, eta=eta, steps=int(round(T / eta)), scheme=scheme, record="last")
        th = scheme.params(tr.final)
        errs[eta] = ((th - ref).norm().item(), (th - flow_end(scheme.modified_loss(_loss, eta))).norm().item())
    plain_order = math.log2(errs[0.04][0] / errs[0.02][0])
    mod_order = math.log2(errs[0.04][1] / errs[0.02][1])
    assert 0.8 < plain_order < 1.3 and mod_order > 1.8, errs


def test_nesterov_convex_schedule_meets_the_accelerated_bound():
    """Beck & Teboulle (2009): with η = 1/L, L(θ_t) − L* ≤ 2‖θ0 − θ*‖²/(η(t + 1)²)."""
    from terrainlab.optim import NesterovScheme

    lam = torch.logspace(-3, 0, 30, dtype=torch.float64)

    def loss(th):
        return 0.5 * (lam * th**2).sum(-1)

    sch = NesterovScheme(schedule="convex")
    th0 = torch.ones(1, 30, dtype=torch.float64)
    tr = rollout(gradient_field(loss), sch.init(th0), eta=1.0, steps=400, scheme=sch)
    L = loss(tr.states[0][:, 0]).numpy()
    t = np.arange(len(L))
    bound = 2 * float((th0**2).sum()) / (1.0 * (t + 1) ** 2)
    assert (L[1:] <= bound[1:] + 1e-12).all()
    gd = rollout(gradient_field(loss), th0, eta=1.0, steps=400, scheme=GradientDescentScheme(), record="last")
    assert L[-1] < 0.5 * float(loss(gd.final[0]))  # accelerated beats GD at the same step


def test_proximal_point_optimizer_matches_implicit_euler_scheme():
    from terrainlab.optim import ProximalPoint, ProximalPointScheme
    from terrainlab.terrains.closed_form import rosenbrock_loss as rosenbrock

    th0 = torch.tensor([-1.2, 1.0], dtype=torch.float64)
    tr = rollout(gradient_field(rosenbrock), th0[None], eta=0.05, steps=3, scheme=ProximalPointScheme(), record="last")
    assert tr.inner_failures == 0
    th = th0.clone().requires_grad_(True)
    opt = ProximalPoint([th], lr=0.05, inner_lr=0.01, inner_steps=3000, tol=1e-13)

    def closure():
        opt.zero_grad()
        loss = rosenbrock(th)
        loss.backward()
        return loss

    for _ in range(3):
        opt.step(closure)
    assert opt.inner_residual < 1e-12
    assert torch.allclose(th.detach(), tr.final[0], atol=1e-10)
