"""ch03.landscape_slices — 1-D/2-D slices around a trained network: random vs Hessian directions,
and the training trajectory drawn in the coordinates of the surface.

An MLP (64→32→10, tanh, 2,410 parameters) is trained by full-batch GD on scikit-learn's digits
(cross-entropy), keeping its parameter trajectory. Around the final weights we slice the loss
along (a) random filter-normalised directions (Li et al. 2018; biases fixed), (b) the top-2
Hessian eigenvectors (thick-restart Lanczos), and (c) the top-2 PCA directions of the trajectory,
with the trajectory projected (least squares) into the same plane.

Measured (3 seeds: init and random directions from ``ctx.seed + i``; mean ± SE by
:func:`terrainlab.atlas.stats.mean_se`): the curvature ratio λ_max / (mean curvature d·Hd/d·d along two
random filter-normalised directions d), the share of the path's variance in its top-2 PCA plane, and the
largest gap between the surface read at the projected path and the true loss along the path (relative
to the loss drop). The figures show seed 0.

Claim kind: empirical (a trained network's Hessian spectrum could have been isotropic).

Control: softmax regression on whitened digits at a small random init (3 seeds) — its Hessian is close
to (I/10 − 11ᵀ/100) ⊗ I, nearly isotropic, so random slices *must* see its curvature: the same ratio has
to come out below the threshold there. If it does not, the ratio cannot tell an isotropic terrain from a
sharp valley and the verdict is "inconclusive". (The random-init MLP is reported beside it but is not a
control: random-direction curvature is already a tiny share of λ_max, even ≤ 0, before training.)

Verdict rule (:func:`decide_landscape`), each number against its threshold with mean ± 2 SE
(:func:`terrainlab.atlas.stats.side_of`): fails if the PCA plane holds < 80 % of the path or the gap is
> 10 % of the loss drop; holds if the ratio is < 3, holds-with-correction if > 3 (random slices understate
the curvature); inconclusive when a threshold lies inside mean ± 2 SE or the control's ratio is not < 3.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from terrainlab.atlas import Context, Result, experiment
from terrainlab.atlas.chapters._digits import centred_digits, default_init_, one_thread
from terrainlab.atlas.stats import mean_se, side_of
from terrainlab.curvature import HessianOperator
from terrainlab.landscape import (
    hessian_directions,
    line,
    pca_directions,
    plane,
    plot_plane,
    project,
    random_direction,
)


def _ce(m, b):
    return torch.nn.functional.cross_entropy(m(b[0]), b[1])


SEEDS = 3
RATIO_MAX, VAR_MIN, GAP_MAX = 3.0, 0.8, 0.1


def decide_landscape(curvature_ratio: float, pca_variance: float, trajectory_gap: float,
                     ratio_max: float = RATIO_MAX, var_min: float = VAR_MIN, gap_max: float = GAP_MAX, *,
                     ratio_se: float = 0.0, pca_se: float = 0.0, gap_se: float = 0.0,
                     control_ratio: float | None = None, control_ratio_se: float = 0.0) -> str:
    """holds: random slices see curvature within ``ratio_max`` of λ_max, the PCA plane captures
    ≥ ``var_min`` of the path and the surface matches the loss along the path (relative gap ≤
    ``gap_max``); holds-with-correction: the path is well captured by its PCA plane but random
    slices understate the curvature by more than ``ratio_max``; fails: even the PCA plane misses
    the path. Every number is a seed mean with its SE (0 for one run): inconclusive when a
    threshold lies inside mean ± 2 SE, or when the control's ratio (``control_ratio``, a nearly
    isotropic terrain) is not below ``ratio_max``."""
    for name, v in (("ratio_se", ratio_se), ("pca_se", pca_se), ("gap_se", gap_se),
                    ("control_ratio_se", control_ratio_se)):
        if not v >= 0 and not np.isnan(v):
            raise ValueError(f"{name} must be a standard error ≥ 0, got {v!r}")
    if control_ratio is not None and side_of(control_ratio, control_ratio_se, ratio_max) != "below":
        return "inconclusive"
    var_side = side_of(pca_variance, pca_se, var_min)
    gap_side = side_of(trajectory_gap, gap_se, gap_max)
    if var_side == "below" or gap_side == "above":
        return "fails"
    if var_side == "inside" or gap_side == "inside":
        return "inconclusive"
    ratio_side = side_of(curvature_ratio, ratio_se, ratio_max)
    if ratio_side == "inside":
        return "inconclusive"
    return "holds" if ratio_side == "below" else "holds-with-correction"


def _whitened_digits(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Centred digits rotated and scaled so that xᵀx/n = I (components with σ < 1e-3·σ_max dropped)."""
    x, y = centred_digits(n)
    U, S, _ = torch.linalg.svd(x.double(), full_matrices=False)
    keep = S > 1e-3 * S[0]
    return (U[:, keep] * n**0.5).float(), y


