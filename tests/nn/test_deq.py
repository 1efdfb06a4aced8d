"""DEQ and fixed-point solvers: same fixed point, Anderson beats Picard, statuses, memory, gradients."""

import gc

import pytest
import torch
import torch.nn as nn

from terrainlab.nn import DEQ, Anderson, Broyden, Newton, Picard, fixed_point


def contractive_problem(d=32, B=16, rho=0.95, seed=0, dtype=torch.float64, scale=0.3):
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=dtype))
    W = (Q * torch.linspace(-rho, rho, d, dtype=dtype)) @ Q.T
    x = scale * torch.randn(B, d, generator=g, dtype=dtype)
    return W, x


def test_solvers_reach_the_same_fixed_point_and_anderson_beats_picard():
    W, x = contractive_problem()

    def g(z):
        return torch.tanh(z @ W.T + x)

    z0 = torch.zeros_like(x)
    res = {s.name: fixed_point(g, z0, solver=s, tol=1e-10, max_iter=2000) for s in (Picard(), Anderson(), Broyden())}
    for r in res.values():
        assert r.status == "converged"
        assert torch.allclose(g(r.z), r.z, atol=1e-8)
    assert torch.allclose(res["anderson"].z, res["picard"].z, atol=1e-7)
    assert torch.allclose(res["broyden"].z, res["picard"].z, atol=1e-7)
    it = {k: int(r.iterations.max()) for k, r in res.items()}
    assert it["anderson"] * 2 < it["picard"], it
    assert it["broyden"] * 2 < it["picard"], it
    assert len(res["picard"].residual_history) == it["picard"]


def test_per_sample_convergence_records_emergent_depth():
    d = 8
    x = torch.zeros(2, d, dtype=torch.float64)
    scales = torch.tensor([[0.2], [0.9]], dtype=torch.float64)
    r = fixed_point(lambda z: scales * z + 1.0, x, solver=Picard(), tol=1e-8, max_iter=1000)
    assert r.status == "converged"
    assert r.iterations[0] < r.iterations[1] / 4  # slower contraction → deeper
    assert torch.allclose(r.z, 1 / (1 - scales) * torch.ones(2, d, dtype=torch.float64), atol=1e-6)


@pytest.mark.parametrize("solver", [Picard(), Anderson(), Broyden()])
def test_divergence_is_a_status_not_an_exception(solver):
    z0 = torch.zeros(3, 4)
    # z + 1 + z² has no real fixed point: every solver must give up with a status
    r = fixed_point(lambda z: z + 1.0 + z**2, z0, solver=solver, tol=1e-6, max_iter=300)
    assert r.status in ("diverged", "max_steps") and not r.converged.any()
    assert torch.isfinite(r.z).all() and torch.isfinite(r.residual).all()
    nan = fixed_point(lambda z: z * float("nan"), z0, solver=solver, max_iter=5)
    assert nan.status == "nonfinite" and torch.equal(nan.z, z0)
    picard = fixed_point(lambda z: 3.0 * z + 1.0, z0, solver=Picard(), max_iter=200)
    assert picard.status == "diverged" and (picard.row_status == 2).all()
    rot = fixed_point(lambda z: z.flip(-1) * torch.tensor([1.0, -1.0]), torch.ones(2, 2), solver=Picard(), max_iter=7)
    assert rot.status == "max_steps" and (rot.iterations == 7).all()


def test_anderson_and_broyden_find_a_repelling_fixed_point_picard_cannot():
    z0 = torch.zeros(3, 4, dtype=torch.float64)
    for s in (Anderson(), Broyden()):
        r = fixed_point(lambda z: 3.0 * z + 1.0, z0, solver=s, tol=1e-10, max_iter=50)
        assert r.status == "converged" and torch.allclose(r.z, torch.full_like(z0, -0.5))


def test_deq_max_iter_status_and_best_iterate():
    W, x = contractive_problem(rho=0.99, scale=0.05)
    deq = DEQ(lambda z, x: torch.tanh(z @ W.T + x), solver=Picard(), tol=1e-10, max_iter=5)
    z, info = deq(x)
    assert info.status == "max_steps" and (info.iterations == 5).all()
    assert info.residual.max() > 1e-10


