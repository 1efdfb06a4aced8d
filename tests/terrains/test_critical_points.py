"""Critical points and classification against known answers."""

import math

import numpy as np
import pytest
import torch
from scipy.optimize import brentq

from terrainlab.terrains import (
    CriticalPoint,
    Terrain,
    classify,
    classify_eigenvalues,
    critical_points,
    get,
)


def _close(p, q, tol=1e-6):
    return math.dist(p, q) < tol


def test_himmelblau_all_nine_points():
    cp = critical_points(get("himmelblau"))
    assert cp.counts == {"min": 4, "saddle": 4, "max": 1, "degenerate": 0}
    assert cp.euler_characteristic == 1
    lit = get("himmelblau").minima
    for m in lit:
        assert any(_close(p.location, m, 2e-6) for p in cp.of_kind("min"))
    assert _close(cp.of_kind("max")[0].location, (-0.270845, -0.923039), 2e-6)
    assert all(p.grad_norm < 1e-8 for p in cp)
    assert all(abs(p.value) < 1e-20 for p in cp.of_kind("min"))
    # the sort: minima first, by value
    assert [p.kind for p in cp] == ["min"] * 4 + ["saddle"] * 4 + ["max"]
    saddle_vals = [p.value for p in cp.of_kind("saddle")]
    assert saddle_vals == sorted(saddle_vals)
    assert all(p.index == 1 for p in cp.of_kind("saddle")) and cp.of_kind("max")[0].index == 2


def test_bowls_rosenbrock_beale_double_wells_saddle():
    cp = critical_points(get("rosenbrock"))
    assert [p.kind for p in cp] == ["min"] and _close(cp[0].location, (1.0, 1.0), 1e-9)
    assert cp[0].hessian_eigenvalues == pytest.approx((0.3937, 101.6063), abs=1e-3)
    beale = critical_points(get("beale"))
    assert _close(beale.of_kind("min")[0].location, (3.0, 0.5), 1e-9)
    assert len(beale.of_kind("min")) == 1
    # (0, 1) is a non-degenerate saddle with H = [[·, 27.75], [27.75, 0]]-type mixed curvature
    assert any(_close(p.location, (0.0, 1.0), 1e-9) for p in beale.of_kind("saddle"))
    dw = critical_points(get("double_well_2d"))
    assert [(p.kind, p.location) for p in dw] == [
        ("min", pytest.approx((-1.0, 0.0), abs=1e-10)),
        ("min", pytest.approx((1.0, 0.0), abs=1e-10)),
        ("saddle", pytest.approx((0.0, 0.0), abs=1e-10)),
    ]
    s = critical_points(get("saddle"))
    assert len(s) == 1 and s[0].kind == "saddle" and s[0].hessian_eigenvalues == pytest.approx((-2, 2))
    b = critical_points(get("anisotropic_bowl"))
    assert len(b) == 1 and b[0].kind == "min" and b[0].hessian_eigenvalues == pytest.approx((2, 6))


def test_double_well_1d_matches_independent_root_finder():
    T = get("double_well_1d")
    cp = critical_points(T)
    f = lambda x: x**3 - 4 * x + 1  # noqa: E731
    ref = [brentq(f, -3, -1), brentq(f, 0, 1), brentq(f, 1, 3)]
    locs = sorted(p.location[0] for p in cp)
    assert locs == pytest.approx(ref, abs=1e-12)
    kinds = {round(p.location[0], 3): p.kind for p in cp}
    assert kinds == {-2.115: "min", 0.254: "max", 1.861: "min"}
    curv = {round(p.location[0], 3): p.hessian_eigenvalues[0] for p in cp}
    assert curv[-2.115] == pytest.approx(9.4185, abs=1e-3) and curv[1.861] == pytest.approx(6.3878, abs=1e-3)


def test_bumpy_bowl_critical_points_agree_with_scipy():
    from scipy.optimize import fsolve

    T = get("bumpy_bowl")
    cp = critical_points(T)
    assert all(p.grad_norm < 1e-8 for p in cp)

    def g(p):  # closed form, independent of autograd
        x, y = p
        return [2 * x + 2.7 * np.cos(1.8 * x) * np.cos(1.8 * y), 4 * y - 2.7 * np.sin(1.8 * x) * np.sin(1.8 * y)]

    found = set()
    for x0 in np.linspace(-2.9, 2.9, 15):
        for y0 in np.linspace(-1.9, 1.9, 11):
            s, _, ier, _ = fsolve(g, [x0, y0], full_output=True, xtol=1e-12)
            if ier == 1 and np.linalg.norm(g(s)) < 1e-9:
                found.add((round(s[0], 6) + 0.0, round(s[1], 6) + 0.0))
    ours = {(round(p.location[0], 6) + 0.0, round(p.location[1], 6) + 0.0) for p in cp}
    assert ours == found
    # a bigger bump creates a second minimum and a saddle; the finder sees them
    big = critical_points(get("bumpy_bowl", amplitude=2.5))
    assert big.counts["min"] >= 2 and big.counts["saddle"] >= 1 and big.euler_characteristic == 1


