"""Is a state a function of some inputs? Held-out R² of a random-feature ridge regressor.

The question behind "h_t = Φ(h_{t−1}, x_t)": if the state at step t is a function of the previous state
and the current input, a flexible regressor fitted on some trajectories predicts it on others. A
recurrent network passes this test by construction; a transformer, whose state at step t is the
whole key/value cache of the prefix, need not.

The regressor is ridge regression on random features (Rahimi & Recht 2007, "Random Features for
Large-Scale Kernel Machines"; Huang et al. 2006's extreme learning machine)::

    z = standardise(inputs)                          (training mean and std per column)
    φ(z) = [z, ReLU(z W + b)],  W ~ N(0, 1/m), b ~ N(0, 1)   (m input columns, drawn from ``generator``)
    ŷ = ȳ + (φ(z) − φ̄) β,  β = argmin ‖Y_c − Φ_c β‖² + λ‖β‖²

optionally one such regressor per group of rows (``groups=``: e.g. the current token, so that
h_t = Φ_x(h_{t−1}) may be a different map for every token x),

with λ picked from a log grid by exact leave-one-out error on the training rows (Allen 1974, PRESS:
the residual of row i refitted without it is r_i / (1 − H_ii), H the ridge hat matrix; one eigen-
decomposition of ΦᵀΦ serves every λ). The score is the variance-weighted coefficient of determination

    R² = 1 − Σ_{i,j} (y_ij − ŷ_ij)² / Σ_{i,j} (y_ij − ȳ_j)²

with ȳ the mean of the rows scored (sklearn's ``r2_score(..., multioutput="variance_weighted")``).
It is 1 for a perfect fit, ≈ 0 for a regressor that does no better than the mean, and negative when
worse. Split train / held-out rows by trajectory (whole prompts), never by position within one.

Example:
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.randn(400, 3, generator=g)
    >>> y = torch.stack([x[:, 0] * x[:, 1], torch.sin(x[:, 2])], dim=1)
    >>> train = torch.arange(400) < 300
    >>> r = predictability(y, x, train=train, generator=torch.Generator().manual_seed(1))
    >>> r.status, r.r2_test > 0.9
    ('completed', True)
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import torch

from ..core.status import Status
from ..core.validate import check_instance, check_int, check_number, check_tensor

__all__ = ["Predictability", "predictability", "r2_score"]

#: The ridge penalties tried, relative to the mean eigenvalue of ΦᵀΦ (scale-free).
LAMBDA_GRID = tuple(10.0 ** k for k in range(-5, 3))


@dataclass(frozen=True)
class Predictability:
    """r2_train / r2_test: variance-weighted R² on the training and held-out rows; ridge: the penalty
    chosen by leave-one-out (relative to the mean eigenvalue of ΦᵀΦ); loo_r2: the leave-one-out R² at
    that penalty (the median over groups); n_train, n_test, n_features (columns of φ, the most any group used), n_groups;
    status ``completed`` or ``nonfinite``
    (a NaN/inf in the data: R² values are NaN then)."""

    r2_train: float
    r2_test: float
    loo_r2: float
    ridge: float
    n_train: int
    n_test: int
    n_features: int
    n_groups: int
    status: Status


def r2_score(y: torch.Tensor, y_hat: torch.Tensor) -> float:
    """Variance-weighted R² = 1 − Σ(y − ŷ)² / Σ(y − ȳ)² over all rows and columns (ȳ per column).

    Example:
        >>> y = torch.tensor([[0.0], [1.0], [2.0]])
        >>> r2_score(y, y), r2_score(y, torch.ones(3, 1))
        (1.0, 0.0)
    """
    check_tensor(y, "y", ndim=2, nonempty=True)
    check_tensor(y_hat, "y_hat", shape=tuple(y.shape))
    y, y_hat = y.double(), y_hat.double()
    sst = ((y - y.mean(0)) ** 2).sum()
    return float(1 - ((y - y_hat) ** 2).sum() / sst)


def _columns(x, name: str, n: int | None) -> torch.Tensor:
    parts = list(x) if isinstance(x, (tuple, list)) else [x]
    if not parts:
        raise ValueError(f"{name} must be a tensor or a non-empty tuple of tensors")
    out = []
    for i, p in enumerate(parts):
        nm = name if len(parts) == 1 else f"{name}[{i}]"
        check_tensor(p, nm, ndim=(1, 2), nonempty=True)
        p = p[:, None] if p.ndim == 1 else p
        if n is not None and p.shape[0] != n:
            raise ValueError(f"{nm} must have {n} rows (one per row of targets), got {p.shape[0]}")
        n = p.shape[0]
        out.append(p.double())
    return torch.cat(out, dim=1)


def predictability(targets: torch.Tensor, inputs, *, train: torch.Tensor, generator: torch.Generator,
                   groups: torch.Tensor | None = None, n_features: int = 256,
                   lambdas=LAMBDA_GRID) -> Predictability:
    """Held-out R² of predicting ``targets`` (N, d) from ``inputs`` (a tensor (N, m) or a tuple of
    them, concatenated) with ridge regression on random ReLU features (see the module docstring).

    Args:
        targets: (N, d) float.
        inputs: (N, m) float, or a tuple of (N, m_i) / (N,) float tensors (e.g. a previous state and a
            one-hot token); columns that are constant on the training rows are dropped.
        train: (N,) bool, the training rows; the rest are held out (at least 2 of each).
        generator: draws W and b (the result is a pure function of it and the data).
        groups: optional (N,) integer labels (e.g. the current token): one regressor is fitted per
            label on that label's training rows, so the map may differ from group to group (h_t =
            Φ_x(h_{t−1}) with x discrete); held-out rows of a label never trained on are predicted
            by the training mean.
        n_features: random features m' (φ has m + m' columns; in a group with n training rows at most
            max(0, n/2 − m) of them are used, so leave-one-out stays well posed).
        lambdas: ridge penalties to choose from, relative to the mean eigenvalue of ΦᵀΦ.

    Computed in float64 on the inputs' device; a NaN/inf in the data gives status ``nonfinite``.
    """
    check_tensor(targets, "targets", ndim=2, nonempty=True)
    n = targets.shape[0]
    x = _columns(inputs, "inputs", n)
    check_tensor(train, "train", floating=False, shape=(n,))
    if train.dtype != torch.bool:
        raise ValueError(f"train must be a bool tensor, got dtype {train.dtype}")
    n_tr, n_te = int(train.sum()), int((~train).sum())
    if n_tr < 2 or n_te < 2:
        raise ValueError(f"train must mark at least 2 training and 2 held-out rows, got {n_tr} and {n_te}")
    check_instance(generator, "generator", torch.Generator, "a torch.Generator")
    check_int(n_features, "n_features", minimum=0)
    lambdas = tuple(lambdas)
    if not lambdas:
        raise ValueError("lambdas must hold at least one penalty")
    for lam in lambdas:
        check_number(lam, "lambdas", minimum=0.0)
    y = targets.detach().to(device=x.device, dtype=torch.float64)
    if not (bool(torch.isfinite(x).all()) and bool(torch.isfinite(y).all())):
        nan = float("nan")
        return Predictability(nan, nan, nan, nan, n_tr, n_te, 0, 0, Status.NONFINITE)
    train = train.to(x.device)

    if groups is None:
        gid = torch.zeros(n, dtype=torch.long, device=x.device)
    else:
        check_tensor(groups, "groups", floating=False, shape=(n,))
        gid = torch.unique(groups.to(x.device), return_inverse=True)[1]
    y_hat = y[train].mean(0).expand(n, -1).clone()  # rows of a group without training rows
    loo_sse, rels, n_phi = 0.0, [], 0
    for g in range(int(gid.max()) + 1):
        rows = gid == g
        tr = rows & train
        if int(tr.sum()) < 2:
            continue
        pred, sse, rel, k = _fit_group(x, y, tr, rows, generator, n_features, lambdas)
        n_phi = max(n_phi, k)
        y_hat[rows] = pred
        loo_sse += sse
        rels.append(rel)
    sst_all = float(((y[train] - y[train].mean(0)) ** 2).sum())
    return Predictability(
        r2_train=r2_score(y[train], y_hat[train]),
        r2_test=r2_score(y[~train], y_hat[~train]),
        loo_r2=1 - loo_sse / sst_all if sst_all > 0 else float("nan"),
        ridge=float(statistics.median(rels)) if rels else float("nan"),
        n_train=n_tr,
        n_test=n_te,
        n_features=n_phi,
        n_groups=int(gid.max()) + 1,
        status=Status.COMPLETED,
    )


def _fit_group(x, y, train, rows, generator, n_features, lambdas):
    """Random-feature ridge fitted on ``train`` rows, predicting ``rows``; λ by exact leave-one-out."""
    mu, sd = x[train].mean(0), x[train].std(0)
    keep = sd > 1e-12 * (1 + mu.abs())
    z = (x[rows][:, keep] - mu[keep]) / sd[keep]
    m = z.shape[1]
    W = torch.randn(m, n_features, generator=generator, dtype=torch.float64).to(x.device) / max(m, 1) ** 0.5
    b = torch.randn(n_features, generator=generator, dtype=torch.float64).to(x.device)
    k = min(n_features, max(0, int(train.sum()) // 2 - m))  # at most half as many columns as rows
    phi = torch.cat([z, torch.relu(z @ W[:, :k] + b[:k])], dim=1)
    sub = train[rows]
    p_tr, y_tr = phi[sub], y[train]
    p_mean, y_mean = p_tr.mean(0), y_tr.mean(0)
    P, Y = p_tr - p_mean, y_tr - y_mean
    evals, V = torch.linalg.eigh(P.T @ P)
    evals = evals.clamp_min(0.0)
    Z = P @ V  # rows of Φ_c in the eigenbasis
    ZtY = Z.T @ Y
    scale = float(evals.mean()) if float(evals.mean()) > 0 else 1.0
    best = None
    for rel in lambdas:
        lam = rel * scale
        inv = 1.0 / (evals + lam)
        fit = Z @ (inv[:, None] * ZtY)
        hat = (Z ** 2 @ inv).clamp(max=1 - 1e-9)
        loo = float(((Y - fit) / (1 - hat)[:, None]).pow(2).sum())
        if best is None or loo < best[0]:
            best = (loo, rel, inv)
    loo_sse, rel, inv = best
    beta = V @ (inv[:, None] * ZtY)
    return y_mean + (phi - p_mean) @ beta, loo_sse, rel, phi.shape[1]
