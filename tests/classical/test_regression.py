"""terrainlab.classical.regression and .logistic: least squares (ols, GD as a core rollout, the exact rate
max|1 − ηλ_i|) and logistic regression (loss / gradient / Hessian against autograd, GD, the implicit bias)."""

from __future__ import annotations

import math

import pytest
import torch

from terrainlab.classical import (
    gd_linear_regression,
    gd_logistic_regression,
    implicit_bias_path,
    least_squares_hessian,
    least_squares_loss,
    logistic_grad,
    logistic_hessian,
    logistic_loss,
    ols,
    quadratic_rate,
)

D = torch.float64


def _design(n=40, d=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=D)
    y = X @ torch.arange(1.0, d + 1, dtype=D) + 0.1 * torch.randn(n, generator=g, dtype=D)
    return X, y


def test_ols_matches_lstsq_and_zeroes_the_gradient():
    X, y = _design()
    th = ols(X, y)
    ref = torch.linalg.lstsq(X, y[:, None]).solution[:, 0]
    assert torch.allclose(th, ref, atol=1e-12)
    g = torch.func.grad(lambda t: least_squares_loss(t, X, y))(th)
    assert float(g.abs().max()) < 1e-12


def test_hessian_is_two_over_n_xtx_by_autograd():
    X, y = _design()
    H = torch.func.hessian(lambda t: least_squares_loss(t, X, y))(torch.zeros(4, dtype=D))
    assert torch.allclose(H, least_squares_hessian(X), atol=1e-12)
    assert torch.allclose(least_squares_hessian(X), 2 / X.shape[0] * X.T @ X)


def test_gd_is_a_rollout_converging_to_ols_at_the_exact_rate():
    X, y = _design()
    H = least_squares_hessian(X)
    lam = torch.linalg.eigvalsh(H)
    th = ols(X, y)
    for eta in (0.5 / float(lam[-1]), 1.9 / float(lam[-1])):   # both sides of 2/(λmin+λmax)
        tr = gd_linear_regression(X, y, eta, 400)
        assert tr.states.shape == (401, 4) and tr.status == "max_steps"
        err = (tr.states - th).norm(dim=-1)
        rho = quadratic_rate(H, eta)
        k = int(torch.nonzero(err > 1e-9 * err[0]).max())   # the last step above the rounding floor
        assert k > 20
        assert abs(float(err[k] / err[k - 1]) - rho) < 1e-4
        t = torch.arange(401, dtype=D)
        assert bool((err <= rho ** t * err[0] * (1 + 1e-9) + 1e-14).all())   # the corrected bound holds


def test_gd_with_a_tensor_of_step_sizes_equals_separate_runs():
    X, y = _design()
    etas = torch.tensor([0.05, 0.2], dtype=D)
    both = gd_linear_regression(X, y, etas, 30)
    for k, e in enumerate(etas.tolist()):
        one = gd_linear_regression(X, y, e, 30)
        assert torch.allclose(both.states[:, k], one.states, atol=1e-13)


def test_quadratic_rate_cases():
    H = torch.diag(torch.tensor([1.0, 10.0], dtype=D))
    assert quadratic_rate(H, 0.1) == pytest.approx(0.9)        # η ≤ 2/(λmin+λmax): 1 − ηλ_min
    assert quadratic_rate(H, 0.19) == pytest.approx(0.9)       # past 2/11: ηλ_max − 1 = 0.9 (book: 0.81)
    assert quadratic_rate(H, 0.25) == pytest.approx(1.5)       # past 2/λ_max: divergence
    assert quadratic_rate(H, 2 / 11) == pytest.approx(9 / 11)  # the optimum (κ−1)/(κ+1)


def test_divergent_gd_does_not_raise():
    X, y = _design()
    eta = 2.5 / float(torch.linalg.eigvalsh(least_squares_hessian(X))[-1])
    tr = gd_linear_regression(X, y, eta, 50)
    assert float(tr.states[-1].norm()) > 1e3


