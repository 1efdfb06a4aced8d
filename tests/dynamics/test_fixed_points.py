"""Fixed points, Jacobians and stability classes against closed forms."""

import math

import pytest
import torch

from terrainlab.core import Simplex, as_map, gradient_field, linear_field
from terrainlab.dynamics import (
    classify_flow,
    classify_map,
    euler_flip_eta,
    find_fixed_points,
    grid_starts,
    jacobian,
    simplex_tangent_basis,
)

D64 = torch.float64


def double_well_2d(s):
    return (s[..., 0] ** 2 - 1) ** 2 + s[..., 1] ** 2


def sorted_pts(res):
    pts = res.fixed
    order = torch.argsort(pts[:, 0])
    return pts[order], [res.kinds[i] for i in torch.nonzero(~res.is_slow).flatten()[order].tolist()]


def test_jacobian_linear_and_basis():
    A = torch.tensor([[0.0, 1.0, 2.0], [-2.0, -3.0, 0.5], [1.0, 0.0, -1.0]], dtype=D64)
    J = jacobian(linear_field(A), torch.randn(5, 3, dtype=D64))
    assert J.shape == (5, 3, 3)
    assert torch.allclose(J, A.expand(5, 3, 3))
    B = simplex_tangent_basis(3)
    assert torch.allclose(B.T @ B, torch.eye(2, dtype=D64))
    assert float(B.sum(0).abs().max()) < 1e-14
    Jt = jacobian(linear_field(A), torch.rand(2, 3, dtype=D64), basis=B)
    assert torch.allclose(Jt, (B.T @ A @ B).expand(2, 2, 2))
    # nonlinear: the gradient field of the double well has Jacobian −Hessian
    J2 = jacobian(gradient_field(double_well_2d), torch.tensor([[0.5, 0.3]], dtype=D64))
    assert torch.allclose(J2[0], -torch.diag(torch.tensor([12 * 0.25 - 4, 2.0], dtype=D64)))


def test_double_well_fixed_points_and_classes():
    F = gradient_field(double_well_2d)
    res = find_fixed_points(F, grid_starts([(-2, 2), (-2, 2)], 9), eta=0.3)
    pts, kinds = sorted_pts(res)
    assert res.n_points == 3 and res.n_failed == 0
    assert torch.allclose(pts, torch.tensor([[-1.0, 0], [0, 0], [1, 0]], dtype=D64), atol=1e-10)
    assert kinds == ["attractor", "saddle", "attractor"]
    assert float(res.residuals.max()) < 1e-10
    # flow eigenvalues: minus the Hessian diag(8, 2) at the minima, diag(-4, 2) at the saddle
    for p, eig in zip(res.points, res.eigenvalues):
        expected = [-2.0, -8.0] if abs(float(p[0])) > 0.5 else [4.0, -2.0]
        assert torch.allclose(eig.real, torch.tensor(expected, dtype=D64), atol=1e-8)
        assert float(eig.imag.abs().max()) < 1e-12
    # Euler map at η = 0.3 > 2/8: the minima are no longer attractors of GD; the flip is at 0.25
    for i, p in enumerate(res.points):
        if abs(float(p[0])) > 0.5:
            assert res.map_kinds[i] == "saddle"
            assert float(res.flip_eta[i]) == pytest.approx(0.25, abs=1e-10)


