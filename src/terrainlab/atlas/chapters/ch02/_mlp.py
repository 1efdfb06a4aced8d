"""Shared set-up of chapter 2: small ReLU MLPs trained on scikit-learn's digits.

Holds no experiment (the registry imports it and finds none). Each experiment runs in its own process,
so nothing trained here is shared between them; the module only keeps the three set-ups identical.

Example:
    >>> Xtr, ytr, Xte, yte = digits_split(100, 50)
    >>> Xtr.shape, Xte.shape
    (torch.Size([100, 64]), torch.Size([50, 64]))
    >>> net = mlp((64, 8, 10), seed=0)
    >>> loss = train(net, Xtr, ytr, steps=5)
    >>> 0 < loss < 5
    True
"""

from __future__ import annotations

import torch
from torch import nn

from terrainlab.atlas.chapters._digits import centred_digits, default_init_
from terrainlab.core.validate import check_int
from terrainlab.optim import Adam

N_DIGITS = 1797  # scikit-learn's digits: all of them


def digits_split(n_train: int, n_test: int):
    """The first ``n_train`` digits for training and the next ``n_test`` held out (all 1797 centred
    together, so the two parts share one pixel mean)."""
    if not 0 < n_train or not 0 < n_test or n_train + n_test > N_DIGITS:
        raise ValueError(f"n_train + n_test must be ≤ {N_DIGITS} and both positive, got {n_train}, {n_test}")
    X, y = centred_digits(N_DIGITS)
    return X[:n_train], y[:n_train], X[n_train:n_train + n_test], y[n_train:n_train + n_test]


def mlp(widths, seed: int) -> nn.Sequential:
    """``Linear → ReLU → … → Linear`` with the given widths, PyTorch's default initialisation drawn from
    ``seed`` (no global random state)."""
    if not isinstance(widths, (list, tuple)) or len(widths) < 2 or not all(
            isinstance(w, int) and not isinstance(w, bool) and w >= 1 for w in widths):
        raise ValueError(f"widths must be a list or tuple of ≥ 2 positive ints, got {widths!r}")
    layers: list[nn.Module] = []
    for i in range(len(widths) - 1):
        layers.append(nn.Linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    net = nn.Sequential(*layers)
    default_init_([m for m in net if isinstance(m, nn.Linear)], torch.Generator().manual_seed(seed))
    return net


def loss_fn(model, batch) -> torch.Tensor:
    return nn.functional.cross_entropy(model(batch[0]), batch[1])


def error_fn(model, batch) -> torch.Tensor:
    """Classification error as a loss function (for :func:`terrainlab.landscape.interpolate`)."""
    return (model(batch[0]).argmax(-1) != batch[1]).to(batch[0].dtype).mean()


def train(net: nn.Module, X, y, *, steps: int, lr: float = 3e-3, batch_size: int | None = None,
          seed: int = 0, optimizer=Adam, loss_target: float | None = None, check_every: int = 10):
    """At most ``steps`` steps of ``optimizer`` (terrainlab.optim; Adam by default) on the cross-entropy:
    full-batch when ``batch_size`` is None, else minibatches drawn without replacement, reshuffled each
    epoch from ``seed``. With ``loss_target``, stops at the first check (every ``check_every`` steps) where
    the full-batch training loss is below it, and returns ``(loss, steps taken)``; without, returns the
    last full-batch training loss."""
    check_int(steps, "steps", minimum=1)
    check_int(check_every, "check_every", minimum=1)
    if batch_size is not None:
        check_int(batch_size, "batch_size", minimum=1, maximum=len(y))
    opt = optimizer(net.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    n = len(y)
    order, pos = None, n
    for t in range(steps):
        if loss_target is not None and t % check_every == 0:
            with torch.no_grad():
                if float(loss_fn(net, (X, y))) < loss_target:
                    return float(loss_fn(net, (X, y))), t
        if batch_size is None:
            xb, yb = X, y
        else:
            if pos + batch_size > n:
                order, pos = torch.randperm(n, generator=g), 0
            idx = order[pos:pos + batch_size]
            pos += batch_size
            xb, yb = X[idx], y[idx]
        opt.zero_grad()
        loss_fn(net, (xb, yb)).backward()
        opt.step()
    with torch.no_grad():
        loss = float(loss_fn(net, (X, y)))
    return loss if loss_target is None else (loss, steps)


def evaluate(net: nn.Module, X, y) -> tuple[float, float]:
    """(cross-entropy, error rate) of ``net`` on (X, y)."""
    with torch.no_grad():
        return float(loss_fn(net, (X, y))), float(error_fn(net, (X, y)))
