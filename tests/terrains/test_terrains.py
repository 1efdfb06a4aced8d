"""Tests of the terrain catalogue: closed forms vs autograd, batching, dtypes, bad input."""

import math

import numpy as np
import pytest
import torch

from terrainlab.core import Euler, StepTolerance, rollout
from terrainlab.terrains import CATALOGUE, Terrain, get

# closed-form gradients and Hessians at a point (x, y) or (x,)
A, K = 1.5, 1.8


def closed_forms(name, p):
    if len(p) == 1:
        (x,) = p
        return {
            "double_well_1d": ([x**3 - 4 * x + 1], [[3 * x**2 - 4]]),
            "sharp": ([1.6 * x], [[1.6]]),
            "flat": ([0.32 * x**3], [[0.96 * x**2]]),
            "quadratic": ([4 * x], [[4.0]]),
        }[name]
    x, y = p
    s, c = math.sin, math.cos
    table = {
        "bowl": ([2 * x, 2 * y], [[2, 0], [0, 2]]),
        "anisotropic_bowl": ([2 * x, 6 * y], [[2, 0], [0, 6]]),
        "bumpy_bowl": (
            [2 * x + A * K * c(K * x) * c(K * y), 4 * y - A * K * s(K * x) * s(K * y)],
            [[2 - A * K * K * s(K * x) * c(K * y), -A * K * K * c(K * x) * s(K * y)],
             [-A * K * K * c(K * x) * s(K * y), 4 - A * K * K * s(K * x) * c(K * y)]],
        ),
        "double_well_2d": ([4 * x * (x * x - 1), 2 * y], [[12 * x * x - 4, 0], [0, 2]]),
        "saddle": ([2 * x, -2 * y], [[2, 0], [0, -2]]),
        "rosenbrock": (
            [-2 * (1 - x) - 40 * x * (y - x * x), 20 * (y - x * x)],
            [[2 - 40 * y + 120 * x * x, -40 * x], [-40 * x, 20]],
        ),
        "ring": (
            [4 * x * (x * x + y * y - 1), 4 * y * (x * x + y * y - 1)],
            [[4 * (x * x + y * y - 1) + 8 * x * x, 8 * x * y],
             [8 * x * y, 4 * (x * x + y * y - 1) + 8 * y * y]],
        ),
        "himmelblau": (
            [4 * x * (x * x + y - 11) + 2 * (x + y * y - 7), 2 * (x * x + y - 11) + 4 * y * (x + y * y - 7)],
            [[12 * x * x + 4 * y - 42, 4 * x + 4 * y], [4 * x + 4 * y, 4 * x + 12 * y * y - 26]],
        ),
    }
    if name == "beale":
        a, b, cc = 1.5 - x + x * y, 2.25 - x + x * y**2, 2.625 - x + x * y**3
        gx = 2 * a * (y - 1) + 2 * b * (y**2 - 1) + 2 * cc * (y**3 - 1)
        gy = 2 * a * x + 2 * b * 2 * x * y + 2 * cc * 3 * x * y**2
        hxx = 2 * (y - 1) ** 2 + 2 * (y**2 - 1) ** 2 + 2 * (y**3 - 1) ** 2
        hxy = (2 * x * (y - 1) + 2 * a + 2 * 2 * x * y * (y**2 - 1) + 2 * b * 2 * y
               + 2 * 3 * x * y**2 * (y**3 - 1) + 2 * cc * 3 * y**2)
        hyy = 2 * x * x + 2 * (2 * x * y) ** 2 + 2 * b * 2 * x + 2 * (3 * x * y**2) ** 2 + 2 * cc * 6 * x * y
        return [gx, gy], [[hxx, hxy], [hxy, hyy]]
    return table[name]


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_closed_form_grad_and_hessian_match_autograd(name):
    T = get(name)
    rng = np.random.default_rng(0)
    pts = [tuple(rng.uniform(lo, hi) for lo, hi in T.box) for _ in range(5)]
    theta = torch.tensor(pts, dtype=torch.float64)
    G, H = T.grad(theta), T.hessian(theta)
    assert G.shape == (5, T.dim) and H.shape == (5, T.dim, T.dim)
    for i, p in enumerate(pts):
        g_ref, h_ref = closed_forms(name, p)
        np.testing.assert_allclose(G[i].numpy(), g_ref, rtol=1e-10, atol=1e-9)
        np.testing.assert_allclose(H[i].numpy(), h_ref, rtol=1e-10, atol=1e-9)
    # torch.autograd (not torch.func) agrees too, and the field is −∇L
    th = theta.clone().requires_grad_(True)
    (g2,) = torch.autograd.grad(T(th).sum(), th)
    torch.testing.assert_close(g2, G)
    torch.testing.assert_close(T.field()(theta, 0.0), -G)


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_batching_shapes_and_dtypes(name):
    T = get(name)
    g = torch.Generator().manual_seed(1)
    theta64 = torch.randn(3, 4, T.dim, generator=g, dtype=torch.float64)
    L = T(theta64)
    assert L.shape == (3, 4) and L.dtype == torch.float64
    # batched evaluation equals one-at-a-time evaluation
    single = torch.stack([T(theta64[i, j]) for i in range(3) for j in range(4)]).reshape(3, 4)
    torch.testing.assert_close(L, single)
    L32 = T(theta64.float())
    assert L32.dtype == torch.float32
    torch.testing.assert_close(L32.double(), L, rtol=1e-4, atol=1e-4)
    assert T.hessian(theta64).shape == (3, 4, T.dim, T.dim)
    assert T.grad(theta64[0, 0]).shape == (T.dim,)
    assert T.hessian(theta64[0, 0]).shape == (T.dim, T.dim)


