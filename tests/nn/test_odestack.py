"""ODEStack: ResNet = explicit Euler exactly; convergence order; schemes, blocks, checkpointing."""

import math

import pytest
import torch
import torch.nn as nn

from terrainlab.core import RK4, Bosh3, Dopri5, Euler, Heun, ImplicitEuler, Midpoint, Trajectory
from terrainlab.core.root_finders import Newton, NewtonKrylov
from terrainlab.nn import ODEStack


def mlp(d=6, w=16, seed=0, dtype=torch.float64):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d, w), nn.Tanh(), nn.Linear(w, d)).to(dtype)


def test_euler_reproduces_hand_written_resnet_exactly():
    blocks = [mlp(seed=s, dtype=torch.float32) for s in range(5)]
    x = torch.randn(7, 6)
    h = x
    for b in blocks:  # the hand-written ResNet
        h = h + b(h)
    net = ODEStack(blocks, Euler(), steps=5, T=5)
    assert torch.equal(net(x), h)
    tied = ODEStack(blocks[0], Euler(), steps=3)
    h2 = x
    for _ in range(3):
        h2 = h2 + blocks[0](h2)
    assert torch.equal(tied(x), h2)


def test_untied_copies_are_independent_blocks():
    net = ODEStack(mlp(), steps=4, tied=False)
    assert net.n_blocks == 4 and len(list(net.parameters())) == 16
    w = [b[0].weight for b in net.blocks]
    assert not torch.equal(w[0], w[1])
    assert net.block_index(0.0) == 0 and net.block_index(3.999) == 3 and net.block_index(4.0) == 3


@pytest.mark.parametrize("scheme", [Euler(), Heun(), Midpoint(), RK4(), Bosh3()])
def test_refining_steps_converges_at_the_scheme_order(scheme):
    f = mlp()
    x = torch.randn(5, 6, dtype=torch.float64)
    net = ODEStack(f, scheme, steps=4, T=1.0)
    with torch.no_grad():
        ref = net.integrate(x, scheme=RK4(), steps=2048).state
        errs = [(net.integrate(x, steps=n).state - ref).abs().max().item() for n in (16, 32, 64)]
    slopes = [math.log2(errs[i] / errs[i + 1]) for i in range(2)]
    assert all(abs(s - scheme.order) < 0.35 for s in slopes), (errs, slopes)


def test_untied_blocks_refine_at_scheme_order_within_each_block():
    blocks = [mlp(seed=s) for s in range(3)]
    net = ODEStack(blocks, Heun(), steps=3, T=1.0)
    x = torch.randn(4, 6, dtype=torch.float64)
    with torch.no_grad():
        ref = net.integrate(x, scheme=RK4(), steps=3 * 512).state
        e1 = (net.integrate(x, steps=3 * 16).state - ref).abs().max()
        e2 = (net.integrate(x, steps=3 * 32).state - ref).abs().max()
    assert abs(math.log2(e1 / e2) - 2) < 0.35


@pytest.mark.parametrize("finder", [NewtonKrylov(tol=1e-10, max_iter=20), Newton(tol=1e-10, max_iter=20)])
def test_implicit_euler_scheme_runs_with_gradients_and_reports_inner_work(finder):
    f = mlp()
    net = ODEStack(f, ImplicitEuler(finder), steps=4, T=1.0)
    x = torch.randn(3, 6, dtype=torch.float64, requires_grad=True)
    res = net.integrate(x)
    assert res.status == "completed" and res.inner_failures == 0 and res.inner_iterations >= 4
    # each step satisfies y = h + η f(y)
    tr = net.integrate(x.detach(), record=True).states
    for k in range(4):
        assert torch.allclose(tr[k + 1], tr[k] + 0.25 * f(tr[k + 1]), atol=1e-8)
    res.state.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_implicit_inner_failures_are_stalled_and_nan_is_nonfinite():
    f = mlp()
    res = ODEStack(f, ImplicitEuler(NewtonKrylov(tol=1e-14, max_iter=1)), steps=2, T=1.0).integrate(
        torch.randn(3, 6, dtype=torch.float64))
    assert res.status == "stalled" and res.inner_failures > 0
    blocks = [mlp(seed=s) for s in range(3)]
    x = torch.randn(2, 6, dtype=torch.float64)
    x[0, 0] = float("nan")
    res = ODEStack(blocks, Euler(), steps=3, T=3.0).integrate(x)
    assert res.status == "nonfinite" and res.n_steps == 3


