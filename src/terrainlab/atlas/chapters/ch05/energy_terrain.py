"""ch05.energy_terrain — the book's one runnable script (its ch05 appendix), reproduced with
terrainlab's engine and audited.

Target p* = (0.7, 0.2, 0.1), E(p) = KL(p*‖p), projected Euler p ← proj_Δ(p − η∇E(p)) through core
``rollout`` with ``Simplex("euclid")``. Four panels: (a) the terrain with three trajectories at
η = 0.8·η_max(p*); (b) closed-form extreme eigenvalues of ∇²E = diag(p*/p²) against a central-
difference Hessian along the path from uniform; (c) the book's η_max(p) = 2 min p²/max p over the
simplex (full colour range: its maximum is 2/3 at the uniform point, the book's colour bar stops at
0.25); (d) the stability threshold measured by a step-size scan for 30 random targets against the
exact local threshold 2/θ_max (local) and against η_max (global, from uniform).

The random targets come in 3 seeds (ctx.seed + 42 + i, 10 targets each; 7 in quick mode); the local
law's R² and median relative error are computed per seed and reported as mean ± SE (pooled values kept
for the figure).

Control (the same local-law measurement where it must fail): the book's η_max(p*) = 2 min p²/max p used
as the predictor of the measured local threshold in place of 2/θ_max — it is a sufficient bound, ~9×
too small at p*, so its R² must be below ``R2_MIN`` or its median error above ``MEDIAN_ERR_MAX``.

Verdict rule (``decide_energy_terrain``): inconclusive when the control does not fail, or when ``R2_MIN``
or ``MEDIAN_ERR_MAX`` lies inside the per-seed mean ± 2 SE; fails if the Hessian is off (> ``HESS_TOL``)
or the local law misses (R² below / median error above, whole interval); holds-with-correction if only
the global claim (threshold from uniform ≥ η_max for every target) breaks; holds otherwise. Empirical.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from terrainlab.atlas import Context, Result, experiment
from terrainlab.atlas.stats import mean_se, side_of
from terrainlab.belief import (
    energy,
    energy_field,
    eta_crit_tangent,
    eta_max_book,
    grad_energy,
    hess_energy,
    kappa_book,
    sample_dirichlet,
    threshold_scan,
)
from terrainlab.belief.plotting import (
    simplex_field_map,
    simplex_frame,
    simplex_path,
    simplex_points,
)
from terrainlab.core import Simplex, rollout
from terrainlab.plotting import BLUE, GREEN, ORANGE, VERMILLION, figure, style

PSTAR = (0.7, 0.2, 0.1)
R2_MIN = 0.99
MEDIAN_ERR_MAX = 0.05  # the η grid spacing is 7.9 %, so a bracketing error of a few % is resolution
HESS_TOL = 1e-4
BOOK = {"R2": 0.9978, "median_err": 0.0216, "kappa": 7.0}


def _law_fails(r2: float, median_err: float) -> bool:
    return r2 < R2_MIN or median_err > MEDIAN_ERR_MAX


def decide_energy_terrain(hess_rel_err: float, r2: float, median_err: float, frac_global_ge: float, *,
                          r2_se: float = 0.0, median_err_se: float = 0.0,
                          control: tuple = (-math.inf, math.inf)) -> str:
    """inconclusive when the control (R², median error) of the wrong predictor η_max does not fail the
    local law, or when ``R2_MIN`` lies inside r2 ± 2·r2_se or ``MEDIAN_ERR_MAX`` inside median_err ±
    2·median_err_se; fails if the closed-form Hessian misses finite differences (> ``HESS_TOL``) or the
    measured local threshold misses 2/θ_max (R² below ``R2_MIN`` or median relative error above
    ``MEDIAN_ERR_MAX``); holds-with-correction if only the global claim (threshold from uniform ≥ η_max
    for every target) breaks; holds otherwise.

    >>> decide_energy_terrain(1e-6, 0.998, 0.02, 1.0, r2_se=0.001, median_err_se=0.003, control=(-50.0, 0.9))
    'holds'
    >>> decide_energy_terrain(1e-6, 0.998, 0.02, 1.0, control=(0.999, 0.01))
    'inconclusive'
    """
    for name, v in (("hess_rel_err", hess_rel_err), ("r2", r2), ("median_err", median_err),
                    ("frac_global_ge", frac_global_ge), ("r2_se", r2_se), ("median_err_se", median_err_se)):
        if not isinstance(v, (int, float)) or isinstance(v, bool) or math.isnan(v):
            raise ValueError(f"{name} must be a number, got {v!r}")
    if not isinstance(control, tuple) or len(control) != 2:
        raise ValueError(f"control must be a tuple (r2, median_err) of the wrong predictor, got {control!r}")
    if not _law_fails(*control):
        return "inconclusive"
    if hess_rel_err > HESS_TOL:
        return "fails"
    r2_side, med_side = side_of(r2, r2_se, R2_MIN), side_of(median_err, median_err_se, MEDIAN_ERR_MAX)
    if r2_side == "below" or med_side == "above":
        return "fails"
    if r2_side == "inside" or med_side == "inside":
        return "inconclusive"
    return "holds" if frac_global_ge >= 1.0 else "holds-with-correction"


def _law(meas: torch.Tensor, pred: torch.Tensor) -> tuple[float, float]:
    """R² of log10(measured) about the line y = x in log10(predicted), and the median relative error."""
    lm, lp = torch.log10(meas), torch.log10(pred)
    r2 = float(1 - ((lm - lp) ** 2).sum() / ((lm - lm.mean()) ** 2).sum())
    return r2, float(((meas - pred).abs() / pred).median())


def _fd_hessian(f, p, h=1e-6):
    K = p.shape[-1]
    H = torch.zeros(K, K, dtype=p.dtype)
    eye = torch.eye(K, dtype=p.dtype)
    for i in range(K):
        for j in range(K):
            ei, ej = h * eye[i], h * eye[j]
            H[i, j] = (f(p + ei + ej) - f(p + ei - ej) - f(p - ei + ej) + f(p - ei - ej)) / (4 * h * h)
    return H


@experiment(
    id="ch05.energy_terrain",
    chapter=5,
    title="The energy terrain of a belief: the book's four-panel script, reproduced",
    claim="On E = KL(p*‖p) the Hessian is diag(p*/p²), the numerical local stability threshold of "
          "projected Euler matches 2/θ_max (R² = 0.9978, median error 2.16 %), and from the uniform "
          "prior the global threshold is always ≥ η_max = 2 min p²/max p.",
)
def energy_terrain(ctx: Context) -> Result:
    dt = torch.float64
    ps = torch.tensor(PSTAR, dtype=dt)
    eta_max = float(eta_max_book(ps))
    eta_crit = float(eta_crit_tangent(ps))
    kappa = float(kappa_book(ps))
    eta = 0.8 * eta_max

    # (a) three trajectories, 120 steps, stop at E < 1e-6
    starts = torch.tensor([[1 / 3, 1 / 3, 1 / 3], [0.15, 0.60, 0.25], [0.45, 0.25, 0.30]], dtype=dt)
    tr = rollout(energy_field(ps), starts, eta=eta, steps=120, geometry=Simplex("euclid"))
    paths = tr.states  # (121, 3, 3)
    Ep = energy(paths, ps)
    steps_to_tol = [int(torch.nonzero(Ep[:, j] < 1e-6)[0, 0]) if bool((Ep[:, j] < 1e-6).any()) else None
                    for j in range(3)]

    # (b) spectrum along the path from uniform (80 steps): closed form vs central differences
    path_b = paths[:81, 0]
    lam_closed = torch.stack([torch.linalg.eigvalsh(hess_energy(p, ps)) for p in path_b])
    # the differences step off the simplex (x ± h·e_i), so they use E's ambient formula
    # Σ p* log(p*/x) on the positive orthant, whose Hessian diag(p*/x²) is what hess_energy returns
    f = lambda x: float((torch.xlogy(ps, ps) - torch.xlogy(ps, x)).sum(-1))  # noqa: E731
    idx = list(range(0, 81, 4 if not ctx.quick else 10))
    lam_fd = torch.stack([torch.linalg.eigvalsh(_fd_hessian(f, path_b[i])) for i in idx])
    hess_rel_err = float(((lam_fd - lam_closed[idx]).abs() / lam_closed[idx].abs()).max())

    # (d) threshold scans
    per_seed = 7 if ctx.quick else 10
    seeds = [ctx.seed + 42 + i for i in range(3)]
    n_t = 3 * per_seed
    tgt = 0.9 * torch.cat([sample_dirichlet(per_seed, 3, generator=ctx.generator(42 + i), dtype=dt)
                           for i in range(3)]) + 0.05
    g = ctx.generator(45)
    tgt = tgt / tgt.sum(-1, keepdim=True)
    etas = torch.logspace(-4, 0.6, 140, dtype=dt)
    loc = threshold_scan(tgt, etas, mode="local", steps=300 if ctx.quick else 500, n_starts=8, generator=g)
    glob = threshold_scan(tgt, etas, mode="global", steps=400)
    pred = eta_crit_tangent(tgt)
    # the threshold lies between the largest stable η and the next grid value: take the geometric
    # midpoint of the bracket (the book's script uses the lower end, which is biased low by ~4 %)
    meas = torch.sqrt(loc.eta_largest_stable * loc.eta_first_fail)
    med_book_style = float(((loc.eta_largest_stable - pred).abs() / pred).median())
    lm, lp = torch.log10(meas), torch.log10(pred)
    r2, med = _law(meas, pred)  # pooled over all targets (figure)
    slope = float(np.polyfit(lp.numpy(), lm.numpy(), 1)[0])
    laws = [_law(meas[i * per_seed:(i + 1) * per_seed], pred[i * per_seed:(i + 1) * per_seed]) for i in range(3)]
    r2_mean, r2_se = mean_se([a for a, _ in laws])
    med_mean, med_se = mean_se([b for _, b in laws])
    emax_t = eta_max_book(tgt)
    frac_ge = float((glob.eta_largest_stable >= emax_t).to(dt).mean())
    glob_ratio_min = float((glob.eta_largest_stable / emax_t).min())
    # control: the book's η_max as the predictor of the same measured local threshold
    control_r2, control_med = _law(meas, emax_t)

    verdict = decide_energy_terrain(hess_rel_err, r2_mean, med_mean, frac_ge, r2_se=r2_se, median_err_se=med_se,
                                    control=(control_r2, control_med))
    control_verdict = "fails" if _law_fails(control_r2, control_med) else "holds"

    with style():
        fig, axes = figure("double", height=6.0, nrows=2, ncols=2, layout="constrained")
        ax = axes[0, 0]
        cs = simplex_field_map(ax, lambda P: energy(P, ps), log=True, n=90, levels=18, vmin=1e-4, vmax=3.0,
                               cmap="cividis")
        fig.colorbar(cs, ax=ax, shrink=0.8, fraction=0.05, pad=0.0, label="E = KL(p*‖p)", format="%.0e")
        simplex_frame(ax)
        for j, c in enumerate((ORANGE, GREEN, VERMILLION)):
            n_j = steps_to_tol[j] if steps_to_tol[j] is not None else 120
            start = "uniform" if j == 0 else ", ".join(f"{v:.2g}" for v in starts[j].tolist())
            simplex_path(ax, paths[: n_j + 1, j], color=c, lw=1.2, marker="o", ms=1.2,
                         label=f"{start}: {n_j} steps")
        simplex_points(ax, ps, color="white", edgecolor="black", s=30, zorder=5, label="p*")
        ax.legend(frameon=False, fontsize=6, loc="upper left", bbox_to_anchor=(-0.02, 1.0), title="start",
                  title_fontsize=6)
        ax.set_title(f"(a) E = KL(p*‖p); projected Euler, η = 0.8·η_max = {eta:.4f}")
        ax = axes[0, 1]
        k = np.arange(81)
        ax.semilogy(k, lam_closed[:, -1].numpy(), color=VERMILLION, label="λ_max closed form")
        ax.semilogy(k, lam_closed[:, 0].numpy(), color=BLUE, label="λ_min closed form")
        ax.semilogy(idx, lam_fd[:, -1].numpy(), "o", mfc="none", color=VERMILLION, ms=4, label="finite difference")
        ax.semilogy(idx, lam_fd[:, 0].numpy(), "o", mfc="none", color=BLUE, ms=4)
        ax.set_xlabel("step along the path from uniform")
        ax.set_ylabel("eigenvalue of ∇²E = diag(p*/p²)")
        ax.set_title(f"(b) Hessian along the path; κ(p*) = {kappa:.1f}, FD error {hess_rel_err:.0e}")
        ax.legend(frameon=False)
        ax = axes[1, 0]
        cs = simplex_field_map(ax, eta_max_book, log=True, n=90, levels=18, vmin=1e-4, vmax=2 / 3, cmap="magma")
        fig.colorbar(cs, ax=ax, shrink=0.8, fraction=0.05, pad=0.0, label="η_max(p)", format="%.0e")
        simplex_frame(ax)
        simplex_points(ax, torch.full((3,), 1 / 3, dtype=dt), color=GREEN, s=25, zorder=5,
                       label=f"max {float(eta_max_book(torch.full((3,), 1 / 3, dtype=dt))):.3f} at uniform")
        ax.legend(frameon=False, fontsize=6, loc="upper left", bbox_to_anchor=(-0.06, 1.02))
        ax.set_title("(c) the book's η_max = 2 min p²/max p, full range")
        ax = axes[1, 1]
        lo, hi = float(pred.min()) * 0.7, float(max(pred.max(), glob.eta_largest_stable.max())) * 1.4
        ax.loglog([lo, hi], [lo, hi], color="grey", lw=0.8, ls="--", label="y = x")
        ax.loglog(pred.numpy(), meas.numpy(), "o", color=BLUE, ms=3.5,
                  label=f"local vs 2/θ_max: R² {r2:.4f}, median error {100 * med:.1f} %")
        ax.loglog(emax_t.numpy(), meas.numpy(), "x", color=VERMILLION, ms=3.5,
                  label=f"control: local vs η_max, median error {100 * control_med:.0f} %")
        ax.loglog(emax_t.numpy(), glob.eta_largest_stable.numpy(), "^", color=ORANGE, ms=3.5,
                  label=f"global (from uniform) vs η_max: ratio ≥ {glob_ratio_min:.1f}")
        ax.set_xlabel("predicted threshold")
        ax.set_ylabel("measured threshold η")
        ax.set_title(f"(d) {n_t} random targets ({len(seeds)} seeds), 140 step sizes")
        ax.legend(frameon=False, fontsize=6, loc="lower right")
    ctx.savefig(fig, "energy_terrain")

    return Result(
        verdict=verdict,
        numbers={"claim_kind": "empirical", "seeds": seeds, "local_R2_mean": r2_mean, "local_R2_se": r2_se,
                 "local_median_rel_err_mean": med_mean, "local_median_rel_err_se": med_se,
                 "control_R2_eta_max_predictor": control_r2, "control_median_rel_err_eta_max_predictor": control_med,
                 "control_verdict": control_verdict, "eta_max_pstar": eta_max, "eta_crit_pstar": eta_crit, "two_over_L": 2 * min(PSTAR),
                 "kappa_pstar": kappa, "eta_used": eta, "steps_to_1e-6": steps_to_tol,
                 "hessian_max_rel_err": hess_rel_err, "local_R2": r2, "local_loglog_slope": slope,
                 "local_median_rel_err": med,
                 "local_median_rel_err_lower_end": med_book_style, "book": BOOK, "global_frac_ge_eta_max": frac_ge,
                 "global_min_ratio_to_eta_max": glob_ratio_min, "n_targets": n_t,
                 "eta_max_uniform": 2 / 3, "grad_at_pstar": grad_energy(ps, ps).tolist(),
                 "scan_seconds": loc.seconds + glob.seconds},
        threshold=f"Hessian rel. err ≤ {HESS_TOL:g}; local R² ≥ {R2_MIN} and median error ≤ "
                  f"{100 * MEDIAN_ERR_MAX:.0f} % (per-seed mean ± 2 SE clear of both; 3 seeds); global threshold ≥ "
                  f"η_max for every target; inconclusive unless the control (η_max as predictor) fails the local law",
        explanation=(
            f"The engine reproduces the script: from uniform E < 1e−6 after {steps_to_tol[0]} steps at "
            f"η = {eta:.4f}; the closed-form spectrum of diag(p*/p²) matches central differences to "
            f"{hess_rel_err:.1e}; κ(p*) = {kappa:.0f}. The step-size scan's local threshold follows the exact "
            f"tangent bound 2/θ_max with R² = {r2:.4f} and median error {100 * med:.2f} % (the book reports "
            f"0.9978 and 2.16 %; measured at the bracket midpoint of a grid with 7.9 % spacing; the lower "
            f"bracket end gives {100 * med_book_style:.2f} %), and from the "
            f"uniform prior every target converges beyond η_max (smallest ratio {glob_ratio_min:.1f}). At p* "
            f"the book's η_max = {eta_max:.4f} is {eta_crit / eta_max:.1f}× smaller than the exact local "
            f"threshold {eta_crit:.3f}: sufficient, but very conservative. Panel (c) shows the full range: "
            f"η_max peaks at 2/3 at the uniform point, not in the 0.25 range the book's colour bar suggests. "
            f"Per seed ({len(seeds)} × {per_seed} targets) R² = {r2_mean:.4f} ± {r2_se:.4f} and median error "
            f"{100 * med_mean:.2f} ± {100 * med_se:.2f} %. Control: the same measured thresholds against the "
            f"book's η_max give R² = {control_r2:.1f} and median error {100 * control_med:.0f} %: the scan "
            f"separates the exact law from a merely sufficient bound."
        ),
        corrected=None,
    )