def test_known_minima_are_stationary_with_the_stated_values():
    for name in CATALOGUE:
        T = get(name)
        if not T.minima:
            continue
        m = torch.tensor(T.minima, dtype=torch.float64)
        gn = torch.linalg.vector_norm(T.grad(m), dim=-1)
        lit = name == "himmelblau"  # three of Himmelblau's minima are known to 6 digits only
        assert float(gn.max()) < (1e-4 if lit else 1e-10), name
        ev = torch.linalg.eigvalsh(T.hessian(m))
        assert bool((ev >= -1e-12).all()), name


def test_double_well_1d_critical_points_rederived():
    T = get("double_well_1d")
    roots = sorted(np.roots([1.0, 0.0, -4.0, 1.0]).real)  # L' = θ³ − 4θ + 1
    assert [m[0] for m in T.minima] == pytest.approx([roots[0], roots[2]], abs=1e-12)
    assert roots == pytest.approx([-2.115, 0.254, 1.861], abs=1e-3)  # the book's numbers
    curv = [3 * r * r - 4 for r in roots]
    assert curv[0] == pytest.approx(9.42, abs=5e-3) and curv[2] == pytest.approx(6.39, abs=5e-3)
    assert curv[1] < 0
    H = T.hessian(torch.tensor([[roots[0]], [roots[2]]], dtype=torch.float64))
    assert H[:, 0, 0].tolist() == pytest.approx([curv[0], curv[2]], rel=1e-10)


def test_rosenbrock_hessian_at_minimum_matches_book():
    T = get("rosenbrock")
    ev = torch.linalg.eigvalsh(T.hessian(torch.tensor([1.0, 1.0], dtype=torch.float64)))
    assert ev.tolist() == pytest.approx([0.394, 101.6], abs=7e-3)  # book rounds
    assert get("rosenbrock", b=100.0)(torch.tensor([0.0, 1.0])).item() == pytest.approx(101.0)


