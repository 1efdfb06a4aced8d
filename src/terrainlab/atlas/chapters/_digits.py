"""Shared set-up for the chapters that train small MLPs on scikit-learn's bundled digits.

Holds no experiment (the registry imports it and finds none).

Example:
    >>> X, y = centred_digits(200)
    >>> X.shape, X.dtype, abs(float(X.mean())) < 1e-6
    (torch.Size([200, 64]), torch.float32, True)
"""

from __future__ import annotations

import contextlib
import math

import torch


def centred_digits(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` 8×8 digits as float32 pixel values / 16, centred (column means removed over
    those ``n``), and their integer labels."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    x = torch.tensor(X[:n] / 16.0, dtype=torch.float32)
    return x - x.mean(0), torch.tensor(y[:n])


def default_init_(modules, generator: torch.Generator) -> None:
    """PyTorch's default ``nn.Linear`` initialisation, weight and bias ~ U(±1/√fan_in), drawn in place
    from ``generator`` (module by module, weight before bias) so a model is the same for the same seed
    without touching the global random state."""
    with torch.no_grad():
        for m in modules:
            bound = 1 / math.sqrt(m.in_features)
            m.weight.copy_((2 * torch.rand(m.weight.shape, generator=generator) - 1) * bound)
            if m.bias is not None:
                m.bias.copy_((2 * torch.rand(m.bias.shape, generator=generator) - 1) * bound)


@contextlib.contextmanager
def one_thread():
    """Tiny models run fastest on one thread (measured: the ch03.landscape_slices quick run takes
    3.1 s on one thread and 8.4 s on two on the loaded 2-core host); restore the caller's setting
    afterwards."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)
