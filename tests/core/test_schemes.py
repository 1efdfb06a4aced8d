"""Schemes against standard problems: measured convergence order, stability functions, energy."""

import math

import numpy as np
import pytest
import torch

from terrainlab.core import (
    RK4,
    Anderson,
    Euler,
    Heun,
    ImplicitEuler,
    Leapfrog,
    Midpoint,
    Newton,
    NewtonKrylov,
    Picard,
    SymplecticEuler,
    linear_field,
    rollout,
)

ORDERED = [(Euler(), 1), (Heun(), 2), (Midpoint(), 2), (RK4(), 4), (ImplicitEuler(), 1)]


def _linear_problem():
    # x' = A x, a damped rotation; exact solution via the matrix exponential
    A = torch.tensor([[-0.5, 2.0], [-2.0, -0.3]], dtype=torch.float64)
    x0 = torch.tensor([[1.0, 0.5]], dtype=torch.float64)
    exact = x0 @ torch.linalg.matrix_exp(A * 1.0).T
    return linear_field(A), x0, exact


def _nonlinear_problem():
    # x' = x(1 - x) (logistic growth) on each coordinate, t in [0, 1]; exact: x0 e^t / (1 - x0 + x0 e^t)
    x0 = torch.tensor([[0.1, 0.5, 2.0]], dtype=torch.float64)

    def F(x, t):
        return x * (1 - x) + 0.0 * t

    e = math.e
    exact = x0 * e / (1 - x0 + x0 * e)
    return F, x0, exact


def _time_dependent_problem():
    # x' = -2 t x, exact x0 exp(-t^2): checks that schemes pass the stage times correctly
    x0 = torch.tensor([[1.0, -0.7]], dtype=torch.float64)

    def F(x, t):
        return -2.0 * t * x

    return F, x0, x0 * math.exp(-1.0)


def measured_order(scheme, problem, ns=(8, 16, 32, 64)):
    F, x0, exact = problem()
    errs = []
    for n in ns:
        tr = rollout(F, x0, eta=1.0 / n, steps=n, scheme=scheme, record="last")
        errs.append(float((tr.final - exact).abs().max()))
    slope = np.polyfit(np.log(1.0 / np.array(ns)), np.log(errs), 1)[0]
    return slope


@pytest.mark.parametrize("scheme,order", ORDERED, ids=lambda x: repr(x) if not isinstance(x, int) else str(x))
@pytest.mark.parametrize("problem", [_linear_problem, _nonlinear_problem, _time_dependent_problem])
def test_measured_convergence_order(scheme, order, problem):
    ns = (4, 8, 16, 32) if order == 4 else (8, 16, 32, 64)
    slope = measured_order(scheme, problem, ns)
    assert abs(slope - order) <= 0.15, f"{scheme}: measured order {slope:.3f}, expected {order}"
    assert scheme.order == order


@pytest.mark.parametrize("scheme", [Euler(), Heun(), Midpoint(), RK4(), ImplicitEuler()], ids=repr)
def test_R_matches_measured_one_step_amplification(scheme):
    for z in [-0.3, -1.0, -1.9, -2.5, 0.4, -3.7]:
        lam = z / 0.1
        x0 = torch.tensor([[1.0]], dtype=torch.float64)
        tr = rollout(lambda x, t: lam * x, x0, eta=0.1, steps=1, scheme=scheme)
        assert float(tr.final) == pytest.approx(float(np.real(scheme.R(z))), rel=1e-9, abs=1e-12)


def test_explicit_euler_diverges_exactly_past_two():
    lam = 3.0
    x0 = torch.ones(1, 1, dtype=torch.float64)
    for z in np.linspace(0.1, 4.0, 79):
        eta = z / lam
        tr = rollout(lambda x, t: -lam * x, x0, eta=eta, steps=400, record="last")
        grew = float(tr.final.abs()) > 1.0
        if z > 2.0 + 1e-9:
            assert grew, f"ηλ={z}: should diverge"
        elif z < 2.0 - 1e-9:
            assert float(tr.final.abs()) < 1.0, f"ηλ={z}: should contract"
    assert Euler().stability_limit(lam) == pytest.approx(2.0 / lam, rel=1e-3)
    assert RK4().stability_limit(1.0) == pytest.approx(2.785, abs=2e-3)  # known RK4 real-axis limit
    assert ImplicitEuler().stability_limit(1.0) == float("inf")


def test_implicit_euler_never_diverges_on_stable_linear():
    x0 = torch.ones(4, 1, dtype=torch.float64)
    for z in [0.5, 2.5, 10.0, 1e3]:
        lam = 5.0
        tr = rollout(lambda x, t: -lam * x, x0, eta=z / lam, steps=50, scheme=ImplicitEuler(), record="last")
        assert float(tr.final.abs().max()) < 1.0
        assert tr.inner_failures == 0
        assert float(tr.final[0, 0]) == pytest.approx((1 / (1 + z)) ** 50, rel=1e-8)


def test_implicit_fixed_point_reports_inner_failures():
    # fixed-point iteration diverges when η·Lip > 1: the step must report it, not raise
    x0 = torch.ones(3, 2, dtype=torch.float64)
    tr = rollout(lambda x, t: -10.0 * x, x0, eta=0.5, steps=3, scheme=ImplicitEuler(Picard(tol=1e-10, max_iter=20)))
    assert tr.inner_failures > 0
    tr2 = rollout(lambda x, t: -10.0 * x, x0, eta=0.05, steps=3, scheme=ImplicitEuler(Picard(tol=1e-10, max_iter=100)))
    assert tr2.inner_failures == 0