def _live_tensor_bytes():
    gc.collect()
    return sum(o.untyped_storage().nbytes() for o in gc.get_objects() if type(o) in (torch.Tensor, nn.Parameter))


@pytest.mark.parametrize("solver", [Anderson(m=5), Broyden(m=8)])
def test_solver_memory_does_not_grow_with_iterations(solver):
    # a tolerance below float precision: every solver runs to max_iter
    W, x = contractive_problem(d=64, B=32, rho=0.9, dtype=torch.float32)
    seen = {}
    count = [0]

    def g(z):
        count[0] += 1
        if count[0] in (15, 150):
            seen[count[0]] = _live_tensor_bytes()
        return torch.tanh(z @ W.T + x)

    r = fixed_point(g, torch.zeros_like(x), solver=solver, tol=1e-30, max_iter=160)
    assert r.n_evals == 160
    assert seen[150] <= seen[15] + 64 * 1024, seen  # flat: no per-iteration tensors kept


def test_implicit_gradients_pass_gradcheck():
    W, x = contractive_problem(d=5, B=3, rho=0.8, scale=1.0)
    W = W.clone().requires_grad_(True)
    x = x.clone().requires_grad_(True)

    def fn(x, W):
        deq = DEQ(lambda z, x: torch.tanh(z @ W.T + x), solver=Anderson(), tol=1e-13, max_iter=300,
                  adjoint_tol=1e-13, adjoint_max_iter=300)
        return deq(x)[0]

    assert torch.autograd.gradcheck(fn, (x, W), atol=1e-6)


def _grads(backward, max_iter, tol=1e-12):
    W, x = contractive_problem(d=16, B=4, rho=0.9, scale=1.0)
    lin = nn.Linear(16, 16, bias=True).double()
    with torch.no_grad():
        lin.weight.copy_(W)
        lin.bias.copy_(torch.linspace(-0.5, 0.5, 16))
    deq = DEQ(lambda z, x: torch.tanh(lin(z) + x), solver=Picard(), backward=backward, tol=tol,
              max_iter=max_iter, adjoint_tol=1e-12, adjoint_max_iter=500)
    z, info = deq(x)
    z.pow(2).sum().backward()
    return lin.weight.grad.clone(), info


def test_implicit_equals_unrolled_when_converged_and_differs_when_not():
    gi, info = _grads("implicit", 2000)
    gu, _ = _grads("unrolled", 2000)
    gj, _ = _grads("jfb", 2000)
    assert info.status == "converged"
    assert info.backward.calls == 1 and info.backward.converged
    assert torch.allclose(gi, gu, rtol=1e-6, atol=1e-9)
    assert (gj - gi).norm() > 1e-2 * gi.norm()  # JFB is only an approximation
    gi3, info3 = _grads("implicit", 3)
    gu3, _ = _grads("unrolled", 3)
    assert info3.status == "max_steps"  # the status says the implicit gradient is not to be trusted
    assert (gi3 - gu3).norm() > 1e-2 * gu3.norm()
    # ... and the backward record says so too: the adjoint converged, the forward did not
    assert info3.backward.calls == 1 and info3.backward.converged is False
    assert info3.backward.forward_status == "max_steps" and info3.backward.status == "max_steps"


