"""ch12.reverse_diffusion_is_gradient_descent — is reverse diffusion gradient descent on E_t = −log p_t?

The book (ch12, "energy view"): with E(x) = −log p(x), ∇log p = −∇E, so reverse diffusion is gradient
descent on E. The reverse-time SDE (Anderson 1982; Song et al. 2021, eq. 6) for the forward process
dx = f(t)x dt + g(t)dw is dx = [f(t)x − g(t)²∇log p_t(x)] dt + g(t)dw̄, and its probability-flow ODE
(Song et al. 2021, eq. 13) is dx/dt = f(t)x − ½g(t)²∇log p_t(x). Run backwards (t ↓, step |dt|) the
displacement is

    SDE:  g²·(−∇E_t)|dt|  −  f x|dt|  +  g √|dt| ξ        PF-ODE:  ½g²·(−∇E_t)|dt|  −  f x|dt|

i.e. a gradient step on E_t **plus** the forward drift term (for VP, −f x = +½β(t)x, pointing away from
the origin) **plus** noise, on an objective E_t that changes with t. Whether that is "gradient descent"
is measured, on the book's two-cluster mixture with its exact noised score (:mod:`terrainlab.diffusion`
oracle), under the book's VP schedule, for ``N_SEEDS`` seeds (ctx.seed + i):

- the drift, from the library's own reverse fields (:func:`~terrainlab.diffusion.reverse_sde_field`,
  :func:`~terrainlab.diffusion.pf_ode_field`): at points x ~ p_t on a grid of t, its cosine with
  −∇E_t and the *descent share* (fraction of points where the drift decreases E_t to first order,
  cosine > 0), and the ratio ‖f-term‖/‖score term‖ (the decomposition is checked: residual);
- the steps: along reverse-SDE and PF-ODE trajectories (core rollouts, ``N_STEPS`` Euler(–Maruyama)
  steps from t = 1 to 10⁻³), the fraction of steps in which the current objective *increases*,
  E_{t_k}(x_{k+1}) > E_{t_k}(x_k) — zero for gradient descent with a stable step;
- the objective moves: the number of local minima of E_t on a grid (one well at t = 1, the two
  clusters at small t).

Control: the VE schedule (f = 0, Song & Ermon 2019) with the deterministic PF-ODE, where the drift is
*exactly* ½g²(−∇E_t): cosine 1, no f-term, and (step small enough) E_{t_k} never increases. The same rule
must read "holds" there, else the measurement cannot recognise gradient descent and the verdict is
inconclusive.

Verdict (:func:`decide_reverse_is_gd`), applied to the book's sampler (VP reverse SDE): holds when the
drift is parallel to −∇E_t (least mean cosine over t ≥ ``COS_EXACT``, f-ratio ≤ ``F_TOL``) and the share
of E-increasing steps is below ``INC_TOL`` (mean + 2 SE); fails when the drift is not even a descent
direction at most points (descent share, mean + 2 SE, below ``DESCENT_MIN``); holds-with-correction when it
is a descent direction at most points (mean − 2 SE above ``DESCENT_MIN``) but not gradient descent;
inconclusive when a threshold lies inside mean ± 2 SE (:func:`terrainlab.atlas.stats.side_of`).
Claim kind: theorem-check — the outcome follows from the SDE's formula; the experiment shows how far off
it is, and where.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from matplotlib.ticker import FuncFormatter, NullFormatter

from terrainlab.atlas import Context, Result, experiment
from terrainlab.atlas.chapters._digits import one_thread
from terrainlab.atlas.stats import mean_se, side_of
from terrainlab.diffusion import (
    TimeWarp,
    VESchedule,
    VPSchedule,
    forward_sde_field,
    pf_ode_field,
    q_sample,
    reverse_sde_field,
    sample_pf_ode,
    sample_reverse_sde,
)
from terrainlab.plotting import BLACK, BLUE, GREEN, ORANGE, SKY, VERMILLION, figure

from ._common import two_clusters

N_SEEDS = 3
N_STEPS = 200          # sampler steps from t = 1 to T_EPS (the book's chains have ~1000); quick: 100
T_EPS = 1e-3
TIMES = (0.01, 0.03, 0.1, 0.2, 0.3, 0.45, 0.6, 0.8, 1.0)
COS_EXACT = 0.999      # drift parallel to −∇E_t (within 2.6°) at every t: it is a gradient step
F_TOL = 1e-3           # ‖f-term‖/‖score term‖ below this: no extra drift
INC_TOL = 0.05         # share of steps raising the current objective E_t: gradient descent stays below
DESCENT_MIN = 0.9      # the drift must decrease E_t (cosine > 0) at this share of points to be descent-like
VE = {"sigma_min": 0.01, "sigma_max": 10.0}


def decide_reverse_is_gd(cos_min: float, f_ratio: float, descent_mean: float, descent_se: float,
                         increase_mean: float, increase_se: float, control_verdict: str | None = None) -> str:
    """The verdict on one reverse process (see the module docstring). ``cos_min``: least mean cosine
    of drift and −∇E_t over t; ``f_ratio``: largest median ‖f-term‖/‖score term‖ over t; ``descent_*``:
    share of points where the drift decreases E_t; ``increase_*``: share of steps raising E_{t_k}.
    ``control_verdict`` (the same rule on the VE PF-ODE) must be "holds", else inconclusive; None
    decides the control itself."""
    if control_verdict is not None and control_verdict not in ("holds", "holds-with-correction", "fails",
                                                               "inconclusive"):
        raise ValueError(f"control_verdict must be a verdict or None, got {control_verdict!r}")
    vals = (cos_min, f_ratio, descent_mean, descent_se, increase_mean, increase_se)
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in vals):
        return "inconclusive"
    if control_verdict is not None and control_verdict != "holds":
        return "inconclusive"
    descent = side_of(descent_mean, descent_se, DESCENT_MIN)
    increase = side_of(increase_mean, increase_se, INC_TOL)
    if descent == "below":
        return "fails"
    if descent == "inside" or increase == "inside":
        return "inconclusive"
    if cos_min >= COS_EXACT and f_ratio <= F_TOL and increase == "below":
        return "holds"
    return "holds-with-correction"


def _energy(gm, x: torch.Tensor, t, sched) -> torch.Tensor:
    """E_t(x) = −log p_t(x) of the noised mixture (n,); t a float or a tensor (n,) of times."""
    return -gm.log_prob(x, t, sched)


def count_minima(values: np.ndarray) -> int:
    """Strict local minima of a 2-D grid of values (interior points below all 8 neighbours)."""
    v = np.asarray(values, dtype=float)
    if v.ndim != 2 or min(v.shape) < 3:
        raise ValueError(f"values must be a 2-D grid of at least 3×3, got shape {v.shape}")
    c = v[1:-1, 1:-1]
    is_min = np.ones_like(c, dtype=bool)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            if di or dj:
                is_min &= c < v[1 + di:v.shape[0] - 1 + di, 1 + dj:v.shape[1] - 1 + dj]
    return int(is_min.sum())


def _drift_stats(gm, sched, data: torch.Tensor, t: float, generator) -> dict:
    """Cosine of the reverse drift with −∇E_t at x ~ p_t, descent share and the f-term ratio, for the
    reverse SDE and the PF-ODE, read from the library's reverse fields (sampler time u, t'(u) < 0)."""
    warp = TimeWarp(sched, t_lo=T_EPS)
    u = (warp.t_hi - t) / (warp.t_hi - warp.t_lo)
    if not (T_EPS <= t <= warp.t_hi):
        raise ValueError(f"t must lie in [{T_EPS}, {warp.t_hi}], got {t!r}")
    x, _ = q_sample(data, t, sched, generator=generator)
    score = gm.score_fn(sched)
    s = score(x, t)                                    # −∇E_t
    fx = forward_sde_field(sched)(x, t) * warp.dt_du(u)
    out = {}
    for name, field, c in (("sde", reverse_sde_field(score, sched, warp), 1.0),
                           ("pf", pf_ode_field(score, sched, warp), 0.5)):
        v = field(x, u)
        score_term = -c * float(sched.g2(t)) * s * warp.dt_du(u)
        resid = float((v - fx - score_term).norm(dim=1).max() / v.norm(dim=1).max())
        cos = torch.nn.functional.cosine_similarity(v, s, dim=1)
        out[name] = {"cos_mean": float(cos.mean()), "descent_share": float((cos > 0).double().mean()),
                     "f_ratio_median": float((fx.norm(dim=1) / score_term.norm(dim=1)).median()),
                     "decomposition_residual": resid}
    return out


def _step_stats(gm, sched, x_T: torch.Tensor, seed: int, n_steps: int = N_STEPS) -> dict:
    """Share of sampler steps raising the current objective, E_{t_k}(x_{k+1}) > E_{t_k}(x_k), for the
    reverse SDE and the PF-ODE (Euler), each as a whole and per step."""
    score = gm.score_fn(sched)
    out = {}
    for name, res in (("sde", sample_reverse_sde(score, x_T, sched, n_steps, t_eps=T_EPS, record="all",
                                                 generator=torch.Generator().manual_seed(seed + 100))),
                      ("pf", sample_pf_ode(score, x_T, sched, n_steps, t_eps=T_EPS, record="all"))):
        X, T = res.trajectory, res.times.to(res.trajectory.dtype)
        K, n = X.shape[0] - 1, X.shape[1]
        here, nxt = X[:-1].reshape(-1, X.shape[2]), X[1:].reshape(-1, X.shape[2])
        t_here, t_next = T[:-1].repeat_interleave(n), T[1:].repeat_interleave(n)
        e_here = _energy(gm, here, t_here, sched)           # E_{t_k}(x_k), all steps in one call
        up = (_energy(gm, nxt, t_here, sched) > e_here).double().reshape(K, n).mean(1)
        moving_up = (_energy(gm, nxt, t_next, sched) > e_here).double().reshape(K, n).mean(1)
        out[name] = {"increase_share": float(up.mean()), "moving_increase_share": float(moving_up.mean()),
                     "per_step": up.numpy()}
    return out


def _measure(gm, sched, seeds, n_pts, n_traj, n_steps) -> dict:
    rows = {t: [] for t in TIMES}
    steps = []
    for s in seeds:
        g = torch.Generator().manual_seed(s)
        data, _ = gm.sample(n_pts, generator=g)
        for t in TIMES:
            rows[t].append(_drift_stats(gm, sched, data, t, g))
        x_T = sched.prior_sample(n_traj, 2, generator=g, dtype=torch.float64)
        steps.append(_step_stats(gm, sched, x_T, s, n_steps))
    res = {}
    for kind in ("sde", "pf"):
        per_t = {str(t): {k: mean_se([r[kind][k] for r in rows[t]])[0]
                          for k in ("cos_mean", "descent_share", "f_ratio_median")} for t in TIMES}
        # pooled over t, per seed: the share of (x, t) points where the drift is a descent direction
        pooled = [float(np.mean([rows[t][j][kind]["descent_share"] for t in TIMES])) for j in range(len(seeds))]
        inc = [st[kind]["increase_share"] for st in steps]
        mov = [st[kind]["moving_increase_share"] for st in steps]
        (dm, dse), (im, ise), (mm, mse) = mean_se(pooled), mean_se(inc), mean_se(mov)
        res[kind] = {"per_t": per_t,
                     "cos_min": min(v["cos_mean"] for v in per_t.values()),
                     "f_ratio_max": max(v["f_ratio_median"] for v in per_t.values()),
                     "descent_share": dm, "descent_share_se": dse,
                     "increase_share": im, "increase_share_se": ise,
                     "moving_increase_share": mm, "moving_increase_share_se": mse,
                     "decomposition_residual": max(r[kind]["decomposition_residual"]
                                                   for t in TIMES for r in rows[t]),
                     "per_step": steps[0][kind]["per_step"]}
        res[kind]["verdict"] = decide_reverse_is_gd(res[kind]["cos_min"], res[kind]["f_ratio_max"], dm, dse, im, ise)
    return res


@experiment(
    id="ch12.reverse_diffusion_is_gradient_descent",
    chapter=12,
    title="Reverse diffusion is not gradient descent on −log p_t: an extra drift, noise and a moving objective",
    claim="With the energy E(x) = −log p(x), ∇log p = −∇E, so reverse diffusion is gradient descent on E.",
)
def reverse_diffusion_is_gradient_descent(ctx: Context) -> Result:
    with one_thread():
        return _reverse_diffusion_is_gradient_descent(ctx)


def _reverse_diffusion_is_gradient_descent(ctx: Context) -> Result:
    gm = two_clusters()
    seeds = [ctx.seed + i for i in range(N_SEEDS)]
    n_pts, n_traj, n_steps = (400, 100, N_STEPS // 2) if ctx.quick else (1000, 500, N_STEPS)
    vp, ve = VPSchedule(), VESchedule(**VE)
    m_vp = _measure(gm, vp, seeds, n_pts, n_traj, n_steps)
    m_ve = _measure(gm, ve, seeds, n_pts, n_traj, n_steps)
    ctrl = m_ve["pf"]
    control_verdict = ctrl["verdict"]
    main = m_vp["sde"]
    verdict = decide_reverse_is_gd(main["cos_min"], main["f_ratio_max"], main["descent_share"],
                                   main["descent_share_se"], main["increase_share"], main["increase_share_se"],
                                   control_verdict=control_verdict)
    ax1 = torch.linspace(-4.0, 4.0, 81, dtype=torch.float64)
    GX, GY = torch.meshgrid(ax1, ax1, indexing="xy")
    grid = torch.stack([GX.flatten(), GY.flatten()], 1)
    minima = {str(t): count_minima(_energy(gm, grid, t, vp).reshape(81, 81).numpy()) for t in TIMES}

    # ---- figure
    fig, axes = figure("double", height=2.9, ncols=3, gridspec_kw={"width_ratios": [1.1, 1, 1]})
    ax = axes[0]
    t_show = 0.6
    warp = TimeWarp(vp, t_lo=T_EPS)
    u = (warp.t_hi - t_show) / (warp.t_hi - warp.t_lo)
    q = torch.linspace(-3.0, 3.0, 13, dtype=torch.float64)
    QX, QY = torch.meshgrid(q, q, indexing="xy")
    pts = torch.stack([QX.flatten(), QY.flatten()], 1)
    score = gm.score_fn(vp)
    E = _energy(gm, grid, t_show, vp).reshape(81, 81).numpy()
    ax.contour(GX.numpy(), GY.numpy(), E, levels=12, colors="0.6", linewidths=0.5)
    for v, c, label in ((score(pts, t_show), BLUE, "−∇E_t (gradient descent)"),
                        (pf_ode_field(score, vp, warp)(pts, u), VERMILLION, "PF-ODE drift (VP)")):
        d = (v / v.norm(dim=1, keepdim=True).clamp_min(1e-12)).numpy()
        ax.quiver(pts[:, 0].numpy(), pts[:, 1].numpy(), d[:, 0], d[:, 1], color=c, scale=18, width=0.006,
                  label=label)
    ax.set_aspect("equal")
    ax.set_xlim(-3.3, 3.3)
    ax.set_ylim(-3.3, 3.3)
    ax.set_xlabel("x₁")
    ax.set_ylabel("x₂")
    ax.set_title(f"(a) t = {t_show}: contours of Eₜ = −log pₜ,\ndescent direction vs PF-ODE drift", fontsize=7)
    ax.legend(loc="lower right", frameon=True, framealpha=0.9, edgecolor="none", fontsize=5.5)
    ax = axes[1]
    ts = list(TIMES)
    for m, kind, c, ls, label in ((m_vp, "sde", BLUE, "-", "VP reverse SDE drift (book)"),
                                  (m_vp, "pf", VERMILLION, "-", "VP PF-ODE drift"),
                                  (m_ve, "pf", GREEN, "--", "VE PF-ODE drift (control)")):
        ax.plot(ts, [m[kind]["per_t"][str(t)]["cos_mean"] for t in ts], "o" + ls, ms=2.5, color=c, label=label)
    ax.axhline(0.0, color=BLACK, lw=0.6)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))   # plain labels (no mathtext)
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("diffusion time t")
    ax.set_ylabel("mean cos(drift, −∇E_t) over x ~ p_t")
    ax.set_ylim(-0.3, 1.08)
    ax.set_title("(b) is the drift the descent direction?", fontsize=7)
    ax.legend(frameon=False, fontsize=5.5, loc="lower left")
    ax = axes[2]
    k = np.arange(1, n_steps + 1)
    win = 10
    kern = np.ones(win) / win
    for m, kind, c, ls, label in ((m_vp, "sde", BLUE, "-", "VP reverse SDE"), (m_vp, "pf", VERMILLION, "-", "VP PF-ODE"),
                                  (m_ve, "sde", SKY, "-", "VE reverse SDE"),
                                  (m_ve, "pf", GREEN, "--", "VE PF-ODE (control)")):
        ax.plot(k[win - 1:], np.convolve(m[kind]["per_step"], kern, mode="valid"), ls, color=c, lw=1,
                label=f"{label}: {m[kind]['increase_share']:.2f}")
    ax.axhline(INC_TOL, color=ORANGE, ls=":", lw=0.8, label=f"threshold {INC_TOL}")
    ax.set_xlabel(f"sampler step (t from 1 to {T_EPS}, {n_steps} steps)")
    ax.set_ylabel("share of samples with Eₜ(xₖ₊₁) > Eₜ(xₖ), t = tₖ")
    ax.set_ylim(-0.03, 1.0)
    ax.set_title("(c) steps that raise the current objective\n(running mean of 10 steps; legend: overall share)",
                 fontsize=7)
    ax.legend(frameon=False, fontsize=5, loc="upper right")
    ctx.savefig(fig, "reverse_diffusion_is_gradient_descent")

    def summary(m):
        return {k: v for k, v in m.items() if k not in ("per_step",)}

    numbers = {
        "claim_kind": "theorem-check",
        "seeds": seeds,
        "n_points_per_t": n_pts,
        "n_trajectories": n_traj,
        "n_steps": n_steps,
        "times": list(TIMES),
        "vp_sde": summary(main),
        "vp_pf_ode": summary(m_vp["pf"]),
        "ve_sde": summary(m_ve["sde"]),
        "descent_share": main["descent_share"], "descent_share_se": main["descent_share_se"],
        "increase_share": main["increase_share"], "increase_share_se": main["increase_share_se"],
        "cos_min": main["cos_min"], "f_ratio_max": main["f_ratio_max"],
        "pf_ode_descent_share": m_vp["pf"]["descent_share"], "pf_ode_descent_share_se": m_vp["pf"]["descent_share_se"],
        "pf_ode_increase_share": m_vp["pf"]["increase_share"],
        "pf_ode_increase_share_se": m_vp["pf"]["increase_share_se"],
        "energy_minima_per_t": minima,
        "control": f"VE schedule (σ from {VE['sigma_min']} to {VE['sigma_max']}, f = 0), probability-flow ODE",
        "control_cos_min": ctrl["cos_min"], "control_f_ratio_max": ctrl["f_ratio_max"],
        "control_descent_share": ctrl["descent_share"], "control_descent_share_se": ctrl["descent_share_se"],
        "control_increase_share": ctrl["increase_share"], "control_increase_share_se": ctrl["increase_share_se"],
        "control_verdict": control_verdict,
    }
    vp_pf = m_vp["pf"]
    return Result(
        verdict=verdict,
        numbers=numbers,
        threshold=(f"holds if the drift is parallel to −∇E_t (least mean cosine over t ≥ {COS_EXACT}, ‖f-term‖/‖score "
                   f"term‖ ≤ {F_TOL}) and fewer than {INC_TOL} of the steps raise E_t (mean + 2 SE); fails if the "
                   f"drift decreases E_t at fewer than {DESCENT_MIN} of the points (mean + 2 SE); holds-with-"
                   "correction if it is a descent direction at more (mean − 2 SE) but not gradient descent; "
                   "inconclusive otherwise or unless the VE PF-ODE control reads holds"),
        explanation=(
            f"Exact score of the two-cluster mixture, {N_SEEDS} seeds. The book's reverse SDE (VP): its drift "
            f"decreases E_t = −log p_t at {main['descent_share']:.3f} ± {main['descent_share_se']:.3f} of the "
            f"points x ~ p_t (pooled over t), but is not parallel to −∇E_t (least mean cosine "
            f"{main['cos_min']:.3f}; the extra term ½β(t)x is up to {main['f_ratio_max']:.2f} of the score term), "
            f"and with its noise {main['increase_share']:.3f} ± {main['increase_share_se']:.3f} of the "
            f"{n_steps} steps raise the current E_t — as in Langevin dynamics, not gradient descent. The "
            f"deterministic VP PF-ODE is a descent direction at only {vp_pf['descent_share']:.3f} of the points "
            f"(at t ≳ 0.3 its f-term cancels the score term: ‖f‖/‖score‖ up to {vp_pf['f_ratio_max']:.2f}, mean "
            f"cosine {vp_pf['cos_min']:.3f}) and raises E_t in {vp_pf['increase_share']:.3f} of its steps. The "
            "objective itself moves: E_t has "
            f"{minima[str(TIMES[-1])]} minimum at t = {TIMES[-1]} and {minima[str(TIMES[0])]} at t = {TIMES[0]}. "
            f"Control, VE PF-ODE (f = 0): cosine {ctrl['cos_min']:.4f}, steps raising E_t "
            f"{ctrl['increase_share']:.3f} — exactly gradient descent (flow) on the moving E_t, verdict "
            f"'{control_verdict}'; the VE reverse SDE still raises E_t in {m_ve['sde']['increase_share']:.3f} of "
            "its steps (noise)."
        ),
        corrected=(
            "Reverse diffusion is a noisy, time-dependent descent, not gradient descent on one energy: the "
            "reverse-SDE step is g(t)²·(−∇E_t)|dt| plus the forward-drift term −f(t)x|dt| (= +½β(t)x|dt| for VP) "
            "plus noise g(t)√|dt| ξ, on an objective E_t = −log p_t that changes shape as t decreases — annealed "
            "Langevin dynamics with an extra linear drift. Its mean drift decreases E_t at most points, but about "
            "half its steps raise E_t. Only the noise-free probability-flow ODE of a VE schedule (f = 0) is an "
            "exact gradient flow on E_t (rate ½g(t)²); under VP the PF-ODE's f-term cancels most of the score "
            "term at large t."
        ),
    )