def _control_ratio(x: torch.Tensor, y: torch.Tensor, g: torch.Generator) -> dict:
    """λ_max / random-direction curvature of softmax regression at a small init (weights ×0.01):
    p ≈ uniform, so the Hessian ≈ (I/10 − 11ᵀ/100) ⊗ I on whitened inputs — nearly isotropic."""
    net = torch.nn.Linear(x.shape[1], 10)
    default_init_([net], g)
    with torch.no_grad():
        for q in net.parameters():
            q.mul_(0.01)
    H = HessianOperator(net, _ce, [(x, y)], dtype=torch.float64)
    _, eig = hessian_directions(H, k=1, tol=1e-4, generator=g)
    kap = [_curv(H, random_direction(net, generator=g)) for _ in range(2)]
    lam = float(eig.eigenvalues[0])
    return {"lambda_max": lam, "random_curvature": kap, "ratio": _ratio(lam, kap)}


def _curv(H, d) -> float:
    d = d.double()
    return float(d @ H.matvec(d) / (d @ d))


def _ratio(lam: float, kappa: list[float]) -> float:
    """λ_max / mean random-direction curvature; inf when that curvature is not positive (a random
    slice then sees no bowl at all, and the seed mean's SE becomes NaN: nothing is decided)."""
    k = float(np.mean(kappa))
    return lam / k if k > 0 else float("inf")


def _train(x, y, steps: int, g: torch.Generator, at_init: bool = True):
    """The MLP from ``g``'s default init, trained by full-batch GD (lr 0.5); the path every 5 steps
    and (``at_init``, else None) the random-direction curvature over λ_max at the init (may be ≤ 0:
    the init is not a minimum)."""
    from terrainlab.params import ParamSpec

    net = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.Tanh(), torch.nn.Linear(32, 10))
    default_init_([net[0], net[2]], g)
    data = [(x, y)]
    init_share = None
    if at_init:
        H0 = HessianOperator(net, _ce, data, dtype=torch.float64)
        _, eig0 = hessian_directions(H0, k=1, tol=1e-4, generator=g)
        kap0 = [_curv(H0, random_direction(net, generator=g)) for _ in range(2)]
        init_share = float(np.mean(kap0)) / float(eig0.eigenvalues[0])  # the inverse ratio: finite at init
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    spec = ParamSpec.from_module(net)
    traj = [spec.vector(net)]
    for t in range(steps):
        opt.zero_grad()
        _ce(net, data[0]).backward()
        opt.step()
        if (t + 1) % 5 == 0:
            traj.append(spec.vector(net))
    return net, spec, torch.stack(traj), init_share


def _path_gap(net, spec, data, traj, pca, coords) -> float:
    """max |loss on the PCA plane at the projected path − true loss along the path| / loss drop."""
    theta = traj[-1]
    on_plane = pca.origin + coords.float() @ pca.directions
    true_path, plane_path = [], []
    with torch.no_grad():
        for th, tp in zip(traj, on_plane):
            spec.assign(net, th)
            true_path.append(float(_ce(net, data[0])))
            spec.assign(net, tp)
            plane_path.append(float(_ce(net, data[0])))
        spec.assign(net, theta)
    true_path, plane_path = np.array(true_path), np.array(plane_path)
    return float(np.max(np.abs(plane_path - true_path)) / max(true_path[0] - true_path[-1], 1e-12))