@pytest.mark.parametrize(
    "call, word",
    [
        (lambda X, y: ols(X[:, :1].repeat(1, 2), y), "full column rank"),
        (lambda X, y: ols(X, y[:-1]), "y"),
        (lambda X, y: ols(X.float(), y), "dtype"),
        (lambda X, y: ols(X[0], y), "X"),
        (lambda X, y: gd_linear_regression(X, y, 0.0, 5), "eta"),
        (lambda X, y: gd_linear_regression(X, y, 0.1, 0), "steps"),
        (lambda X, y: gd_linear_regression(X, y, 0.1, 5, theta0=torch.zeros(3, dtype=D)), "theta0"),
        (lambda X, y: gd_linear_regression(X, y, torch.tensor([0.1, -1.0], dtype=D), 5), "eta"),
        (lambda X, y: quadratic_rate(torch.ones(2, 3, dtype=D), 0.1), "H"),
        (lambda X, y: quadratic_rate(torch.tensor([[1.0, 2.0], [0.0, 1.0]], dtype=D), 0.1), "symmetric"),
        (lambda X, y: quadratic_rate(torch.eye(2, dtype=D), math.nan), "eta"),
        (lambda X, y: least_squares_loss(torch.zeros(3, dtype=D), X, y), "theta"),
    ],
)
def test_bad_input_names_the_argument(call, word):
    X, y = _design()
    with pytest.raises(ValueError, match=word):
        call(X, y)


# ---------------------------------------------------------------- logistic


def _logistic_data(separable=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(30, 3, generator=g, dtype=D)
    w = torch.tensor([1.0, -2.0, 0.5], dtype=D)
    y = (X @ w > 0).to(D)
    if not separable:
        y[:4] = 1 - y[:4]
    return X, y


def test_logistic_loss_grad_hessian_match_autograd_and_the_book_formula():
    X, y = _logistic_data(separable=False)
    th = torch.tensor([0.3, -0.2, 0.1], dtype=D)
    p = torch.sigmoid(X @ th)
    book = -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()
    assert float(logistic_loss(th, X, y)) == pytest.approx(float(book), abs=1e-12)
    g = torch.func.grad(lambda t: logistic_loss(t, X, y))(th)
    H = torch.func.hessian(lambda t: logistic_loss(t, X, y))(th)
    assert torch.allclose(logistic_grad(th, X, y), g, atol=1e-12)
    assert torch.allclose(logistic_hessian(th, X, y), H, atol=1e-12)


def test_logistic_batched_data_sets():
    X1, y1 = _logistic_data(seed=0)
    X2, y2 = _logistic_data(seed=1)
    X, y = torch.stack([X1, X2]), torch.stack([y1, y2])
    th = torch.randn(2, 3, dtype=D, generator=torch.Generator().manual_seed(5))
    assert torch.allclose(logistic_grad(th, X, y)[1], logistic_grad(th[1], X2, y2))
    assert torch.allclose(logistic_hessian(th, X, y)[0], logistic_hessian(th[0], X1, y1))
    tr = gd_logistic_regression(X, y, 1.0, 20)
    assert tr.states.shape == (21, 2, 3)


def test_gd_logistic_converges_on_non_separable_data():
    X, y = _logistic_data(separable=False)
    tr = gd_logistic_regression(X, y, 2.0, 3000, record="last")
    assert float(logistic_grad(tr.final, X, y).norm()) < 1e-6


def test_implicit_bias_on_separable_data_and_control():
    X, y = _logistic_data(separable=True)
    Xc, yc = _logistic_data(separable=False)
    p = implicit_bias_path(torch.stack([X, Xc]), torch.stack([y, yc]), 1.0, [10, 100, 1000, 10000])
    assert p.separable == (True, False)
    assert p.svm[1].status == "non-separable"
    norms = p.norm[:, 0]
    assert bool((norms[1:] > norms[:-1]).all())                   # ‖θ_t‖ keeps growing
    assert float(p.cos_to_svm[-1, 0]) > 0.99                       # direction → the SVM's
    assert bool(torch.isnan(p.cos_to_svm[:, 1]).all())             # no SVM on the control
    assert float(p.norm[-1, 1] - p.norm[-2, 1]) < 1e-6             # control: θ converged


@pytest.mark.parametrize(
    "call, word",
    [
        (lambda X, y: logistic_loss(torch.zeros(3, dtype=D), X, 2 * y), "y"),
        (lambda X, y: logistic_grad(torch.zeros(2, dtype=D), X, y), "theta"),
        (lambda X, y: logistic_hessian(torch.zeros(3, dtype=D), X[0], y), "X"),
        (lambda X, y: gd_logistic_regression(X, y, -1.0, 5), "eta"),
        (lambda X, y: implicit_bias_path(X, y, 1.0, [10, 5]), "checkpoints"),
        (lambda X, y: implicit_bias_path(X, y, 1.0, []), "checkpoints"),
    ],
)
def test_logistic_bad_input(call, word):
    X, y = _logistic_data()
    with pytest.raises(ValueError, match=word):
        call(X, y)