def test_gd_map_fixed_points_equal_critical_points_for_every_eta():
    # book ch06: explicit Euler creates no spurious fixed points; map eigenvalues are 1 + ηλ
    F = gradient_field(lambda th: 0.25 * th[..., 0] ** 4 - 2 * th[..., 0] ** 2 + th[..., 0] + 6)
    inits = torch.linspace(-4, 4, 41, dtype=D64)[:, None]
    flow = find_fixed_points(F, inits)
    for eta in (0.05, 0.3, 0.8):
        mp = find_fixed_points(as_map(F, eta), inits, kind="map")
        assert mp.n_points == flow.n_points == 3
        a, b = torch.sort(mp.points[:, 0])[0], torch.sort(flow.points[:, 0])[0]
        assert torch.allclose(a, b, atol=1e-9)
        lam = {round(float(p), 6): complex(e[0]) for p, e in zip(flow.points[:, 0], flow.eigenvalues)}
        for p, e in zip(mp.points[:, 0], mp.eigenvalues):
            assert complex(e[0]).real == pytest.approx(1 + eta * lam[round(float(p), 6)].real, abs=1e-8)
    # critical points of the book's double well: −2.115 (L''=9.42), 0.254, 1.861 (L''=6.39)
    pts = torch.sort(flow.points[:, 0])[0]
    assert torch.allclose(pts, torch.tensor([-2.1149, 0.2541, 1.8608], dtype=D64), atol=1e-4)
    flips = {round(float(p), 3): float(f) for p, f in zip(flow.points[:, 0], flow.flip_eta)}
    assert flips[-2.115] == pytest.approx(2 / 9.4166, rel=1e-3)
    assert flips[1.861] == pytest.approx(2 / 6.3909, rel=1e-3)


def test_linear_saddle_and_hopf_normal_form():
    sad = find_fixed_points(linear_field(torch.diag(torch.tensor([1.0, -1.0], dtype=D64))), torch.randn(8, 2, dtype=D64))
    assert sad.n_points == 1 and sad.kinds == ["saddle"]

    def hopf(mu, omega=2.0):
        def F(s, t=0.0):
            x, y = s[..., 0], s[..., 1]
            r2 = x * x + y * y
            return torch.stack([mu * x - omega * y - x * r2, omega * x + mu * y - y * r2], -1)
        return F

    for mu, kind in ((1.0, "repeller"), (-1.0, "attractor"), (0.0, "non-hyperbolic")):
        res = find_fixed_points(hopf(mu), 0.3 * torch.randn(16, 2, dtype=D64), max_iter=200)
        assert res.n_points == 1, res.summary()
        assert float(res.points.abs().max()) < 1e-4
        assert res.kinds == [kind]
        if mu != 0.0:
            e = sorted(res.eigenvalues[0].tolist(), key=lambda z: z.imag)
            assert e[0] == pytest.approx(complex(mu, -2.0), abs=1e-8)
            assert e[1] == pytest.approx(complex(mu, 2.0), abs=1e-8)


def test_logistic_period_two_window():
    r = 3.2
    T = lambda x: r * x * (1 - x)
    T2 = lambda x: T(T(x))
    res = find_fixed_points(T2, torch.linspace(0.01, 0.99, 60, dtype=D64)[:, None], kind="map")
    pts = torch.sort(res.points[:, 0])[0]
    disc = math.sqrt((r - 3) * (r + 1))
    expected = sorted([0.0, 1 - 1 / r, (r + 1 - disc) / (2 * r), (r + 1 + disc) / (2 * r)])
    assert torch.allclose(pts, torch.tensor(expected, dtype=D64), atol=1e-10)
    for p, k, e in zip(res.points[:, 0], res.kinds, res.eigenvalues):
        p = float(p)
        if abs(p - (r + 1 - disc) / (2 * r)) < 1e-6 or abs(p - (r + 1 + disc) / (2 * r)) < 1e-6:
            assert k == "attractor"
            assert float(e[0].real) == pytest.approx(-(r ** 2) + 2 * r + 4, abs=1e-8)
        else:
            assert k == "repeller"
    # the same window through T itself: both fixed points repel, the period-2 orbit is elsewhere
    res1 = find_fixed_points(T, torch.linspace(0.01, 0.99, 30, dtype=D64)[:, None], kind="map")
    assert sorted(res1.kinds) == ["repeller", "repeller"]


def test_slow_point_reported():
    F = lambda x: x ** 2 + 0.1  # no zero; q = ½(x²+0.1)² has its minimum at x = 0
    res = find_fixed_points(F, torch.linspace(-2, 2, 9, dtype=D64)[:, None])
    assert res.n_converged == 0 and res.n_slow == 9
    assert res.n_points == 1 and bool(res.is_slow[0])
    assert abs(float(res.points[0, 0])) < 1e-6
    assert float(res.residuals[0]) == pytest.approx(0.1, abs=1e-9)
    assert res.fixed.shape[0] == 0


