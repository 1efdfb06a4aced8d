"""ch07.cobweb — the cobweb of x ↦ tanh(0.8x + 0.5) from x₀ = 2.5: a contraction, so (Banach) the
iteration converges to the one fixed point.

The book draws this cobweb as its picture of x_{t+1} = f(x_t) settling on x* = f(x*). Banach's theorem
says: if sup|f'| = q < 1 (f a contraction of ℝ), f has exactly one fixed point, every orbit converges
to it, and |x_t − x*| ≤ qᵗ|x₀ − x*|. This is a theorem check: for this f the verdict cannot come out
otherwise, but every premise and conclusion is *measured*, not assumed:

- q: the largest |f'(x)| by autograd on a fine grid of [−10, 10] (tanh is flat beyond it);
- the fixed points: :func:`terrainlab.dynamics.find_fixed_points` (kind "map") from 31 starts in
  [−1.5, 1.5] (every fixed point of a tanh map lies in [−1, 1]), with their class (attractor /
  repeller, from |f'(x*)|);
- the orbit from 2.5, run through the core (Euler with η = 1 on the residual field f(x) − x is exactly
  x ← f(x)); its eventual period by :func:`terrainlab.core.detect_cycle` (period 1: it converged);
- the Banach a-priori bound qᵗ|x₀ − x*| at every step.

Control (the same measurements, a map that is not a contraction): g(x) = tanh(−3x + 0.5), sup|g'| = 3.
It still has exactly one fixed point (g is decreasing), but |g'(x*)| ≈ 2.95 > 1 makes it a repeller:
the cobweb from 2.5 lands on a period-2 orbit (≈ −0.99 ↔ 1.00) around it and never converges. The verdict is
inconclusive if the control converges (the measurement would then not tell the two apart).

Also reported (not part of the verdict, which is about what the book claims): the observed asymptotic
error ratio, equal to the local factor |f'(x*)| ≈ 0.26 rather than q = 0.8 (the Banach bound is a
guarantee, not the speed), and Anderson acceleration against plain Picard iteration.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from terrainlab.atlas import Context, Result, experiment
from terrainlab.core import Euler, detect_cycle, map_field, rollout
from terrainlab.dynamics import find_fixed_points
from terrainlab.nn import Anderson, Picard, fixed_point
from terrainlab.plotting import BLACK, BLUE, ORANGE, SKY, VERMILLION, figure

X0, A, B = 2.5, 0.8, 0.5  # the book's map tanh(0.8x + 0.5) and start
A_CONTROL = -3.0  # the control map tanh(−3x + 0.5): not a contraction
CONV_TOL = 1e-10  # |x_T − x*| below this: converged
CYCLE_TOL = 1e-12  # states this close count as the same (eventual period)


def decide_cobweb(lipschitz_q: float, n_fixed_points: int, converged: bool, bound_violations: int,
                  control_converged: bool) -> str:
    """inconclusive when the control (a non-contraction whose orbit must not converge) converged: the
    measurement does not separate the two; else fails when the orbit from x₀ did not converge, the map
    has other than one fixed point, or the Banach bound qᵗ|x₀ − x*| was broken; holds-with-correction
    when it converged to the unique fixed point although the map is not a contraction (q ≥ 1: Banach does
    not apply); holds when q < 1 and all of Banach's conclusions are met."""
    if not (isinstance(lipschitz_q, (int, float)) and lipschitz_q >= 0):
        raise ValueError(f"lipschitz_q must be a non-negative number, got {lipschitz_q!r}")
    if isinstance(n_fixed_points, bool) or not isinstance(n_fixed_points, int) or n_fixed_points < 0:
        raise ValueError(f"n_fixed_points must be a non-negative int, got {n_fixed_points!r}")
    if isinstance(bound_violations, bool) or not isinstance(bound_violations, int) or bound_violations < 0:
        raise ValueError(f"bound_violations must be a non-negative int, got {bound_violations!r}")
    if control_converged:
        return "inconclusive"
    if not converged or n_fixed_points != 1 or bound_violations > 0:
        return "fails"
    return "holds" if lipschitz_q < 1 else "holds-with-correction"


def _map(a: float):
    def f(x):
        return torch.tanh(a * x + B)

    return f


