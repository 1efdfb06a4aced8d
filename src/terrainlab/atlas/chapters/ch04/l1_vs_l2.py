"""ch04.l1_vs_l2 — constraint geometry (L2 circle vs L1 diamond) and exact zeros on a 20-d lasso.

The book: "L1 produces exact zeros; L2 only shrinks." That is a statement about the *optimum* (and
about methods that reach it exactly). The experiment computes (i) the constrained optima of one
quadratic on the L2 ball and the L1 ball (projected gradient, the L1-ball projection built on the
core simplex projection), and (ii) a 20-dimensional lasso with λ = 0.1 solved by subgradient
descent, by the proximal step (ISTA, ``terrainlab.optim.ProximalGradientScheme``), and ridge by GD,
counting exact zeros; scikit-learn's coordinate-descent ``Lasso`` is the independent reference.
"""

from __future__ import annotations

import numpy as np
import torch

from terrainlab.atlas import Context, Result, experiment
from terrainlab.core import map_field, project_simplex, rollout
from terrainlab.optim import GradientDescentScheme, ProximalGradientScheme
from terrainlab.plotting import OKABE_ITO, figure, style

LAM = 0.1
D, N = 20, 100


def decide_l1_vs_l2(zeros_prox: int, zeros_subgradient: int, zeros_ridge: int) -> str:
    """holds: L1 gives exact zeros by both methods and L2 none; holds-with-correction: only the
    proximal method (the optimum) has exact zeros; fails: not even the proximal method does."""
    if zeros_prox == 0:
        return "fails"
    if zeros_subgradient > 0 and zeros_ridge == 0:
        return "holds"
    return "holds-with-correction"


def _proj_l1(v: torch.Tensor, r: float) -> torch.Tensor:
    if float(v.abs().sum()) <= r:
        return v
    return torch.sign(v) * r * project_simplex(v.abs() / r)


def _proj_l2(v: torch.Tensor, r: float) -> torch.Tensor:
    return v * min(1.0, r / float(v.norm()))


def _constrained(A, c, proj, r=1.0, steps=3000, eta=0.1):
    """Projected gradient descent θ ← P(θ − η∇L) on L = (θ − c)ᵀA(θ − c), run by the core ``rollout``
    as the map's residual field (Euler with η = 1 on T(θ) − θ iterates T)."""

    def T(th):
        return proj(th - eta * 2 * (A @ (th - c)), r)

    return rollout(map_field(T), torch.zeros(2, dtype=torch.float64), eta=1.0, steps=steps, record="last").final


