"""NeuralODE / adaptive solvers: accuracy, order, NFE accounting, adjoint = direct gradients."""

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from terrainlab.core import RK4
from terrainlab.nn import Bosh3, Dopri5, NeuralODE, odeint_adaptive


@pytest.mark.parametrize("solver", [Dopri5(), Bosh3()])
def test_adaptive_solution_meets_tolerance_and_tighter_costs_more(solver):
    y0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)

    def osc(y, t):  # harmonic oscillator, exact solution (cos t, −sin t)
        return torch.stack([y[:, 1], -y[:, 0]], -1)

    nfe = []
    for rtol in (1e-4, 1e-8):
        sol = odeint_adaptive(osc, y0, 0.0, 5.0, solver=solver, rtol=rtol, atol=rtol * 1e-2)
        exact = torch.tensor([[math.cos(5.0), -math.sin(5.0)]], dtype=torch.float64)
        assert sol.status == "success"
        assert (sol.y1 - exact).abs().max() < 200 * rtol
        per_step = 6 if isinstance(solver, Dopri5) else 3
        assert sol.n_evals == 2 + per_step * (sol.n_steps + sol.n_rejected)
        nfe.append(sol.n_evals)
    assert nfe[1] > 2 * nfe[0]


@pytest.mark.parametrize("solver,order", [(Dopri5(), 5), (Bosh3(), 3)])
def test_fixed_step_order_and_stability_function(solver, order):
    y0 = torch.ones(1, 1, dtype=torch.float64)
    errs = []
    for n in (8, 16):
        y, h = y0, 1.0 / n
        for k in range(n):
            y = solver.step(lambda y, t: -y + torch.sin(torch.as_tensor(t, dtype=torch.float64)), y, k * h, h).state
        errs.append(y)
    ref = y0
    n = 512
    for k in range(n):
        ref = Dopri5().step(lambda y, t: -y + torch.sin(torch.as_tensor(t, dtype=torch.float64)), ref, k / n, 1 / n).state
    e = [float((x - ref).abs()) for x in errs]
    assert abs(math.log2(e[0] / e[1]) - order) < 0.5
    z = np.array([-0.05, -0.1])
    R = np.asarray(solver.R(z.astype(complex)))
    # R(z) agrees with exp(z) to order `order`: error ~ z^{order+1}
    ratio = np.abs(R[1] - np.exp(z[1])) / np.abs(R[0] - np.exp(z[0]))
    assert abs(math.log2(ratio) - (order + 1)) < 0.3


def test_adjoint_gradients_equal_direct_backprop():
    torch.manual_seed(0)
    f = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 3)).double()
    y0 = torch.randn(4, 3, dtype=torch.float64)
    grads = []
    for adjoint in (False, True):
        f.zero_grad()
        y = y0.clone().requires_grad_(True)
        node = NeuralODE(f, 0.0, 1.0, rtol=1e-10, atol=1e-12, adjoint=adjoint)
        sol = node.solve(y)
        sol.y1.pow(2).sum().backward()
        grads.append((y.grad.clone(), f[0].weight.grad.clone(), f[2].bias.grad.clone()))
        if adjoint:
            assert sol.backward.n_evals > 0 and sol.backward.status == "success"
    for a, b in zip(*grads):
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-8)


def test_fixed_grid_and_errors():
    f = nn.Linear(2, 2).double()
    node = NeuralODE(f, solver=RK4(), step_size=0.1)
    sol = node.solve(torch.randn(3, 2, dtype=torch.float64))
    assert sol.n_evals == 40 and sol.n_steps == 10
    with pytest.raises(ValueError, match="step_size"):
        NeuralODE(f, solver=RK4())
    with pytest.raises(ValueError, match="rtol"):
        NeuralODE(f, rtol=0.0)
    bad = odeint_adaptive(lambda y, t: y**2, torch.ones(1, 1, dtype=torch.float64), 0.0, 2.0, max_steps=200)
    assert bad.status != "success"  # blow-up at t = 1: a status, not an exception
