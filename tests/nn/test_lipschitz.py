"""Spectral normalisation, Lipschitz bounds, Jacobian spectrum and the Hutchinson regulariser."""

import pytest
import torch
import torch.nn as nn

from terrainlab.nn import (
    jacobian_regularizer,
    jacobian_spectrum,
    lipschitz_upper_bound,
    spectral_norm,
)


def test_spectral_norm_bounds_and_trains():
    torch.manual_seed(0)
    lin = spectral_norm(nn.Linear(16, 16), scale=0.7)
    assert float(torch.linalg.matrix_norm(lin.weight.detach(), 2)) <= 0.7 + 1e-6
    lin(torch.randn(3, 16)).sum().backward()
    assert lin.parametrizations.weight.original.grad is not None
    approx = spectral_norm(nn.Linear(64, 64), scale=0.5, n_power_iterations=5)
    approx.parametrizations.weight[0].exact = False
    assert abs(float(torch.linalg.matrix_norm(approx.weight.detach(), 2)) - 0.5) < 0.05


def test_lipschitz_upper_bound_is_an_upper_bound():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 20), nn.Tanh(), nn.Linear(20, 20), nn.GELU(), nn.Linear(20, 5))
    L = lipschitz_upper_bound(net)
    a, b = torch.randn(500, 5), torch.randn(500, 5)
    ratio = (net(a) - net(b)).norm(dim=1) / (a - b).norm(dim=1)
    assert float(ratio.detach().max()) <= L
    W = torch.linalg.matrix_norm(net[0].weight.detach(), 2) * torch.linalg.matrix_norm(net[2].weight.detach(), 2)
    assert L == pytest.approx(float(W * torch.linalg.matrix_norm(net[4].weight.detach(), 2)) * 1.1289, rel=1e-4)
    with pytest.raises(ValueError, match="Conv2d"):
        lipschitz_upper_bound(nn.Sequential(nn.Conv2d(1, 1, 3)))


def test_jacobian_spectrum_on_known_matrices():
    # a rotation-scaling block (complex pair, |λ| = 0.9) plus a real eigenvalue 0.5
    A = torch.tensor([[0.0, -0.9, 0.0], [0.9, 0.0, 0.0], [0.0, 0.0, 0.5]], dtype=torch.float64)
    est = jacobian_spectrum(lambda z: z @ A.T, torch.zeros(4, 3, dtype=torch.float64), iters=80)
    assert torch.allclose(est.radius, torch.full((4,), 0.9, dtype=torch.float64), atol=1e-3)
    B = torch.tensor([[0.5, 2.0], [0.0, 0.5]], dtype=torch.float64)  # ρ = 0.5 but ‖B‖ ≈ 2.13
    est = jacobian_spectrum(lambda z: z @ B.T, torch.zeros(2, 2, dtype=torch.float64), iters=200)
    assert torch.allclose(est.norm, torch.full((2,), float(torch.linalg.matrix_norm(B, 2)), dtype=torch.float64), atol=1e-6)
    assert (est.radius < 0.6).all()


def test_hutchinson_regulariser_estimates_frobenius():
    torch.manual_seed(0)
    A = torch.randn(10, 10, dtype=torch.float64, requires_grad=True)
    z = torch.zeros(400, 10, dtype=torch.float64)
    val = jacobian_regularizer(lambda z: z @ A.T, z, n_samples=4)
    exact = float((A.detach() ** 2).sum() / 10)
    assert abs(float(val.detach()) - exact) < 0.1 * exact
    val.backward()
    assert A.grad is not None
