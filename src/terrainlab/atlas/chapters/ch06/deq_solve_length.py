"""ch06.deq_solve_length — does training make a DEQ's fixed-point solve (its "reasoning") shorter?

The old ``ch06.deq_fixed_point`` bundled this with the Lipschitz claim; it is the book's ch09 Theorem 3
("training smooths the landscape, so reasoning gets shorter") read on the DEQ of chapter 6, where the
steps of reasoning are exact: the iterations its solver needs. The models are the unconstrained DEQs of
``ch06.deq_fixed_point`` (:func:`~terrainlab.atlas.chapters.ch06.deq_fixed_point.plain_runs`, trained once
per atlas run, ``N_SEEDS`` seeds): the mean number of Anderson iterations (the layer's own solver,
relative residual 1e-4) over the held-out digits at initialisation and after training, and their ratio
r = end / start per seed, with its mean and standard error over seeds. (``ch09.training_shortens_reasoning``
asks the same of a Picard-solved DEQ trained by minibatches, one seed, with the Hessian at the output
belief; this one is the layer as it is trained here, with seeds and an interval.)

Control inside the experiment: the same models, seeds and data trained with the Jacobian penalty of Bai,
Koltun & Kolter (ICML 2021), γ·‖∂f/∂z‖²_F/d at z* (:func:`terrainlab.nn.jacobian_regularizer`, seeded
probes) — a training that does shorten the solve. The same measurement must read r < 1 there (mean + 2 SE
below 1), else the verdict is inconclusive.

Verdict (:func:`decide_solve_length`): holds when r's mean + 2 SE < 1 (shorter); fails when r's mean −
2 SE > 1 (longer) or its ±2 SE interval lies inside 1 ± ``NULL_BAND`` (no change); inconclusive otherwise.
"""

from __future__ import annotations

import math

import torch

from terrainlab.atlas import Context, Result, experiment
from terrainlab.atlas.chapters._digits import one_thread
from terrainlab.atlas.stats import mean_se
from terrainlab.plotting import BLACK, BLUE, VERMILLION, figure

from .deq_fixed_point import N_SEEDS, DEQClassifier, data, plain_runs, seeds, sizes, train_logged

NULL_BAND = 0.05  # |r − 1| within this (±2 SE): no change
JAC_GAMMA = 20.0  # weight of the control's Jacobian penalty


def decide_solve_length(ratio_mean: float, ratio_se: float, control_mean: float, control_se: float,
                        null_band: float = NULL_BAND) -> str:
    """inconclusive unless the control reads shorter (``control_mean + 2 control_se < 1``); then holds
    when ``ratio_mean + 2 ratio_se < 1``; fails when ``ratio_mean − 2 ratio_se > 1`` or the interval
    ratio_mean ± 2 ratio_se lies inside 1 ± ``null_band``; inconclusive otherwise."""
    if not all(math.isfinite(v) for v in (ratio_mean, ratio_se, control_mean, control_se)):
        return "inconclusive"
    if not control_mean + 2 * control_se < 1:
        return "inconclusive"
    lo, hi = ratio_mean - 2 * ratio_se, ratio_mean + 2 * ratio_se
    if hi < 1:
        return "holds"
    if lo > 1 or (1 - null_band <= lo and hi <= 1 + null_band):
        return "fails"
    return "inconclusive"


def _ratio(log: dict) -> float:
    it = log["test_iters_mean"]
    return float(it[-1] / it[0])


@experiment(
    id="ch06.deq_solve_length",
    chapter=6,
    title="A DEQ on digits: does training shorten its fixed-point solve? (Jacobian-penalised control)",
    claim="Training reshapes the DEQ's landscape so that reasoning gets shorter: the solver needs fewer "
    "iterations to reach the fixed point after training than before.",
)
def deq_solve_length(ctx: Context) -> Result:
    with one_thread():
        return _deq_solve_length(ctx)


