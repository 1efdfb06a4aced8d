import pytest
import torch

from terrainlab.curvature import HessianOperator
from terrainlab.landscape import (
    hessian_directions,
    interpolate,
    line,
    pca_directions,
    plane,
    plot_plane,
    project,
    random_direction,
)

F = torch.nn.functional


class Quadratic(torch.nn.Module):
    """L(θ) = ½ θᵀAθ + bᵀθ as a 'model' with one parameter vector (batch is ignored)."""

    def __init__(self, A, b, theta):
        super().__init__()
        self.register_buffer("A", A)
        self.register_buffer("b", b)
        self.theta = torch.nn.Parameter(theta)

    def forward(self, _x):
        return 0.5 * self.theta @ self.A @ self.theta + self.b @ self.theta


def test_plane_on_quadratic_equals_analytic_surface():
    g = torch.Generator().manual_seed(0)
    M = torch.randn(6, 6, generator=g, dtype=torch.float64)
    A, b, th = M @ M.T, torch.randn(6, generator=g, dtype=torch.float64), torch.randn(6, generator=g, dtype=torch.float64)
    model = Quadratic(A, b, th.clone())
    d1, d2 = torch.randn(6, generator=g, dtype=torch.float64), torch.randn(6, generator=g, dtype=torch.float64)
    al, be = torch.linspace(-2, 2, 9), torch.linspace(-1, 3, 7)
    res = plane(model, lambda m, batch: m(batch[0]), [(torch.zeros(3, 1),)], d1, d2, al, be, chunk_size=5)
    assert res.vectorized and res.losses.shape == (9, 7)
    for i, a in enumerate(al.double()):
        for j, c in enumerate(be.double()):
            p = th + a * d1 + c * d2
            assert float(res.losses[i, j]) == pytest.approx(float(0.5 * p @ A @ p + b @ p), rel=1e-12, abs=1e-12)
    assert torch.equal(model.theta.detach(), th)  # model untouched


def _relu_net(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(5, 12), torch.nn.ReLU(), torch.nn.Linear(12, 3)).double()


def ce(m, b):
    return F.cross_entropy(m(b[0]), b[1])


@pytest.mark.parametrize("bias", ["zero", "filter"])
def test_filter_normalisation_invariant_to_relu_rescaling(bias):
    x, y = torch.randn(40, 5, dtype=torch.float64), torch.randint(0, 3, (40,))
    net = _relu_net()
    scaled = _relu_net()
    c = 7.0
    with torch.no_grad():
        scaled[0].weight.mul_(c)
        scaled[0].bias.mul_(c)
        scaled[2].weight.div_(c)
    al = torch.linspace(-1, 1, 11)
    out = {}
    for norm in ("filter", "none"):
        for name, m in (("orig", net), ("scaled", scaled)):
            d1 = random_direction(m, normalization=norm, bias=bias, generator=torch.Generator().manual_seed(1))
            d2 = random_direction(m, normalization=norm, bias=bias, generator=torch.Generator().manual_seed(2))
            out[norm, name] = plane(m, ce, [(x, y)], d1, d2, al, al).losses
    torch.testing.assert_close(out["filter", "orig"], out["filter", "scaled"], rtol=1e-10, atol=1e-12)
    # without normalisation the same rescaling changes the picture
    assert float((out["none", "orig"] - out["none", "scaled"]).abs().max()) > 1e-2


def test_direction_norms_and_bias_treatment():
    net = _relu_net()
    d = random_direction(net, generator=torch.Generator().manual_seed(0))
    W = d[:60].reshape(12, 5)
    torch.testing.assert_close(W.norm(dim=1), net[0].weight.detach().norm(dim=1), rtol=1e-6, atol=1e-9)
    assert torch.all(d[60:72] == 0)  # first bias
    df = random_direction(net, bias="filter", generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(df[60:72].abs(), net[0].bias.detach().abs())
    bn = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    dbn = random_direction(bn, generator=torch.Generator().manual_seed(0))
    assert dbn.numel() == 12 + 4 + 4 + 4 and torch.all(dbn[12:] == 0)
    with pytest.raises(ValueError, match="normalization"):
        random_direction(net, normalization="model")


def test_pca_and_project_recover_plane_coordinates():
    g = torch.Generator().manual_seed(0)
    o = torch.randn(50, generator=g, dtype=torch.float64)
    D = torch.linalg.qr(torch.randn(50, 2, generator=g, dtype=torch.float64))[0].T
    c = torch.randn(30, 2, generator=g, dtype=torch.float64) * torch.tensor([3.0, 1.0], dtype=torch.float64)
    c[-1] = 0
    traj = o + c @ D
    pca = pca_directions(traj, k=2)
    assert float(pca.explained_variance_ratio.sum()) == pytest.approx(1.0, abs=1e-10)
    coords = project(traj, pca.origin, pca.directions)
    torch.testing.assert_close(pca.origin + coords @ pca.directions, traj, atol=1e-10, rtol=0)
    # projection onto given (non-orthogonal) directions is exact too
    D2 = torch.stack([D[0] + D[1], D[1]])
    c2 = project(traj, o, D2)
    torch.testing.assert_close(o + c2 @ D2, traj, atol=1e-10, rtol=0)


def test_chunking_and_loop_fallback_agree_and_bn_untouched():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
    data = [(x[:10], y[:10]), (x[10:], y[10:])]
    d = random_direction(net, generator=torch.Generator().manual_seed(0))
    al = torch.linspace(-1, 1, 7)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    r_train = line(net, ce, data, d, al)  # BN in train mode: in-place stat updates → loop
    assert not r_train.vectorized and net.training
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k])
    r_bn = line(net, ce, data, d, al, mode="bn_eval", chunk_size=3)
    r_bn1 = line(net, ce, data, d, al, mode="bn_eval", chunk_size=1)
    assert r_bn.vectorized and net.training
    torch.testing.assert_close(r_bn.losses, r_bn1.losses, rtol=1e-6, atol=1e-7)
    net.eval()
    with torch.no_grad():
        ref = [(10 * ce(net, data[0]) + 22 * ce(net, data[1])) / 32]
    assert float(r_bn.losses[3]) == pytest.approx(float(ref[0]), rel=1e-5)


