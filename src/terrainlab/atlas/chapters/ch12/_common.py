"""Shared data sets and plotting helpers for the chapter-12 (diffusion) experiments."""

from __future__ import annotations

import math

import torch

from terrainlab.diffusion import GaussianMixture


def two_clusters() -> GaussianMixture:
    """The book's canonical 2-D picture: two Gaussian clusters (unequal weights, so weight
    recovery is a real test)."""
    return GaussianMixture.isotropic([[-1.5, -1.0], [1.5, 1.0]], std=0.35, weights=[0.6, 0.4])


def three_clusters() -> GaussianMixture:
    return GaussianMixture.isotropic([[-2.0, 0.0], [2.0, 0.0], [0.0, 2.5]], std=0.3, weights=[0.5, 0.3, 0.2])


def rotated_cov(angle: float, l1: float, l2: float) -> torch.Tensor:
    c, s = math.cos(angle), math.sin(angle)
    R = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    return R @ torch.diag(torch.tensor([l1, l2], dtype=torch.float64)) @ R.T


def density_grid(gm: GaussianMixture, lim: float = 3.5, n: int = 120):
    """(X, Y, p) of the clean mixture density on a square grid, for contour plots."""
    ax = torch.linspace(-lim, lim, n, dtype=torch.float64)
    X, Y = torch.meshgrid(ax, ax, indexing="xy")
    p = gm.log_prob(torch.stack([X.flatten(), Y.flatten()], 1)).exp().reshape(n, n)
    return X.numpy(), Y.numpy(), p.numpy()
