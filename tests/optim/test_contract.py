"""The contract every terrainlab optimizer passes (optax-style, parametrised over one table)."""

from __future__ import annotations

import io

import pytest
import torch

from terrainlab.core import gradient_field, rollout
from terrainlab.optim import (
    GD,
    Adam,
    AdamW,
    DenseFisher,
    HeavyBall,
    MirrorDescent,
    NaturalGradient,
    NegativeEntropy,
    Nesterov,
    ProximalGradient,
    ProximalPoint,
)
from terrainlab.terrains.closed_form import bowl_loss as bowl
from terrainlab.terrains.closed_form import rosenbrock_loss as rosenbrock

START = (-1.2, 1.0)  # the same start for every optimizer and both terrains
MIN = torch.tensor([1.0, 1.0], dtype=torch.float64)


def _resid(name, th):
    """Residuals r with L = Σ r² (Gaussian model outputs; their Fisher is the Gauss–Newton JᵀJ)."""
    if name == "rosenbrock":
        return torch.stack([1 - th[0], 10**0.5 * (th[1] - th[0] ** 2)])
    return th - 1.0


# name -> (factory(params, terrain_name), steps)
CONTRACT = {
    "GD": (lambda p, n: GD(p, lr=0.015), 2000),
    "HeavyBall": (lambda p, n: HeavyBall(p, lr=0.005, beta=0.9), 600),
    "Nesterov": (lambda p, n: Nesterov(p, lr=0.005, beta=0.9), 600),
    "Nesterov-convex": (lambda p, n: Nesterov(p, lr=0.01, schedule="convex"), 2000),
    "Adam": (lambda p, n: Adam(p, lr=0.02), 1500),
    "AdamW": (lambda p, n: AdamW(p, lr=0.02, weight_decay=1e-6), 1500),
    "ProximalGradient": (lambda p, n: ProximalGradient(p, lr=0.015), 2000),
    "ProximalPoint": (lambda p, n: ProximalPoint(p, lr=1.0, inner_lr=0.015, inner_steps=50, tol=1e-12), 60),
    "MirrorDescent": (lambda p, n: MirrorDescent(p, lr=0.015), 2000),
    "NaturalGradient": (
        lambda p, n: NaturalGradient(p, lr=0.25, damping=1e-6, fisher=DenseFisher(lambda: _resid(n, p[0]))),
        60,
    ),
}
TERRAINS = {"bowl": bowl, "rosenbrock": rosenbrock}


def _train(factory, name, steps, th0=START):
    th = torch.tensor(th0, dtype=torch.float64, requires_grad=True)
    opt = factory([th], name)
    fn = TERRAINS[name]

    def closure():
        opt.zero_grad()
        loss = fn(th)
        loss.backward()
        return loss

    for _ in range(steps):
        opt.step(closure)
    return th.detach(), opt


@pytest.mark.parametrize("terrain", list(TERRAINS))
@pytest.mark.parametrize("name", list(CONTRACT))
def test_converges_from_the_same_start(name, terrain):
    factory, steps = CONTRACT[name]
    th, _ = _train(factory, terrain, steps)
    assert torch.isfinite(th).all()
    assert (th - MIN).norm() < 1e-4, f"{name} on {terrain} ended at {th.tolist()}"


def test_mirror_descent_entropy_converges_on_positive_orthant():
    psi = NegativeEntropy(simplex=False)
    th, _ = _train(lambda p, n: MirrorDescent(p, lr=0.01, psi=psi), "rosenbrock", 3000, th0=(0.3, 1.5))
    assert (th - MIN).norm() < 1e-4


# ---- twins: torch.optim in float64 over many steps -------------------------------------------
TWINS = {
    "GD": (lambda p: GD(p, lr=0.05, weight_decay=1e-3), lambda p: torch.optim.SGD(p, lr=0.05, weight_decay=1e-3)),
    "HeavyBall": (
        lambda p: HeavyBall(p, lr=0.02, beta=0.9, weight_decay=1e-3),
        lambda p: torch.optim.SGD(p, lr=0.02, momentum=0.9, weight_decay=1e-3),
    ),
    "Nesterov": (
        lambda p: Nesterov(p, lr=0.02, beta=0.9, weight_decay=1e-3),
        lambda p: torch.optim.SGD(p, lr=0.02, momentum=0.9, nesterov=True, weight_decay=1e-3),
    ),
    "Adam": (
        lambda p: Adam(p, lr=3e-3, betas=(0.8, 0.99), eps=1e-7, weight_decay=1e-3),
        lambda p: torch.optim.Adam(p, lr=3e-3, betas=(0.8, 0.99), eps=1e-7, weight_decay=1e-3),
    ),
    "AdamW": (
        lambda p: AdamW(p, lr=3e-3, weight_decay=0.1),
        lambda p: torch.optim.AdamW(p, lr=3e-3, weight_decay=0.1),
    ),
}


