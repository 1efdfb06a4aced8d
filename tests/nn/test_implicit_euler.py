"""ImplicitEulerStep: A-stability on a stiff field, solver statuses, implicit gradients."""

import pytest
import torch
import torch.nn as nn

from terrainlab.nn import ImplicitEulerStep


class Stiff(nn.Module):
    """f(h) = A h + 0.1 tanh(h) with eigenvalues of A down to −60: stiff."""

    def __init__(self, d=6):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        Q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
        self.A = nn.Parameter((Q * -torch.linspace(1, 60, d, dtype=torch.float64)) @ Q.T)

    def forward(self, h):
        return h @ self.A.T + 0.1 * torch.tanh(h)


def test_newton_krylov_is_stable_where_explicit_explodes_and_fixed_point_fails():
    f = Stiff()
    h = torch.randn(4, 6, dtype=torch.float64)
    eta = 0.1  # η·|λ_max| = 6: explicit Euler amplifies by |1 − 6| = 5 per step
    nk = ImplicitEulerStep(f, eta, solver="newton_krylov", tol=1e-12)
    fp = ImplicitEulerStep(f, eta, solver="fixed_point", tol=1e-12, max_iter=30)
    x_imp, x_exp = h, h
    for _ in range(10):
        r = nk.solve(x_imp)
        assert r.status == "converged" and r.failures == 0
        x_imp = r.state.detach()
        x_exp = x_exp + eta * f(x_exp).detach()
    assert x_imp.norm() < h.norm() and x_exp.norm() > 1e4 * h.norm()
    y = nk.solve(h).state
    assert torch.allclose(y, h + eta * f(y), atol=1e-10)
    bad = fp.solve(h)  # η·Lip(f) ≈ 6 > 1: the inner fixed point cannot converge — a status, no raise
    assert bad.status in ("diverged", "max_steps") and bad.failures > 0


def test_linear_step_is_exactly_the_resolvent():
    lam = -50.0
    step = ImplicitEulerStep(lambda h: lam * h, 0.1, solver="newton_krylov", tol=1e-13)
    h = torch.randn(3, 2, dtype=torch.float64)
    assert torch.allclose(step(h), h / (1 - 0.1 * lam), atol=1e-12)


def test_implicit_gradients_pass_gradcheck():
    torch.manual_seed(0)
    f = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 4)).double()
    for solver in ("newton_krylov", "anderson"):
        step = ImplicitEulerStep(f, 0.3, solver=solver, tol=1e-13, max_iter=200, adjoint_tol=1e-13)
        h = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda h: step(h), (h,), atol=1e-6, nondet_tol=1e-10)
    w = f[0].weight
    step = ImplicitEulerStep(f, 0.3, tol=1e-13, adjoint_tol=1e-13)

    def of_w(wv):
        with torch.no_grad():
            old = w.clone()
            w.copy_(wv)
        out = step(h.detach())
        with torch.no_grad():
            w.copy_(old)
        return out

    res = step.solve(h.detach())
    (res.state ** 2).sum().backward()
    assert res.backward.calls == 1 and res.backward.converged
    gw = w.grad.clone()
    e = 1e-6
    idx = (1, 2)
    wp, wm = w.detach().clone(), w.detach().clone()
    wp[idx] += e
    wm[idx] -= e
    fd = ((of_w(wp) ** 2).sum() - (of_w(wm) ** 2).sum()) / (2 * e)
    assert abs(float(fd.detach()) - float(gw[idx])) < 1e-6


def test_bad_arguments():
    with pytest.raises(ValueError, match="eta"):
        ImplicitEulerStep(nn.Identity(), eta=0.0)
    with pytest.raises(ValueError, match="solver"):
        ImplicitEulerStep(nn.Identity(), solver="lbfgs")
    step = ImplicitEulerStep(lambda h: -h, 0.5)
    for bad in (-1, 0.0, float("nan")):  # a per-call eta is checked like the layer's
        with pytest.raises(ValueError, match="^eta"):
            step.solve(torch.ones(2, 3), eta=bad)
    with pytest.raises(ValueError, match="^h must"):
        step.solve(torch.ones(2, 3, dtype=torch.int64))


def test_step_is_core_implicit_euler_with_a_root_finder():
    from terrainlab.core import Anderson, ImplicitEuler, NewtonKrylov, Picard, rollout

    step = ImplicitEulerStep(lambda h: -3.0 * h, 0.2)
    assert isinstance(step.scheme, ImplicitEuler) and isinstance(step.solver, NewtonKrylov)
    assert step.solver == NewtonKrylov(tol=1e-6, max_iter=50, krylov_dim=30)
    assert isinstance(ImplicitEulerStep(nn.Identity(), solver="fixed_point").solver, Picard)
    custom = ImplicitEulerStep(lambda h: -3.0 * h, 0.2, solver=Anderson(m=3), tol=1e-12)
    assert custom.solver == Anderson(m=3, tol=1e-12)
    h = torch.randn(4, 5, dtype=torch.float64)
    # the layer and a core rollout of one step are the same computation
    ref = rollout(lambda x, t: -3.0 * x, h, eta=0.2, steps=1, scheme=ImplicitEuler(NewtonKrylov(tol=1e-6)))
    assert torch.equal(step(h), ref.final)
    one_d = ImplicitEulerStep(lambda h: -3.0 * h, 0.2, tol=1e-12).solve(torch.ones(6, dtype=torch.float64))
    assert one_d.state.shape == (6,) and one_d.iterations.shape == (6,)
    assert torch.allclose(one_d.state, torch.full((6,), 1 / 1.6, dtype=torch.float64))
