"""ch04.l1_vs_l2 — constraint geometry (L2 circle vs L1 diamond) and exact zeros on a 20-d lasso.

The book: "L1 produces exact zeros; L2 only shrinks." That is a statement about the *optimum* (and
about methods that reach it exactly). The experiment computes (i) the constrained optima of one
quadratic on the L2 ball and the L1 ball (projected gradient, the L1-ball projection built on the
core simplex projection), and (ii) a 20-dimensional lasso with λ = 0.1 solved by subgradient
descent, by the proximal step (ISTA, ``terrainlab.optim.ProximalGradientScheme``), and ridge by GD,
counting exact zeros; scikit-learn's coordinate-descent ``Lasso`` is the independent reference.

Claim kind: empirical — whether a method's iterates reach exact zeros in float64 after a finite number
of steps is measured, not implied by the optimum's sparsity (subgradient descent shows it can go the
other way). The lasso data are random: 3 seeds (ctx.seed + 1, 2, 3), solved side by side in one
batched rollout; zero counts are reported as mean ± SE.

Control: ridge (L2, the same data, the same count of exact zeros) must have none — the count must come out
the other way for the penalty the claim says "only shrinks" (``control_verdict``). If ridge also shows
exact zeros (e.g. by underflow), the count cannot tell the two apart and the verdict is inconclusive.

Verdict rule (``decide_l1_vs_l2``): each method "has exact zeros" when its mean count lies above
``ZERO_COUNT`` = 0.5 beyond 2 SE and "has none" when below; inconclusive if ridge does not clearly have
none, or if either L1 count straddles 0.5; fails if ISTA (the optimum) has none; holds if subgradient
descent has exact zeros too; else holds-with-correction (only the proximal method reaches them).
"""

from __future__ import annotations

import numpy as np
import torch

from terrainlab.atlas import Context, Result, experiment
from terrainlab.atlas.stats import mean_se, side_of
from terrainlab.core import map_field, project_simplex, rollout
from terrainlab.optim import GradientDescentScheme, ProximalGradientScheme
from terrainlab.plotting import OKABE_ITO, figure, style

LAM = 0.1
D, N = 20, 100
N_SEEDS = 3
ZERO_COUNT = 0.5  # mean exact-zero count (± 2 SE) above this: "has exact zeros"; below: "has none"