def _mlp(seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(5, 16), torch.nn.Tanh(), torch.nn.Linear(16, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1)
    ).double()


def _data():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(64, 5, generator=g, dtype=torch.float64)
    return x, torch.sin(x.sum(1, keepdim=True))


def _steps(model, opt, n, x, y):
    for _ in range(n):
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()


@pytest.mark.parametrize("name", list(TWINS))
def test_matches_torch_optim_twin(name):
    ours, theirs = TWINS[name]
    a, b = _mlp(0), _mlp(0)
    oa, ob = ours(a.parameters()), theirs(b.parameters())
    x, y = _data()
    for _ in range(4):  # 4 × 75 steps, compared along the way
        _steps(a, oa, 75, x, y)
        _steps(b, ob, 75, x, y)
        diff = max((pa - pb).abs().max().item() for pa, pb in zip(a.parameters(), b.parameters()))
        assert diff < 1e-7, f"{name} drifted from its torch twin by {diff}"
    moved = max((pa - pc).abs().max().item() for pa, pc in zip(a.parameters(), _mlp(0).parameters()))
    assert moved > 1e-2  # the comparison is not vacuous


# ---- state dict round trip ------------------------------------------------------------------
@pytest.mark.parametrize("name", [n for n in CONTRACT if n not in ("ProximalPoint", "NaturalGradient")])
def test_state_dict_round_trip(name):
    factory = CONTRACT[name][0]
    x, y = _data()
    a = _mlp(0)
    oa = factory(list(a.parameters()), "bowl")
    _steps(a, oa, 10, x, y)
    buf = io.BytesIO()
    torch.save(oa.state_dict(), buf)
    buf.seek(0)
    b = _mlp(0)
    b.load_state_dict(a.state_dict())
    ob = factory(list(b.parameters()), "bowl")
    ob.load_state_dict(torch.load(buf, weights_only=True))
    _steps(a, oa, 10, x, y)
    _steps(b, ob, 10, x, y)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


# ---- the two faces agree: optimizer in a loop == scheme in rollout --------------------------
SCHEME_FACES = ["GD", "HeavyBall", "Adam", "AdamW", "ProximalGradient", "MirrorDescent", "Nesterov",
                "Nesterov-convex"]


@pytest.mark.parametrize("name", SCHEME_FACES)
def test_scheme_face_reproduces_optimizer(name):
    factory, _ = CONTRACT[name]
    n = 50
    th, opt = _train(factory, "rosenbrock", n)
    scheme = opt.as_scheme()
    lr = opt.param_groups[0]["lr"]
    th0 = torch.tensor(START, dtype=torch.float64)
    tr = rollout(gradient_field(rosenbrock), scheme.init(th0), eta=lr, steps=n, scheme=scheme, record="last")
    final = tr.final
    if name.startswith("Nesterov"):  # the optimizer holds the look-ahead point
        got = final[0] + scheme.beta_at(int(final[2]) + 1) * final[1]  # φ_k = θ_k + β_{k+1} v_k
    else:
        got = scheme.params(final)
    assert torch.allclose(got, th, atol=1e-12, rtol=0), (got, th)


def test_bad_arguments_raise_value_error():
    p = [torch.zeros(2, requires_grad=True)]
    with pytest.raises(ValueError, match="lr"):
        GD(p, lr=-1)
    with pytest.raises(ValueError, match="beta"):
        HeavyBall(p, lr=0.1, beta=1.0)
    with pytest.raises(ValueError, match="schedule"):
        Nesterov(p, lr=0.1, schedule="linear")
    with pytest.raises(ValueError, match="betas"):
        Adam(p, betas=(0.9,))
    with pytest.raises(ValueError, match="closure"):
        ProximalPoint(p, lr=0.1).step()
    with pytest.raises(ValueError, match="psi"):
        MirrorDescent(p, lr=0.1, psi="entropy")
    with pytest.raises(ValueError, match="positive"):
        MirrorDescent([torch.zeros(3, requires_grad=True)], lr=0.1, psi=NegativeEntropy())
    with pytest.raises(ValueError, match="fisher"):
        NaturalGradient(p, lr=0.1, fisher=None)
