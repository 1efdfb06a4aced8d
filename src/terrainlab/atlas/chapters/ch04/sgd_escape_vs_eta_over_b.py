"""ch04.sgd_escape_vs_eta_over_b — SGD's escape from a sharp minimum is set by the noise scale η/B.

Claim (book ch04, implicit regularisation): "SGD noise scales with η/B and kicks models out of sharp
minima"; "SGD noise escapes sharp minima more easily; stronger with larger η and smaller B". The
equation: with minibatch gradient noise of per-sample variance σ², SGD θ ← θ − η(L'(θ) + ξ̄_B) is, for
ηλ ≪ 1, the Euler–Maruyama step of dθ = −L'(θ)dt + √(η/B)·σ dW in time t = ηk, whose temperature
ησ²/(2B) depends on η and B only through η/B (Mandt, Hoffman & Blei 2017; Jastrzębski et al. 2017,
"Three factors influencing minima in SGD"; Keskar et al. 2017 for large batch → sharp minima), and the
escape time over a barrier ΔL grows like exp(2BΔL/(ησ²)) (Kramers).

Set-up: the two-minimum landscape of ``ch04.flatness_bias`` (sharp λ_s = 20 at θ = −1.5, flat
λ_f = 2 at θ = +1.5, equally deep, one barrier between them, ΔL ≈ 5.1 from either side). The data set
is real: the N = 1797 scikit-learn digits, each giving the per-sample loss ℓ_i(θ) = L(θ) + σ·z_i·θ,
with z_i the image's standardised total ink (Σ z_i = 0, so the full-batch loss is exactly L). SGD
draws B indices with replacement each step. The noise is state-independent (additive), so the
sharp minimum escapes faster only through the Kramers prefactor √(λ·|λ_barrier|) at an equal barrier;
real SGD noise also grows with curvature (Zhu et al. 2019), which would widen that gap. Escape = crossing the barrier top within the same
continuous time T = η·steps (``HORIZON``), from the minimum. Two noise scales η/B (``RATIOS``), each
at three (η, B) pairs (η = 0.0025, 0.005, 0.01, so ηλ_s ≤ 0.2); the flat minimum at the larger η/B for
comparison; ``N_SEEDS`` groups of ``runs`` SGD runs (seed ctx.seed + i each), mean ± SE over groups.

Measured: Δ = p(larger η/B) − p(smaller η/B) (escape grows with η/B); the collapse index C = (largest
spread of p over the η of one ratio) / Δ (0: p depends on η/B only); and p_sharp − p_flat at the same
(η, B). Control: full-batch GD (B = N: no noise) from the sharp minimum at the largest η must never
escape.

Verdict (:func:`decide_sgd_escape`): inconclusive if the control escapes; fails if Δ or
p_sharp − p_flat is below 0 beyond 2 SE; inconclusive if either interval contains 0; then holds if
C < ``COLLAPSE_TOL`` beyond 2 SE, holds-with-correction if C is above it beyond 2 SE (escape grows with
η/B but η/B alone does not fix it), inconclusive otherwise.
"""

from __future__ import annotations

import numpy as np
import torch

from terrainlab.atlas import Context, Result, experiment
from terrainlab.atlas.chapters._digits import centred_digits, one_thread
from terrainlab.atlas.chapters.ch04.flatness_bias import CF, CS, LF, LS, grad, loss
from terrainlab.atlas.stats import mean_se, side_of
from terrainlab.core import rollout
from terrainlab.plotting import OKABE_ITO, figure, style

D64 = torch.float64
SIGMA = 40.0  # per-sample gradient-noise scale (σ·z_i)
HORIZON = 2.0  # continuous time T = η·steps every run is given to escape
ETA0 = 0.0025
ETA_MULT = (1, 2, 4)  # η = ETA0·k; ηλ_s = 0.05, 0.1, 0.2
RATIOS = (ETA0 / 2, ETA0)  # η/B: B = 2, 4, 8 and 1, 2, 4
COLLAPSE_TOL = 0.25  # p may vary over η at one ratio by at most this fraction of Δ
N_SEEDS = 3


