"""ch04.flatness_bias — full-batch GD cannot settle in a minimum sharper than 2/η.

Claim (book ch04): GD cannot settle in any minimum with λ_max > 2/η — a built-in, noise-free
flatness bias. The equation: near a minimum GD is θ − θ* ← (1 − ηλ)(θ − θ*), stable iff |1 − ηλ| < 1,
i.e. η < 2/λ (linear stability of the GD map; Wu, Ma & E 2018, "How SGD selects the global minima",
NeurIPS; Cohen et al. 2021). A theorem-check: an orbit can reach an unstable fixed point only from a
measure-zero set of starts, so the measurement cannot come out otherwise; it shows the consequence
for which minimum GD ends in.

A 1-D landscape with two equally deep minima, a sharp one (curvature λ_s = 20 at θ = −1.5) and a
flat one (λ_f = 2 at θ = +1.5), glued by a soft minimum L = −τ log(e^{−q_s/τ} + e^{−q_f/τ}).
GD from random starts in [−4, 4] (3 seeds ctx.seed + 11 + i) for a range of η: which minimum does it
settle in (|Δθ| < 1e−6 within 1e−4 of the minimum)? Measured: the largest fraction of runs settled in
the sharp minimum over all η > 2/λ_s, per seed (mean ± SE over seeds). For comparison, SGD-like
gradient noise θ ← θ − η(L'(θ) + σξ) (``EulerMaruyama`` in the core, first seed); its occupancy is by
basin.

Control: the rows η < 2/λ_s, where there is no selection pressure: there some GD runs must settle in
the sharp minimum (mean over those rows, per seed; mean ± SE over seeds), else the measurement could
not see a sharp minimum at all.

Verdict (:func:`decide_flatness_bias`): fails if any run settles in the sharp minimum for some
η > 2/λ_s; inconclusive unless the control fraction is above 0 beyond 2 SE; holds otherwise.
"""

from __future__ import annotations

import numpy as np
import torch

from terrainlab.atlas import Context, Result, experiment
from terrainlab.atlas.chapters._digits import one_thread
from terrainlab.atlas.stats import mean_se, side_of
from terrainlab.core import EulerMaruyama, rollout
from terrainlab.optim import GradientDescentScheme
from terrainlab.plotting import OKABE_ITO, figure, style

LS, LF = 20.0, 2.0
CS, CF = -1.5, 1.5
TAU = 0.1
SIGMA = 1.5
SETTLE_TOL = 1e-6
N_SEEDS = 3


def loss(th):
    qs, qf = 0.5 * LS * (th - CS) ** 2, 0.5 * LF * (th - CF) ** 2
    m = torch.minimum(qs, qf)
    return m - TAU * torch.log(torch.exp(-(qs - m) / TAU) + torch.exp(-(qf - m) / TAU))


def grad(th):
    qs, qf = 0.5 * LS * (th - CS) ** 2, 0.5 * LF * (th - CF) ** 2
    ws = torch.sigmoid((qf - qs) / TAU)
    return ws * LS * (th - CS) + (1 - ws) * LF * (th - CF)


def decide_flatness_bias(sharp_above: float, control_mean: float, control_se: float = 0.0) -> str:
    """sharp_above: largest fraction of GD runs settled in the sharp minimum for any η > 2/λ_s (over
    all seeds); control_mean ± control_se: the fraction settled there for η < 2/λ_s (mean over seeds).
    fails if sharp_above > 0; inconclusive unless the control is above 0 beyond 2 SE (GD must be able
    to settle in the sharp minimum when nothing selects against it); holds otherwise.

    >>> decide_flatness_bias(0.0, 0.3, 0.01), decide_flatness_bias(0.002, 0.3, 0.01)
    ('holds', 'fails')
    """
    if not (sharp_above >= 0 and control_mean >= 0 and control_se >= 0):
        raise ValueError("sharp_above, control_mean and control_se must be non-negative fractions/errors, got "
                         f"{sharp_above!r}, {control_mean!r}, {control_se!r}")
    if sharp_above > 0:
        return "fails"
    return "holds" if side_of(control_mean, control_se, 0.0) == "above" else "inconclusive"


@experiment(
    id="ch04.flatness_bias",
    chapter=4,
    title="GD's built-in flatness bias: no settling where λ > 2/η",
    claim="Full-batch GD cannot settle in a minimum whose curvature exceeds 2/η: a built-in, noise-free "
    "bias towards flat minima.",
)
def flatness_bias(ctx: Context) -> Result:
    with one_thread():  # 10⁵ tiny rows: two threads on a loaded host were 30× slower (measured)
        return _flatness_bias(ctx)


