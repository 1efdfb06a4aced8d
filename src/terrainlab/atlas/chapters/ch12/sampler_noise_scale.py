"""ch12.sampler_noise_scale — the book's sampler x_{t−1} = x_t − ηF_t(x_t) + √η ξ against the
reverse-SDE Euler–Maruyama step with noise √(β(t)η) ξ, both with the exact score."""

from __future__ import annotations

import math

import torch

from terrainlab.atlas import Context, Result, experiment
from terrainlab.core import EulerMaruyama, rollout
from terrainlab.diffusion import (
    TimeWarp,
    VPSchedule,
    mmd_rbf,
    reverse_sde_field,
    sliced_wasserstein,
    weight_error,
)
from terrainlab.plotting import BLUE, VERMILLION, figure

from ._common import density_grid, three_clusters

FACTOR = 3.0       # the book's variant is "worse" when its MMD exceeds the correct one's by 3×
GOOD_WERR = 0.03   # and the correct variant recovers the weights within 3 %


def decide_sampler_noise_scale(mmd_book: float, mmd_correct: float, mmd_floor: float,
                               werr_correct: float) -> str:
    """fails (the book's noise term is wrong) when the correct √(β(t)η) sampler is good (weight
    error ≤ GOOD_WERR) and the book's √η sampler's MMD exceeds FACTOR × max(correct, floor);
    holds when the two are indistinguishable; inconclusive otherwise."""
    vals = (mmd_book, mmd_correct, mmd_floor, werr_correct)
    if not all(math.isfinite(v) for v in vals):
        return "inconclusive"
    base = max(mmd_correct, abs(mmd_floor), 1e-5)
    if werr_correct <= GOOD_WERR and mmd_book > FACTOR * base:
        return "fails"
    if mmd_book <= FACTOR * base:
        return "holds"
    return "inconclusive"