def test_parameters_change_the_terrain():
    x = torch.tensor([1.0, 1.0], dtype=torch.float64)
    assert get("anisotropic_bowl", a=2.0, b=5.0)(x).item() == pytest.approx(7.0)
    assert get("sharp", c=0.5)(x[:1]).item() == pytest.approx(0.5)
    assert get("bumpy_bowl", amplitude=0.0)(x).item() == pytest.approx(3.0)


def test_works_with_torch_func_and_core_rollout():
    T = get("bowl")
    J = torch.func.jacrev(T.field())(torch.tensor([0.3, -0.2], dtype=torch.float64))
    torch.testing.assert_close(J, -2 * torch.eye(2, dtype=torch.float64))
    tr = rollout(T.field(), torch.tensor([[1.0, -1.0]], dtype=torch.float64), eta=0.1, steps=500,
                 scheme=Euler(), stop=StepTolerance(1e-12))
    assert tr.status == "converged" and float(tr.final.abs().max()) < 1e-10


def test_grid_for_plotting():
    (X, Y), L = get("bumpy_bowl").grid(21)
    assert X.shape == Y.shape == L.shape == (21, 21)
    assert float(X.min()) == -3.0 and float(Y.max()) == 2.0
    (x,), L1 = get("double_well_1d").grid(11)
    assert x.shape == L1.shape == (11,)


def test_bad_input_raises_value_error():
    T = get("bowl")
    with pytest.raises(ValueError, match=r"theta must have shape \(\.\.\., 2\)"):
        T(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="theta must have shape"):
        T.grad(torch.zeros(3))
    with pytest.raises(ValueError, match="floating"):
        T(torch.zeros(2, dtype=torch.int64))
    with pytest.raises(ValueError, match="torch tensor"):
        T([0.0, 0.0])
    with pytest.raises(ValueError, match="name must be one of"):
        get("no_such_terrain")
    with pytest.raises(ValueError, match="b must be"):
        get("rosenbrock", b=-1.0)
    with pytest.raises(ValueError, match="box must have 2"):
        Terrain("t", lambda t: t.sum(-1), 2, ((0.0, 1.0),), "x")
    with pytest.raises(ValueError, match=r"box\[1\] must be finite with lo < hi"):
        Terrain("t", lambda t: t.sum(-1), 2, ((0.0, 1.0), (2.0, 1.0)), "x")
    with pytest.raises(ValueError, match="dim must be"):
        Terrain("t", lambda t: t.sum(-1), 0, (), "x")
    with pytest.raises(ValueError, match="minima must be points"):
        Terrain("t", lambda t: t.sum(-1), 2, ((0, 1), (0, 1)), "x", minima=((0.0,),))
    with pytest.raises(ValueError, match="n must be"):
        T.grid(1)


def test_closed_forms_match_autograd():
    from terrainlab.terrains.closed_form import (
        bowl_loss,
        double_well_grad,
        double_well_loss,
        rosenbrock_field,
        rosenbrock_hessian,
        rosenbrock_loss,
    )

    th = torch.tensor([[0.3, -0.7], [1.2, 0.4]], dtype=torch.float64)
    g = torch.func.vmap(torch.func.grad(lambda x: rosenbrock_loss(x, b=7.0)))(th)
    assert torch.allclose(rosenbrock_field(7.0)(th), -g, atol=1e-12)
    H = torch.func.hessian(lambda x: rosenbrock_loss(x, b=7.0))(th[0])
    assert torch.allclose(torch.tensor(rosenbrock_hessian(0.3, -0.7, 7.0), dtype=torch.float64), H, atol=1e-12)
    x = torch.linspace(-3, 3, 7, dtype=torch.float64)[:, None]
    dw = torch.func.vmap(torch.func.grad(lambda v: double_well_loss(v).sum()))(x)
    assert torch.allclose(dw, double_well_grad(x), atol=1e-12)
    assert bowl_loss(torch.tensor([1.0, 1.0])).item() == 0.0 and rosenbrock_loss(torch.ones(2)).item() == 0.0