def _flatness_bias(ctx: Context) -> Result:
    n_eta, n_start, steps = (16, 200, 400) if ctx.quick else (40, 500, 1000)
    etas = torch.linspace(0.02, 1.1, n_eta, dtype=torch.float64)
    # random starts: a grid can contain a point that lands *exactly* on the sharp minimum in one step
    # (θ0 = 4 at η = 1.1), the measure-zero way to sit on an unstable fixed point
    starts = torch.cat([-4 + 8 * torch.rand(n_start, generator=ctx.generator(11 + i), dtype=torch.float64)
                        for i in range(N_SEEDS)])  # seed-major: rows (seed, η, start)
    th0 = starts.reshape(N_SEEDS, 1, n_start).expand(N_SEEDS, n_eta, n_start).reshape(-1, 1)
    row_eta = etas.repeat_interleave(n_start).repeat(N_SEEDS)[:, None]

    def field(th, t=0.0):  # per-row step size: Euler with η = 1 on η_row·(−L') is GD with η_row
        return -row_eta * grad(th)

    tr = rollout(field, th0, eta=1.0, steps=steps, scheme=GradientDescentScheme(), record="last")
    fin = tr.final[:, 0].reshape(N_SEEDS, n_eta, n_start)
    prev = rollout(field, tr.final, eta=1.0, steps=1, record="last").final[:, 0].reshape(N_SEEDS, n_eta, n_start)
    still = (fin - prev).abs() < SETTLE_TOL
    sharp_s = (still & ((fin - CS).abs() < 1e-4)).double().mean(2).numpy()  # (seed, η)
    flat_s = (still & ((fin - CF).abs() < 1e-4)).double().mean(2).numpy()
    sharp, flat = sharp_s.mean(0), flat_s.mean(0)
    other = 1 - sharp - flat
    g = ctx.generator(7)
    n1 = n_eta * n_start  # the noisy comparison: the first seed's starts only
    em = EulerMaruyama(diffusion=lambda th, t: row_eta[:n1] * SIGMA, generator=g)

    def field1(th, t=0.0):
        return -row_eta[:n1] * grad(th)

    nz = rollout(field1, th0[:n1], eta=1.0, steps=steps, scheme=em, record="last").final[:, 0].reshape(n_eta, n_start)
    xb = torch.linspace(CS, CF, 20001, dtype=torch.float64)
    boundary = float(xb[int(torch.argmax(loss(xb)))])  # the barrier top separates the two basins
    in_sharp_basin = (nz < boundary) & (nz > CS - 2.5)
    in_flat_basin = (nz >= boundary) & (nz < CF + 2.5)
    nsharp = in_sharp_basin.double().mean(1).numpy()
    nflat = in_flat_basin.double().mean(1).numpy()
    e = etas.numpy()
    crit = 2 / LS
    above, below = e > crit, e < crit
    sharp_above = float(sharp_s[:, above].max()) if above.any() else 0.0
    sharp_below = float(sharp_s[:, below].max()) if below.any() else 0.0
    above_mean, above_se = mean_se([float(r[above].max()) if above.any() else 0.0 for r in sharp_s])
    ctrl = [float(r[below].mean()) if below.any() else 0.0 for r in sharp_s]
    ctrl_mean, ctrl_se = mean_se(ctrl)
    verdict = decide_flatness_bias(sharp_above, ctrl_mean, ctrl_se)
    i_small = int(np.argmin(e))
    noisy_above = nsharp[above] if above.any() else np.zeros(1)
    i_noisy = int(np.argmax(noisy_above))
    eta_noisy = float(e[above][i_noisy]) if above.any() else float("nan")

    with style():
        fig, axes = figure("double", height=2.6, ncols=3)
        x = torch.linspace(-3.5, 4, 600, dtype=torch.float64)
        axes[0].plot(x, loss(x), color="k")
        axes[0].annotate(f"sharp: λ = {LS:g}\n2/λ = {2 / LS:g}", (CS, 0), (CS - 1.5, 3), fontsize=6,
                         arrowprops=dict(arrowstyle="->", lw=0.6))
        axes[0].annotate(f"flat: λ = {LF:g}\n2/λ = {2 / LF:g}", (CF, 0), (CF - 0.3, 5), fontsize=6,
                         arrowprops=dict(arrowstyle="->", lw=0.6))
        axes[0].set_ylim(-0.5, 8)
        axes[0].set_xlabel("θ")
        axes[0].set_ylabel("L(θ)")
        axes[0].set_title("two minima, equally deep")
        for ax in axes[1:]:
            ax.axvspan(float(e[0]), crit, color="0.85", lw=0, zorder=0)
            ax.axvline(2 / LS, color="0.4", ls="--", lw=0.7)
            ax.axvline(2 / LF, color="0.4", ls=":", lw=0.7)
            ax.set_xlabel("η (dashed 2/λ_s, dotted 2/λ_f)")
            ax.set_ylim(-0.03, 1.03)
        se_sharp = sharp_s.std(0, ddof=1) / np.sqrt(N_SEEDS)
        axes[1].errorbar(e, sharp, yerr=2 * se_sharp, fmt="o-", ms=2.5, lw=1, capsize=1.5, color=OKABE_ITO[5],
                         label="settled in sharp (±2 SE)")
        axes[1].plot(e, flat, "s-", ms=2.5, color=OKABE_ITO[4], label="settled in flat")
        axes[1].plot(e, other, "^-", ms=2.5, color="0.5", label="not settled")
        axes[1].text(float(e[0]) + 0.01, 0.9, "control\nη < 2/λ_s", fontsize=6)
        axes[1].set_ylabel(f"fraction of {n_start} starts, mean of {N_SEEDS} seeds")
        axes[1].set_title(f"full-batch GD, {steps} steps")
        axes[1].legend(frameon=False, fontsize=6)
        axes[2].plot(e, nsharp, "o-", ms=2.5, color=OKABE_ITO[5], label="in sharp basin")
        axes[2].plot(e, nflat, "s-", ms=2.5, color=OKABE_ITO[4], label="in flat basin")
        axes[2].set_ylabel("fraction at the end (within 2.5 of a minimum)")
        axes[2].set_title(f"with gradient noise σ = {SIGMA}")
        axes[2].legend(frameon=False, fontsize=6)
    ctx.savefig(fig, "flatness_bias")

    idx = [int(np.argmin(np.abs(e - v))) for v in (0.05, 0.09, 0.2, 0.5, 0.95)]
    table = {f"{e[i]:.3f}": {"gd_sharp": sharp[i], "gd_flat": flat[i], "gd_not_settled": other[i],
                             "noisy_sharp_basin": nsharp[i], "noisy_flat_basin": nflat[i]} for i in idx}
    return Result(
        verdict=verdict,
        numbers={"claim_kind": "theorem-check", "seeds": [ctx.seed + 11 + i for i in range(N_SEEDS)],
                 "sharp_fraction_above_limit_mean": above_mean, "sharp_fraction_above_limit_se": above_se,
                 "control": "rows η < 2/λ_s (no selection pressure): fraction settled in the sharp minimum",
                 "control_sharp_fraction_mean": ctrl_mean, "control_sharp_fraction_se": ctrl_se,
                 "control_per_seed": ctrl,
                 "control_verdict": "settles in sharp" if side_of(ctrl_mean, ctrl_se, 0.0) == "above" else "does not",
                 "lambda_sharp": LS, "lambda_flat": LF, "eta_limit_sharp": 2 / LS, "eta_limit_flat": 2 / LF,
                 "max_sharp_fraction_eta_above_limit": sharp_above,
                 "max_sharp_fraction_eta_below_limit": sharp_below, "occupancy": table,
                 "max_noisy_sharp_basin_fraction_eta_above_limit": float(noisy_above.max()),
                 "noise_sigma": SIGMA, "starts_per_seed": n_start, "steps": steps, "basin_split_theta": boundary},
        threshold="holds iff no GD run of any seed settles (|Δθ| < 1e−6 within 1e−4 of the minimum) in the sharp "
        "minimum for any η > 2/λ_s, while for η < 2/λ_s (control) the settled fraction is above 0 beyond 2 SE",
        explanation=(
            f"For η < 2/λ_s = {2 / LS:g} (control: no selection pressure) {100 * ctrl_mean:.1f} ± {100 * ctrl_se:.1f}% "
            f"(mean ± SE over {N_SEEDS} seeds of {n_start} starts; up to {100 * sharp_below:.0f}% at one η) of GD runs "
            f"settle in the sharp minimum; for every η > 2/λ_s the fraction is {100 * sharp_above:.0f}% in every seed: runs that reach the sharp well are thrown out "
            "by the period-doubling instability and end in the flat minimum (or, above 2/λ_f = 1, nowhere): a "
            f"noise-free flatness bias. With gradient noise σ = {SIGMA} (η·σ per step) the occupancy is counted by "
            f"basin (first seed): at η = {e[i_small]:.2f} it is {100 * nsharp[i_small]:.0f}% sharp (GD: {100 * sharp[i_small]:.0f}%), "
            f"and for η > 2/λ_s at most {100 * float(noisy_above.max()):.0f}% of noisy runs end in the sharp basin "
            f"(at η = {eta_noisy:.2f}), kicked across the barrier from the flat side near its own limit — "
            "passing through, not settling."
        ),
    )