def test_deq_module_field_jacobian_regulariser_and_errors():
    class Cell(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(8, 8)

        def forward(self, z, x):
            return torch.tanh(0.5 * self.lin(z) + x)

    cell = Cell()
    deq = DEQ(cell, solver="broyden", jac_reg=True, tol=1e-6)
    z, info = deq(torch.randn(4, 8))
    assert info.status == "converged" and info.jacobian_loss is not None
    (z.sum() + info.jacobian_loss).backward()
    assert cell.lin.weight.grad is not None
    # the Hutchinson probes come from the generator given to forward: same seed, same penalty
    x = torch.randn(4, 8)
    pen = [deq(x, generator=torch.Generator().manual_seed(s))[1].jacobian_loss.item() for s in (3, 3, 4)]
    assert pen[0] == pen[1] and pen[0] != pen[2]
    with pytest.raises(ValueError, match="backward"):
        DEQ(cell, backward="phantom")
    with pytest.raises(ValueError, match="solver"):
        DEQ(cell, solver="lbfgs")
    with pytest.raises(ValueError, match="max_iter"):
        DEQ(cell, max_iter=0)


@pytest.mark.parametrize("solver", ["picard", "anderson", "broyden"])
def test_deq_on_image_shaped_states(solver):
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 3, 3, padding=1)
    with torch.no_grad():
        conv.weight.mul_(0.3)
    deq = DEQ(lambda z, x: torch.tanh(conv(z) + x), solver=solver, tol=1e-6, max_iter=200)
    x = torch.randn(2, 3, 8, 8)
    z, info = deq(x)
    assert z.shape == x.shape and info.status == "converged"
    assert torch.allclose(z, torch.tanh(conv(z) + x), atol=1e-4)
    z.sum().backward()
    assert conv.weight.grad is not None and info.backward.converged


def test_nn_solvers_are_core_root_finders():
    import terrainlab.core as core
    import terrainlab.nn as tnn

    assert tnn.Anderson is core.Anderson and tnn.Picard is core.Picard and tnn.Broyden is core.Broyden
    assert tnn.fixed_point is core.root_finders.fixed_point
    with pytest.warns(DeprecationWarning, match="RootResult"):
        assert tnn.FixedPointResult is core.RootResult
    with pytest.warns(DeprecationWarning, match="AbstractRootFinder"):
        assert tnn.FixedPointSolver is core.AbstractRootFinder


def test_fixed_point_bad_inputs_name_the_argument():
    z0 = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="^g must be callable"):
        fixed_point(3, z0)
    with pytest.raises(ValueError, match=r"g\(z\) must have the dtype of z0 \(torch.float32\), got torch.float64"):
        fixed_point(lambda z: z.double() * 0.5, z0)
    empty = fixed_point(lambda z: 0.5 * z, torch.empty(0, 3))  # nothing to solve: trivially converged
    assert empty.status == "converged" and empty.z.shape == (0, 3) and empty.n_evals == 0
    with pytest.raises(ValueError, match="z0"):
        fixed_point(lambda z: z, [1.0, 2.0])
    with pytest.raises(ValueError, match="tol"):
        fixed_point(lambda z: z, z0, tol=-1.0)


def test_deq_bad_inputs_name_the_argument():
    lin = nn.Linear(4, 4)

    def f(z, x):
        return torch.tanh(0.5 * lin(z) + x)

    x = torch.randn(3, 4)
    with pytest.raises(ValueError, match="z0 must have shape"):
        DEQ(f)(x, z0=torch.zeros(3, 5))
    with pytest.raises(ValueError, match="^adjoint_tol"):
        DEQ(f, adjoint_tol=-1)
    with pytest.raises(ValueError, match="^adjoint_max_iter"):
        DEQ(f, adjoint_max_iter=0)
    with pytest.raises(ValueError, match="^jac_samples"):
        DEQ(f, jac_samples=0)
    with pytest.raises(ValueError, match="^f must be callable"):
        DEQ(3)
    with pytest.raises(ValueError, match="^tol"):
        DEQ(f, tol=0.0)
    z, info = DEQ(f)(x, z0=torch.zeros(3, 4))  # the right shape is fine
    assert info.status == "converged"


def test_deq_takes_any_core_root_finder_and_overrides_its_settings():
    W, x = contractive_problem(d=8, B=4, rho=0.9, scale=1.0)
    deq = DEQ(lambda z, x: torch.tanh(z @ W.T + x), solver=Newton(), tol=1e-12)
    assert deq.solver == Newton(tol=1e-12) and deq.max_iter == 50
    z, info = deq(x)
    assert info.status == "converged" and int(info.iterations.max()) <= 8
    assert torch.allclose(z, torch.tanh(z @ W.T + x), atol=1e-10)
