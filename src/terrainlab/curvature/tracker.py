"""Sharpness tracking during training: λ_max against the optimizer's stability threshold.

Stability thresholds (linearise the update on a quadratic with curvature a along an eigenvector;
the update is stable iff both roots of its characteristic polynomial lie in the unit disk):

* GD, θ ← θ − η g:                               a < 2/η.
* Heavy ball (PyTorch SGD, momentum μ, dampening 0), v ← μv + g, θ ← θ − ηv:
  x_{t+1} = (1 + μ − ηa) x_t − μ x_{t−1}, stable iff ηa < 2(1 + μ):   a < 2(1 + μ)/η.
* Nesterov (PyTorch form, update g + μv): char. poly z² − (1+μ)(1−c)z + μ(1−c), c = ηa;
  the Jury condition 1 + μ(1−c) > (1+μ)(c−1) gives   a < (2 + 2μ)/((1 + 2μ)η).
* Adam with a frozen preconditioner P = diag(√v̂ + ε) (late training, bias corrections ≈ 1),
  m ← β₁m + (1−β₁)g, θ ← θ − η P⁻¹m: along an eigenvector of P⁻¹H with eigenvalue a,
  x_{t+1} = (1 + β₁ − η(1−β₁)a) x_t − β₁ x_{t−1}, stable iff η(1−β₁)a < 2(1 + β₁):
  a < (2 + 2β₁)/((1 − β₁)η)  — 38/η for β₁ = 0.9 (Cohen et al. 2022, "Adaptive gradient methods
  at the edge of stability"). So for Adam the tracked quantity is the *preconditioned* sharpness
  λ_max(P⁻¹H), computed as λ_max(P^{-1/2} H P^{-1/2}).

Coupled SGD weight decay wd adds wd·I to the Hessian of the optimised objective; it is added to the
measured sharpness. Decoupled (AdamW) decay is not included (its effect is a contraction 1 − ηwd).

Each measurement builds a :class:`HessianOperator` at the current parameters and runs Lanczos
warm-started from the previous top eigenvector, with at most ``max_matvec`` products (certificate
included), so tracking costs a bounded number of HVPs; the residual and converged flag of every
measurement are recorded, so an unconverged reading is visible, not hidden.

Example (full-batch GD on a small regression MLP; the threshold of GD is 2/η):
    >>> import torch
    >>> from terrainlab.curvature import SharpnessTracker
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    >>> x, y = torch.randn(64, 3), torch.randn(64, 1)
    >>> def loss_fn(model, batch):
    ...     return torch.nn.functional.mse_loss(model(batch[0]), batch[1])
    >>> opt = torch.optim.SGD(net.parameters(), lr=0.1)
    >>> tracker = SharpnessTracker(net, loss_fn, [(x, y)], optimizer=opt, every=10)
    >>> for step in range(50):
    ...     opt.zero_grad(); loss_fn(net, (x, y)).backward(); opt.step()
    ...     _ = tracker.step()
    >>> rec = tracker.records[-1]
    >>> len(tracker.records), rec.step, rec.kind, round(rec.threshold, 6)
    (5, 40, 'H', 20.0)
    >>> 0 < rec.sharpness < rec.threshold          # well below the edge of stability
    True
    >>> fig = tracker.plot()
    >>> import matplotlib.pyplot as plt; plt.close(fig)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from terrainlab.core.validate import check_int, check_positive

from .algorithms import eigs
from .operators import HessianOperator, PreconditionedOperator


@dataclass(frozen=True)
class SharpnessRecord:
    """One measurement. ``sharpness`` is the quantity compared with ``threshold``: λ_max(H) (+ wd)
    for SGD-type optimizers, λ_max(P⁻¹H) for Adam-type (``kind`` says which)."""

    step: int
    sharpness: float
    threshold: float
    lr: float
    kind: str
    residual: float
    converged: bool
    n_matvec: int
    seconds: float
    loss: float


def stability_threshold(optimizer: torch.optim.Optimizer | None = None, lr: float | None = None) -> tuple[float, str]:
    """(threshold, kind) for the optimizer's first param group (see the module docstring).

    ``kind`` is "H" (compare λ_max(H) with the threshold) or "P^-1 H" (Adam-type).
    """
    if optimizer is None:
        if lr is None:
            raise ValueError("lr must be a positive number when no optimizer is given")
        return 2.0 / check_positive(lr, "lr"), "H"
    group = optimizer.param_groups[0]
    eta = check_positive(float(group["lr"]) if lr is None else lr, "lr")
    if isinstance(optimizer, (torch.optim.Adam, torch.optim.AdamW)):
        b1 = float(group["betas"][0])
        return (2 + 2 * b1) / ((1 - b1) * eta), "P^-1 H"
    if isinstance(optimizer, torch.optim.SGD):
        mu = float(group.get("momentum", 0.0))
        if mu and float(group.get("dampening", 0.0)):
            raise ValueError("SGD with dampening is not covered by the stability thresholds")
        if mu and group.get("nesterov", False):
            return (2 + 2 * mu) / ((1 + 2 * mu) * eta), "H"
        return 2 * (1 + mu) / eta, "H"
    raise ValueError(
        f"optimizer must be torch.optim.SGD, Adam or AdamW (got {type(optimizer).__name__}); "
        "pass lr= without an optimizer for plain GD"
    )


def adam_preconditioner(optimizer: torch.optim.Optimizer, model: nn.Module, names) -> torch.Tensor | None:
    """P = √v̂ + ε (bias-corrected second moment) for the named parameters; None before step 1."""
    group = optimizer.param_groups[0]
    b2, eps = float(group["betas"][1]), float(group["eps"])
    named = dict(model.named_parameters())
    parts = []
    for n in names:
        st = optimizer.state.get(named[n])
        if not st or "exp_avg_sq" not in st:
            return None
        step = float(st["step"])
        vhat = st["exp_avg_sq"].detach() / (1 - b2**step)
        parts.append((vhat.sqrt() + eps).reshape(-1))
    return torch.cat(parts)


class SharpnessTracker:
    """Training callback: every ``every`` calls of :meth:`step`, measure the sharpness.

    Args:
        model, loss_fn, data: as for :class:`HessianOperator` (usually the full training batch or a
            fixed subset of it, so readings are comparable across steps).
        optimizer: torch SGD / Adam / AdamW, used for η, the threshold and Adam's preconditioner;
            or ``lr=`` for plain GD.
        every: measure every ``every`` steps (the first call measures step 0).
        max_matvec: HVP budget per measurement (certificate included).
        tol: relative residual tolerance of the Lanczos solve.
        operator_kwargs: passed to :class:`HessianOperator` (``params``, ``dtype``, ``mode``,
            ``process_group``...).
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: Callable,
        data,
        *,
        optimizer: torch.optim.Optimizer | None = None,
        lr: float | None = None,
        every: int = 10,
        max_matvec: int = 20,
        tol: float = 1e-3,
        generator: torch.Generator | None = None,
        **operator_kwargs,
    ):
        check_int(every, "every", minimum=1)
        check_int(max_matvec, "max_matvec", minimum=4)
        check_positive(tol, "tol")
        stability_threshold(optimizer, lr)  # validates
        self.model, self.loss_fn, self.data = model, loss_fn, data
        self.optimizer, self.lr = optimizer, lr
        self.every, self.max_matvec, self.tol = every, max_matvec, tol
        self.generator = generator
        self.operator_kwargs = operator_kwargs
        self.records: list[SharpnessRecord] = []
        self._count = 0
        self._v = None
        self._op = None

    def step(self, step: int | None = None) -> SharpnessRecord | None:
        """Call once per optimizer step; measures when the internal counter hits ``every``."""
        s = self._count if step is None else int(step)
        self._count += 1
        if s % self.every != 0:
            return None
        return self.measure(s)

    __call__ = step

    def measure(self, step: int) -> SharpnessRecord:
        t0 = time.perf_counter()
        if self._op is None:
            self._op = HessianOperator(self.model, self.loss_fn, self.data, **self.operator_kwargs)
        else:
            self._op.refresh()
        op = self._op
        thr, kind = stability_threshold(self.optimizer, self.lr)
        lr = float(self.optimizer.param_groups[0]["lr"]) if self.lr is None else float(self.lr)
        target = op
        if kind == "P^-1 H":
            P = adam_preconditioner(self.optimizer, self.model, op.spec.names)
            if P is None:  # before Adam's first step there is no preconditioner yet
                kind = "H"
            else:
                target = PreconditionedOperator(op, P)
        wd = 0.0
        if isinstance(self.optimizer, torch.optim.SGD):
            wd = float(self.optimizer.param_groups[0].get("weight_decay", 0.0))
        v0 = self._v  # warm start from the last reading, unless that one was NaN / empty
        if v0 is not None and (v0.shape != (op.size,) or not bool(torch.isfinite(v0).all()) or v0.norm() == 0):
            v0 = None
        res = eigs(
            target, k=1, which="LA", tol=self.tol, v0=v0,
            ncv=min(self.max_matvec - 1, 20, op.size) if op.size > 2 else None,
            max_matvec=self.max_matvec, generator=self.generator,
        )
        self._v = res.eigenvectors[:, 0].detach()
        loss, _ = op.loss_and_grad()
        rec = SharpnessRecord(
            step=step,
            sharpness=float(res.eigenvalues[0]) + wd,
            threshold=thr,
            lr=lr,
            kind=kind,
            residual=float(res.residuals[0]),
            converged=bool(res.converged[0]),
            n_matvec=res.n_matvec,
            seconds=time.perf_counter() - t0,
            loss=loss,
        )
        self.records.append(rec)
        return rec

    def plot(self, ax=None, label: str | None = None, color=None):
        """λ vs step with the threshold as a dashed line; returns the figure."""
        return plot_sharpness(self.records, ax=ax, label=label, color=color)


