"""PCA, SVD geometry and effective rank; scikit-learn's PCA as a cross-check (tests only)."""

from __future__ import annotations

import math

import pytest
import torch

from terrainlab.classical.pca import effective_rank, pca, svd_geometry


def _cloud(n=500, seed=0):
    g = torch.Generator().manual_seed(seed)
    A = torch.tensor([[2.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.3, 0.2]], dtype=torch.float64)
    return torch.randn(n, 3, generator=g, dtype=torch.float64) @ A.T + torch.tensor([1.0, -2.0, 3.0],
                                                                                     dtype=torch.float64)


def test_pca_matches_sklearn_and_variance_is_eigenvalue():
    from sklearn.decomposition import PCA

    X = _cloud()
    r = pca(X, 2)
    sk = PCA(2).fit(X.numpy())
    n = X.shape[0]
    assert torch.allclose(r.variances * n / (n - 1), torch.tensor(sk.explained_variance_), rtol=1e-10)
    assert torch.allclose((r.components @ torch.tensor(sk.components_).T).abs(), torch.eye(2, dtype=X.dtype),
                          atol=1e-8)
    Z = r.transform(X)
    assert torch.allclose((Z**2).mean(0), r.variances, rtol=1e-10)
    assert torch.allclose(r.components @ r.components.T, torch.eye(2, dtype=X.dtype), atol=1e-12)
    assert float(r.explained_ratio.sum()) < 1


def test_svd_geometry_stages_and_eigenvectors():
    A = torch.tensor([[2.0, 1.0], [0.5, 1.5]], dtype=torch.float64)
    g = svd_geometry(A)
    assert torch.allclose(g.reconstruct(), A, atol=1e-12)
    assert torch.allclose(A @ A.T @ g.U, g.U * g.S**2, atol=1e-12)
    assert torch.allclose(A.T @ A @ g.V, g.V * g.S**2, atol=1e-12)
    th = torch.linspace(0, 2 * math.pi, 50, dtype=torch.float64)
    circle = torch.stack([th.cos(), th.sin()], 1)
    x, a, b, c = g.stages(circle)
    assert torch.allclose(c, circle @ A.T, atol=1e-12)
    assert torch.allclose(a.norm(dim=1), torch.ones(50, dtype=A.dtype))  # Vᵀ is orthogonal


def test_effective_rank():
    assert effective_rank(torch.tensor([3.0, 3.0, 3.0, 3.0])) == pytest.approx(4.0)
    assert effective_rank(torch.tensor([3.0, 3.0, 3.0, 3.0]), kind="stable") == pytest.approx(4.0)
    assert effective_rank(torch.tensor([5.0, 0.0, 0.0])) == pytest.approx(1.0)
    s = torch.tensor([4.0, 2.0, 1.0, 0.5], dtype=torch.float64)
    assert 1 <= effective_rank(s, kind="stable") <= effective_rank(s) <= 4
    assert effective_rank(s) == pytest.approx(effective_rank(10 * s))  # scale invariant


def test_bad_input():
    with pytest.raises(ValueError, match="k"):
        pca(_cloud(), 4)
    with pytest.raises(ValueError, match="X"):
        pca(torch.zeros(5), 1)
    with pytest.raises(ValueError, match="X"):
        pca(torch.tensor([[float("inf"), 1.0]]), 1)
    with pytest.raises(ValueError, match="A"):
        svd_geometry(torch.zeros(2, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match="kind"):
        effective_rank(torch.ones(3), kind="nuclear")
    with pytest.raises(ValueError, match="S"):
        effective_rank(torch.zeros(3))
    with pytest.raises(ValueError, match="S"):
        effective_rank(torch.tensor([-1.0, 2.0]))
    with pytest.raises(ValueError, match="S"):
        effective_rank(torch.ones(2, 2))
    with pytest.raises(ValueError, match="points"):
        svd_geometry(torch.eye(2, dtype=torch.float64)).stages(torch.ones(3, 3, dtype=torch.float64))