def measure_map(f, x0: float, steps: int, dtype=torch.float64) -> dict:
    """The Banach measurements of a scalar map ``f`` (see the module docstring): sup|f'| on [−10, 10],
    its fixed points and their classes, the orbit from ``x0`` (``steps`` iterations through the core),
    its eventual period, whether it converged to a fixed point, and the Banach-bound violations."""
    grid = torch.linspace(-10, 10, 20001, dtype=dtype, requires_grad=True)
    (df,) = torch.autograd.grad(f(grid).sum(), grid)
    q = float(df.abs().max())
    fp = find_fixed_points(f, torch.linspace(-1.5, 1.5, 31, dtype=dtype)[:, None], kind="map", tol=1e-14)
    real = ~fp.is_slow
    points = fp.points[real, 0]
    kinds = [k for k, r in zip(fp.kinds, real.tolist()) if r]
    tr = rollout(map_field(f), torch.tensor([[x0]], dtype=dtype), eta=1.0, steps=steps, scheme=Euler())
    xs = tr.states[:, 0, 0]
    period = detect_cycle(tr.states[:, 0, :], tol=CYCLE_TOL).period
    # the fixed point the orbit is measured against: the one nearest its end
    x_star = float(points[(points - xs[-1]).abs().argmin()]) if points.numel() else float("nan")
    err = (xs - x_star).abs().numpy()
    bound = q ** np.arange(len(err)) * abs(x0 - x_star)
    violations = int(np.sum(err > bound * (1 + 1e-12) + 1e-15)) if q < 1 else 0
    with torch.no_grad():
        fprime = float(torch.func.grad(lambda x: f(x))(torch.tensor(x_star, dtype=dtype)))
    return {"q": q, "n_fixed": int(points.numel()), "fixed_points": points.tolist(), "kinds": kinds,
            "x_star": x_star, "fprime_at_x_star": fprime, "orbit": xs.numpy(), "err": err, "bound": bound,
            "period": int(period), "converged": bool(period == 1 and err[-1] < CONV_TOL),
            "violations": violations, "orbit_tail": xs[-2:].tolist()}


def _cobweb(ax, f_np, xs, x_star, colour, label, lim, n_web=12):
    grid = np.linspace(*lim, 400)
    ax.plot(grid, f_np(grid), color=BLUE, lw=1.0, label=label)
    ax.plot(grid, grid, color=BLACK, lw=0.8, ls="--", label="y = x")
    n_web = min(n_web, len(xs) - 1)
    px, py = [xs[0]], [xs[0]]  # start on the diagonal at (x₀, x₀)
    for k in range(n_web):
        px += [xs[k], xs[k + 1]]  # up/down to the graph, then across to the diagonal
        py += [xs[k + 1], xs[k + 1]]
    ax.plot(px, py, color=colour, lw=1.0, label="cobweb from x₀ = 2.5")
    ax.plot([x_star], [x_star], "o", color=VERMILLION, ms=4, label=f"fixed point {x_star:.4f}")
    ax.set_xlim(*lim)
    ax.set_ylim(*lim)
    ax.set_xlabel("$x_t$")
    ax.set_ylabel("$x_{t+1}$")
    ax.legend(loc="upper left", frameon=False, fontsize=6)