def test_simplex_fixed_points_tangent_eigs():
    target = torch.tensor([0.5, 0.3, 0.2], dtype=D64)
    F = lambda p: 2.0 * (target - p)  # linear contraction on the simplex, tangent by construction
    gen = torch.Generator().manual_seed(0)
    from terrainlab.dynamics import dirichlet_starts

    res = find_fixed_points(F, dirichlet_starts(3, 50, gen), geometry=Simplex(), eta=1.5)
    assert res.n_points == 1
    assert torch.allclose(res.points[0], target, atol=1e-12)
    assert res.eigenvalues.shape == (1, 2)  # K − 1 tangent eigenvalues
    assert torch.allclose(res.eigenvalues[0].real, torch.tensor([-2.0, -2.0], dtype=D64))
    assert res.kinds == ["attractor"] and res.map_kinds == ["saddle"] or res.map_kinds == ["repeller"]


def test_simplex_multiwell_counts():
    a = torch.tensor([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]], dtype=D64)

    def E(p):
        kl = (a * (a.log() - p[..., None, :].clamp_min(1e-300).log())).sum(-1)
        return -0.1 * torch.logsumexp(-kl / 0.1, -1)

    F = gradient_field(E)
    from terrainlab.dynamics import dirichlet_starts

    res = find_fixed_points(F, dirichlet_starts(3, 200, torch.Generator().manual_seed(1)), geometry=Simplex())
    assert res.n_failed == 0
    assert sorted(res.kinds) == ["attractor"] * 3 + ["repeller"] + ["saddle"] * 3
    assert torch.allclose(res.points.sum(-1), torch.ones(7, dtype=D64))
    assert bool((res.points >= 0).all())


def test_gru_cell_hidden_update_no_special_cases():
    torch.manual_seed(0)
    H = 16
    cell = torch.nn.GRUCell(4, H)
    with torch.no_grad():
        cell.bias_ih.zero_()
        cell.bias_hh.zero_()
        cell.weight_hh.mul_(5.0)  # strong recurrence: h = 0 unstable, attractors elsewhere
    x = torch.zeros(1, 4)  # input held fixed
    T = lambda h: cell(x.expand(h.shape[0], -1), h)
    h0 = 2 * torch.rand(256, H) - 1
    with torch.no_grad():  # starts sampled from the cell's own trajectories (Sussillo & Barak 2013)
        for _ in range(10):
            h0 = T(h0)
    res = find_fixed_points(T, h0, kind="map", bound=1.0)
    assert res.n_converged > 200 and res.n_points >= 3
    with torch.no_grad():
        gap = (T(res.fixed) - res.fixed).norm(dim=-1)
    assert float(gap.max()) < 1e-5
    # h = 0 is a fixed point; there z = r = σ(0) = ½ and DT(0) = ½ I + ¼ W_hn (closed form)
    i0 = int(res.fixed.norm(dim=-1).argmin())
    assert float(res.fixed[i0].norm()) < 1e-5
    W_hn = cell.weight_hh[2 * H:].detach().double()
    e_closed = torch.linalg.eigvals(0.5 * torch.eye(H, dtype=D64) + 0.25 * W_hn).abs().sort().values
    assert torch.allclose(res.eigenvalues[i0].abs().sort().values, e_closed, atol=1e-4)
    assert res.kinds[i0] in ("saddle", "repeller")
    # every other point: eigenvalues agree with an independent autograd Jacobian
    for i in range(res.n_points):
        h = res.points[i]
        Jref = torch.autograd.functional.jacobian(lambda v: T(v[None])[0], h)
        eref = torch.linalg.eigvals(Jref.double()).abs().sort().values
        assert torch.allclose(res.eigenvalues[i].abs().sort().values, eref, atol=1e-4)
    # an attractor found is stable under iteration of the cell
    att = [i for i, k in enumerate(res.kinds) if k == "attractor"]
    assert att
    s = res.points[att[0]][None] + 1e-3 * torch.randn(1, H)
    with torch.no_grad():
        for _ in range(300):
            s = T(s)
    assert float((s - res.points[att[0]]).norm()) < 1e-3
    # the matrix-free path (CG with Jacobian-vector products) finds points of the same set
    mf = find_fixed_points(T, h0[:32], kind="map", method="matrix-free", bound=1.0, max_iter=60)
    assert mf.method == "matrix-free" and mf.n_jvp > 0 and mf.n_points >= 1
    for p in mf.fixed:
        assert float((res.points - p).norm(dim=-1).min()) < 1e-3