def test_interpolate_barrier_and_hessian_directions(tmp_path):
    torch.manual_seed(0)
    x, y = torch.randn(60, 5, dtype=torch.float64), torch.randint(0, 3, (60,))
    a, b = _relu_net(0), _relu_net(0)
    perm = torch.randperm(12)
    with torch.no_grad():  # b = a with hidden units permuted: same function, different θ
        b[0].weight.copy_(a[0].weight[perm])
        b[0].bias.copy_(a[0].bias[perm])
        b[2].weight.copy_(a[2].weight[:, perm])
    r = interpolate(a, b, ce, [(x, y)], n_points=11)
    assert r.loss_a == pytest.approx(r.loss_b, rel=1e-10)
    gap = r.losses - ((1 - r.alphas) * r.loss_a + r.alphas * r.loss_b)
    assert r.barrier == pytest.approx(float(gap.max())) and r.barrier >= 0
    assert float(gap.abs().max()) > 1e-3  # same function at both ends, not along the segment
    lin_a, lin_b = torch.nn.Linear(5, 1).double(), torch.nn.Linear(5, 1).double()
    yr = torch.randn(60, 1, dtype=torch.float64)
    r2 = interpolate(lin_a, lin_b, lambda m, bt: F.mse_loss(m(bt[0]), bt[1]), [(x, yr)], n_points=11)
    assert r2.barrier <= 1e-12  # convex loss: no barrier
    H = HessianOperator(a, ce, [(x, y)])
    dirs, eig = hessian_directions(H, k=2, tol=1e-6)
    assert bool(eig.converged.all()) and dirs.shape == (2, H.size)
    res = line(a, ce, [(x, y)], dirs[0], torch.linspace(-1e-2, 1e-2, 5))
    curv = float((res.losses[0] - 2 * res.losses[2] + res.losses[4]) / (1e-2) ** 2)
    assert curv == pytest.approx(float(eig.eigenvalues[0]), rel=1e-2)
    pl = plane(a, ce, [(x, y)], dirs[0], dirs[1], torch.linspace(-1, 1, 5), torch.linspace(-1, 1, 5))
    fig = plot_plane(pl, trajectory=torch.tensor([[0.5, 0.5], [0.0, 0.0]]), title="t")
    fig.savefig(tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 1000


@pytest.mark.parametrize("kind", ["mlp_with_prefix", "cnn"])
def test_strategies_and_affine_head_agree(kind):
    torch.manual_seed(0)
    if kind == "cnn":
        net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, stride=2), torch.nn.ReLU(), torch.nn.Flatten(),
                                  torch.nn.Linear(4 * 7 * 7, 3)).double()
        x = torch.randn(6, 3, 16, 16, dtype=torch.float64)
    else:
        net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 7), torch.nn.Tanh(),
                                  torch.nn.Linear(7, 3)).double()
        x = torch.randn(6, 3, 4, dtype=torch.float64)
    y = torch.randint(0, 3, (6,))
    data = [(x[:2], y[:2]), (x[2:], y[2:])]
    g = torch.Generator().manual_seed(0)
    d1 = random_direction(net, generator=g, bias="filter")
    d2 = random_direction(net, generator=g, bias="filter")
    al = torch.linspace(-1, 1, 5)
    ref = plane(net, ce, data, d1, d2, al, al, strategy="vmap", affine_head=False, chunk_size=1)
    assert ref.strategy == "vmap" and not ref.affine_head
    for strategy in ("loop", "vmap"):
        r = plane(net, ce, data, d1, d2, al, al, strategy=strategy, affine_head=True)
        assert r.affine_head and r.strategy == strategy
        torch.testing.assert_close(r.losses, ref.losses, rtol=1e-10, atol=1e-12)
    # brute force: write each point into a copy of the model
    import copy

    from terrainlab.params import ParamSpec

    spec = ParamSpec.from_module(net)
    m2 = copy.deepcopy(net)
    o = spec.vector(net)
    spec.assign(m2, o + al[1].double() * d1 + al[3].double() * d2)
    with torch.no_grad():
        want = (2 * ce(m2, data[0]) + 4 * ce(m2, data[1])) / 6
    assert float(ref.losses[1, 3]) == pytest.approx(float(want), rel=1e-12)


def test_param_filter_with_affine_head_matches_plain_path():
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(5, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3)).double()
    x, y = torch.randn(9, 5, dtype=torch.float64), torch.randint(0, 3, (9,))
    for sel in (lambda n, p: n.startswith("2."), lambda n, p: n.startswith("0.")):
        g = torch.Generator().manual_seed(0)
        d1 = random_direction(net, params=sel, generator=g)
        d2 = random_direction(net, params=sel, generator=g)
        al = torch.linspace(-1, 1, 4)
        ref = plane(net, ce, [(x, y)], d1, d2, al, al, params=sel, strategy="vmap", affine_head=False)
        for strategy in ("loop", "vmap"):
            r = plane(net, ce, [(x, y)], d1, d2, al, al, params=sel, strategy=strategy)
            assert r.affine_head
            torch.testing.assert_close(r.losses, ref.losses, rtol=1e-10, atol=1e-12)
