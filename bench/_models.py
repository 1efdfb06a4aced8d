"""Shared problems for the benchmarks (bench/curvature.py, bench/landscape.py): scikit-learn's
bundled digits, small MLPs on them, and a small CNN on one CIFAR-size batch of random data."""

from __future__ import annotations

import torch

F = torch.nn.functional


def ce(m, b):
    """Cross-entropy of ``m`` on a batch (x, y)."""
    return F.cross_entropy(m(b[0]), b[1])


def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """All 1,797 8×8 digits as float32 pixel values / 16, centred, and their integer labels."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    x = torch.tensor(X / 16.0, dtype=torch.float32)
    return x - x.mean(0), torch.tensor(y)


def mlp(hidden: int, act: type[torch.nn.Module] = torch.nn.Tanh) -> torch.nn.Sequential:
    """MLP 64→hidden→10 with the given activation, initialised from torch seed 0."""
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(64, hidden), act(), torch.nn.Linear(hidden, 10))


def small_cnn() -> tuple[torch.nn.Sequential, torch.Tensor, torch.Tensor]:
    """A two-conv CNN (torch seed 0) and a batch of 32 random 3×32×32 images with random labels
    (generator seed 1)."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 12, 3, stride=2, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(12, 16, 3, stride=2, padding=1), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(64, 10),
    )
    g = torch.Generator().manual_seed(1)
    return net, torch.randn(32, 3, 32, 32, generator=g), torch.randint(0, 10, (32,), generator=g)
