"""ch03.nesterov_vs_gd_rates — on a convex, not strongly convex problem gradient descent's error falls
like 1/t and Nesterov's like 1/t², but only with the schedule β_t = (t − 1)/(t + 2).

The book says Nesterov's accelerated gradient reaches O(1/t²) where plain momentum / GD reach O(1/t) on
convex functions, and writes NAG with a constant β. The theorems: GD with η = 1/L has
f(x_t) − f* ≤ L‖x₀ − x*‖²/(2t) (e.g. Nesterov 2004, Thm 2.1.14); Nesterov's method with
β_t = (t − 1)/(t + 2) has f(x_t) − f* ≤ 2L‖x₀ − x*‖²/(t + 1)² (Nesterov 1983; Beck & Teboulle 2009;
Su, Boyd & Candès 2016, who use this schedule). With a constant β the method is a damped heavy ball whose
slow modes move like GD with step η/(1 − β): the same 1/t exponent, a better constant.

Measured: least squares f(x) = ½‖A x‖² with A = diag(√λ) (rotation changes nothing for these methods),
n = 400 eigenvalues (200 in quick) drawn log-uniformly in [1e-8, 1] with the largest set to 1 (so
L = 1, η = 1/L = 1), x₀ ~ N(0, I), f* = 0. A log-uniform spectrum with equal weights is where the
worst-case rates are sharp: f(x_t) = ½Σλ_i r_t(λ_i)² x₀ᵢ², and with density ∝ 1/λ the sum scales as
the width of the band of λ the method has not yet resolved — 1/(ηt) for GD, 1/(ηt²) for Nesterov's
schedule. Each method runs through the core (``rollout`` with the optimizer schemes) for T = 2000
steps (500 in quick); the slope of log f(x_t) against log t is fitted by least squares on 40
log-spaced t in [T/50, T]. Three seeds (spectrum and start), mean ± SE. Also checked: the theorem
bound 2‖x₀‖²/(η(t + 1)²) at every step of the scheduled run.

Control: Nesterov with the constant β = 0.9 (the book's form), where the slope must stay near −1.

Verdict rule (:func:`decide_nesterov_rates`), threshold s = ``SLOPE_SPLIT`` = −1.5 (halfway between the
two exponents): inconclusive when s lies inside any slope's mean ± 2 SE, when GD's slope is below s
(the problem is not hard enough to show the difference) or the control's is below s (a constant β
accelerates too: the measurement cannot tell the schedule from none); fails when the scheduled
Nesterov slope is above s or its theorem bound is broken; holds-with-correction otherwise (the 1/t² is
real but needs the schedule, which the book's constant-β NAG lacks).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from terrainlab.atlas import Context, Result, experiment
from terrainlab.atlas.stats import mean_se, side_of
from terrainlab.core import rollout
from terrainlab.optim import GradientDescentScheme, NesterovScheme
from terrainlab.plotting import BLACK, BLUE, ORANGE, SKY, VERMILLION, figure

LAMBDA_MIN = 1e-8
ETA = 1.0  # = 1/L with the largest eigenvalue 1
BETA_CONTROL = 0.9
SLOPE_SPLIT = -1.5
N_FIT = 40


def decide_nesterov_rates(gd: tuple[float, float], scheduled: tuple[float, float], control: tuple[float, float],
                          bound_ratio: float, split: float = SLOPE_SPLIT) -> str:
    """Verdict from the fitted slopes of log(f − f*) against log t, each a (mean, SE) pair over seeds:
    ``gd`` (plain GD), ``scheduled`` (Nesterov, β_t = (t − 1)/(t + 2)), ``control`` (Nesterov, constant β),
    and ``bound_ratio`` = max_t (f − f*)/(2‖x₀ − x*‖²/(η(t + 1)²)) of the scheduled run. See the module
    docstring for the rule."""
    pairs = {"gd": gd, "scheduled": scheduled, "control": control}
    for name, p in pairs.items():
        if not (isinstance(p, (tuple, list)) and len(p) == 2
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in p)):
            raise ValueError(f"{name} must be a (mean, se) pair of numbers, got {p!r}")
    if isinstance(bound_ratio, bool) or not isinstance(bound_ratio, (int, float)):
        raise ValueError(f"bound_ratio must be a number, got {bound_ratio!r}")
    if not (isinstance(split, (int, float)) and math.isfinite(split) and split < 0):
        raise ValueError(f"split must be a negative number, got {split!r}")
    sides = {name: side_of(m, se, split) for name, (m, se) in pairs.items()}
    if "inside" in sides.values() or not math.isfinite(bound_ratio):
        return "inconclusive"
    if sides["gd"] == "below" or sides["control"] == "below":
        return "inconclusive"
    if sides["scheduled"] == "above" or bound_ratio > 1:
        return "fails"
    return "holds-with-correction"


def fit_slope(t: np.ndarray, f: np.ndarray) -> float:
    """Least-squares slope of log f against log t.

    >>> t = np.array([10.0, 100.0, 1000.0])
    >>> round(fit_slope(t, 3.0 / t**2), 12)
    -2.0
    """
    t, f = np.asarray(t, dtype=float), np.asarray(f, dtype=float)
    if t.ndim != 1 or t.shape != f.shape or t.size < 2:
        raise ValueError(f"t and f must be 1-D arrays of the same length >= 2, got {t.shape} and {f.shape}")
    if not (np.all(t > 0) and np.all(f > 0)):
        raise ValueError("t and f must be positive (logarithms are taken)")
    return float(np.polyfit(np.log(t), np.log(f), 1)[0])


def _problem(seeds: list[int], n: int) -> tuple[torch.Tensor, torch.Tensor]:
    lams, x0 = [], []
    for s in seeds:
        g = torch.Generator().manual_seed(s)
        lam = LAMBDA_MIN ** torch.rand(n, generator=g, dtype=torch.float64)  # log-uniform in [1e-8, 1]
        lam[0] = 1.0
        lams.append(lam)
        x0.append(torch.randn(n, generator=g, dtype=torch.float64))
    return torch.stack(lams), torch.stack(x0)  # (seeds, n) each


def _run(lam, x0, scheme, steps) -> np.ndarray:
    def F(x, t=0.0):  # −∇f for f = ½Σλx²
        return -lam * x

    s0 = x0 if isinstance(scheme, GradientDescentScheme) else scheme.init(x0)
    states = rollout(F, s0, eta=ETA, steps=steps, scheme=scheme).states
    x = states[0] if isinstance(states, tuple) else states
    return (0.5 * (lam * x**2).sum(-1)).numpy()  # (steps + 1, seeds)


@experiment(
    id="ch03.nesterov_vs_gd_rates",
    chapter=3,
    title="Nesterov's 1/t² against GD's 1/t on a convex quadratic — with the schedule β_t = (t−1)/(t+2) only",
    claim="Nesterov's accelerated gradient converges at O(1/t²) on convex functions, against O(1/t) for "
    "gradient descent / momentum.",
)
def nesterov_vs_gd_rates(ctx: Context) -> Result:
    n, steps = (200, 500) if ctx.quick else (400, 2000)
    seeds = [ctx.seed + i for i in range(3)]
    lam, x0 = _problem(seeds, n)
    curves = {
        "gd": _run(lam, x0, GradientDescentScheme(), steps),
        "scheduled": _run(lam, x0, NesterovScheme(schedule="convex"), steps),
        "control": _run(lam, x0, NesterovScheme(beta=BETA_CONTROL), steps),
    }
    t_fit = np.unique(np.round(np.logspace(math.log10(steps / 50), math.log10(steps), N_FIT)).astype(int))
    slopes = {k: [fit_slope(t_fit, v[t_fit, i]) for i in range(len(seeds))] for k, v in curves.items()}
    stats = {k: mean_se(v) for k, v in slopes.items()}
    t = np.arange(steps + 1)
    r0 = (x0**2).sum(-1).numpy()
    bound = 2 * r0[None, :] / (ETA * (t[:, None] + 1) ** 2)
    bound_ratio = float((curves["scheduled"][1:] / bound[1:]).max())
    gd_bound = r0[None, :] / (2 * ETA * t[1:, None])
    gd_bound_ratio = float((curves["gd"][1:] / gd_bound).max())
    verdict = decide_nesterov_rates(stats["gd"], stats["scheduled"], stats["control"], bound_ratio)
    sides = {k: side_of(*stats[k], SLOPE_SPLIT) for k in stats}

    fig, (ax, ax2) = figure("double", height=2.8, ncols=2)
    labels = {"gd": "GD", "scheduled": "Nesterov, β_t = (t−1)/(t+2)", "control": f"control: Nesterov, β = {BETA_CONTROL:g}"}
    colours = {"gd": BLUE, "scheduled": ORANGE, "control": SKY}
    for k, v in curves.items():
        m = v.mean(1)
        ax.loglog(t[1:], m[1:], color=colours[k], lw=1.0,
                  label=f"{labels[k]}: slope {stats[k][0]:.2f} ± {stats[k][1]:.2f}")
    ax.loglog(t[1:], bound[1:].mean(1), ":", color=BLACK, lw=0.8, label="bound 2‖x₀‖²/(η(t+1)²)")
    ax.axvspan(t_fit[0], t_fit[-1], color="0.92", zorder=0, label="fit window")
    ax.set_xlabel("step t")
    ax.set_ylabel("f(x_t) − f*  (mean of 3 seeds)")
    ax.set_title(f"least squares, λ log-uniform in [{LAMBDA_MIN:g}, 1], η = 1/L", fontsize=7)
    ax.legend(frameon=False, fontsize=5.5, loc="lower left")
    xs = np.arange(len(seeds))
    for j, k in enumerate(curves):
        ax2.errorbar(j, stats[k][0], yerr=2 * stats[k][1], fmt="o", color=colours[k], capsize=3)
        ax2.plot(np.full(len(seeds), j) + 0.12 * (xs - 1), slopes[k], ".", color=colours[k], ms=3)
    ax2.axhline(SLOPE_SPLIT, color=VERMILLION, ls=":", lw=0.8, label=f"threshold {SLOPE_SPLIT:g}")
    ax2.axhline(-1, color="0.6", lw=0.6, ls="--", label="−1 and −2")
    ax2.axhline(-2, color="0.6", lw=0.6, ls="--")
    ax2.set_xticks(range(3), ["GD", "Nesterov\nscheduled", f"control\nβ = {BETA_CONTROL:g}"])
    ax2.set_ylabel("slope of log(f − f*) vs log t (± 2 SE)")
    ax2.set_title("fitted rates, 3 seeds", fontsize=7)
    ax2.legend(frameon=False, fontsize=5.5)
    ctx.savefig(fig, "nesterov_vs_gd_rates")

    return Result(
        verdict=verdict,
        numbers={
            "claim_kind": "theorem-check",
            "seeds": seeds,
            "dimension": n,
            "steps": steps,
            "eta": ETA,
            "lambda_range": [LAMBDA_MIN, 1.0],
            "fit_window": [int(t_fit[0]), int(t_fit[-1])],
            "gd_slopes": slopes["gd"],
            "gd_slope_mean": stats["gd"][0],
            "gd_slope_se": stats["gd"][1],
            "nesterov_scheduled_slopes": slopes["scheduled"],
            "nesterov_scheduled_slope_mean": stats["scheduled"][0],
            "nesterov_scheduled_slope_se": stats["scheduled"][1],
            "nesterov_bound_max_ratio": bound_ratio,
            "gd_bound_max_ratio": gd_bound_ratio,
            "control_beta": BETA_CONTROL,
            "control_slopes": slopes["control"],
            "control_slope_mean": stats["control"][0],
            "control_slope_se": stats["control"][1],
            "control_side_of_threshold": sides["control"],
        },
        threshold=f"split s = {SLOPE_SPLIT:g} between the exponents −1 and −2, each slope mean ± 2 SE over 3 "
        "seeds: holds-with-correction when GD and the constant-β control lie above s and the scheduled "
        "Nesterov below s within its theorem bound; fails when the scheduled Nesterov is above s or breaks "
        "the bound; inconclusive when s is inside any interval or GD / the control lie below s",
        explanation=(
            f"On ½‖Ax‖² with {n} eigenvalues log-uniform in [{LAMBDA_MIN:g}, 1] (η = 1/L = 1, {steps} steps, fit "
            f"on t ∈ [{int(t_fit[0])}, {int(t_fit[-1])}]) the error falls with slope {stats['gd'][0]:.2f} ± "
            f"{stats['gd'][1]:.2f} for GD and {stats['scheduled'][0]:.2f} ± {stats['scheduled'][1]:.2f} for Nesterov "
            f"with β_t = (t − 1)/(t + 2) (at most {bound_ratio:.3f} of its bound 2‖x₀‖²/(η(t + 1)²); GD at most "
            f"{gd_bound_ratio:.3f} of ‖x₀‖²/(2ηt)). Control: Nesterov with the constant β = {BETA_CONTROL:g} of the "
            f"book's formula has slope {stats['control'][0]:.2f} ± {stats['control'][1]:.2f} — the 1/t exponent, "
            "only a smaller constant (its slow modes move like GD with step η/(1 − β)). So the 1/t² rate is real "
            "but belongs to the schedule, not to Nesterov's look-ahead with a fixed β."
        ),
        corrected=(
            "Nesterov's method reaches O(1/t²) on convex (not strongly convex) problems with the momentum "
            "schedule β_t = (t − 1)/(t + 2) and η ≤ 1/L; with a constant β (e.g. 0.9) it keeps GD's O(1/t) "
            "exponent, only with a better constant."
        ) if verdict == "holds-with-correction" else None,
    )
