"""ch03.optimizer_comparison — SGD, heavy ball and Adam on Rosenbrock (b = 10) for 80 steps.

The book's figure runs the three optimizers from one start and says Adam ends closest to the
minimum (1, 1); neither the start nor the step sizes are given. Here the start and step sizes are
stated, the three are run as core schemes (``terrainlab.optim``) on the closed-form field, and a
sweep over each optimizer's step size shows how often Adam is actually the closest.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch

from terrainlab.atlas import Context, Result, experiment
from terrainlab.core import rollout
from terrainlab.optim import (
    AdamScheme,
    GradientDescentScheme,
    HeavyBallScheme,
    NesterovScheme,
    plot_stability_regions,
    stability_threshold,
)
from terrainlab.plotting import OKABE_ITO, figure, style
from terrainlab.terrains.closed_form import rosenbrock_field, rosenbrock_hessian, rosenbrock_loss

B = 10.0
START = (-1.5, 2.0)
STEPS = 80
STATED = {"SGD": 0.015, "momentum (β=0.9)": 0.002, "Adam": 0.1}
SCHEMES = {"SGD": GradientDescentScheme(), "momentum (β=0.9)": HeavyBallScheme(0.9), "Adam": AdamScheme()}
GRIDS = {
    "SGD": (1e-3, 0.03),
    "momentum (β=0.9)": (3e-4, 0.03),
    "Adam": (3e-3, 1.0),
}
HOLD_FRACTION = 0.9  # "Adam gets closest" holds if Adam is closest in ≥ 90% of step-size combinations
FAIL_FRACTION = 0.1


def decide_optimizer_comparison(adam_closest_fraction: float, adam_closest_at_stated: bool) -> str:
    """holds: Adam closest in ≥ 90% of the step-size grid (and at the stated settings);
    fails: in ≤ 10%; otherwise the ranking depends on the step sizes: holds-with-correction."""
    if adam_closest_fraction >= HOLD_FRACTION and adam_closest_at_stated:
        return "holds"
    if adam_closest_fraction <= FAIL_FRACTION:
        return "fails"
    return "holds-with-correction"


def _run(scheme, eta, record="all"):
    th0 = torch.tensor([START], dtype=torch.float64)
    tr = rollout(rosenbrock_field(B), scheme.init(th0), eta=eta, steps=STEPS, scheme=scheme, record=record)
    path = scheme.params(tr.states)[:, 0].numpy()
    d = float(np.linalg.norm(path[-1] - 1.0))
    return path, (d if np.isfinite(d) else np.inf)


@experiment(
    id="ch03.optimizer_comparison",
    chapter=3,
    title="SGD vs momentum vs Adam on Rosenbrock (b = 10), 80 steps",
    claim="On Rosenbrock with b = 10, Adam gets closest to the minimum within 80 steps.",
)
def optimizer_comparison(ctx: Context) -> Result:
    n = 6 if ctx.quick else 12
    paths, stated_dist = {}, {}
    for name, sch in SCHEMES.items():
        paths[name], stated_dist[name] = _run(sch, STATED[name])
    etas = {k: np.geomspace(*GRIDS[k], n) for k in SCHEMES}
    sweep = {k: np.array([_run(SCHEMES[k], float(e), record="last")[1] for e in etas[k]]) for k in SCHEMES}
    names = list(SCHEMES)
    wins = {k: 0 for k in names}
    for idx in itertools.product(range(n), repeat=3):
        d = [sweep[k][i] for k, i in zip(names, idx)]
        wins[names[int(np.argmin(d))]] += 1
    total = n**3
    frac = {k: wins[k] / total for k in names}
    best = {k: (float(etas[k][int(np.argmin(sweep[k]))]), float(np.min(sweep[k]))) for k in names}
    closest_stated = min(stated_dist, key=stated_dist.get)
    closest_tuned = min(best, key=lambda k: best[k][1])
    lam = np.linalg.eigvalsh(np.array(rosenbrock_hessian(1.0, 1.0, B)))
    gd_limit = stability_threshold(np.array(rosenbrock_hessian(1.0, 1.0, B)))

    colors = {"SGD": OKABE_ITO[0], "momentum (β=0.9)": OKABE_ITO[4], "Adam": OKABE_ITO[5]}
    with style():
        fig, axes = figure("double", height=2.7, ncols=3, layout="constrained")
        ax = axes[0]
        x, y = np.meshgrid(np.linspace(-2, 2, 300), np.linspace(-1, 3, 300))
        Z = rosenbrock_loss(torch.tensor(np.stack([x, y], -1))).numpy()
        ax.contour(x, y, np.log10(Z + 1e-3), levels=20, colors="0.75", linewidths=0.5, linestyles="solid")
        for k, p in paths.items():
            ax.plot(p[:, 0], p[:, 1], ".-", ms=2, lw=0.8, color=colors[k],
                    label=f"{k.split(' ')[0]}, η={STATED[k]}: {stated_dist[k]:.3f}")
        ax.plot(*START, "o", color="k", ms=4)
        ax.plot(1, 1, "*", color="k", ms=8)
        ax.set_xlim(-2, 2)
        ax.set_ylim(-1, 3)
        ax.set_xlabel("θ₁")
        ax.set_ylabel("θ₂")
        ax.set_title(f"80 steps from {START}")
        ax.legend(frameon=False, fontsize=5.5, loc="upper right", title="‖θ₈₀ − θ*‖", title_fontsize=5.5)
        ax = axes[1]
        for k in names:
            d = np.where(np.isfinite(sweep[k]), sweep[k], np.nan)
            ax.loglog(etas[k], d, "o-", ms=3, color=colors[k], label=f"{k.split(' ')[0]}: closest in {100 * frac[k]:.0f}% of grid")
            ax.axvline(STATED[k], color=colors[k], ls=":", lw=0.8)
        ax.axvline(gd_limit, color="0.4", ls="--", lw=0.8)
        ax.text(gd_limit, ax.get_ylim()[1] * 0.6, " GD limit\n 2/λ_max(H*)", fontsize=6, color="0.3", va="top")
        ax.set_xlabel("step size η (dotted: stated)")
        ax.set_ylabel("‖θ₈₀ − (1, 1)‖")
        ax.set_title("after 80 steps (gaps: diverged)")
        ax.legend(frameon=False, fontsize=6)
        ax = axes[2]
        hs = plot_stability_regions({"GD": GradientDescentScheme(), "heavy ball β=0.9": HeavyBallScheme(0.9),
                                     "Nesterov β=0.9": NesterovScheme(0.9)}, ax, re=(-4.5, 0.5), im=(-2.5, 2.5),
                                    n=161, colors=[colors["SGD"], colors["momentum (β=0.9)"], OKABE_ITO[2]])
        ax.legend(handles=hs, frameon=False, fontsize=5.5, loc="upper left")
        ax.set_title("stable steps: |R(z)| ≤ 1, z = ηλ")
    ctx.savefig(fig, "optimizer_comparison")

    # decide: a pure function of the numbers measured above (the figure only shows them)
    verdict = decide_optimizer_comparison(frac["Adam"], closest_stated == "Adam")

    return Result(
        verdict=verdict,
        numbers={
            "start": list(START),
            "stated_eta": STATED,
            "distance_at_stated_eta": stated_dist,
            "closest_at_stated": closest_stated,
            "best_eta_and_distance": best,
            "closest_when_each_tuned": closest_tuned,
            "fraction_of_grid_where_closest": frac,
            "grid_points_per_optimizer": n,
            "hessian_eigenvalues_at_minimum": lam,
            "gd_stability_limit_at_minimum": gd_limit,
            "heavy_ball_stability_limit_at_minimum": HeavyBallScheme(0.9).stability_limit(float(lam.max())),
            "adam_preconditioned_limit_eta_lambda": AdamScheme().stability_limit(1.0),
        },
        threshold=(f"holds if Adam is closest in ≥ {HOLD_FRACTION:.0%} of the {n}³ step-size combinations "
                   f"and at the stated ones; fails if ≤ {FAIL_FRACTION:.0%}; otherwise holds-with-correction"),
        explanation=(
            f"From {START} with the stated step sizes, distances after 80 steps are "
            + ", ".join(f"{k} {v:.3f}" for k, v in stated_dist.items())
            + f" (closest: {closest_stated}). Over a log grid of each optimizer's step size, Adam is closest "
            f"in {100 * frac['Adam']:.0f}% of combinations; tuning each step size separately, the closest is "
            f"{closest_tuned} (" + ", ".join(f"{k}: {v[1]:.3g} at η={v[0]:.3g}" for k, v in best.items())
            + f"). GD's local limit at the minimum is 2/λ_max = {gd_limit:.4f}."
        ),
        corrected=(
            "Which optimizer gets closest in 80 steps depends on the step sizes: Adam wins at some settings "
            f"(including the stated ones here) but, with each step size tuned, {closest_tuned} is closest. "
            "Always report η."
        ) if verdict != "holds" else None,
    )