@experiment(
    id="ch07.cobweb",
    chapter=7,
    title="Cobweb of tanh(0.8x + 0.5): a contraction converging to its one fixed point (Banach)",
    claim="Iterating x_{t+1} = f(x_t) with f(x) = tanh(0.8x + 0.5) from x₀ = 2.5 steps into the "
    "unique fixed point x* = f(x*) (a contraction mapping, Banach).",
)
def cobweb(ctx: Context) -> Result:
    steps = 30 if ctx.quick else 60
    m = measure_map(_map(A), X0, steps)
    c = measure_map(_map(A_CONTROL), X0, steps)
    x_star = m["x_star"]
    local = abs(m["fprime_at_x_star"])
    err, valid = m["err"], m["err"] > 1e-13
    ks = np.nonzero(valid)[0]
    tail = ks[len(ks) // 2 :]
    ratios = err[tail[1:]] / err[tail[:-1]]
    observed = float(np.exp(np.mean(np.log(ratios)))) if len(ratios) else float("nan")
    steps_to = int(np.argmax(err < CONV_TOL)) if m["converged"] else -1
    banach_steps = math.ceil(math.log(CONV_TOL / abs(X0 - x_star)) / math.log(m["q"])) if m["q"] < 1 else -1
    x0 = torch.tensor([[X0]], dtype=torch.float64)
    anderson = fixed_point(_map(A), x0, solver=Anderson(m=3), tol=1e-12, max_iter=100)
    picard = fixed_point(_map(A), x0, solver=Picard(), tol=1e-12, max_iter=500)
    verdict = decide_cobweb(m["q"], m["n_fixed"], m["converged"], m["violations"], c["converged"])

    t = np.arange(len(err))
    fig, (ax, ax2) = figure("double", height=3.0, ncols=2)
    _cobweb(ax, lambda x: np.tanh(A * x + B), m["orbit"], x_star, ORANGE, "f(x) = tanh(0.8x + 0.5)", (-1.2, 2.7))
    ax.set_title(f"Cobweb: x ← f(x), sup|f'| = {m['q']:.3f} < 1")
    ax2.semilogy(t[valid], err[valid], "o-", ms=2.5, color=ORANGE, label="|x_t − x*|, f (book)")
    ax2.semilogy(t, m["bound"], color=BLACK, ls="--", lw=0.9, label=f"Banach bound {m['q']:.1f}ᵗ|x₀ − x*|")
    ax2.semilogy(t, abs(X0 - x_star) * local ** t, color=BLUE, ls=":", label=f"|f'(x*)|ᵗ, |f'(x*)| = {local:.3f}")
    ax2.semilogy(np.arange(len(c["err"])), np.maximum(c["err"], 1e-16), "s-", ms=2, color=SKY,
                 label="|x_t − x*|, control g")
    ax2.set_ylim(1e-16, 10)
    ax2.set_xlabel("iteration t")
    ax2.set_ylabel("error to the fixed point")
    ax2.set_title("Error: the contraction converges, the control does not")
    ax2.legend(frameon=False, fontsize=6)
    ctx.savefig(fig, "cobweb")

    fig, ax = figure("single", height=3.0)
    _cobweb(ax, lambda x: np.tanh(A_CONTROL * x + B), c["orbit"], c["x_star"], SKY, "g(x) = tanh(−3x + 0.5)",
            (-1.3, 2.7), n_web=8)
    ax.set_title(f"Control: sup|g'| = {c['q']:.2f}, orbit period {c['period']}", fontsize=7)
    ctx.savefig(fig, "cobweb_control")

    kinds = ", ".join(m["kinds"]) or "none"
    return Result(
        verdict=verdict,
        numbers={
            "claim_kind": "theorem-check",
            "lipschitz_q_measured": m["q"],
            "n_fixed_points": m["n_fixed"],
            "x_star": x_star,
            "orbit_period": m["period"],
            "converged": m["converged"],
            "final_error": float(err[-1]),
            "bound_violations": m["violations"],
            "steps_to_1e-10_measured": steps_to,
            "steps_to_1e-10_banach_bound": banach_steps,
            "local_rate_abs_fprime_at_xstar": local,
            "observed_rate": observed,
            "picard_iterations_tol_1e-12": int(picard.iterations.max()),
            "anderson_iterations_tol_1e-12": int(anderson.iterations.max()),
            "control_map": "tanh(-3x + 0.5)",
            "control_lipschitz_q_measured": c["q"],
            "control_n_fixed_points": c["n_fixed"],
            "control_fixed_point": c["x_star"],
            "control_abs_fprime_at_fixed_point": abs(c["fprime_at_x_star"]),
            "control_orbit_period": c["period"],
            "control_orbit_tail": c["orbit_tail"],
            "control_converged": c["converged"],
            "control_verdict": decide_cobweb(c["q"], c["n_fixed"], c["converged"], c["violations"], False),
        },
        threshold=f"holds: measured sup|f'| < 1, exactly one fixed point, the orbit from 2.5 within "
        f"{CONV_TOL:g} of it (eventual period 1), no step above qᵗ|x₀ − x*|; fails if the orbit does not "
        "converge, the fixed point is not unique or the bound breaks; inconclusive if the control "
        "(tanh(−3x + 0.5), not a contraction) converges too",
        explanation=(
            f"Theorem check. f(x) = tanh(0.8x + 0.5) has measured sup|f'| = {m['q']:.4f} on [−10, 10] and "
            f"{m['n_fixed']} fixed point ({kinds}) at x* = {x_star:.10f}. Run through the core (Euler, η = 1, on "
            f"f(x) − x), the orbit from 2.5 ends {float(err[-1]):.1e} from x* (eventual period {m['period']}), "
            f"reaching 1e-10 in {steps_to} steps, with {m['violations']} steps above the Banach bound "
            f"{m['q']:.1f}ᵗ|x₀ − x*| (which promises 1e-10 only after {banach_steps} steps: the observed "
            f"asymptotic ratio {observed:.4f} is the local |f'(x*)| = {local:.4f}, a speed the book does not "
            f"claim). Control: g(x) = tanh(−3x + 0.5) has sup|g'| = {c['q']:.2f} and {c['n_fixed']} fixed point "
            f"at {c['x_star']:.4f} with |g'| = {abs(c['fprime_at_x_star']):.2f} there; its orbit from 2.5 "
            f"settles on a period-{c['period']} cycle {c['orbit_tail'][0]:.4f} ↔ {c['orbit_tail'][1]:.4f} "
            f"(converged: {c['converged']}). Anderson acceleration needs {int(anderson.iterations.max())} "
            f"evaluations to 1e-12 against Picard's {int(picard.iterations.max())}."
        ),
        corrected=(
            f"The orbit converges to the unique fixed point, but sup|f'| = {m['q']:.3f} ≥ 1: f is not a "
            "contraction and Banach's theorem is not the reason."
        ) if verdict == "holds-with-correction" else None,
    )