def plot_sharpness(records, ax=None, label: str | None = None, color=None):
    """The edge-of-stability picture: sharpness (solid) and its threshold (dashed) against step.

    Unconverged readings are drawn as hollow markers.
    """
    from terrainlab.plotting import figure, style

    if ax is None:
        fig, ax = figure("single")
    else:
        fig = ax.figure
    if not records:
        raise ValueError("records must be a non-empty list of SharpnessRecord")
    steps = [r.step for r in records]
    lam = [r.sharpness for r in records]
    kind = records[-1].kind
    sym = "λ_max(H)" if kind == "H" else "λ_max(P⁻¹H)"
    with style():
        (line,) = ax.plot(steps, lam, color=color, label=(label + ": " if label else "") + sym)
        thr = [r.threshold for r in records]
        ax.plot(steps, thr, ls="--", color=line.get_color(), lw=0.9,
                label=(label + ": " if label else "") + ("2/η" if kind == "H" else "threshold"))
        bad = [(s, v) for s, v, r in zip(steps, lam, records) if not r.converged]
        if bad:
            ax.scatter(*zip(*bad), facecolors="none", edgecolors=line.get_color(), s=10, lw=0.6)
        ax.set_xlabel("step")
        ax.set_ylabel("sharpness")
        ax.legend(frameon=False)
    return fig


__all__ = [
    "SharpnessTracker",
    "SharpnessRecord",
    "stability_threshold",
    "adam_preconditioner",
    "plot_sharpness",
]