def _deq_solve_length(ctx: Context) -> Result:
    sz = sizes(ctx.quick)
    Xtr, ytr, Xte, yte = data(ctx)
    seed_list = seeds(ctx)
    plain = [r["log"] for r in plain_runs(ctx)]
    ctrl = []
    for s in seed_list:
        model = DEQClassifier(torch.Generator().manual_seed(s))
        ctrl.append(train_logged(model, Xtr, ytr, Xte, steps=sz["steps"], log_every=sz["log_every"], gamma=JAC_GAMMA,
                                 generator=torch.Generator().manual_seed(s + 500)))
    r_p = [_ratio(lg) for lg in plain]
    r_c = [_ratio(lg) for lg in ctrl]
    (rm, rse), (cm, cse) = mean_se(r_p), mean_se(r_c)
    verdict = decide_solve_length(rm, rse, cm, cse)
    it0 = mean_se([lg["test_iters_mean"][0] for lg in plain])
    it1 = mean_se([lg["test_iters_mean"][-1] for lg in plain])
    c1 = mean_se([lg["test_iters_mean"][-1] for lg in ctrl])
    lip_p = mean_se([lg["lip"][-1] for lg in plain])
    lip_c = mean_se([lg["lip"][-1] for lg in ctrl])
    loss_p = mean_se([lg["loss"][-1] for lg in plain])
    loss_c = mean_se([lg["loss"][-1] for lg in ctrl])

    fig, axes = figure("double", height=2.9, ncols=2)
    ax = axes[0]
    for i, (lp, lc) in enumerate(zip(plain, ctrl)):
        ax.plot(lp["step"], lp["test_iters_mean"], "o-", ms=2.5, color=VERMILLION,
                label="plain training" if i == 0 else None)
        ax.plot(lc["step"], lc["test_iters_mean"], "s-", ms=2.5, color=BLUE,
                label=f"control: + Jacobian penalty (γ = {JAC_GAMMA:g})" if i == 0 else None)
    ax.set_xlabel("training step")
    ax.set_ylabel("mean Anderson iterations to 1e-4 (held out)")
    ax.set_title(f"(a) length of the solve over training, {N_SEEDS} seeds")
    ax.set_ylim(bottom=0)
    ax.legend(frameon=False, fontsize=6)
    ax = axes[1]
    jit = ctx.rng(5).uniform(-0.08, 0.08, N_SEEDS)
    for x, (vals, (m, se), c) in enumerate(((r_p, (rm, rse), VERMILLION), (r_c, (cm, cse), BLUE))):
        ax.scatter(x + jit, vals, s=12, color=c, zorder=3)
        ax.errorbar([x + 0.25], [m], yerr=[2 * se], fmt="D", ms=4, color=c, capsize=3)
    ax.axhline(1.0, color=BLACK, ls="--", lw=0.8, label="no change")
    ax.axhspan(1 - NULL_BAND, 1 + NULL_BAND, color="0.85", lw=0, label=f"1 ± {NULL_BAND}")
    ax.set_xticks([0, 1], ["plain", "control (penalty)"])
    ax.set_xlim(-0.5, 1.6)
    ax.set_ylabel("iterations after / before training")
    ax.set_title(f"(b) ratio: {rm:.2f} ± {rse:.2f} plain, {cm:.2f} ± {cse:.2f} control (mean ± SE; bars 2 SE)")
    ax.legend(frameon=False, fontsize=6)
    ctx.savefig(fig, "deq_solve_length")

    direction = "longer" if rm - 2 * rse > 1 else ("shorter" if rm + 2 * rse < 1 else "about as long")
    return Result(
        verdict=verdict,
        numbers={
            "claim_kind": "empirical",
            "seeds": seed_list,
            "train_steps": sz["steps"],
            "n_train": sz["n_train"],
            "n_test": len(yte),
            "iterations_ratio": rm,
            "iterations_ratio_se": rse,
            "iterations_ratio_per_seed": r_p,
            "iterations_start": it0[0],
            "iterations_start_se": it0[1],
            "iterations_end": it1[0],
            "iterations_end_se": it1[1],
            "lip_bound_end": lip_p[0],
            "lip_bound_end_se": lip_p[1],
            "train_loss_end": loss_p[0],
            "train_loss_end_se": loss_p[1],
            "control_gamma": JAC_GAMMA,
            "control_iterations_ratio": cm,
            "control_iterations_ratio_se": cse,
            "control_iterations_ratio_per_seed": r_c,
            "control_iterations_end": c1[0],
            "control_iterations_end_se": c1[1],
            "control_lip_bound_end": lip_c[0],
            "control_lip_bound_end_se": lip_c[1],
            "control_train_loss_end": loss_c[0],
            "control_train_loss_end_se": loss_c[1],
        },
        threshold=f"r = mean Anderson iterations (held out) after / before training; control (Jacobian penalty γ = "
        f"{JAC_GAMMA:g}) must read r + 2 SE < 1; then r + 2 SE < 1 ⇒ holds; r − 2 SE > 1, or r ± 2 SE inside "
        f"1 ± {NULL_BAND} ⇒ fails; otherwise inconclusive",
        explanation=(
            f"Trained for {sz['steps']} full-batch Adam steps ({N_SEEDS} seeds, training loss {loss_p[0]:.2f} ± "
            f"{loss_p[1]:.2f}), the DEQ's solve on the {len(yte)} held-out digits went from {it0[0]:.1f} ± {it0[1]:.1f} "
            f"to {it1[0]:.1f} ± {it1[1]:.1f} Anderson iterations: r = {rm:.2f} ± {rse:.2f} (per seed "
            + ", ".join(f"{v:.2f}" for v in r_p)
            + f"), {direction}. Its Lipschitz bound ‖W‖₂ rose to {lip_p[0]:.2f} ± {lip_p[1]:.2f}. With the Jacobian "
            f"penalty the same measurement reads r = {cm:.2f} ± {cse:.2f} ({c1[0]:.1f} ± {c1[1]:.1f} iterations, "
            f"‖W‖₂ {lip_c[0]:.2f} ± {lip_c[1]:.2f}, training loss {loss_c[0]:.2f} ± {loss_c[1]:.2f}): a solve gets "
            "shorter when the training objective asks for contraction, not by itself."
        ),
        corrected=(
            "Training does not by itself shorten a DEQ's solve: fitting the data weakens the layer's contraction "
            f"(‖W‖₂ {lip_p[0]:.2f} ± {lip_p[1]:.2f} after training) and the solve got {direction} "
            f"(×{rm:.2f} ± {rse:.2f}). It gets shorter when the objective rewards contraction — a Jacobian penalty "
            f"gave ×{cm:.2f} ± {cse:.2f} here (Bai, Koltun & Kolter 2021) — so 'reasoning gets shorter with "
            "training' is a conjecture about particular training objectives, not a property of training."
        ) if verdict == "fails" else None,
    )