def decide_sgd_escape(delta_mean: float, delta_se: float, sharp_minus_flat_mean: float,
                      sharp_minus_flat_se: float, collapse_mean: float, collapse_se: float,
                      control_escape: float, collapse_tol: float = COLLAPSE_TOL) -> str:
    """Verdict from Δ = p(high η/B) − p(low η/B), p_sharp − p_flat and the collapse index C (each
    mean ± SE over seed groups) and the full-batch control's escape fraction (must be 0).

    >>> decide_sgd_escape(0.6, 0.02, 0.6, 0.02, 0.1, 0.03, 0.0)
    'holds'
    >>> decide_sgd_escape(0.6, 0.02, 0.6, 0.02, 0.6, 0.05, 0.0), decide_sgd_escape(0.6, 0.02, 0.6, 0.02, 0.1, 0.03, 0.1)
    ('holds-with-correction', 'inconclusive')
    """
    if not (control_escape >= 0):
        raise ValueError(f"control_escape must be a fraction in [0, 1], got {control_escape!r}")
    if control_escape > 0:
        return "inconclusive"
    sides = (side_of(delta_mean, delta_se, 0.0), side_of(sharp_minus_flat_mean, sharp_minus_flat_se, 0.0))
    if "below" in sides:
        return "fails"
    if "inside" in sides:
        return "inconclusive"
    c = side_of(collapse_mean, collapse_se, collapse_tol)
    return {"below": "holds", "above": "holds-with-correction"}.get(c, "inconclusive")


def _configs():
    """(label, start, η, B) rows: sharp at both ratios, flat at the larger, the GD control (B = 0: full)."""
    rows = [("sharp", CS, ETA0 * k, round(ETA0 * k / r)) for r in RATIOS for k in ETA_MULT]
    rows += [("flat", CF, ETA0 * k, round(ETA0 * k / RATIOS[-1])) for k in ETA_MULT]
    rows += [("gd", CS, ETA0 * ETA_MULT[-1], 0)]
    return rows


@experiment(
    id="ch04.sgd_escape_vs_eta_over_b",
    chapter=4,
    title="SGD escapes a sharp minimum at a rate set by η/B",
    claim="SGD noise scales with η/B and kicks models out of sharp minima: escape is stronger with larger η "
    "and smaller B, and easier from sharp than from flat minima.",
)
def sgd_escape_vs_eta_over_b(ctx: Context) -> Result:
    with one_thread():
        return _sgd_escape(ctx)