def decide_l1_vs_l2(zeros_prox: float, zeros_subgradient: float, zeros_ridge: float, se_prox: float = 0.0,
                    se_subgradient: float = 0.0, se_ridge: float = 0.0, threshold: float = ZERO_COUNT) -> str:
    """Mean exact-zero counts (± their SE over seeds) of ISTA, subgradient descent and ridge, each read
    against ``threshold`` at 2 SE. inconclusive if ridge (the control) does not clearly have none, or an
    L1 count straddles the threshold; fails if not even the proximal method (the optimum) has exact
    zeros; holds if both L1 methods have them; holds-with-correction if only the proximal method does."""
    for name, v in (("zeros_prox", zeros_prox), ("zeros_subgradient", zeros_subgradient), ("zeros_ridge", zeros_ridge),
                    ("se_prox", se_prox), ("se_subgradient", se_subgradient), ("se_ridge", se_ridge)):
        if not (isinstance(v, (int, float)) and np.isfinite(v) and v >= 0):
            raise ValueError(f"{name} must be a non-negative finite number, got {v!r}")
    if not (isinstance(threshold, (int, float)) and threshold > 0):
        raise ValueError(f"threshold must be a positive number, got {threshold!r}")
    if side_of(zeros_ridge, se_ridge, threshold) != "below":
        return "inconclusive"
    prox, sub = side_of(zeros_prox, se_prox, threshold), side_of(zeros_subgradient, se_subgradient, threshold)
    if "inside" in (prox, sub):
        return "inconclusive"
    if prox == "below":
        return "fails"
    if sub == "above":
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

    # (ii) lasso, N_SEEDS data sets side by side: one state of N_SEEDS·D coordinates, block s is seed
    # ctx.seed + 1 + s, the quadratic block-diagonal (a batched einsum was 20× slower on this host)
    w_true = torch.zeros(D, dtype=torch.float64)
    w_true[:3] = torch.tensor([2.0, -1.5, 1.0], dtype=torch.float64)
    Xs, ys = [], []
    for i in range(N_SEEDS):
        g = ctx.generator(1 + i)
        Xs.append(torch.randn(N, D, generator=g, dtype=torch.float64))
        ys.append(Xs[-1] @ w_true + 0.1 * torch.randn(N, generator=g, dtype=torch.float64))
    XtX = torch.block_diag(*[x.T @ x / N for x in Xs])
    Xty = torch.cat([x.T @ y / N for x, y in zip(Xs, ys)])

    def smooth(th, t=0.0):  # −∇ of ‖Xθ − y‖²/(2n), every seed's block
        return -(th @ XtX - Xty)

    steps = 1500 if ctx.quick else 5000
    eta = 0.1
    th0 = torch.zeros(1, N_SEEDS * D, dtype=torch.float64)
    every = max(steps // 100, 1)
    sub = rollout(lambda th, t: smooth(th) - LAM * torch.sign(th), th0 + 0.0, eta=eta, steps=steps,
                  scheme=GradientDescentScheme(), record=every)
    ista = rollout(smooth, th0, eta=eta, steps=steps, scheme=ProximalGradientScheme(l1=LAM), record=every)
    ridge = rollout(lambda th, t: smooth(th) - LAM * th, th0, eta=eta, steps=steps, scheme=GradientDescentScheme(),
                    record="last")
    finals = {k: tr.final.reshape(N_SEEDS, D) for k, tr in (("subgradient", sub), ("ista", ista), ("ridge", ridge))}
    per_seed = {k: (w == 0).sum(-1).tolist() for k, w in finals.items()}
    stats = {k: mean_se(v) for k, v in per_seed.items()}
    w_sub, w_ista, w_ridge = finals["subgradient"][0], finals["ista"][0], finals["ridge"][0]
    zeros = {k: v[0] for k, v in per_seed.items()}  # the first seed (the figure's)
    tiny_sub = int((w_sub.abs() <= eta * LAM).sum())  # the chatter band |θ| ≤ ηλ
    from sklearn.linear_model import Lasso

    sks = [Lasso(alpha=LAM, fit_intercept=False, tol=1e-12, max_iter=100000).fit(x.numpy(), y.numpy()).coef_
           for x, y in zip(Xs, ys)]
    sk = sks[0]
    sk_zeros = int((sk == 0).sum())
    sk_zeros_per_seed = [int((c == 0).sum()) for c in sks]
    support_agrees = bool(all(((finals["ista"][i].numpy() == 0) == (c == 0)).all() for i, c in enumerate(sks)))
    gap_sk = float(max(np.abs(finals["ista"][i].numpy() - c).max() for i, c in enumerate(sks)))
    zeros_ista_t = (ista.states[:, 0, :D] == 0).sum(-1).numpy()
    zeros_sub_t = (sub.states[:, 0, :D] == 0).sum(-1).numpy()
    verdict = decide_l1_vs_l2(stats["ista"][0], stats["subgradient"][0], stats["ridge"][0],
                              stats["ista"][1], stats["subgradient"][1], stats["ridge"][1])
    control_verdict = "no exact zeros" if side_of(*stats["ridge"], ZERO_COUNT) == "below" else "exact zeros"

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
        ax.set_title(f"20-d lasso, λ = {LAM}, {steps} steps (seed {ctx.seed + 1}); ridge = control")
        ax.legend(frameon=False, fontsize=5.5)
        ax = axes[2]
        ax.plot(ista.steps.numpy(), zeros_ista_t, color=OKABE_ITO[5], label="ISTA")
        ax.plot(sub.steps.numpy(), zeros_sub_t, color=OKABE_ITO[0], label="subgradient")
        ax.plot(sub.steps.numpy(), zeros["ridge"] * np.ones(len(sub.steps)), ":",
                color=OKABE_ITO[4], label=f"ridge (control): {stats['ridge'][0]:.0f} over {N_SEEDS} seeds")
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
            "claim_kind": "empirical", "seeds": [ctx.seed + 1 + i for i in range(N_SEEDS)],
            "exact_zeros_per_seed": per_seed, "sklearn_lasso_zeros_per_seed": sk_zeros_per_seed,
            "ista_zeros_mean": stats["ista"][0], "ista_zeros_se": stats["ista"][1],
            "subgradient_zeros_mean": stats["subgradient"][0], "subgradient_zeros_se": stats["subgradient"][1],
            "control": "ridge (L2) on the same data: the same exact-zero count",
            "control_ridge_zeros_mean": stats["ridge"][0], "control_ridge_zeros_se": stats["ridge"][1],
            "control_verdict": control_verdict,
        },
        threshold=(f"exact zeros counted as θᵢ == 0.0 in float64, mean over {N_SEEDS} seeds read against "
                   f"{ZERO_COUNT} at ± 2 SE; inconclusive unless ridge (control) clearly has none; holds if both L1 "
                   "methods give exact zeros; holds-with-correction if only the proximal method does; fails if neither"),
        explanation=(
            f"On the L1 ball the constrained optimum sits on a corner (θ₂ = {opt_l1[1].item():.1e}); on the L2 ball "
            f"both coordinates are non-zero. On the 20-d lasso after {steps} steps, ISTA has {zeros['ista']} exact "
            f"zeros (the optimum has {sk_zeros} by scikit-learn; supports agree: {support_agrees}), subgradient "
            f"descent has {zeros['subgradient']} exact zeros — {tiny_sub} weights instead chatter "
            f"inside |θ| ≤ ηλ = {eta * LAM:g} — and ridge has {zeros['ridge']}. Over {N_SEEDS} data seeds: ISTA "
            f"{stats['ista'][0]:.2f} ± {stats['ista'][1]:.2f} exact zeros (sklearn optimum {sk_zeros_per_seed}), "
            f"subgradient {stats['subgradient'][0]:.2f} ± {stats['subgradient'][1]:.2f}, ridge (control) "
            f"{stats['ridge'][0]:.2f} ± {stats['ridge'][1]:.2f} — {control_verdict}."
        ),
        corrected=(
            "The L1-regularised *optimum* is sparse, and proximal methods (soft thresholding, ISTA) reach exact "
            "zeros; plain (sub)gradient descent on λ‖θ‖₁ does not — its small weights oscillate around 0 with "
            "amplitude ~ηλ."
        ) if verdict == "holds-with-correction" else None,
    )