def test_classifiers_and_flip_eta():
    assert classify_flow(torch.tensor([-1.0, -2.0])) == "attractor"
    assert classify_flow(torch.tensor([1.0, 2.0])) == "repeller"
    assert classify_flow(torch.tensor([1.0, -2.0])) == "saddle"
    assert classify_flow(torch.tensor([0.0, -2.0])) == "non-hyperbolic"
    assert classify_flow(torch.tensor([[-1.0, -1], [1, -1]])) == ["attractor", "saddle"]
    assert classify_map(torch.tensor([0.5, -0.5])) == "attractor"
    assert classify_map(torch.tensor([1.5, -2.0])) == "repeller"
    assert classify_map(torch.tensor([1.5, 0.2])) == "saddle"
    assert classify_map(torch.tensor([complex(0, 1)])) == "non-hyperbolic"
    # λ = −1 ± 2i: |1 + ηλ|² = (1−η)² + 4η² = 1 at η = 2/5
    lam = torch.tensor([complex(-1, 2), complex(-1, -2)])
    assert euler_flip_eta(lam) == pytest.approx(0.4)
    assert math.isinf(euler_flip_eta(torch.tensor([1.0, 0.0])))


def test_bad_arguments_raise():
    F = lambda s: -s
    with pytest.raises(ValueError, match="kind"):
        find_fixed_points(F, torch.zeros(2, 2), kind="flow")
    with pytest.raises(ValueError, match="inits"):
        find_fixed_points(F, [0.0, 1.0])
    with pytest.raises(ValueError, match="inits"):
        find_fixed_points(F, torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="inits"):
        find_fixed_points(F, torch.tensor([[0.5, 0.6]]), geometry=Simplex())
    with pytest.raises(ValueError, match="eta"):
        find_fixed_points(F, torch.zeros(2, 2), eta=-1.0)
    with pytest.raises(ValueError, match="basis"):
        jacobian(F, torch.zeros(2, 3), basis=torch.zeros(2, 2))
    with pytest.raises(ValueError, match="shape"):
        find_fixed_points(lambda s: s.sum(-1), torch.zeros(2, 3))


def test_nan_field_is_a_status_not_an_exception():
    F = lambda s: torch.where(s > 1, torch.full_like(s, float("nan")), 1.0 - s ** 2)
    res = find_fixed_points(F, torch.tensor([[0.5], [3.0], [-3.0]], dtype=D64))
    assert res.n_failed >= 1
    assert res.n_points >= 1


def test_simplex_map_kind_tangent_multipliers():
    # a belief update Φ(p) = (1 − c)p + c·p*: fixed point p*, map eigenvalues 1 − c on the tangent
    target = torch.tensor([0.6, 0.25, 0.1, 0.05], dtype=D64)
    c = 0.3
    Phi = lambda p: (1 - c) * p + c * target
    from terrainlab.dynamics import dirichlet_starts

    res = find_fixed_points(Phi, dirichlet_starts(4, 20, torch.Generator().manual_seed(0)), kind="map",
                            geometry=Simplex())
    assert res.n_points == 1 and torch.allclose(res.points[0], target, atol=1e-12)
    assert res.eigenvalues.shape == (1, 3)
    assert torch.allclose(res.eigenvalues[0].real, torch.full((3,), 1 - c, dtype=D64), atol=1e-10)
    assert res.kinds == ["attractor"] and res.map_kinds == ["attractor"]
