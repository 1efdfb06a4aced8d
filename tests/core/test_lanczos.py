"""core.linalg.lanczos: the one Lanczos (single run and a block of runs in lockstep)."""

import pytest
import torch

from terrainlab.core.linalg import lanczos, lanczos_block, orthogonalize


def _sym(n=30, seed=0):
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(n, n, dtype=torch.float64, generator=g))
    return Q @ torch.diag(torch.linspace(-2, 5, n, dtype=torch.float64)) @ Q.T


def test_full_run_reproduces_the_spectrum_and_basis_is_orthonormal():
    A = _sym()
    r = lanczos(lambda v: A @ v, torch.ones(30, dtype=torch.float64), 30, keep_basis=True)
    T = torch.diag(r.alpha) + torch.diag(r.beta, 1) + torch.diag(r.beta, -1)
    assert torch.allclose(torch.linalg.eigvalsh(T), torch.linalg.eigvalsh(A), atol=1e-10)
    Q = r.basis
    assert torch.allclose(Q.T @ Q, torch.eye(30, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(Q.T @ A @ Q, T, atol=1e-10)
    assert r.status == "completed" and r.n_steps == 30


def test_invariant_subspace_stops_early_with_status_converged():
    A = torch.diag(torch.arange(1.0, 11.0, dtype=torch.float64))
    v0 = torch.zeros(10, dtype=torch.float64)
    v0[:3] = 1.0  # lives in a 3-dimensional invariant subspace
    r = lanczos(lambda v: A @ v, v0, 10)
    assert r.n_steps == 3 and r.status == "converged"
    T = torch.diag(r.alpha) + torch.diag(r.beta, 1) + torch.diag(r.beta, -1)
    assert torch.allclose(torch.linalg.eigvalsh(T), torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))


def test_block_equals_one_run_per_column():
    V0 = torch.randn(30, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    V0[:, 3] = 0.0
    V0[:2, 3] = 1.0
    B = _sym(30, 2)
    B = torch.block_diag(torch.diag(torch.tensor([1.0, 2.0], dtype=torch.float64)), B[:28, :28])
    blk = lanczos_block(lambda V: B @ V, V0, 12)
    for c in range(4):
        one = lanczos(lambda v: B @ v, V0[:, c], 12)
        L = int(blk.n_steps[c])
        assert L == one.n_steps
        assert torch.allclose(blk.alpha[c, :L], one.alpha, atol=1e-12)
        assert torch.allclose(blk.beta[c, : L - 1], one.beta, atol=1e-12)
    assert int(blk.n_steps[3]) == 2 and blk.status == "converged"


def test_nonfinite_product_is_a_status():
    A = torch.eye(6, dtype=torch.float64)
    A[2, 2] = float("nan")
    assert lanczos(lambda v: A @ v, torch.ones(6, dtype=torch.float64), 6).status == "nonfinite"
    assert lanczos_block(lambda V: A @ V, torch.ones(6, 2, dtype=torch.float64), 6).status == "nonfinite"


def test_bad_arguments_name_themselves():
    f = lambda v: v
    with pytest.raises(ValueError, match="^v0 must"):
        lanczos(f, torch.zeros(4, dtype=torch.float64), 3)
    with pytest.raises(ValueError, match="^v0 must"):
        lanczos(f, torch.ones(4, dtype=torch.int64), 3)
    with pytest.raises(ValueError, match="^steps must"):
        lanczos(f, torch.ones(4), 0)
    with pytest.raises(ValueError, match="^apply must"):
        lanczos(3, torch.ones(4), 2)
    with pytest.raises(ValueError, match="^V0 must"):
        lanczos_block(f, torch.ones(4), 2)


def test_orthogonalize_twice_is_enough():
    V, _ = torch.linalg.qr(torch.randn(50, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))
    w = V @ torch.ones(5, dtype=torch.float64) + 1e-8 * torch.randn(50, dtype=torch.float64)
    w2, h = orthogonalize(V, w)
    assert float((V.T @ w2).abs().max()) < 1e-20 + 1e-15 * float(w2.norm())
    assert torch.allclose(h, torch.ones(5, dtype=torch.float64), atol=1e-6)