def test_degenerate_cases_flat_and_ring():
    flat = critical_points(get("flat"))
    assert len(flat) == 1 and flat[0].kind == "degenerate" and abs(flat[0].location[0]) < 1e-6
    sharp = critical_points(get("sharp"))
    assert len(sharp) == 1 and sharp[0].kind == "min" and sharp[0].hessian_eigenvalues[0] == pytest.approx(1.6)
    ring = critical_points(get("ring"), n_grid=12)
    assert ring.of_kind("max")[0].location == pytest.approx((0.0, 0.0), abs=1e-12)
    circle = ring.of_kind("degenerate")
    assert len(circle) > 4 and not ring.of_kind("min")
    assert all(abs(math.hypot(*p.location) - 1) < 1e-8 for p in circle)


def test_box_restricts_and_extra_starts():
    T = get("himmelblau")
    cp = critical_points(T, box=((0.0, 5.0), (0.0, 5.0)), n_grid=20)
    assert all(0 <= p.location[0] <= 5 and 0 <= p.location[1] <= 5 for p in cp)
    assert any(_close(p.location, (3.0, 2.0)) for p in cp)
    assert not any(p.location[0] < 0 for p in cp)
    one = critical_points(get("double_well_1d"), n_grid=1, starts=torch.tensor([[2.5], [-2.5]]))
    assert sorted(p.kind for p in one) == ["max", "min", "min"]
    assert one.n_starts == 3


def test_non_convergence_is_a_count_not_an_error():
    # L = θ1² + exp(θ2) has no critical point at all
    T = Terrain("nocp", lambda t: t[..., 0] ** 2 + torch.exp(t[..., 1]), 2, ((-1, 1), (-1, 1)), "")
    cp = critical_points(T, n_grid=5, max_iter=30)
    assert len(cp) == 0 and cp.n_converged == 0 and cp.n_starts == 25


def test_float32_terrain_inputs_work():
    T = get("bowl")
    x = torch.randn(7, 2, dtype=torch.float32)
    assert T.hessian(x).dtype == torch.float32
    torch.testing.assert_close(T.hessian(x), 2 * torch.eye(2).expand(7, 2, 2))
    cp = critical_points(T, starts=x, n_grid=3)  # float32 starts are promoted to float64
    assert len(cp) == 1 and cp[0].grad_norm < 1e-12


def test_inner_loop_hessian_equals_torch_func():
    from terrainlab.terrains.critical import grad_and_hessian

    for name in ("bumpy_bowl", "beale", "double_well_1d", "saddle"):
        T = get(name)
        x = torch.randn(50, T.dim, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
        g, H = grad_and_hessian(T.fn, x)
        torch.testing.assert_close(g, T.grad(x), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(H, T.hessian(x), rtol=1e-12, atol=1e-10)


def test_classify_each_way():
    assert classify(torch.diag(torch.tensor([1.0, 2.0]))) == "min"
    assert classify(np.diag([-1.0, -3.0])) == "max"
    assert classify([[0.0, 1.0], [1.0, 0.0]]) == "saddle"  # eigenvalues ±1, zero diagonal
    assert classify([[1.0, 0.0], [0.0, 1e-9]]) == "degenerate"
    assert classify([[1.0, 0.0], [0.0, 1e-9]], tol=1e-12) == "min"
    assert classify([[0.0]]) == "degenerate"
    # rotated: positive-definite with negative off-diagonal entries
    Q = torch.linalg.qr(torch.randn(4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))[0]
    for ev, kind in [([1, 2, 3, 4], "min"), ([-1, -2, -3, -4], "max"), ([-1, 2, 3, 4], "saddle")]:
        H = Q @ torch.diag(torch.tensor(ev, dtype=torch.float64)) @ Q.T
        assert classify(H) == kind
    assert classify_eigenvalues([1.0, -1.0]) == "saddle"


def test_classify_and_finder_bad_input():
    with pytest.raises(ValueError, match="H must be a square"):
        classify(torch.ones(2, 3))
    with pytest.raises(ValueError, match="H must be symmetric"):
        classify([[1.0, 2.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="H must be finite"):
        classify([[float("nan")]])
    with pytest.raises(ValueError, match="tol must be"):
        classify([[1.0]], tol=-1)
    T = get("bowl")
    with pytest.raises(ValueError, match="box must have 2"):
        critical_points(T, box=((0, 1),))
    with pytest.raises(ValueError, match="lo < hi"):
        critical_points(T, box=((0, 1), (1, 1)))
    with pytest.raises(ValueError, match="n_grid must be"):
        critical_points(T, n_grid=0)
    with pytest.raises(ValueError, match="terrain must be a Terrain"):
        critical_points(lambda t: t)
    with pytest.raises(ValueError, match=r"starts must have shape \(\.\.\., 2\)"):
        critical_points(T, starts=torch.zeros(3, 3))
    with pytest.raises(ValueError, match="kind must be one of"):
        critical_points(T, n_grid=2).of_kind("minimum")


def test_result_is_frozen():
    cp = critical_points(get("sharp"), n_grid=4)
    with pytest.raises(AttributeError):
        cp.n_starts = 3
    with pytest.raises(AttributeError):
        cp[0].kind = "max"
    assert isinstance(cp[0], CriticalPoint)
