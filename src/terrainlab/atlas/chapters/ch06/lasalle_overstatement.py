"""ch06.lasalle_overstatement — V decreasing and bounded below does not make the state converge.

The book (ch06, on Lyapunov functions): "V decreasing and bounded below implies the system tends to an
equilibrium". A monotone bounded-below V(x(t)) converges as a *number*; nothing follows about x(t). The
correct statement is LaSalle's invariance principle (LaSalle 1960, "Some extensions of Liapunov's second
method", IRE Trans. Circuit Theory 7; Khalil, *Nonlinear Systems*, Thm 4.4): if a trajectory stays in a
compact set and V̇ = ⟨∇V, F⟩ ≤ 0 there, it approaches the largest *invariant* set M in {V̇ = 0} — an
equilibrium only when M consists of equilibria (e.g. a gradient flow whose critical points are isolated).

This is a theorem check with two counterexamples, measured along trajectories of x' = F(x) integrated by
the core (:func:`terrainlab.core.integrate`, Dopri5, rtol 1e-9) from seeded starts in [−1, 1]²:

- *valley to infinity*: the gradient flow of V(x, y) = e^{−x} + y², F = (e^{−x}, −2y). V̇ = −‖∇V‖² < 0
  everywhere and V > 0, but inf V = 0 is not attained: there is no equilibrium, x(t) = log(e^{x₀} + t) → ∞
  (the closed form is checked against the integration). The sublevel sets are not compact.
- *limit cycle*: r' = r(1 − r²), φ' = 1 (in Cartesian coordinates), V = (1 − r²)², V̇ = −4r²(1 − r²)² ≤ 0,
  sublevel sets {V ≤ c < 1} compact — LaSalle's hypotheses hold — yet the state approaches the unit
  circle, an invariant set with no equilibrium on it (the only equilibrium is the origin).

Measured for each system: the largest increase of V between recorded states relative to V(0) (must be
≤ ``MONO_TOL``: V is non-increasing; V ≥ 0 by construction), and the *tail spread* of the state, the
diameter max‖x_s − x_t‖ over s, t ∈ [T/2, T], at horizons T up to ``T_MAX`` (a trajectory tends to an
equilibrium iff the spread → 0; since F is continuous a limit is an equilibrium).

Control (the same measurements, LaSalle's hypotheses with isolated critical points): the gradient flow of
the double well L = (θ1² − 1)² + θ2², compact sublevel sets, critical points (±1, 0) and (0, 0). Its tail
spread must fall below ``SPREAD_TOL``; else the verdict is inconclusive (the measurement could not tell
convergence from non-convergence).

Verdict (:func:`decide_lasalle`): inconclusive when the control's V is not monotone or its spread at T_MAX
exceeds ``SPREAD_TOL``; fails when some counterexample has a monotone V and a spread > ``SPREAD_TOL`` at
T_MAX for every start; holds otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.ticker import NullLocator

from terrainlab.atlas import Context, Result, experiment
from terrainlab.core import PIController, integrate
from terrainlab.plotting import BLACK, BLUE, GREEN, ORANGE, VERMILLION, figure

D64 = torch.float64
SPREAD_TOL = 1e-3  # tail spread of the state over [T/2, T] below this: it converges
MONO_TOL = 1e-9  # largest increase of V between recorded states, relative to V(0)
T_MAX_FULL, T_MAX_QUICK = 100.0, 30.0
RTOL, ATOL = 1e-9, 1e-12


def _valley(s, t=0.0):
    return torch.stack([torch.exp(-s[..., 0]), -2 * s[..., 1]], -1)


def _valley_V(s):
    return torch.exp(-s[..., 0]) + s[..., 1] ** 2


def _cycle(s, t=0.0):
    x, y = s[..., 0], s[..., 1]
    r2 = x**2 + y**2
    return torch.stack([x * (1 - r2) - y, y * (1 - r2) + x], -1)


def _cycle_V(s):
    return (1 - (s**2).sum(-1)) ** 2


def _double_well(s, t=0.0):
    return torch.stack([-4 * s[..., 0] * (s[..., 0] ** 2 - 1), -2 * s[..., 1]], -1)


def _double_well_V(s):
    return (s[..., 0] ** 2 - 1) ** 2 + s[..., 1] ** 2


# name -> (field, V, equilibria (rows) or None when there is none)
SYSTEMS = {
    "valley": (_valley, _valley_V, None),
    "cycle": (_cycle, _cycle_V, torch.zeros(1, 2, dtype=D64)),
    "control": (_double_well, _double_well_V, torch.tensor([[-1.0, 0.0], [0.0, 0.0], [1.0, 0.0]], dtype=D64)),
}


def decide_lasalle(counter_violations: Sequence[float], counter_spreads: Sequence[float],
                   control_violation: float, control_spread: float, *, spread_tol: float = SPREAD_TOL,
                   mono_tol: float = MONO_TOL) -> str:
    """The verdict on "V non-increasing and bounded below ⇒ the state tends to an equilibrium".

    ``counter_violations[i]`` / ``counter_spreads[i]``: counterexample i's largest relative increase of V
    and its smallest (over starts) tail spread at the longest horizon; ``control_*`` the same for the
    control (its largest spread). inconclusive when a number is NaN, or the control's V rose by more than
    ``mono_tol`` or its spread exceeds ``spread_tol``; fails when some counterexample kept V monotone
    (violation ≤ ``mono_tol``) with every start's spread > ``spread_tol``; holds otherwise.

    >>> decide_lasalle([0.0], [0.69], 0.0, 1e-30), decide_lasalle([0.0], [1e-6], 0.0, 1e-30)
    ('fails', 'holds')
    >>> decide_lasalle([0.0], [0.69], 0.0, 0.5)
    'inconclusive'
    """
    cv, cs = list(counter_violations), list(counter_spreads)
    if not cv or len(cv) != len(cs):
        raise ValueError(f"counter_violations and counter_spreads must be non-empty and of equal length, got "
                         f"{len(cv)} and {len(cs)}")
    for name, v in (("spread_tol", spread_tol), ("mono_tol", mono_tol)):
        if not (isinstance(v, (int, float)) and v >= 0 and math.isfinite(v)):
            raise ValueError(f"{name} must be a finite non-negative number, got {v!r}")
    for name, vals in (("counter_violations", cv), ("counter_spreads", cs),
                       ("control_violation", [control_violation]), ("control_spread", [control_spread])):
        for v in vals:
            if not isinstance(v, (int, float)) or v < 0:
                raise ValueError(f"{name} must hold non-negative numbers (or NaN), got {v!r}")
    if any(math.isnan(v) for v in [*cv, *cs, control_violation, control_spread]):
        return "inconclusive"
    if control_violation > mono_tol or not control_spread <= spread_tol:
        return "inconclusive"
    if any(v <= mono_tol and s > spread_tol for v, s in zip(cv, cs)):
        return "fails"
    return "holds"


def tail_spread(ts: np.ndarray, xs: np.ndarray, T: float) -> np.ndarray:
    """Per start, the diameter max‖x_s − x_t‖ of the recorded states with s, t ∈ [T/2, T] (``xs``:
    (n_times, n_starts, d)); bounded by the coordinate-wise range, computed exactly by pairwise
    distances over at most 400 evenly thinned states."""
    if T <= 0:
        raise ValueError(f"T must be positive, got {T!r}")
    sel = np.nonzero((ts >= T / 2) & (ts <= T * (1 + 1e-12)))[0]
    if sel.size < 2:
        raise ValueError(f"T = {T} has fewer than two recorded states in [T/2, T]")
    sel = sel[np.linspace(0, sel.size - 1, min(sel.size, 400)).astype(int)]
    w = xs[sel]  # (m, n, d)
    diff = w[:, None] - w[None, :]
    return np.sqrt((diff**2).sum(-1)).max(axis=(0, 1))


def run_system(name: str, starts: torch.Tensor, t_max: float) -> dict:
    """Integrate system ``name`` from ``starts`` to ``t_max`` and take its measurements."""
    if name not in SYSTEMS:
        raise ValueError(f"name must be one of {sorted(SYSTEMS)}, got {name!r}")
    if not (isinstance(t_max, (int, float)) and t_max > 0):
        raise ValueError(f"t_max must be a positive number, got {t_max!r}")
    F, V, eq = SYSTEMS[name]
    sol = integrate(F, starts, 0.0, t_max, controller=PIController(rtol=RTOL, atol=ATOL), record="all",
                    max_steps=200_000)
    ts = np.asarray(sol.ts, dtype=float)
    xs = sol.ys.numpy()
    v = V(sol.ys).numpy()  # (n_times, n_starts)
    rise = float(np.max(np.diff(v, axis=0), initial=0.0))
    violation = max(rise, 0.0) / float(np.min(v[0]))
    if eq is None:
        dist = np.linalg.norm(xs, axis=-1)  # no equilibrium: the distance from the origin
    else:
        dist = np.linalg.norm(xs[:, :, None, :] - eq.numpy()[None, None], axis=-1).min(-1)
    return {"status": str(sol.status), "n_steps": sol.n_steps, "ts": ts, "xs": xs, "V": v,
            "violation": violation, "V_final_max": float(v[-1].max()), "V_min": float(v.min()),
            "dist": dist, "final": xs[-1]}


@experiment(
    id="ch06.lasalle_overstatement",
    chapter=6,
    title="V decreasing and bounded below, yet no equilibrium is reached: a valley to infinity and a limit "
    "cycle (control: the double well converges)",
    claim="If a Lyapunov-like function V decreases along the motion and is bounded below, the system tends "
    "to an equilibrium.",
)
def lasalle_overstatement(ctx: Context) -> Result:
    t_max = T_MAX_QUICK if ctx.quick else T_MAX_FULL
    n_starts = 4 if ctx.quick else 8
    horizons = [T for T in (1.0, 3.0, 10.0, 30.0, 100.0) if T <= t_max]
    starts = 2 * torch.rand(n_starts, 2, generator=ctx.generator(6), dtype=D64) - 1
    runs = {name: run_system(name, starts, t_max) for name in SYSTEMS}
    spreads = {name: np.array([tail_spread(r["ts"], r["xs"], T) for T in horizons]) for name, r in runs.items()}
    sp_end = {name: s[-1] for name, s in spreads.items()}
    val, cyc, ctl = runs["valley"], runs["cycle"], runs["control"]
    # closed form of the valley: x(t) = log(e^{x0} + t)
    x_closed = np.log(np.exp(starts[:, 0].numpy()) + t_max)
    closed_err = float(np.abs(val["final"][:, 0] - x_closed).max())
    r_end = np.linalg.norm(cyc["final"], axis=-1)
    ctl_dist = float(ctl["dist"][-1].max())
    verdict = decide_lasalle([val["violation"], cyc["violation"]], [float(sp_end["valley"].min()),
                             float(sp_end["cycle"].min())], ctl["violation"], float(sp_end["control"].max()))

    colours = {"valley": VERMILLION, "cycle": ORANGE, "control": BLUE}
    labels = {"valley": "valley V = e⁻ˣ + y²", "cycle": "limit cycle V = (1 − r²)²",
              "control": "control: double well (LaSalle)"}
    fig, axes = figure("double", height=2.7, ncols=3)
    ax = axes[0]
    for name, r in runs.items():
        m = r["ts"] > 0
        for j in range(n_starts):
            ax.loglog(r["ts"][m], np.maximum(r["V"][m, j], 1e-30), color=colours[name], lw=0.8,
                      label=labels[name] if j == 0 else None)
    ax.set_ylim(1e-30, 10)
    ax.set_xlabel("t")
    ax.set_ylabel("V(x(t))  (floor 1e−30)")
    ax.set_title("(a) V(x(t)) falls towards inf V = 0")
    ax.legend(frameon=False, fontsize=6, loc="lower left")
    ax = axes[1]
    for name, r in runs.items():
        m = r["ts"] > 0
        for j in range(n_starts):
            ax.semilogx(r["ts"][m], r["dist"][m, j], color=colours[name], lw=0.8)
    tt = np.geomspace(val["ts"][1], t_max, 50)
    ax.semilogx(tt, np.log(np.e + tt), color=BLACK, ls=":", lw=0.9, label="log(e + t): valley from x₀ = 1")
    ax.axhline(1.0, color=GREEN, ls="--", lw=0.8, label="cycle: the circle r = 1")
    ax.set_ylim(0, max(5.0, float(val["dist"].max()) * 1.1))
    ax.set_xlabel("t")
    ax.set_ylabel("distance to equilibria (valley: ‖x‖)")
    ax.set_title("(b) the state: → ∞, → circle, → point")
    ax.legend(frameon=False, fontsize=6, loc="upper left")
    ax = axes[2]
    for name in SYSTEMS:
        s = spreads[name]
        ax.loglog(horizons, np.maximum(s.min(1), 1e-16), "o-", ms=3, color=colours[name], label=labels[name])
        ax.fill_between(horizons, np.maximum(s.min(1), 1e-16), np.maximum(s.max(1), 1e-16), color=colours[name],
                        alpha=0.2, lw=0)
    ax.axhline(SPREAD_TOL, color=BLACK, ls="--", lw=0.8, label=f"threshold {SPREAD_TOL:g}")
    ax.set_ylim(1e-16, 10)
    ax.set_xlabel("horizon T")
    ax.set_ylabel("diameter of x([T/2, T])  (floor 1e−16)")
    ax.set_title(f"(c) tail spread, {n_starts} starts (band: min–max)")
    ax.legend(frameon=False, fontsize=6, loc="lower left")
    for ax in axes:  # log axes spanning 30 decades: no minor ticks (their labels cost most of the drawing)
        ax.xaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_minor_locator(NullLocator())
    ctx.savefig(fig, "lasalle_overstatement")

    return Result(
        verdict=verdict,
        numbers={
            "claim_kind": "theorem-check",
            "n_starts": n_starts,
            "horizons": horizons,
            "t_max": t_max,
            "valley_V_max_relative_increase": val["violation"],
            "valley_V_final_max": val["V_final_max"],
            "valley_tail_spread_min": float(sp_end["valley"].min()),
            "valley_tail_spread_by_horizon_min": spreads["valley"].min(1).tolist(),
            "valley_x_final_min": float(val["final"][:, 0].min()),
            "valley_closed_form_max_abs_error": closed_err,
            "cycle_V_max_relative_increase": cyc["violation"],
            "cycle_V_final_max": cyc["V_final_max"],
            "cycle_tail_spread_min": float(sp_end["cycle"].min()),
            "cycle_tail_spread_by_horizon_min": spreads["cycle"].min(1).tolist(),
            "cycle_radius_final_min_max": [float(r_end.min()), float(r_end.max())],
            "cycle_distance_to_equilibrium_final_min": float(cyc["dist"][-1].min()),
            "control_V_max_relative_increase": ctl["violation"],
            "control_V_final_max": ctl["V_final_max"],
            "control_tail_spread_max": float(sp_end["control"].max()),
            "control_tail_spread_by_horizon_max": spreads["control"].max(1).tolist(),
            "control_distance_to_equilibrium_final_max": ctl_dist,
            "control_verdict": "converges" if sp_end["control"].max() <= SPREAD_TOL else "does not converge",
            "solver_status": {k: r["status"] for k, r in runs.items()},
        },
        threshold=f"V non-increasing: largest rise between recorded states ≤ {MONO_TOL:g}·V(0); the state tends to "
        f"an equilibrium iff its tail spread (diameter of x([T/2, T])) at T = {t_max:g} is ≤ {SPREAD_TOL:g}. The "
        "control (double-well gradient flow) must converge, else inconclusive; a counterexample with monotone V and "
        "every start's spread above the threshold ⇒ fails",
        explanation=(
            f"From {n_starts} seeded starts in [−1, 1]², all three flows keep V non-increasing (largest relative "
            f"rise {max(val['violation'], cyc['violation'], ctl['violation']):.1e}) and bounded below by 0. On the valley "
            f"V = e^{{−x}} + y² (gradient flow, no equilibrium) V falls to {val['V_final_max']:.1e} while x(T) ≥ "
            f"{val['final'][:, 0].min():.2f} at T = {t_max:g}, following log(e^{{x₀}} + t) to {closed_err:.1e}; its "
            f"tail spread grows with the horizon to {sp_end['valley'].min():.2f} at T = {t_max:g} (→ log 2 as T → ∞). On the limit cycle V = "
            f"(1 − r²)² falls to {cyc['V_final_max']:.1e}, the trajectories stay in a compact set and end on the circle "
            f"(r ∈ [{r_end.min():.6f}, {r_end.max():.6f}]), distance ≥ {cyc['dist'][-1].min():.3f} from the only "
            f"equilibrium, tail spread {sp_end['cycle'].min():.2f}: LaSalle's conclusion (approach to the largest "
            f"invariant set in {{V̇ = 0}}) holds, the book's does not. The control, the double well's gradient flow "
            f"(compact sublevel sets, isolated critical points), converges: spread {sp_end['control'].max():.1e}, "
            f"distance to the nearest critical point {ctl_dist:.1e}."
        ),
        corrected=(
            "V non-increasing and bounded below only makes V(x(t)) converge. LaSalle's invariance principle: if the "
            "trajectory stays in a compact set (e.g. compact sublevel sets of V) and V̇ ≤ 0, it approaches the largest "
            "invariant set contained in {V̇ = 0}; it tends to an equilibrium when that set consists of isolated "
            "equilibria (e.g. V̇ < 0 away from equilibria, as for a gradient flow with isolated critical points). "
            "Without compactness the state can run to infinity (V = e^{−x}); with it, it can approach a limit cycle."
        ) if verdict == "fails" else None,
    )
