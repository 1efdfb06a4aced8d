"""Block products: ``matmat`` (one pass over the data for k vectors) equals the column loop, and the
algorithms that use it (to_dense, Hutch++ / trace probes, SLQ, eigs certificates) agree with it."""

import pytest
import torch

from terrainlab.curvature import (
    DenseOperator,
    FisherOperator,
    GGNOperator,
    HessianOperator,
    PreconditionedOperator,
    eigs,
    spectral_density,
    trace,
)

F = torch.nn.functional


def _net(conv=False):
    torch.manual_seed(0)
    if conv:
        return torch.nn.Sequential(
            torch.nn.Conv2d(2, 3, 3, padding=1), torch.nn.Tanh(), torch.nn.Flatten(), torch.nn.Linear(3 * 5 * 5, 4)
        )
    return torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 4))


def _data(conv=False, n=40):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 2, 5, 5, generator=g) if conv else torch.randn(n, 5, generator=g)
    y = torch.randint(0, 4, (n,), generator=g)
    return [(x[:9], y[:9]), (x[9:25], y[9:25]), (x[25:], y[25:])]  # three unequal batches


def ce(m, b):
    return F.cross_entropy(m(b[0]), b[1])


def _operators(conv):
    net, data = _net(conv), _data(conv)
    kw = dict(dtype=torch.float64)
    ops = {
        "hessian": HessianOperator(net, ce, data, **kw),
        "hessian-func": HessianOperator(net, ce, data, backend="func", **kw),
        "hessian-cached": HessianOperator(net, ce, data[:1], cache_graph=True, **kw),
        "ggn": GGNOperator(net, lambda out, b: F.cross_entropy(out, b[1]), data, **kw),
        "fisher-true": FisherOperator(net, data, kind="true", **kw),
        "fisher-empirical": FisherOperator(net, data, kind="empirical", **kw),
        "fisher-gaussian-emp": FisherOperator(net, [(x, F.one_hot(y, 4).double()) for x, y in data],
                                              likelihood="gaussian", kind="empirical", sigma=0.5, **kw),
        "bn-eval": HessianOperator(net, ce, data, mode="eval", **kw),
    }
    H = ops["hessian"]
    ops["preconditioned"] = PreconditionedOperator(H, torch.linspace(0.5, 2.0, H.size, dtype=torch.float64))
    A = torch.randn(H.size, H.size, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    ops["dense"] = DenseOperator(A + A.T)
    return ops


@pytest.mark.parametrize("conv", [False, True], ids=["mlp", "cnn"])
def test_matmat_equals_column_loop_float64(conv):
    V = None
    for name, op in _operators(conv).items():
        if V is None or V.shape[0] != op.size:
            V = torch.randn(op.size, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
        loop = torch.stack([op.matvec(V[:, i]) for i in range(V.shape[1])], dim=1)
        before = op.n_matvec
        block = op.matmat(V)
        assert op.n_matvec - before == 6, name  # a block of k counts k products
        scale = loop.abs().max().clamp_min(1e-300)
        assert float((block - loop).abs().max() / scale) < 1e-10, name
        assert getattr(op, "block_backend", "vmap") == "vmap", name  # vectorised, no fallback


def test_matmat_chunks_wide_blocks_and_rejects_bad_shapes():
    op = _operators(False)["hessian"]
    op.block_size = 4
    V = torch.randn(op.size, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    ref = torch.stack([op.matvec(V[:, i]) for i in range(10)], dim=1)
    assert torch.allclose(op.matmat(V), ref, rtol=0, atol=1e-12)
    assert torch.allclose(op @ V, ref, rtol=0, atol=1e-12)
    assert op.matmat(V[:, :0]).shape == (op.size, 0)
    with pytest.raises(ValueError, match="V must be a tensor of shape"):
        op.matmat(V[:-1])
    with pytest.raises(ValueError, match="block_size"):
        HessianOperator(_net(), ce, _data(), block_size=0)


def test_fallback_loop_when_batched_backward_fails(monkeypatch):
    """An op without a batching rule makes the vectorised backward raise: the product falls back to
    a loop over the columns (sharing the forward), says so, and still equals the column loop."""
    real = torch.autograd.grad

    def no_batching(*args, **kwargs):
        if kwargs.get("is_grads_batched"):
            raise RuntimeError("Batching rule not implemented for aten::some_op")
        return real(*args, **kwargs)

    def no_vmap(*args, **kwargs):
        raise RuntimeError("Batching rule not implemented for aten::some_op")

    for name in ("hessian", "hessian-cached", "ggn", "fisher-empirical"):
        op = _operators(False)[name]
        V = torch.randn(op.size, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
        ref = torch.stack([op.matvec(V[:, i]) for i in range(3)], dim=1)
        with monkeypatch.context() as m:
            m.setattr(torch.autograd, "grad", no_batching)
            m.setattr(torch.func, "vmap", no_vmap)
            out = op.matmat(V)
        assert op.block_backend == "loop", name
        assert torch.allclose(out, ref, rtol=0, atol=1e-12), name


def test_to_dense_in_blocks_matches_column_loop():
    for name, op in _operators(False).items():
        op.block_size = 8
        eye = torch.eye(op.size, dtype=torch.float64)
        loop = torch.stack([op.matvec(eye[:, i]) for i in range(op.size)], dim=1)
        assert torch.allclose(op.to_dense(), loop, rtol=0, atol=1e-10 * float(loop.abs().max())), name


def test_trace_probes_in_blocks_give_the_column_loop_estimate():
    """The probes are drawn in the same order whatever the block width, so the estimates agree."""
    op = _operators(False)["ggn"]
    for method in ("hutchinson", "hutch++", "krylov-hutch++"):
        got = {}
        for width in (1, 7, 64):
            op.block_size = width
            got[width] = trace(op, method, n_matvec=30, generator=torch.Generator().manual_seed(0))
        for width in (7, 64):
            assert abs(got[width].estimate - got[1].estimate) < 1e-10 * abs(got[1].estimate), method
            assert got[width].n_matvec == got[1].n_matvec == 30
            assert got[width].status == "completed"


def test_slq_block_runs_match_one_probe_at_a_time():
    op = _operators(False)["hessian"]
    runs = {}
    for width in (1, 5):
        op.block_size = width
        runs[width] = spectral_density(op, n_probes=5, lanczos_steps=12, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(runs[5].nodes, runs[1].nodes, rtol=0, atol=1e-10)
    assert torch.allclose(runs[5].weights, runs[1].weights, rtol=0, atol=1e-10)
    assert runs[5].n_matvec == runs[1].n_matvec == 60
    assert runs[5].status == "completed"


def test_eigs_certificates_as_one_block_are_honest():
    op = _operators(False)["dense"]
    r = eigs(op, k=4, which="LA", tol=1e-9, generator=torch.Generator().manual_seed(0))
    ref = torch.linalg.eigvalsh(op.matrix).flip(0)[:4]
    assert r.status == "converged"
    assert torch.allclose(r.eigenvalues, ref, rtol=1e-8, atol=0)
    res = (op.matrix @ r.eigenvectors - r.eigenvectors * r.eigenvalues).norm(dim=0)
    assert torch.allclose(res, r.residuals, rtol=1e-6, atol=1e-12)
