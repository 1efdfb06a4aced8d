"""2-D data sets for diffusion experiments (generated, nothing downloaded).

``two_moons`` wraps scikit-learn's ``make_moons`` (Pedregosa et al. 2011); ``noisy_ring`` draws
points near a circle (a density concentrated near a 1-D manifold). Mixtures with an exact score
are :class:`terrainlab.diffusion.GaussianMixture`.

Example:
    >>> x = two_moons(1000, seed=0)
    >>> x.shape
    torch.Size([1000, 2])
"""

from __future__ import annotations

import math

import torch

from ..core.validate import check_int


def _n(n):
    check_int(n, "n", minimum=1)


def two_moons(n: int, noise: float = 0.05, seed: int = 0, dtype=torch.float32, standardize: bool = True):
    """scikit-learn's two moons; ``standardize`` centres and scales to unit variance per axis."""
    from sklearn.datasets import make_moons

    _n(n)
    x, _ = make_moons(n, noise=noise, random_state=seed)
    x = torch.tensor(x, dtype=torch.float64)
    if standardize:
        x = (x - torch.tensor([0.5, 0.25], dtype=torch.float64)) / torch.tensor([0.87, 0.5], dtype=torch.float64)
    return x.to(dtype)


def noisy_ring(n: int, radius: float = 1.0, width: float = 0.05, generator=None, dtype=torch.float32):
    """Points r·(cos θ, sin θ) with θ ~ U[0, 2π), r ~ N(radius, width²)."""
    _n(n)
    th = torch.rand(n, generator=generator, dtype=torch.float64) * 2 * math.pi
    r = radius + width * torch.randn(n, generator=generator, dtype=torch.float64)
    return torch.stack([r * torch.cos(th), r * torch.sin(th)], 1).to(dtype)