@pytest.mark.parametrize("untied", [False, True])
def test_checkpointing_gives_identical_gradients(untied):
    f = [mlp(seed=s) for s in range(3)] if untied else mlp()
    params = [p for b in (f if untied else [f]) for p in b.parameters()]
    x = torch.randn(3, 6, dtype=torch.float64)
    grads = []
    for ck in (False, True):
        for p in params:
            p.grad = None
        ODEStack(f, RK4(), steps=5, T=1.0, checkpoint=ck)(x).pow(2).sum().backward()
        grads.append([p.grad.clone() for p in params])
    for a, b in zip(*grads):  # recomputed steps re-select their own block
        assert torch.allclose(a, b, atol=1e-12)


def test_conv_and_transformer_blocks_as_fields():
    conv = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.Tanh())
    out = ODEStack(conv, Heun(), steps=2, T=1.0)(torch.randn(2, 3, 8, 8))
    assert out.shape == (2, 3, 8, 8)
    tb = nn.TransformerEncoderLayer(d_model=16, nhead=2, dim_feedforward=32, dropout=0.0, batch_first=True)
    res = ODEStack(tb, RK4(), steps=2, T=0.5).integrate(torch.randn(2, 5, 16))
    assert res.state.shape == (2, 5, 16) and res.n_evals == 8


def test_result_is_a_core_trajectory_of_the_whole_stack():
    blocks = [mlp(seed=s) for s in range(3)]
    net = ODEStack(blocks, RK4(), steps=3, T=1.5)
    x = torch.randn(4, 6, dtype=torch.float64)
    res = net.integrate(x, steps=9, record=True)
    assert isinstance(res, Trajectory) and res.status == "completed"
    assert res.states.shape == (10, 4, 6) and res.steps.tolist() == list(range(10))
    assert res.n_steps == 9 and res.n_evals == 36 and torch.equal(res.state, res.final)
    assert torch.equal(res.states[0], x) and torch.equal(res.final, net.integrate(x, steps=9).state)
    # a step straddling a block boundary uses the block of its midpoint, for all of its stages
    h = x
    for k in range(4):  # 4 steps of 3/8 over blocks [0, .5), [.5, 1), [1, 1.5): midpoints → 0, 0, 1, 2
        b = blocks[net.block_index(k * 0.375 + 0.1875, 1.5)]
        h = RK4().step(lambda y, t, b=b: b(y), h, k * 0.375, 0.375).state
    assert torch.allclose(net.integrate(x, steps=4).state, h, rtol=0, atol=1e-15)
    # Dopri5 as a fixed-step scheme through the same path
    assert ODEStack(blocks, Dopri5(), steps=3, T=1.5).integrate(x).n_evals == 3 * 7


def test_time_dependent_field_gets_time():
    class TimeField(nn.Module):
        def forward(self, h, t):
            return torch.full_like(h, 2 * t)  # h' = 2t → h(T) = h0 + T²

    res = ODEStack(TimeField(), Heun(), steps=3, T=1.5).integrate(torch.zeros(2, 1))
    assert torch.allclose(res.state, torch.full((2, 1), 2.25))


def test_bad_arguments_raise_value_error():
    with pytest.raises(ValueError, match="steps"):
        ODEStack(mlp(), steps=0)
    with pytest.raises(ValueError, match="steps"):
        ODEStack(mlp(), steps=None)
    with pytest.raises(ValueError, match="scheme"):
        ODEStack(mlp(), "euler")
    with pytest.raises(ValueError, match="T"):
        ODEStack(mlp(), steps=2, T=-1.0)
    with pytest.raises(ValueError, match="field"):
        ODEStack(lambda h: h, steps=2, tied=False)
    with pytest.raises(ValueError, match="h"):
        ODEStack(mlp(), steps=2).integrate(torch.ones(2, 6, dtype=torch.int64))
    with pytest.raises(ValueError, match="steps"):
        ODEStack(mlp(), steps=2).integrate(torch.ones(2, 6), steps=True)