def test_implicit_euler_solver_strings_are_deprecated_aliases():
    with pytest.warns(DeprecationWarning, match="root_finder=Picard"):
        old = ImplicitEuler("fixed_point", max_iter=20)
    assert old.root_finder == Picard(tol=1e-10, max_iter=20) and old.solver == "fixed_point"
    with pytest.warns(DeprecationWarning, match="root_finder=Newton"):
        assert ImplicitEuler(solver="newton", tol=1e-9).root_finder == Newton(tol=1e-9)
    assert ImplicitEuler().root_finder == Newton() and ImplicitEuler().tol == 1e-10
    with pytest.raises(ValueError, match="solver"):
        ImplicitEuler("lbfgs")
    with pytest.raises(ValueError, match="root_finder"):
        ImplicitEuler(3)
    with pytest.raises(ValueError, match="^adjoint_tol"):
        ImplicitEuler(adjoint_tol=-1)


class _MLP(torch.nn.Module):
    def __init__(self, d=5):
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Linear(d, 16), torch.nn.Tanh(), torch.nn.Linear(16, d)).double()

    def forward(self, h):
        return -2.0 * h + self.net(h)


@pytest.mark.parametrize("finder", [Newton(tol=1e-12), NewtonKrylov(tol=1e-12), Anderson(tol=1e-12, max_iter=200)],
                         ids=repr)
def test_implicit_euler_any_root_finder_on_a_batched_module_field(finder):
    f = _MLP()
    x0 = torch.randn(6, 5, dtype=torch.float64)
    tr = rollout(lambda h, t: f(h), x0, eta=0.3, steps=4, scheme=ImplicitEuler(finder), record="all")
    assert tr.status == "max_steps" and tr.inner_failures == 0
    with torch.no_grad():
        for k in range(4):  # every step satisfies y = S + η f(y)
            assert torch.allclose(tr.states[k + 1], tr.states[k] + 0.3 * f(tr.states[k + 1]), atol=1e-10)


def test_implicit_euler_gradients_are_implicit_and_correct():
    f = _MLP(4)
    scheme = ImplicitEuler(NewtonKrylov(tol=1e-13), adjoint_tol=1e-13)
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)

    def run(x):
        return rollout(lambda h, t: f(h), x, eta=0.4, steps=2, scheme=scheme, record="last").final

    assert torch.autograd.gradcheck(run, (x,), atol=1e-6, nondet_tol=1e-10)
    run(x).pow(2).sum().backward()
    assert f.net[0].weight.grad is not None and torch.isfinite(f.net[0].weight.grad).all()
    # nothing to differentiate: no graph is kept (bounded memory in long rollouts)
    y = rollout(lambda h, t: -h, torch.ones(2, 3), eta=0.5, steps=3, scheme=ImplicitEuler()).final
    assert not y.requires_grad


def test_implicit_euler_tol_is_a_relative_residual_floored_at_the_dtype():
    # float32 cannot reach 1e-10: the tolerance is raised to 16 ulps instead of reporting failures
    x0 = torch.randn(4, 3)
    tr = rollout(lambda x, t: -torch.sinh(x), x0, eta=0.5, steps=3, scheme=ImplicitEuler(Newton(tol=1e-10)))
    assert tr.inner_failures == 0 and tr.final.dtype == torch.float32
    step = ImplicitEuler(Newton(tol=1e-12)).implicit_step(lambda x, t: -torch.sinh(x), x0.double(), 0.0, 0.5)
    y = step.root.z
    T = x0.double() + 0.5 * -torch.sinh(y)
    assert ((T - y).norm(dim=1) / T.norm(dim=1) <= 1e-12).all() and step.failures == 0


def _oscillator(state, t):
    q, p = state
    return (p, -q)


@pytest.mark.parametrize("scheme", [Leapfrog(), SymplecticEuler()], ids=repr)
def test_symplectic_energy_bounded_euler_drifts(scheme):
    q0 = torch.tensor([[1.0]], dtype=torch.float64)
    p0 = torch.tensor([[0.0]], dtype=torch.float64)
    n, eta = 10_000, 0.05
    tr = rollout(_oscillator, (q0, p0), eta=eta, steps=n, scheme=scheme, record=100)
    q, p = tr.states
    energy = 0.5 * (q**2 + p**2)
    sym_err = float((energy - 0.5).abs().max())
    assert sym_err < 0.05  # bounded, O(η) for symplectic Euler, O(η²) for leapfrog

    def flat(x, t):  # the same oscillator as one (q, p) vector for explicit Euler
        return torch.stack([x[..., 1], -x[..., 0]], dim=-1)

    tr_e = rollout(flat, torch.tensor([[1.0, 0.0]], dtype=torch.float64), eta=eta, steps=n, record=100)
    e_euler = 0.5 * (tr_e.states**2).sum(-1)
    growth = (e_euler - 0.5).abs().flatten()
    assert float(growth[-1]) > 100 * sym_err  # explicit Euler multiplies the energy by (1+η²) a step
    assert bool((growth[1:] >= growth[:-1]).all())  # and it only grows


def test_leapfrog_order_two_and_symplectic_R():
    q0 = torch.tensor([[1.0]], dtype=torch.float64)
    p0 = torch.tensor([[0.0]], dtype=torch.float64)
    errs = []
    for n in (20, 40, 80):
        tr = rollout(_oscillator, (q0, p0), eta=1.0 / n, steps=n, scheme=Leapfrog(), record="last")
        errs.append(abs(float(tr.final[0]) - math.cos(1.0)))
    slope = np.polyfit(np.log([1 / 20, 1 / 40, 1 / 80]), np.log(errs), 1)[0]
    assert abs(slope - 2) < 0.15
    assert Leapfrog().R(1.5j) == pytest.approx(1.0)  # on the unit circle inside ηω < 2
    assert Leapfrog().R(2.5j) > 1.0