@experiment(
    id="ch03.landscape_slices",
    chapter=3,
    title="Slices through a trained network: random vs Hessian directions, with the path",
    claim="A 2-D random slice of the loss around the trained weights shows the shape of the "
    "terrain (how sharp the minimum is) and the valley training walked down.",
)
def landscape_slices(ctx: Context) -> Result:
    with one_thread():
        return _landscape_slices(ctx)


def _landscape_slices(ctx: Context) -> Result:
    from terrainlab.plotting import BLUE, VERMILLION, figure, style

    n = 300 if ctx.quick else 1000
    steps = 150 if ctx.quick else 400
    grid = 15 if ctx.quick else 31
    x, yt = centred_digits(n)
    data = [(x, yt)]
    per_seed = []
    for i in range(SEEDS):  # seed i: init, Lanczos start and random directions from ctx.seed + i
        net_i, spec_i, traj_i, init_share = _train(x, yt, steps, ctx.generator(100 + i), at_init=not ctx.quick)
        H_i = HessianOperator(net_i, _ce, data, dtype=torch.float64)
        hd_i, eig_i = hessian_directions(H_i, k=2 if i == 0 else 1, tol=1e-4, generator=ctx.generator(200 + i))
        g_i = ctx.generator(300 + i)
        r1_i, r2_i = random_direction(net_i, generator=g_i), random_direction(net_i, generator=g_i)
        kap_i = [_curv(H_i, r1_i), _curv(H_i, r2_i)]
        pca_i = pca_directions(traj_i, k=2)
        coords_i = project(traj_i, pca_i.origin, pca_i.directions)
        per_seed.append({
            "lambda_max": float(eig_i.eigenvalues[0]), "random_curvature": kap_i,
            "curvature_ratio": _ratio(float(eig_i.eigenvalues[0]), kap_i),
            "pca_variance": float(pca_i.explained_variance_ratio.sum()),
            "gap": _path_gap(net_i, spec_i, data, traj_i, pca_i, coords_i),
            "init_random_curvature_over_lambda_max": init_share,
        })
        if i == 0:  # seed 0 is drawn
            net, traj, H, hd, eig, r1, r2 = net_i, traj_i, H_i, hd_i, eig_i, r1_i, r2_i
            pca, coords = pca_i, coords_i
    ratio_m, ratio_se = mean_se([s["curvature_ratio"] for s in per_seed])
    var_m, var_se = mean_se([s["pca_variance"] for s in per_seed])
    gap_m, gap_se = mean_se([s["gap"] for s in per_seed])
    init_m, init_se = (math.nan, math.nan) if ctx.quick else mean_se(
        [s["init_random_curvature_over_lambda_max"] for s in per_seed])  # full runs only (time budget)
    # the control: a nearly isotropic terrain (softmax regression, whitened digits, small init)
    xw, yw = _whitened_digits(n)
    control = [_control_ratio(xw, yw, ctx.generator(400 + i)) for i in range(SEEDS)]
    c_m, c_se = mean_se([c["ratio"] for c in control])
    control_side = side_of(c_m, c_se, RATIO_MAX)

    theta = traj[-1]
    final_loss = float(_ce(net, data[0]).detach())
    lam_max = float(eig.eigenvalues[0])
    kappa_random = per_seed[0]["random_curvature"]
    curvature_ratio = per_seed[0]["curvature_ratio"]

    # 1-D slices in Euclidean units: same step length along each unit direction
    radius = float(r1.norm())
    ts = torch.linspace(-1, 1, 41 if ctx.quick else 81) * radius
    u_rand = (r1 / r1.norm()).float()
    u_hess = hd[0].float()
    l_rand = line(net, _ce, data, u_rand, ts).losses
    l_hess = line(net, _ce, data, u_hess, ts).losses

    al = torch.linspace(-1, 1, grid)
    p_rand = plane(net, _ce, data, r1, r2, al, al)
    p_hess = plane(net, _ce, data, (hd[0] * radius).float(), (hd[1] * radius).float(), al, al)
    lim = float(coords.abs().max()) * 1.15
    ag = torch.linspace(-lim, lim, grid)
    p_pca = plane(net, _ce, data, pca.directions[0], pca.directions[1], ag, ag, origin=pca.origin)
    # faithfulness: surface value at the projected coordinates vs the true loss along the path
    along = line(net, _ce, data, torch.zeros_like(theta), torch.zeros(1)).losses  # origin loss
    gap = per_seed[0]["gap"]
    pca_var = per_seed[0]["pca_variance"]

    with style():
        fig, ax = figure("double", height=2.5, ncols=3, gridspec_kw={"width_ratios": [1.2, 1.2, 0.9]})
        ax[0].plot(ts.numpy(), l_rand.numpy(), color=BLUE, label="random (filter-norm.) direction")
        ax[0].plot(ts.numpy(), l_hess.numpy(), color=VERMILLION, label="top Hessian eigenvector")
        ax[0].set_xlabel("distance from trained θ (Euclidean)")
        ax[0].set_ylabel("training loss")
        ax[0].set_title(f"1-D slices: λ_max {lam_max:.2f} vs random-direction\ncurvature "
                        f"{np.mean(kappa_random):.4f} (seed 0)", fontsize=7)
        ax[0].legend(frameon=False, fontsize=6)
        plot_plane(p_pca, ax=ax[1], trajectory=coords, title=f"PCA plane of the GD path "
                   f"({100 * pca_var:.1f}% of its variance)", labels=("PC 1", "PC 2"))
        groups = (("trained\nMLP", [q["curvature_ratio"] for q in per_seed], BLUE),
                  ("CONTROL\nisotropic", [c["ratio"] for c in control], VERMILLION))
        for k, (_, vals, col) in enumerate(groups):
            m_k, se_k = mean_se(vals)
            ax[2].plot([k] * len(vals), vals, "o", color=col, ms=3, alpha=0.7)
            ax[2].errorbar([k + 0.15], [m_k], yerr=[2 * se_k], fmt="_", color="k", ms=8, capsize=2)
        ax[2].axhline(RATIO_MAX, color="0.3", ls=":", lw=0.8, label=f"threshold {RATIO_MAX:g}")
        ax[2].set_yscale("log")
        ax[2].set_xticks(range(len(groups)), [g[0] for g in groups], fontsize=6)
        ax[2].set_xlim(-0.5, len(groups) - 0.5)
        ax[2].set_ylabel("λ_max / random-direction curvature")
        ax[2].set_title(f"{SEEDS} seeds, mean ± 2 SE", fontsize=7)
        ax[2].legend(frameon=False, fontsize=6, loc="center")
    ctx.savefig(fig, "slices_1d_and_pca")
    with style():
        fig2, ax2 = figure("double", height=2.6, ncols=2)
        lo = float(min(p_rand.losses.min(), p_hess.losses.min()))
        hi = float(max(p_rand.losses.max(), p_hess.losses.max()))
        for a, res, title in ((ax2[0], p_rand, "random filter-normalised plane"),
                              (ax2[1], p_hess, "top-2 Hessian eigenvector plane (same radius)")):
            plot_plane(res, ax=a, title=title, labels=("α", "β"), zlim=(lo, hi))
    ctx.savefig(fig2, "random_vs_hessian_planes")

    verdict = decide_landscape(ratio_m, var_m, gap_m, ratio_se=ratio_se, pca_se=var_se, gap_se=gap_se,
                               control_ratio=c_m, control_ratio_se=c_se)
    return Result(
        verdict=verdict,
        numbers={
            "claim_kind": "empirical",
            "seeds": [ctx.seed + i for i in range(SEEDS)],
            "curvature_ratio_mean": ratio_m,
            "curvature_ratio_se": ratio_se,
            "pca_explained_variance_mean": var_m,
            "pca_explained_variance_se": var_se,
            "trajectory_surface_gap_mean": gap_m,
            "trajectory_surface_gap_se": gap_se,
            "per_seed": per_seed,
            "init_random_curvature_over_lambda_max_mean": init_m,
            "init_random_curvature_over_lambda_max_se": init_se,
            "control_model": "softmax regression on whitened digits, init ×0.01 (Hessian ≈ (I/10 − 11ᵀ/100) ⊗ I)",
            "control_curvature_ratio_mean": c_m,
            "control_curvature_ratio_se": c_se,
            "control_curvature_ratio_by_seed": [c["ratio"] for c in control],
            "control_lambda_max": [c["lambda_max"] for c in control],
            "control_side_of_threshold": control_side,
            "control_random_slices_see_curvature": control_side == "below",
            "n_params": H.size,
            "final_loss": final_loss,
            "origin_loss": float(along[0]),
            "lambda_max": lam_max,
            "lambda_2": float(eig.eigenvalues[1]),
            "eig_residuals": eig.residuals,
            "random_direction_curvature": kappa_random,
            "curvature_ratio": curvature_ratio,
            "pca_explained_variance": pca_var,
            "trajectory_surface_gap": gap,
            "plane_random_range": [float(p_rand.losses.min()), float(p_rand.losses.max())],
            "plane_hessian_range": [float(p_hess.losses.min()), float(p_hess.losses.max())],
            "plane_seconds": [p_rand.seconds, p_hess.seconds, p_pca.seconds],
        },
        threshold="random-slice curvature within 3× of λ_max; PCA plane ≥ 80 % of path variance; "
        "surface vs true loss along the path within 10 % of the loss drop (each a mean over 3 seeds; "
        "inconclusive when a threshold lies inside mean ± 2 SE); the control's ratio must be < 3",
        explanation=(
            f"Around the trained MLP (seed 0: loss {final_loss:.3f}), the loss curvature along random "
            f"filter-normalised directions is {np.mean(kappa_random):.3g}, {curvature_ratio:.0f}× "
            f"smaller than λ_max = {lam_max:.3g} along the top Hessian eigenvector (over {SEEDS} seeds the "
            f"ratio is {ratio_m:.0f} ± {ratio_se:.0f}): at the same "
            f"Euclidean radius the random plane looks like a wide flat bowl while the Hessian plane "
            f"is a steep valley. Random slices therefore say little about sharpness. The GD path "
            f"is nearly 2-D: its top-2 PCA directions carry {100 * pca_var:.1f}% of its variance, "
            f"and the surface read at the path's projected coordinates differs from the true loss "
            f"along the path by at most {100 * gap:.1f}% of the loss drop (seed means "
            f"{100 * var_m:.1f} ± {100 * var_se:.1f}% and {100 * gap_m:.1f} ± {100 * gap_se:.1f}%). "
            f"Control: on a nearly isotropic terrain (softmax regression on whitened digits at a small "
            f"init) the same ratio is {c_m:.2f} ± {c_se:.2f}, {control_side} the threshold {RATIO_MAX:g}: "
            f"there random slices do see the curvature, so the trained network's ratio is a property of its "
            f"terrain, not of the measurement. " + (
            "" if ctx.quick else
            f"At its random init the same MLP's random-direction curvature is already only {init_m:.4f} ± "
            f"{init_se:.4f} of λ_max (the inverse ratio; it can be ≤ 0 there): the anisotropy is not made by "
            "training, so the random-init model could not serve as the control.")
        ),
        corrected=(
            "Random (filter-normalised) slices show a much flatter terrain than the one GD feels: "
            "curvature along random directions is orders of magnitude below λ_max. Use Hessian "
            "eigenvector planes to see sharpness, and the PCA plane of the trajectory (with the path "
            "projected in the same coordinates) to see the valley training walked down."
        )
        if verdict in ("holds-with-correction", "fails")
        else None,
    )