def _sgd_escape(ctx: Context) -> Result:
    runs = 200 if ctx.quick else 300
    X, _ = centred_digits(1797)
    ink = X.sum(1).to(D64)
    z = (ink - ink.mean()) / ink.std()
    n_data = z.numel()
    z_full = float(z.mean())  # the full-batch noise: 0 up to rounding
    xb = torch.linspace(CS, CF, 20001, dtype=D64)
    barrier = float(xb[int(torch.argmax(loss(xb)))])
    barrier_height = float(loss(torch.tensor(barrier, dtype=D64)) - loss(torch.tensor(CS, dtype=D64)))
    cfg = _configs()
    n_cfg = len(cfg)
    b_max = max(c[3] for c in cfg)
    # rows: (seed group, config, run); per-row η, B, start, which side is "escaped"
    eta_r = torch.tensor([c[2] for c in cfg], dtype=D64).repeat_interleave(runs).repeat(N_SEEDS)
    b_r = torch.tensor([c[3] for c in cfg]).repeat_interleave(runs).repeat(N_SEEDS)
    start = torch.tensor([c[1] for c in cfg], dtype=D64).repeat_interleave(runs).repeat(N_SEEDS)
    from_sharp = start < barrier
    full = b_r == 0
    mask = (torch.arange(b_max)[None, :] < b_r[:, None]).to(D64)
    weight = mask / b_r.clamp(min=1)[:, None].to(D64)
    gens = [torch.Generator().manual_seed(ctx.seed + i) for i in range(N_SEEDS)]
    per_group = n_cfg * runs

    def field(s, t=0.0):  # state columns: θ, escaped (0/1), time before escape
        th, esc = s[:, 0], s[:, 1]
        idx = torch.cat([torch.randint(n_data, (per_group, b_max), generator=g) for g in gens])
        noise = torch.where(full, torch.full_like(th, z_full), (z[idx] * weight).sum(1))
        crossed = torch.where(from_sharp, th > barrier, th < barrier)
        new = crossed & (esc < 0.5)
        waiting = (esc < 0.5) & ~new
        return torch.stack([-eta_r * (grad(th) + SIGMA * noise), new.to(D64), eta_r * waiting.to(D64)], 1)

    steps = int(round(HORIZON / ETA0))
    s0 = torch.stack([start, torch.zeros_like(start), torch.zeros_like(start)], 1)
    fin = rollout(field, s0, eta=1.0, steps=steps, record="last").final
    escaped = (fin[:, 1] > 0.5) & (fin[:, 2] <= HORIZON + 1e-9)
    p = escaped.to(D64).reshape(N_SEEDS, n_cfg, runs).mean(2).numpy()  # (seed, config)
    t_esc = fin[:, 2].reshape(N_SEEDS, n_cfg, runs)

    k = len(ETA_MULT)
    lo, hi, flat = p[:, :k], p[:, k:2 * k], p[:, 2 * k:3 * k]
    gd = p[:, -1]
    delta = hi.mean(1) - lo.mean(1)
    spread = np.maximum(hi.max(1) - hi.min(1), lo.max(1) - lo.min(1))
    collapse = spread / np.where(delta > 0, delta, np.nan)
    smf = (hi - flat).mean(1)
    d_m, d_se = mean_se(delta.tolist())
    c_m, c_se = mean_se(collapse.tolist())
    s_m, s_se = mean_se(smf.tolist())
    control = float(gd.max())
    verdict = decide_sgd_escape(d_m, d_se, s_m, s_se, c_m, c_se, control)
    p_mean, p_se = p.mean(0), p.std(0, ddof=1) / np.sqrt(N_SEEDS)

    with style():
        fig, ax = figure("double", height=2.6, ncols=2)
        x = torch.linspace(-3.5, 4, 600, dtype=D64)
        ax[0].plot(x, loss(x), color="k")
        ax[0].axvline(barrier, color="0.5", ls=":", lw=0.7)
        ax[0].set_ylim(-0.5, 9)
        ax[0].set_xlabel("θ")
        ax[0].set_ylabel("full-batch loss L(θ)")
        ax[0].set_title(f"sharp λ = {LS:g} | flat λ = {LF:g}; barrier ΔL = {barrier_height:.2f}")
        marks = ("o", "s", "^")
        for j, kk in enumerate(ETA_MULT):
            eta = ETA0 * kk
            for grp, col, lab in ((0, OKABE_ITO[5], "sharp"), (2, OKABE_ITO[4], "flat")):
                ii = [grp * k + j] if grp == 2 else [j, k + j]
                dodge = (j - 1) * 0.04 * RATIOS[0] + (0.02 * RATIOS[0] if grp == 2 else 0.0)
                rs = [RATIOS[-1] + dodge] if grp == 2 else [r + dodge for r in RATIOS]
                ax[1].errorbar(rs, p_mean[ii], yerr=2 * p_se[ii], fmt=marks[j], ms=3.5, capsize=2, color=col,
                               mfc="none" if grp == 2 else col,
                               label=f"{lab}, η = {eta:g}" if grp == 0 or j == 0 else None)
        ax[1].errorbar([RATIOS[-1] + 0.1 * RATIOS[0]], [p_mean[-1]], yerr=[2 * p_se[-1]], fmt="x", color="0.2", ms=4,
                       label=f"control: full-batch GD, η = {cfg[-1][2]:g}")
        ax[1].set_xlim(0.5 * RATIOS[0], RATIOS[-1] + 0.5 * RATIOS[0])
        ax[1].set_xticks(list(RATIOS))
        ax[1].set_xticklabels([f"{r:g}" for r in RATIOS])
        ax[1].set_xlabel("noise scale η/B (points dodged by η)")
        ax[1].set_ylabel(f"P(escape within t = ηk = {HORIZON:g}) ± 2 SE")
        ax[1].set_ylim(-0.03, 1.03)
        ax[1].set_title(f"{N_SEEDS}×{runs} SGD runs per point, digits-ink noise")
        ax[1].legend(frameon=False, fontsize=5.5, loc="upper left")
    ctx.savefig(fig, "sgd_escape_vs_eta_over_b")

    table = {f"{lab} eta={eta:g} B={b if b else 'N'}": {"p_mean": float(p_mean[i]), "p_se": float(p_se[i])}
             for i, (lab, _, eta, b) in enumerate(cfg)}
    mean_t = {f"{lab} eta={eta:g} B={b if b else 'N'}": float(t_esc[:, i][fin[:, 1].reshape(N_SEEDS, n_cfg, runs)[:, i]
                                                                            > 0.5].mean())
              for i, (lab, _, eta, b) in enumerate(cfg) if lab != "gd" and p_mean[i] > 0}
    return Result(
        verdict=verdict,
        numbers={
            "claim_kind": "empirical",
            "seeds": [ctx.seed + i for i in range(N_SEEDS)], "runs_per_seed": runs, "n_data": n_data,
            "sigma": SIGMA, "horizon_t": HORIZON, "ratios": list(RATIOS), "etas": [ETA0 * kk for kk in ETA_MULT],
            "eta_lambda_sharp_max": ETA0 * ETA_MULT[-1] * LS, "barrier_height": barrier_height,
            "escape": table, "mean_escape_time_of_escaped": mean_t,
            "delta_mean": d_m, "delta_se": d_se,
            "collapse_index_mean": c_m, "collapse_index_se": c_se, "collapse_tol": COLLAPSE_TOL,
            "sharp_minus_flat_mean": s_m, "sharp_minus_flat_se": s_se,
            "control": f"full-batch GD (B = N = {n_data}, no noise) from the sharp minimum at η = {cfg[-1][2]:g}",
            "control_escape_fraction": control,
            "control_verdict": "never escapes" if control == 0 else "escapes",
        },
        threshold=(f"Δ = p(η/B = {RATIOS[1]:g}) − p(η/B = {RATIOS[0]:g}) and p_sharp − p_flat above 0 beyond 2 SE; "
                   f"collapse index C = max spread of p over η at one η/B ÷ Δ below {COLLAPSE_TOL} beyond 2 SE "
                   "(above → holds-with-correction); full-batch GD control must not escape"),
        explanation=(
            f"SGD on a 1-D two-minimum loss with per-sample noise from the {n_data} digits (total ink, σ = {SIGMA:g}), "
            f"{N_SEEDS} seed groups × {runs} runs, escape within t = ηk = {HORIZON:g} over a barrier ΔL = "
            f"{barrier_height:.2f}. From the sharp minimum: at η/B = {RATIOS[0]:g} p = "
            + ", ".join(f"{p_mean[j]:.2f}" for j in range(k))
            + f" and at η/B = {RATIOS[1]:g} p = " + ", ".join(f"{p_mean[k + j]:.2f}" for j in range(k))
            + f" for η = {', '.join(f'{ETA0 * kk:g}' for kk in ETA_MULT)} (B = η/(η/B)): Δ = {d_m:.2f} ± {d_se:.2f}, "
            f"collapse index C = {c_m:.2f} ± {c_se:.2f} (mean ± SE), so escape is set by η/B within this range "
            f"(ηλ_s ≤ {ETA0 * ETA_MULT[-1] * LS:.1f}). From the flat minimum at η/B = {RATIOS[1]:g}, p = "
            + ", ".join(f"{p_mean[2 * k + j]:.2f}" for j in range(k))
            + f": p_sharp − p_flat = {s_m:.2f} ± {s_se:.2f} at an equal barrier (only the curvature differs). "
            f"Control: full-batch GD escaped in {100 * control:.0f}% of runs."
        ),
        corrected=None if verdict == "holds" else (
            "Escape from a minimum grows with η/B and is faster from sharper minima, but η/B alone fixes it only "
            "for small ηλ; see the measured collapse index."),
    )
