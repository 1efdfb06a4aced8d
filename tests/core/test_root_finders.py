"""Root finders: one contract every finder passes, plus each method's measured behaviour."""

import math

import pytest
import torch

from terrainlab.core import Anderson, Broyden, Newton, NewtonKrylov, Picard, RootResult, Status
from terrainlab.core.root_finders import ROW_STATUSES, fixed_point, relative_residual

FINDERS = [Picard, Anderson, Broyden, Newton, NewtonKrylov]
DTYPES = [torch.float32, torch.float64]


def _tol(dtype):
    return 1e-4 if dtype == torch.float32 else 1e-10


def affine_problem(dtype, B=5, d=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    A = (Q * torch.linspace(-0.6, 0.6, d, dtype=torch.float64)) @ Q.T  # ‖A‖ = 0.6: a contraction
    b = torch.randn(B, d, generator=g, dtype=torch.float64) + 1.0
    z_star = torch.linalg.solve(torch.eye(d, dtype=torch.float64) - A, b.T).T
    return A.to(dtype), b.to(dtype), z_star.to(dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("cls", FINDERS, ids=lambda c: c.__name__)
def test_contract_contractive_affine_map(cls, dtype):
    A, b, z_star = affine_problem(dtype)
    finder = cls(tol=_tol(dtype), max_iter=200)
    r = finder.solve(lambda z: z @ A.T + b, torch.zeros_like(b))
    assert isinstance(r, RootResult) and r.status is Status.CONVERGED and r.converged.all()
    assert r.z.dtype == dtype and r.z.shape == b.shape
    assert (r.residual <= finder.tol).all()
    assert torch.allclose(r.residual, relative_residual(r.z, r.z @ A.T + b), rtol=1e-3, atol=1e-12)
    assert torch.allclose(r.z, z_star, rtol=20 * finder.tol, atol=20 * finder.tol)
    assert r.n_evals >= r.n_iter >= 1 and (r.iterations >= 1).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("cls", FINDERS, ids=lambda c: c.__name__)
def test_contract_small_nonlinear_map(cls, dtype):
    g_ = torch.Generator().manual_seed(1)
    W = (0.5 * torch.randn(3, 3, generator=g_, dtype=torch.float64) / 3**0.5).to(dtype)
    c = torch.tensor([[0.3, -0.7, 1.1], [1.0, 0.2, -0.4]], dtype=dtype)

    def g(z):
        return torch.tanh(z @ W.T + c)

    finder = cls(tol=_tol(dtype), max_iter=200)
    r = finder.solve(g, torch.zeros_like(c))
    assert r.status == "converged"
    err = (g(r.z) - r.z).norm(dim=1) / g(r.z).norm(dim=1)
    assert (err <= 2 * finder.tol).all()


@pytest.mark.parametrize("cls", FINDERS, ids=lambda c: c.__name__)
def test_contract_budget_exhausted_is_max_steps(cls):
    z0 = torch.zeros(3, 2, dtype=torch.float64)
    r = cls(max_iter=1).solve(lambda z: 2.0 * z + 1.0, z0)  # non-contractive; one evaluation allowed
    assert r.status == "max_steps" and (r.iterations == 1).all() and not r.converged.any()
    assert (r.row_status == ROW_STATUSES.index(Status.MAX_STEPS)).all()
    assert torch.isfinite(r.z).all()


@pytest.mark.parametrize("cls", FINDERS, ids=lambda c: c.__name__)
def test_contract_nan_map_is_nonfinite_and_returns_the_start(cls):
    z0 = torch.ones(3, 2)
    r = cls().solve(lambda z: z * float("nan"), z0)
    assert r.status == "nonfinite" and (r.row_status == 3).all() and torch.equal(r.z, z0)


@pytest.mark.parametrize("cls", FINDERS, ids=lambda c: c.__name__)
def test_contract_rows_are_independent(cls):
    A, b, z_star = affine_problem(torch.float64, B=4)
    b = b * torch.tensor([[0.01], [1.0], [100.0], [1.0]], dtype=torch.float64)  # very different scales
    finder = cls(tol=1e-10, max_iter=200)
    batch = finder.solve(lambda z: z @ A.T + b, torch.zeros_like(b))
    assert batch.status == "converged"
    for i in range(4):
        alone = finder.solve(lambda z, i=i: z @ A.T + b[i : i + 1], torch.zeros_like(b[i : i + 1]))
        assert int(alone.iterations[0]) == int(batch.iterations[i])
        # (in a batch a converged row keeps being refined while others run, so agree to tol, not bitwise)
        assert torch.allclose(alone.z[0], batch.z[i], rtol=1e-8, atol=1e-12)
    # a row that turns NaN is frozen and reported; the others are untouched
    bad = b.clone()
    bad[1, 0] = float("nan")
    mixed = finder.solve(lambda z: z @ A.T + bad, torch.zeros_like(b))
    assert mixed.status == "nonfinite"
    assert mixed.row_status.tolist() == [0, 3, 0, 0]
    assert torch.allclose(mixed.z[[0, 2, 3]], batch.z[[0, 2, 3]], rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("cls", FINDERS, ids=lambda c: c.__name__)
def test_contract_settings_live_on_the_finder(cls):
    f = cls()
    assert f.replace(tol=1e-3).tol == 1e-3 and f.replace(tol=1e-3) == cls(tol=1e-3)
    assert f.max_iter == 50 and eval(repr(f), {cls.__name__: cls}) == f
    with pytest.raises(ValueError, match="^tol"):
        cls(tol=-1.0)
    with pytest.raises(ValueError, match="^max_iter"):
        cls(max_iter=0)
    with pytest.raises(ValueError, match="^divergence_factor"):
        cls(divergence_factor=1.0)
    with pytest.raises(ValueError, match="no setting"):
        f.replace(colour="red")
    with pytest.warns(DeprecationWarning, match="set them on the finder"):
        r = f.solve(lambda z: 0.5 * z + 1.0, torch.zeros(1, 1, dtype=torch.float64), tol=1e-8, max_iter=100)
    assert r.status == "converged"
    empty = f.solve(lambda z: z, torch.empty(0, 3))
    assert empty.status == "converged" and empty.z.shape == (0, 3)


def test_newton_converges_quadratically():
    # r(z) = z³ − 2 as the fixed-point form z = g(z) = z − (z³ − 2): Picard diverges, Newton doubles digits
    def g(z):
        return z - (z**3 - 2.0)

    r = Newton(tol=1e-15, max_iter=20).solve(g, torch.full((1, 1), 1.5, dtype=torch.float64))
    assert r.status == "converged" and abs(float(r.z) - 2 ** (1 / 3)) < 1e-15
    assert r.n_iter <= 7
    h = [x for x in r.residual_history if x > 1e-14]
    for a, b in zip(h[1:-1], h[2:]):  # e_{k+1} ≤ C·e_k² (C ≈ |r''/2r'| ≈ 1 here), once in the basin
        assert b <= 2.0 * a * a, h
    orders = [math.log(b) / math.log(a) for a, b in zip(h[2:-1], h[3:])]
    assert min(orders) > 1.8, orders  # measured order ≈ 2 (linear convergence would give ≈ 1)
    assert Picard(max_iter=20).solve(g, torch.full((1, 1), 1.5, dtype=torch.float64)).status != "converged"


def test_newton_krylov_matches_dense_newton_on_a_stiff_map():
    g_ = torch.Generator().manual_seed(0)
    Q, _ = torch.linalg.qr(torch.randn(6, 6, generator=g_, dtype=torch.float64))
    A = (Q * -torch.linspace(1, 60, 6, dtype=torch.float64)) @ Q.T
    s = torch.randn(3, 6, generator=g_, dtype=torch.float64)

    def T(y):  # implicit Euler with η = 0.1 on a stiff field: Lip(T) ≈ 6, Picard diverges
        return s + 0.1 * (y @ A.T + 0.1 * torch.tanh(y))

    dense = Newton(tol=1e-12).solve(T, s)
    krylov = NewtonKrylov(tol=1e-12).solve(T, s)
    assert dense.status == krylov.status == "converged"
    assert torch.allclose(dense.z, krylov.z, atol=1e-11)
    assert dense.n_iter <= 5 and krylov.n_iter <= 6
    assert Picard(tol=1e-12).solve(T, s).status in ("diverged", "max_steps")


def test_anderson_beats_picard_on_a_slow_contraction():
    A, b, _ = affine_problem(torch.float64, d=16)
    A = A / 0.6 * 0.95
    picard = fixed_point(lambda z: z @ A.T + b, torch.zeros_like(b), solver=Picard(tol=1e-10, max_iter=2000))
    anderson = fixed_point(lambda z: z @ A.T + b, torch.zeros_like(b), solver=Anderson(tol=1e-10, max_iter=2000))
    assert picard.status == anderson.status == "converged"
    assert 3 * anderson.n_iter < picard.n_iter