@experiment(
    id="ch04.l1_vs_l2",
    chapter=4,
    title="L1 vs L2: constraint geometry and exact zeros",
    claim="L1 regularisation produces exact zeros (sparse weights); L2 only shrinks them.",
)
def l1_vs_l2(ctx: Context) -> Result:
    # (i) geometry
    A = torch.tensor([[1.0, 0.3], [0.3, 0.6]], dtype=torch.float64)
    c = torch.tensor([1.6, 0.5], dtype=torch.float64)
    opt_l1 = _constrained(A, c, _proj_l1)
    opt_l2 = _constrained(A, c, _proj_l2)

    # (ii) lasso
    g = ctx.generator(1)
    X = torch.randn(N, D, generator=g, dtype=torch.float64)
    w_true = torch.zeros(D, dtype=torch.float64)
    w_true[:3] = torch.tensor([2.0, -1.5, 1.0], dtype=torch.float64)
    y = X @ w_true + 0.1 * torch.randn(N, generator=g, dtype=torch.float64)
    XtX, Xty = X.T @ X / N, X.T @ y / N

    def smooth(th, t=0.0):  # −∇ of ‖Xθ − y‖²/(2n)
        return -(th @ XtX - Xty)

    steps = 1500 if ctx.quick else 5000
    eta = 0.1
    th0 = torch.zeros(1, D, dtype=torch.float64)
    every = max(steps // 100, 1)
    sub = rollout(lambda th, t: smooth(th) - LAM * torch.sign(th), th0 + 0.0, eta=eta, steps=steps,
                  scheme=GradientDescentScheme(), record=every)
    ista = rollout(smooth, th0, eta=eta, steps=steps, scheme=ProximalGradientScheme(l1=LAM), record=every)
    ridge = rollout(lambda th, t: smooth(th) - LAM * th, th0, eta=eta, steps=steps, scheme=GradientDescentScheme(),
                    record="last")
    w_sub, w_ista, w_ridge = sub.final[0], ista.final[0], ridge.final[0]
    zeros = {k: int((w == 0).sum()) for k, w in (("subgradient", w_sub), ("ista", w_ista), ("ridge", w_ridge))}
    tiny_sub = int((w_sub.abs() <= eta * LAM).sum())  # the chatter band |θ| ≤ ηλ
    from sklearn.linear_model import Lasso

    sk = Lasso(alpha=LAM, fit_intercept=False, tol=1e-12, max_iter=100000).fit(X.numpy(), y.numpy()).coef_
    sk_zeros = int((sk == 0).sum())
    support_agrees = bool(((w_ista.numpy() == 0) == (sk == 0)).all())
    gap_sk = float(np.abs(w_ista.numpy() - sk).max())
    zeros_ista_t = (ista.states[:, 0] == 0).sum(-1).numpy()
    zeros_sub_t = (sub.states[:, 0] == 0).sum(-1).numpy()
    verdict = decide_l1_vs_l2(zeros["ista"], zeros["subgradient"], zeros["ridge"])

    with style():
        fig, axes = figure("double", height=2.6, ncols=3)
        ax = axes[0]
        u, v = np.meshgrid(np.linspace(-1.5, 2.5, 200), np.linspace(-1.5, 2.0, 200))
        P = np.stack([u - c[0].item(), v - c[1].item()], -1)
        Q = np.einsum("...i,ij,...j->...", P, A.numpy(), P)
        ax.contour(u, v, Q, levels=[0.05, 0.2, 0.5, 1, 1.7, 2.5, 3.5], colors="0.7", linewidths=0.6)
        tt = np.linspace(0, 2 * np.pi, 200)
        ax.plot(np.cos(tt), np.sin(tt), color=OKABE_ITO[4], label="‖θ‖₂ ≤ 1")
        ax.plot([1, 0, -1, 0, 1], [0, 1, 0, -1, 0], color=OKABE_ITO[5], label="‖θ‖₁ ≤ 1")
        ax.plot(*opt_l2.numpy(), "o", color=OKABE_ITO[4], ms=5, label=f"L2 opt ({opt_l2[0]:.2f}, {opt_l2[1]:.2f})")
        ax.plot(*opt_l1.numpy(), "s", color=OKABE_ITO[5], ms=5, label=f"L1 opt ({opt_l1[0]:.2f}, {opt_l1[1]:.0e})")
        ax.plot(*c.numpy(), "x", color="k", ms=6, label="unconstrained")
        ax.set_aspect("equal")
        ax.set_xlabel("θ₁")
        ax.set_ylabel("θ₂")
        ax.set_title("constrained optima: the diamond's corner")
        ax.legend(frameon=False, fontsize=5.5, loc="lower right", bbox_to_anchor=(1.05, -0.02))
        ax = axes[1]
        floor = 1e-18
        idx = np.arange(D)
        for w, name, mk, col in ((w_sub, "subgradient", "o", OKABE_ITO[0]), (w_ista, "ISTA (prox)", "s", OKABE_ITO[5]),
                                 (w_ridge, "ridge (L2)", "^", OKABE_ITO[4])):
            a = np.sort(w.abs().numpy())
            ax.semilogy(idx, np.maximum(a, floor), mk, ms=3, color=col, mfc="none",
                        label=f"{name}: {int((a == 0).sum())} exact zeros")
        ax.axhline(floor, color="0.5", lw=0.5, ls=":")
        ax.text(0, floor * 5, "exact 0 drawn here", fontsize=5.5, color="0.4")
        ax.set_xlabel("weight index (sorted by |θᵢ|)")
        ax.set_ylabel("|θᵢ| after training")
        ax.set_title(f"20-d lasso, λ = {LAM}, {steps} steps")
        ax.legend(frameon=False, fontsize=5.5)
        ax = axes[2]
        ax.plot(ista.steps.numpy(), zeros_ista_t, color=OKABE_ITO[5], label="ISTA")
        ax.plot(sub.steps.numpy(), zeros_sub_t, color=OKABE_ITO[0], label="subgradient")
        ax.axhline(sk_zeros, color="k", ls="--", lw=0.7, label=f"optimum (sklearn Lasso): {sk_zeros}")
        ax.set_xlabel("step")
        ax.set_ylabel("number of exact zeros")
        ax.set_title("exact zeros during training")
        ax.legend(frameon=False, fontsize=6)
    ctx.savefig(fig, "l1_vs_l2")

    return Result(
        verdict=verdict,
        numbers={
            "l1_ball_optimum": opt_l1, "l2_ball_optimum": opt_l2,
            "exact_zeros": zeros, "subgradient_weights_within_eta_lambda": tiny_sub,
            "sklearn_lasso_zeros": sk_zeros, "ista_support_matches_sklearn": support_agrees,
            "ista_max_gap_to_sklearn": gap_sk, "steps": steps, "eta": eta, "lambda": LAM,
            "subgradient_smallest_abs": float(w_sub.abs().min()),
        },
        threshold="exact zeros counted as θᵢ == 0.0 in float64; holds if both L1 methods give exact zeros "
        "and ridge none; holds-with-correction if only the proximal method does; fails if neither",
        explanation=(
            f"On the L1 ball the constrained optimum sits on a corner (θ₂ = {opt_l1[1].item():.1e}); on the L2 ball "
            f"both coordinates are non-zero. On the 20-d lasso after {steps} steps, ISTA has {zeros['ista']} exact "
            f"zeros (the optimum has {sk_zeros} by scikit-learn; supports agree: {support_agrees}), subgradient "
            f"descent has {zeros['subgradient']} exact zeros — {tiny_sub} weights instead chatter "
            f"inside |θ| ≤ ηλ = {eta * LAM:g} — and ridge has {zeros['ridge']}."
        ),
        corrected=(
            "The L1-regularised *optimum* is sparse, and proximal methods (soft thresholding, ISTA) reach exact "
            "zeros; plain (sub)gradient descent on λ‖θ‖₁ does not — its small weights oscillate around 0 with "
            "amplitude ~ηλ."
        ) if verdict == "holds-with-correction" else None,
    )
