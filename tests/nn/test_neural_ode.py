"""NeuralODE on the core integrator: accuracy, NFE accounting, adjoint = direct gradients, budgets,
statuses, and the deprecated nn names. (Orders and tolerance proportionality of Dopri5 / Bosh3 are
measured in tests/core/test_integrate.py.)"""

import math

import pytest
import torch
import torch.nn as nn

from terrainlab.core import RK4, Bosh3, ConstantStepSize, Dopri5, PIController
from terrainlab.nn import NeuralODE, ODESolution


@pytest.mark.parametrize("solver", [Dopri5(), Bosh3()])
def test_solution_meets_tolerance_and_tighter_costs_more(solver):
    y0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)

    def osc(y, t):  # harmonic oscillator, exact solution (cos t, −sin t)
        return torch.stack([y[:, 1], -y[:, 0]], -1)

    nfe = []
    for rtol in (1e-4, 1e-8):
        sol = NeuralODE(osc, 0.0, 5.0, solver=solver, rtol=rtol, atol=rtol * 1e-2).solve(y0)
        exact = torch.tensor([[math.cos(5.0), -math.sin(5.0)]], dtype=torch.float64)
        assert isinstance(sol, ODESolution) and sol.status == "completed"
        assert (sol.y1 - exact).abs().max() < 200 * rtol
        per_step = 6 if isinstance(solver, Dopri5) else 3
        assert sol.n_evals == 2 + per_step * (sol.n_accepted + sol.n_rejected)
        nfe.append(sol.n_evals)
    assert nfe[1] > 2 * nfe[0]


def _grads(f, y0, **kw):
    out = []
    for adjoint in (False, True):
        f.zero_grad()
        y = y0.clone().requires_grad_(True)
        sol = NeuralODE(f, 0.0, 1.0, adjoint=adjoint, **kw).solve(y)
        sol.y1.pow(2).sum().backward()
        out.append((y.grad.clone(), f[0].weight.grad.clone(), f[2].bias.grad.clone()))
        if adjoint:
            st = sol.backward
            assert st.n_evals > 0 and st.status == "completed" and st.n_steps == st.n_accepted + st.n_rejected
    return out


def test_adjoint_gradients_equal_autograd_through_the_solver():
    torch.manual_seed(0)
    f = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 3)).double()
    y0 = torch.randn(4, 3, dtype=torch.float64)
    direct, adjoint = _grads(f, y0, rtol=1e-10, atol=1e-12)
    for a, b in zip(direct, adjoint):
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-8)


def test_adjoint_on_a_fixed_grid_runs_the_grid_backwards():
    torch.manual_seed(1)
    f = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    y0 = torch.randn(2, 3, dtype=torch.float64)
    direct, adjoint = _grads(f, y0, solver=RK4(), step_size=0.01)
    for a, b in zip(direct, adjoint):  # the continuous adjoint differs from the discrete one by O(h⁴)
        assert torch.allclose(a, b, rtol=1e-7, atol=1e-9)


def test_fixed_grid_counts_and_errors():
    f = nn.Linear(2, 2).double()
    sol = NeuralODE(f, solver=RK4(), step_size=0.1).solve(torch.randn(3, 2, dtype=torch.float64))
    assert sol.n_evals == 40 and sol.n_steps == 10 and sol.status == "completed"
    assert isinstance(NeuralODE(f, solver=RK4(), step_size=0.1).controller, ConstantStepSize)
    with pytest.raises(ValueError, match="step_size"):
        NeuralODE(f, solver=RK4())
    with pytest.raises(ValueError, match="rtol"):
        NeuralODE(f, rtol=0.0)
    with pytest.raises(ValueError, match="t0"):
        NeuralODE(f, t0=float("nan"))
    with pytest.raises(ValueError, match="t1"):
        NeuralODE(f, t1=float("inf"))
    with pytest.raises(ValueError, match="controller"):
        NeuralODE(f, rtol=1e-3, controller=PIController(1e-4, 1e-6))
    with pytest.raises(ValueError, match="y0"):
        NeuralODE(f).solve(torch.ones(3, 2, dtype=torch.int64))
    node = NeuralODE(f, controller=PIController(1e-4, 1e-7, alpha=0.7, beta=0.4))
    assert node.rtol == 1e-4 and node.atol == 1e-7


def test_tiny_fixed_step_stops_at_max_steps_instead_of_hanging():
    # NeuralODE(F, solver=RK4(), step_size=1e-9) needed 10⁹ steps and ignored max_steps
    node = NeuralODE(lambda y: -y, solver=RK4(), step_size=1e-9)
    sol = node.solve(torch.ones(4, 2))
    assert sol.status == "max_steps" and sol.n_steps == node.max_steps == 10_000
    assert sol.n_evals == 4 * 10_000 and sol.ts[-1] == pytest.approx(1e-5)


def test_blow_up_is_a_status_not_an_exception():
    node = NeuralODE(lambda y: y**2, 0.0, 2.0, max_steps=200)
    assert node.solve(torch.ones(1, 1, dtype=torch.float64)).status == "max_steps"
    node = NeuralODE(lambda y: 50 * y, 0.0, 10.0)
    assert node.solve(torch.ones(3)).status == "diverged"


def test_deprecated_nn_aliases_warn_and_delegate_to_core():
    from terrainlab.nn import odeint_adaptive, odeint_fixed

    F, y0 = (lambda y, t: -y), torch.ones(3, dtype=torch.float64)
    with pytest.warns(DeprecationWarning, match="integrate"):
        sol = odeint_adaptive(F, y0, 0.0, 1.0, rtol=1e-8, atol=1e-10)
    assert sol.status == "completed" and abs(float(sol.y1[0]) - math.exp(-1)) < 1e-7
    with pytest.warns(DeprecationWarning, match="integrate"):
        sol = odeint_fixed(F, y0, 0.0, 1.0, scheme=RK4(), step_size=0.1)
    assert sol.n_steps == 10 and sol.status == "completed"
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="t0"):
        odeint_adaptive(F, y0, float("nan"), 1.0)
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="t1"):
        odeint_adaptive(F, y0, 0.0, float("inf"), max_steps=50)