@experiment(
    id="ch12.sampler_noise_scale",
    chapter=12,
    title="The sampler's noise term must be √(β(t)η), not √η",
    claim="Sampling is x_{t−1} = x_t − ηF_t(x_t) + √η ξ_t with F_t(x) = −½β(t)x − β(t)∇log p_t(x); "
          "the noise term gives diversity, like a temperature.",
)
def sampler_noise_scale(ctx: Context) -> Result:
    sched = VPSchedule()
    gm = three_clusters()
    n = 3000 if ctx.quick else 10000
    steps_list = [100, 400] if ctx.quick else [100, 400, 1000]
    g = ctx.generator(0)
    xT = sched.prior_sample(n, 2, generator=g)
    ref = gm.sample(2000, generator=g, dtype=torch.float32)[0]
    floor = mmd_rbf(gm.sample(2000, generator=g, dtype=torch.float32)[0], ref, bandwidth=0.5)
    w = TimeWarp(sched, t_lo=1e-3)
    F = reverse_sde_field(gm.score_fn(sched), sched, w)
    dt = abs(w.dt_du(0.5))
    variants = {
        # √(β(t)·η): the reverse-SDE Euler–Maruyama step (Song et al. 2021)
        "correct_sqrt_beta_eta": EulerMaruyama(F.diffusion, g),
        # √η: the book's noise term, η = the time step (|dt/du|·du in sampler time)
        "book_sqrt_eta": EulerMaruyama(lambda x, u: math.sqrt(dt), g),
    }
    rows, finals = [], {}
    for steps in steps_list:
        for name, em in variants.items():
            tr = rollout(F, xT, eta=1.0 / steps, steps=steps, scheme=em, record="last")
            x = tr.final
            finals[(name, steps)] = x
            rows.append({"variant": name, "steps": steps, "status": tr.status,
                         "mmd": mmd_rbf(x[:2000], ref, bandwidth=0.5),
                         "sliced_w2": sliced_wasserstein(x, ref, generator=ctx.generator(1)),
                         "weight_error": weight_error(x, gm),
                         "within_cluster_std": float(_cluster_std(x, gm))})
    last = steps_list[-1]
    pick = {r["variant"]: r for r in rows if r["steps"] == last}

    X, Y, p = density_grid(gm, 4.0)
    fig, axes = figure("double", height=2.5, ncols=3)
    for ax, name, col, title in ((axes[0], "correct_sqrt_beta_eta", BLUE, "noise √(β(t)η) (reverse SDE)"),
                                 (axes[1], "book_sqrt_eta", VERMILLION, "noise √η (the book's sampler)")):
        x = finals[(name, last)][:2500]
        ax.contour(X, Y, p, levels=5, colors="0.3", linewidths=0.5)
        ax.scatter(x[:, 0], x[:, 1], s=1, color=col, alpha=0.5, lw=0, rasterized=True)
        r = pick[name]
        ax.set_title(f"{title}\nMMD² = {r['mmd']:.4f}, cluster s.d. = {r['within_cluster_std']:.2f}")
        ax.set_xlim(-4, 4)
        ax.set_ylim(-3, 4.5)
        ax.set_aspect("equal")
        ax.set_xlabel("x₁")
    axes[0].set_ylabel("x₂")
    ax = axes[2]
    for name, col, lab in (("correct_sqrt_beta_eta", BLUE, "√(β(t)η)"), ("book_sqrt_eta", VERMILLION, "√η")):
        rr = [r for r in rows if r["variant"] == name]
        ax.semilogy([r["steps"] for r in rr], [max(r["weight_error"], 1e-4) for r in rr], "o-", color=col,
                    label=lab)
    ax.axhline(GOOD_WERR, color="0.5", ls=":", label="3 % tolerance")
    ax.set_xlabel("steps (= score evaluations)")
    ax.set_ylabel("max weight error")
    ax.set_title("Weight error vs steps (w = 0.5/0.3/0.2)")
    ax.legend(frameon=False)
    fig.suptitle(f"Exact score, three clusters (true s.d. 0.30), {last} steps", y=1.06)
    ctx.savefig(fig, "sampler_noise_scale")

    # decide: a pure function of the numbers measured above (the figure only shows them)
    verdict = decide_sampler_noise_scale(pick["book_sqrt_eta"]["mmd"], pick["correct_sqrt_beta_eta"]["mmd"],
                                         floor, pick["correct_sqrt_beta_eta"]["weight_error"])
    b, c = pick["book_sqrt_eta"], pick["correct_sqrt_beta_eta"]
    return Result(
        verdict=verdict,
        numbers={"rows": rows, "mmd_floor": floor, "n": n},
        threshold=f"the book's sampler fails if its MMD² > {FACTOR}× max(correct, noise floor) while the "
                  f"correct sampler recovers the weights within {GOOD_WERR}",
        explanation=(
            "Both samplers are the same core rollout of the reverse-time field F on the exact score "
            "of a three-cluster mixture; only the Euler–Maruyama diffusion differs. With √(β(t)η) the "
            f"samples match the data (MMD² {c['mmd']:.4f}, noise floor {floor:.4f}; weight error "
            f"{c['weight_error']:.3f}; cluster s.d. {c['within_cluster_std']:.2f} vs 0.30). The book's √η "
            "is off by the factor 1/√β(t): up to √20 ≈ 4.5× too little noise early (β = 20 at t = 1) "
            f"and up to {1 / math.sqrt(sched.beta_min):.1f}× too much near t = 0. The early deficit acts "
            "like a low temperature and pushes mass into the heaviest cluster: weights recovered with "
            f"error {b['weight_error']:.2f}, MMD² {b['mmd']:.4f}, and more steps do not help — the "
            "error is in the SDE being integrated, not in its discretisation."
        ),
        corrected=("The reverse-SDE step is x_{t−η} = x_t − ηF_t(x_t) + √(β(t)η) ξ (g(t) = √β(t) multiplies "
                   "the Brownian increment). With √η the sampler targets a different, over-dispersed "
                   "distribution."),
    )


def _cluster_std(x, gm):
    lab = gm.posterior(x.double()).argmax(1)
    d = x.double() - gm.means[lab]
    return d.pow(2).mean().sqrt()
