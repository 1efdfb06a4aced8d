"""K-means: Lloyd through the core, k-means++, GD on the WCSS, Voronoi cells; scikit-learn's KMeans as a
cross-check (tests only)."""

from __future__ import annotations

import pytest
import torch

from terrainlab.classical.kmeans import (
    assign,
    kmeans,
    kmeans_plus_plus,
    lloyd_step,
    voronoi_grid,
    wcss,
    wcss_gd,
)


def _blobs(seed=0, n=40):
    g = torch.Generator().manual_seed(seed)
    centers = torch.tensor([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]], dtype=torch.float64)
    return torch.cat([c + 0.5 * torch.randn(n, 2, generator=g, dtype=torch.float64) for c in centers])


def test_lloyd_converges_monotone_and_matches_sklearn():
    from sklearn.cluster import KMeans

    X = _blobs()
    r = kmeans(X, 3, n_init=5, generator=torch.Generator().manual_seed(1))
    assert r.status == "converged" and all(s == "converged" for s in r.run_statuses)
    assert bool((r.inertia_path[1:] <= r.inertia_path[:-1] + 1e-12).all())
    assert r.inertia == pytest.approx(float(wcss(X, r.centroids)))
    sk = KMeans(3, n_init=5, random_state=0).fit(X.numpy())
    assert r.inertia == pytest.approx(sk.inertia_, rel=1e-9)
    ours = sorted(map(tuple, r.centroids.numpy().round(8).tolist()))
    theirs = sorted(map(tuple, sk.cluster_centers_.round(8).tolist()))
    assert torch.allclose(torch.tensor(ours), torch.tensor(theirs), atol=1e-7)
    assert torch.equal(r.labels, assign(X, r.centroids))


def test_lloyd_fixed_point_and_batch():
    X = _blobs()
    r = kmeans(X, 3, n_init=2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(lloyd_step(X, r.centroids), r.centroids)
    batch = torch.stack([r.centroids, r.centroids + 0.1])
    out = lloyd_step(X, batch)
    assert out.shape == batch.shape and torch.equal(out[0], r.centroids)


def test_lloyd_is_gd_with_cluster_step():
    X = _blobs()
    C = X[torch.tensor([0, 1, 2])].clone()
    Cg = C.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(wcss(X, Cg), Cg)
    n_k = torch.bincount(assign(X, C), minlength=3).to(X.dtype)
    assert torch.allclose(C - g / (2 * n_k[:, None]), lloyd_step(X, C), atol=1e-12)


def test_wcss_gd_converges_to_lloyd_minimum():
    X = _blobs()
    r = kmeans(X, 3, n_init=3, generator=torch.Generator().manual_seed(0))
    gd = wcss_gd(X, r.centroids + 0.05, eta=1.0 / (2 * 40 + 10), steps=500, tol=1e-12)
    assert gd.status == "converged"
    assert torch.allclose(gd.centroids[0], r.centroids, atol=1e-9)
    assert gd.inertia_path.shape == (gd.n_steps + 1, 1)


def test_kmeans_plus_plus_and_init_tensor():
    X = _blobs()
    C = kmeans_plus_plus(X, 3, torch.Generator().manual_seed(0))
    assert C.shape == (3, 2)
    assert len({int(i) for i in assign(C, C)}) == 3  # distinct points
    r = kmeans(X, 3, init=C)
    assert len(r.run_iters) == 1 and torch.equal(r.init_centroids[0], C)
    assert kmeans(X, 3, init="random", n_init=4, generator=torch.Generator().manual_seed(0)).run_inertias.shape == (4,)


def test_empty_cluster_keeps_centroid():
    X = torch.tensor([[0.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    C = torch.tensor([[0.5, 0.0], [100.0, 100.0]], dtype=torch.float64)
    assert torch.equal(lloyd_step(X, C)[1], C[1])


def test_voronoi_grid():
    C = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]])
    g = voronoi_grid(C, (-1.0, 3.0, -1.0, 3.0), n=50)
    assert g.labels.shape == (50, 50) and g.xs.shape == (50,)
    assert int(g.labels[0, 0]) == 0 and int(g.labels[0, -1]) == 1 and int(g.labels[-1, 0]) == 2


def test_bad_input():
    X = _blobs(n=2)
    with pytest.raises(ValueError, match="K"):
        kmeans(X, 7)
    with pytest.raises(ValueError, match="K"):
        kmeans(X, 0)
    with pytest.raises(ValueError, match="init"):
        kmeans(X, 2, init="nope")
    with pytest.raises(ValueError, match="init"):
        kmeans(X, 2, init=torch.zeros(3, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="n_init"):
        kmeans(X, 2, n_init=0)
    with pytest.raises(ValueError, match="X"):
        kmeans(torch.tensor([[float("nan"), 0.0]]), 1)
    with pytest.raises(ValueError, match="X"):
        kmeans(torch.zeros(3), 1)
    with pytest.raises(ValueError, match="K"):
        kmeans_plus_plus(X, 10)
    with pytest.raises(ValueError, match="eta"):
        wcss_gd(X, X[:2], eta=0.0, steps=3)
    with pytest.raises(ValueError, match="steps"):
        wcss_gd(X, X[:2], eta=0.1, steps=0)
    with pytest.raises(ValueError, match="starts"):
        wcss_gd(X, torch.zeros(2, 3, dtype=torch.float64), eta=0.1, steps=3)
    with pytest.raises(ValueError, match="centroids"):
        voronoi_grid(torch.zeros(2, 3), (0.0, 1.0, 0.0, 1.0))
    with pytest.raises(ValueError, match="bounds"):
        voronoi_grid(torch.zeros(2, 2), (1.0, 0.0, 0.0, 1.0))
    with pytest.raises(ValueError, match="n"):
        voronoi_grid(torch.zeros(2, 2), (0.0, 1.0, 0.0, 1.0), n=1)
