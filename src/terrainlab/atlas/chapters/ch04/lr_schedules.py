"""ch04.lr_schedules — step decay, cosine, warmup + cosine and cyclical triangular schedules.

The four schedules of the book's 2×2 figure, computed by ``terrainlab.optim.schedules`` both as
plain functions and as ``lr_scheduler`` objects, and checked step by step against PyTorch's own
schedulers (``StepLR``, ``CosineAnnealingLR``, ``SequentialLR(LinearLR, CosineAnnealingLR)``,
``CyclicLR``). A short training run of a real model (logistic regression on scikit-learn's digits,
full batch) with each schedule shows what they do to the loss.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.optim import lr_scheduler as ls

from terrainlab.atlas import Context, Result, experiment
from terrainlab.optim import (
    CosineLR,
    HeavyBall,
    StepDecayLR,
    TriangularLR,
    WarmupCosineLR,
    cosine,
    cyclical_triangular,
    step_decay,
    warmup_cosine,
)
from terrainlab.plotting import OKABE_ITO, figure, style

T = 200
LR0 = 0.1
TOL = 1e-12


def decide_lr_schedules(max_deviation: float, tol: float = TOL) -> str:
    """The formulas are the standard ones iff every schedule matches PyTorch's to ``tol``."""
    return "holds" if max_deviation <= tol else "fails"


def _specs():
    return {
        "step decay (γ=0.5 every 50)": (
            lambda t: step_decay(t, lr0=LR0, gamma=0.5, step_size=50),
            lambda o: StepDecayLR(o, gamma=0.5, step_size=50),
            lambda o: ls.StepLR(o, step_size=50, gamma=0.5),
        ),
        "cosine (T=200)": (
            lambda t: cosine(t, lr0=LR0, T=T),
            lambda o: CosineLR(o, T=T),
            lambda o: ls.CosineAnnealingLR(o, T_max=T),
        ),
        "warmup 20 + cosine": (
            lambda t: warmup_cosine(t, lr0=LR0, warmup=20, T=T),
            lambda o: WarmupCosineLR(o, warmup=20, T=T),
            lambda o: ls.SequentialLR(o, [ls.LinearLR(o, start_factor=0.01, total_iters=20),
                                          ls.CosineAnnealingLR(o, T_max=T - 20)], milestones=[20]),
        ),
        "cyclical triangular": (
            lambda t: cyclical_triangular(t, lr_lo=0.01, lr_hi=LR0, step_size_up=25),
            lambda o: TriangularLR(o, lr_lo=0.01, lr_hi=LR0, step_size_up=25),
            lambda o: ls.CyclicLR(o, base_lr=0.01, max_lr=LR0, step_size_up=25, cycle_momentum=False),
        ),
    }


def _trace(make, opt):
    sched = make(opt)
    out = []
    for _ in range(T):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return np.array(out)


def _digits(n):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X[:n] / 16.0, dtype=torch.float32)
    return X, torch.tensor(y[:n])


@experiment(
    id="ch04.lr_schedules",
    chapter=4,
    title="Learning-rate schedules: step, cosine, warmup + cosine, cyclical",
    claim="Step decay, cosine annealing η_min + (η0 − η_min)(1 + cos(πt/T))/2, linear warmup and "
    "cyclical schedules are the standard schedules (as implemented by PyTorch).",
)
def lr_schedules(ctx: Context) -> Result:
    specs = _specs()
    dummy = lambda: torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=LR0)  # noqa: E731
    curves, devs = {}, {}
    for name, (fn, ours, theirs) in specs.items():
        plain = np.array([fn(t) for t in range(T)])
        a, b = _trace(ours, dummy()), _trace(theirs, dummy())
        curves[name] = (plain, b)
        devs[name] = float(max(np.abs(plain - b).max(), np.abs(a - b).max()))
    max_dev = max(devs.values())

    # training: full-batch heavy ball on digits (multinomial logistic regression), each schedule
    torch.manual_seed(ctx.seed)
    X, y = _digits(400 if ctx.quick else 1797)
    steps = 100 if ctx.quick else T
    losses = {}
    for name, (_, ours, _) in specs.items():
        W = torch.zeros(64, 10, requires_grad=True)
        opt = HeavyBall([W], lr=LR0 * 5, beta=0.9)
        sched = ours(opt)
        hist = []
        for _ in range(steps):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(X @ W, y)
            loss.backward()
            opt.step()
            sched.step()
            hist.append(float(loss.detach()))
        losses[name] = np.array(hist)

    with style():
        fig, axes = figure("double", height=4.0, nrows=2, ncols=3, layout="constrained")
        panels = [axes[0, 0], axes[0, 1], axes[1, 0], axes[1, 1]]
        colors = [OKABE_ITO[i] for i in (0, 4, 2, 5)]
        for i, (ax, (name, (plain, ref))) in enumerate(zip(panels, curves.items())):
            ax.plot(plain, color=colors[i], label="terrainlab (function)")
            ax.plot(np.arange(T)[::7], ref[::7], "o", ms=2.5, mfc="none", color="k", mew=0.6,
                    label="torch.optim.lr_scheduler")
            ax.set_title(f"{name}\nmax |Δ| vs PyTorch = {devs[name]:.1e}")
            ax.set_xlabel("step t")
            ax.set_ylabel("η_t")
            if i == 1:
                ax.legend(frameon=False, fontsize=6, loc="upper right")
        ax = axes[0, 2]
        for i, (name, h) in enumerate(losses.items()):
            ax.semilogy(h, color=colors[i], label=name)
        ax.set_xlabel("step")
        ax.set_ylabel("training cross-entropy")
        ax.set_title("digits softmax regression (heavy ball)")
        ax.legend(frameon=False, fontsize=5.5)
        ax = axes[1, 2]
        for i, (name, (plain, ref)) in enumerate(curves.items()):
            ax.semilogy(np.maximum(np.abs(plain - ref), 1e-19), ".", ms=2, color=colors[i], label=name)
        ax.set_xlabel("step t")
        ax.set_ylabel("|ours − PyTorch| (0 drawn at 1e−19)")
        ax.set_title("agreement with PyTorch")
        ax.set_ylim(1e-20, 1e-10)
    ctx.savefig(fig, "lr_schedules")

    final = {k: float(v[-1]) for k, v in losses.items()}
    return Result(
        verdict=decide_lr_schedules(max_dev),
        numbers={"max_abs_deviation_from_pytorch": devs, "final_train_loss_digits": final, "steps": T},
        threshold=f"holds iff every schedule matches PyTorch's scheduler to ≤ {TOL:g} at every step",
        explanation=(
            f"Over {T} steps the closed-form schedules agree with PyTorch's schedulers to {max_dev:.1e} "
            "(step decay ↔ StepLR, cosine ↔ CosineAnnealingLR, warmup+cosine ↔ SequentialLR(LinearLR, "
            "CosineAnnealingLR), triangular ↔ CyclicLR). Full-batch heavy-ball training of a "
            "softmax regression on scikit-learn's digits (top right) under each schedule; final losses "
            + ", ".join(f"{k}: {v:.3f}" for k, v in final.items()) + "."
        ),
    )
