"""ch10.kmeans_is_not_gd — K-means has many local minima, and Lloyd's algorithm is alternating
minimisation: a gradient step only with a cluster-dependent step size.

The book (§10, K-means) describes Lloyd's iterations as gradient descent "sliding" down the
within-cluster sum of squares W(C) = Σ_i min_k ‖x_i − c_k‖², a non-convex objective, so that different
initialisations reach different local minima (Lloyd 1982; MacQueen 1967).

The algebra (a theorem): where the assignment is fixed, ∂W/∂c_k = 2 n_k (c_k − μ_k) with Hessian 2 n_k I,
so Lloyd's update c_k ← μ_k is the gradient step with η_k = 1/(2 n_k) — one step size per cluster, the
Newton step on the active quadratic piece (Bottou & Bengio, "Convergence properties of the K-means
algorithms", NIPS 1994) — and it is plain gradient descent (one η) only when every cluster has the same
size. With one η, cluster k contracts by |1 − 2ηn_k| per step.

What is measured, on 4 generated Gaussian blobs of unequal sizes (30/60/90/120 points) and spreads, for
``N_SEEDS`` seeds (data and starts from ctx.seed + i):

- 50 Forgy starts (K distinct data points), each run by :func:`terrainlab.classical.kmeans` (the Lloyd map
  through the core rollout): the number of distinct final inertias (two inertias are one minimum when
  they differ by ≤ ``DISTINCT_RTOL`` relative), the share of starts at the best one, the steps, and
  whether W ever increased along any run (it must not: alternating minimisation is monotone);
- the identity: at every start, the autograd gradient step with η_k = 1/(2 n_k) against Lloyd's step
  (max |difference|), and the spread n_max/n_min of the cluster sizes at the best minimum (the ratio of
  the largest to the smallest step Lloyd implicitly takes);
- gradient descent on the same W with one step, η = 1/(n_min + n_max) of the best partition (the optimal
  constant step of that quadratic piece), from the same starts (:func:`terrainlab.classical.wcss_gd`, a
  core rollout of ``gradient_field``): steps to within ``GD_CONV`` of its own end point, and where it ends.

Control: 4 blobs 100 apart with σ = 0.5, one per centroid, seeded by k-means++ (Arthur & Vassilvitskii
2007): every start must reach the same minimum (one distinct inertia). If it does not, the count cannot
tell a multi-minimum landscape from a single-minimum one and the verdict is inconclusive.

Verdict (:func:`decide_kmeans`): inconclusive if the control has more than one minimum or the mean count of
distinct minima ± 2 SE contains ``MINIMA_THRESHOLD``; fails if the count is below it (one minimum) or
Lloyd's step is not the per-cluster gradient step; holds if it is above and all clusters have equal size
(Lloyd *is* GD with η = 1/(2n)); holds-with-correction if it is above and the sizes differ (GD only with
the cluster-dependent step η_k = 1/(2 n_k), i.e. alternating minimisation / a Newton step).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from terrainlab.atlas import Context, Result, experiment
from terrainlab.atlas.chapters._digits import one_thread
from terrainlab.atlas.stats import mean_se, side_of
from terrainlab.classical.kmeans import kmeans, lloyd_step, voronoi_grid, wcss, wcss_gd
from terrainlab.plotting import BLACK, BLUE, GREEN, OKABE_ITO, ORANGE, SKY, VERMILLION, figure

K = 4
CENTERS = ((0.0, 0.0), (4.0, 0.0), (0.0, 5.0), (6.0, 6.0))
SIZES = (30, 60, 90, 120)
SPREADS = (0.6, 0.9, 1.0, 1.2)
CONTROL_CENTERS = ((0.0, 0.0), (100.0, 0.0), (0.0, 100.0), (100.0, 100.0))
CONTROL_SPREAD = 0.5
N_SEEDS = 3
DISTINCT_RTOL = 1e-6  # final inertias within this relative gap are one minimum
WORSE_RTOL = 0.01  # a minimum ≥ 1 % above the best counts as "substantially worse"
MINIMA_THRESHOLD = 1.5  # more than one distinct minimum
IDENTITY_TOL = 1e-10  # |GD step with η_k = 1/(2 n_k) − Lloyd step|, max over entries
EQUAL_SIZES_TOL = 1e-12  # n_max/n_min − 1 below this: equal cluster sizes
GD_CONV = 1e-8  # GD has arrived when max|C_t − C_end| ≤ this from step t on
GD_TOL = 1e-12  # its rollout stops when a step moves less than this
RATE_WINDOW = (1e-12, 1e-4)  # the distances over which GD's contraction per step is measured


def decide_kmeans(distinct_mean: float, distinct_se: float, identity_err: float, size_ratio: float,
                  control_distinct_max: int, threshold: float = MINIMA_THRESHOLD,
                  identity_tol: float = IDENTITY_TOL) -> str:
    """inconclusive if the control (separated blobs, k-means++) reached more than one minimum or
    ``threshold`` lies inside distinct_mean ± 2 distinct_se; fails if the count is below it or Lloyd's
    step differs from the per-cluster gradient step by more than ``identity_tol``; holds when the
    cluster sizes are equal (``size_ratio`` = n_max/n_min = 1: one η); holds-with-correction otherwise."""
    for name, v in (("distinct_mean", distinct_mean), ("distinct_se", distinct_se), ("size_ratio", size_ratio)):
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise ValueError(f"{name} must be a number, got {v!r}")
    if isinstance(control_distinct_max, bool) or not isinstance(control_distinct_max, int) or control_distinct_max < 1:
        raise ValueError(f"control_distinct_max must be an int >= 1, got {control_distinct_max!r}")
    if control_distinct_max > 1:
        return "inconclusive"
    side = side_of(distinct_mean, distinct_se, threshold)
    if side == "inside":
        return "inconclusive"
    if side == "below" or not identity_err <= identity_tol:
        return "fails"
    return "holds" if size_ratio - 1 <= EQUAL_SIZES_TOL else "holds-with-correction"


def blobs(g: torch.Generator, centers, sizes, spreads) -> torch.Tensor:
    """Gaussian blobs in the plane (float64), concatenated blob by blob."""
    return torch.cat([torch.tensor(c, dtype=torch.float64) + s * torch.randn(n, 2, generator=g, dtype=torch.float64)
                      for c, n, s in zip(centers, sizes, spreads)])


def distinct_minima(inertias: torch.Tensor, rtol: float = DISTINCT_RTOL) -> list[float]:
    """The distinct values among final inertias: sorted, a new minimum wherever the gap to the previous
    value exceeds ``rtol`` × the smallest (the representative is the first of each group)."""
    v = sorted(float(x) for x in inertias)
    out = [v[0]]
    for a, b in zip(v, v[1:]):
        if b - a > rtol * v[0]:
            out.append(b)
    return out


def newton_identity_error(X: torch.Tensor, C: torch.Tensor) -> float:
    """max |(C − η_k ∇_k W(C)) − T(C)| with η_k = 1/(2 n_k), over the non-empty clusters of every
    centroid set in the batch C (B, K, d): the gradient by autograd, T Lloyd's step."""
    Cg = C.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(wcss(X, Cg).sum(), Cg)
    d2 = ((X[None, :, None, :] - C[:, None, :, :]) ** 2).sum(-1)
    n_k = torch.nn.functional.one_hot(d2.argmin(-1), C.shape[1]).sum(1).to(X.dtype)  # (B, K)
    step = C - grad / (2 * n_k.clamp(min=1))[..., None]
    err = (step - lloyd_step(X, C)).abs().amax(-1)
    return float(err[n_k > 0].max())


def gd_rates(X: torch.Tensor, path: torch.Tensor, eta: float) -> tuple[list, list]:
    """Per GD start (``path`` (T + 1, B, K, d)) and non-empty cluster k of its end partition: the predicted
    contraction |1 − 2η n_k| and the measured one, exp(mean Δ log max_j |c_k,t − c_k,end|_j) over the
    first run of steps where that distance lies in ``RATE_WINDOW`` (pairs with fewer than 3 such steps
    are left out). Returns the two lists (pred, meas), one entry per measured (start, cluster)."""
    ends = path[-1]
    d2 = ((X[None, :, None, :] - ends[:, None, :, :]) ** 2).sum(-1)
    n_k = torch.nn.functional.one_hot(d2.argmin(-1), ends.shape[1]).sum(1)  # (B, K)
    dist = (path - ends[None]).abs().amax(-1).numpy()  # (T + 1, B, K)
    pred, meas = [], []
    lo, hi = RATE_WINDOW
    for b in range(ends.shape[0]):
        for k in range(ends.shape[1]):
            if int(n_k[b, k]) == 0:
                continue
            d = dist[:, b, k]
            idx = np.nonzero((d > lo) & (d < hi))[0]
            if len(idx):
                idx = idx[idx == np.arange(idx[0], idx[0] + len(idx))]  # the first contiguous run
            if len(idx) >= 3:
                pred.append(abs(1 - 2 * eta * int(n_k[b, k])))
                meas.append(float(np.exp(np.mean(np.diff(np.log(d[idx]))))))
    return pred, meas


def gd_slowest(X: torch.Tensor, ends: torch.Tensor, eta: float) -> list[float]:
    """max_k |1 − 2η n_k| over the non-empty clusters of each GD end partition (B, K, d): the slowest
    contraction, which sets the asymptotic slope of max_k |c_k,t − c_k,end|."""
    d2 = ((X[None, :, None, :] - ends[:, None, :, :]) ** 2).sum(-1)
    n_k = torch.nn.functional.one_hot(d2.argmin(-1), ends.shape[1]).sum(1).double()
    rate = (1 - 2 * eta * n_k).abs()
    return [float(rate[b][n_k[b] > 0].max()) for b in range(ends.shape[0])]


def run_seed(seed: int, n_init: int, n_gd: int, gd_steps: int) -> dict:
    """One seed's measurements (data, Lloyd from ``n_init`` Forgy starts, the identity, GD from the first
    ``n_gd`` starts, and the control)."""
    g = torch.Generator().manual_seed(seed)
    X = blobs(g, CENTERS, SIZES, SPREADS)
    r = kmeans(X, K, init="random", n_init=n_init, generator=g)
    minima = distinct_minima(r.run_inertias)
    best = minima[0]
    paths = r.run_inertia_paths
    increases = int(((paths[1:] - paths[:-1]) > 1e-12 * best).sum())
    sizes = torch.bincount(r.labels, minlength=K)
    n_min, n_max = int(sizes.min()), int(sizes.max())
    identity = newton_identity_error(X, r.init_centroids)
    eta = 1.0 / (n_min + n_max)
    starts = r.init_centroids[:n_gd]
    gd = wcss_gd(X, starts, eta=eta, steps=gd_steps, tol=GD_TOL)
    dist = (gd.centroid_path - gd.centroids[None]).abs().flatten(2).amax(-1)  # (T + 1, B)
    far = dist > GD_CONV
    gd_arrive = [int(far[:, b].nonzero().max()) + 1 if bool(far[:, b].any()) else 0 for b in range(far.shape[1])]
    lloyd_moves = [it - 1 for it in r.run_iters[:n_gd]]  # the last Lloyd step moved nothing
    rate_pred, rate_meas = gd_rates(X, gd.centroid_path, eta)
    slowest = gd_slowest(X, gd.centroids, eta)
    same = (gd.inertia - r.run_inertias[:n_gd]).abs() <= DISTINCT_RTOL * best
    gc = torch.Generator().manual_seed(seed + 1000)
    Xc = blobs(gc, CONTROL_CENTERS, SIZES, (CONTROL_SPREAD,) * K)
    rc = kmeans(Xc, K, init="k-means++", n_init=n_init, generator=gc)
    c_minima = distinct_minima(rc.run_inertias)
    worse = [m for m in minima if m > best * (1 + WORSE_RTOL)]
    return {
        "X": X, "r": r, "gd": gd, "Xc": Xc, "rc": rc, "minima": minima, "eta": eta,
        "n_distinct": len(minima), "n_distinct_1pct": 1 + len(worse),
        "frac_best": float((r.run_inertias <= best * (1 + DISTINCT_RTOL)).double().mean()),
        "worst_over_best": minima[-1] / best,
        "increases": increases, "identity": identity, "size_ratio": n_max / n_min, "sizes": sorted(sizes.tolist()),
        "lloyd_moves_mean": float(np.mean(r.run_iters) - 1), "lloyd_moves_gd_starts": float(np.mean(lloyd_moves)),
        "lloyd_max_iter": max(r.run_iters), "lloyd_all_converged": all(s == "converged" for s in r.run_statuses),
        "gd_steps_mean": float(np.mean(gd_arrive)), "gd_steps_max": max(gd_arrive), "gd_status": str(gd.status),
        "gd_rate_predicted": (n_max - n_min) / (n_max + n_min),
        "gd_rate_pred": rate_pred, "gd_rate_meas": rate_meas, "gd_slowest": slowest,
        "gd_same_minimum_frac": float(same.double().mean()),
        "gd_n_distinct": len(distinct_minima(gd.inertia)),
        "control_n_distinct": len(c_minima), "control_best": c_minima[0],
        "control_all_converged": all(s == "converged" for s in rc.run_statuses),
    }


def _cells(ax, X, C, title, bounds, colours):
    grid = voronoi_grid(C, bounds, n=160)
    ax.contourf(grid.xs.numpy(), grid.ys.numpy(), grid.labels.numpy(), levels=np.arange(-0.5, K, 1.0),
                colors=colours, alpha=0.18)
    labels = ((X[:, None, :] - C[None]) ** 2).sum(-1).argmin(1).numpy()
    for k in range(K):
        ax.plot(*X[labels == k].T.numpy(), ".", ms=2.0, color=colours[k])
    ax.plot(*C.T.numpy(), "D", ms=6, color=BLACK, mfc="white", mew=1.2, label="centroids")
    ax.set_xlim(bounds[0], bounds[1])
    ax.set_ylim(bounds[2], bounds[3])
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=7)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")


@experiment(
    id="ch10.kmeans_is_not_gd",
    chapter=10,
    title="K-means: many local minima; Lloyd is alternating minimisation (GD only with η_k = 1/(2n_k))",
    claim="K-means' Lloyd iterations are gradient descent sliding down the within-cluster sum of squares; "
    "the objective is non-convex, so different initialisations reach different local minima.",
)
def kmeans_is_not_gd(ctx: Context) -> Result:
    with one_thread():
        return _kmeans_is_not_gd(ctx)


def _kmeans_is_not_gd(ctx: Context) -> Result:
    n_init = 20 if ctx.quick else 50
    n_gd = 8 if ctx.quick else 50
    gd_steps = 400 if ctx.quick else 2000
    runs = [run_seed(ctx.seed + i, n_init, n_gd, gd_steps) for i in range(N_SEEDS)]

    def ms(key):
        return mean_se([r[key] for r in runs])

    (dm, dse), (d1m, d1se) = ms("n_distinct"), ms("n_distinct_1pct")
    (fbm, fbse), (lm, lse), (gm, gse) = ms("frac_best"), ms("lloyd_moves_gd_starts"), ms("gd_steps_mean")
    (sm, sse), (cm, cse) = ms("gd_same_minimum_frac"), ms("control_n_distinct")
    identity = max(r["identity"] for r in runs)
    rate_err = [abs(p - q) for r in runs for p, q in zip(r["gd_rate_pred"], r["gd_rate_meas"])]
    rate_err_max = max(rate_err) if rate_err else math.nan
    ratio = min(r["size_ratio"] for r in runs)
    increases = sum(r["increases"] for r in runs)
    control_max = max(r["control_n_distinct"] for r in runs)
    verdict = decide_kmeans(dm, dse, identity, ratio, control_max)
    control_verdict = decide_kmeans(cm, cse, identity, ratio, 1)
    speedup = gm / lm if lm > 0 else math.inf

    # ---- figure 1: the best and a worse local minimum of seed 0, as Voronoi cells
    r0 = runs[0]
    X0, res0 = r0["X"], r0["r"]
    order = torch.argsort(res0.run_inertias)
    worst = int(order[-1])
    C_best = res0.centroids
    C_worst = lloyd_step(X0, res0.init_centroids[worst])
    for _ in range(200):  # re-run the worst start to its end (same map as the batch)
        nxt = lloyd_step(X0, C_worst)
        if torch.equal(nxt, C_worst):
            break
        C_worst = nxt
    bounds = (-3.0, 10.0, -3.0, 10.5)
    colours = [ORANGE, SKY, GREEN, VERMILLION]
    fig, axes = figure("double", height=5.6, nrows=2, ncols=2)
    _cells(axes[0, 0], X0, C_best, f"best minimum W = {float(wcss(X0, C_best)):.1f} "
           f"({r0['frac_best']:.0%} of starts, seed {ctx.seed})", bounds, colours)
    _cells(axes[0, 1], X0, C_worst, f"a worse local minimum W = {float(wcss(X0, C_worst)):.1f}", bounds, colours)
    ax = axes[1, 0]
    for i, r in enumerate(runs):
        v = np.sort(r["r"].run_inertias.numpy()) / r["minima"][0]
        ax.plot(np.full(len(v), i) + np.linspace(-0.25, 0.25, len(v)), v, "o", ms=2.5, color=BLUE,
                label="4 blobs, Forgy starts" if i == 0 else None)
        vc = np.sort(r["rc"].run_inertias.numpy()) / r["control_best"]
        ax.plot(np.full(len(vc), i + N_SEEDS + 0.5) + np.linspace(-0.25, 0.25, len(vc)), vc, "s", ms=2.5,
                color=SKY, label="control: separated, k-means++" if i == 0 else None)
    ax.set_xticks(list(range(N_SEEDS)) + [i + N_SEEDS + 0.5 for i in range(N_SEEDS)],
                  [f"s{i}" for i in range(N_SEEDS)] * 2)
    ax.set_xlabel("seed (left: 4 blobs; right: control)")
    ax.set_ylabel("final W / best W")
    ax.set_title(f"{n_init} starts per seed: {dm:.1f} ± {dse:.1f} minima; control {cm:.0f}", fontsize=7)
    ax.legend(frameon=False, fontsize=6, loc="upper right")

    ax = axes[1, 1]  # Lloyd (exact in a few steps) vs GD with one η, same starts
    gd0 = r0["gd"]
    n_show = min(3, gd0.inertia.shape[0])
    for b in range(n_show):
        dist = (gd0.centroid_path[:, b] - gd0.centroids[b]).abs().flatten(1).amax(-1).numpy()
        ax.semilogy(np.arange(len(dist)), np.maximum(dist, 1e-16), color=OKABE_ITO[b], lw=1.0,
                    label="GD with one η (3 starts)" if b == 0 else None)
        it = res0.run_iters[b]
        ax.plot([it - 1], [1e-16], "D", ms=4, color=OKABE_ITO[b], label="Lloyd: exact end" if b == 0 else None)
        k0 = int(np.argmax(dist < RATE_WINDOW[1]))
        tt = np.arange(k0, len(dist))
        ax.semilogy(tt, dist[k0] * r0["gd_slowest"][b] ** (tt - k0), color=BLACK, ls=":", lw=0.9,
                    label="predicted max_k |1 − 2ηn_k|^t" if b == 0 else None)
    ax.set_ylim(5e-17, 1e2)
    ax.set_xlim(-1, 1.3 * max(r0["gd_steps_max"], 1))
    ax.set_xlabel("step")
    ax.set_ylabel("max |C_t − C_end|")
    ax.set_title(f"one η = 1/(n_min + n_max): GD {gm:.0f} ± {gse:.0f} steps, Lloyd {lm:.1f}", fontsize=7)
    ax.legend(frameon=False, fontsize=6, loc="upper right")
    ctx.savefig(fig, "kmeans_is_not_gd")

    per_seed = {k: [r[k] for r in runs] for k in ("n_distinct", "n_distinct_1pct", "frac_best", "worst_over_best",
                                                  "size_ratio", "sizes", "eta", "lloyd_moves_gd_starts",
                                                  "gd_steps_mean", "gd_steps_max", "gd_same_minimum_frac",
                                                  "gd_n_distinct", "control_n_distinct")}
    numbers = {
        "claim_kind": "empirical",
        "seeds": [ctx.seed + i for i in range(N_SEEDS)],
        "n_starts_per_seed": n_init,
        "n_distinct_minima_mean": dm, "n_distinct_minima_se": dse,
        "n_distinct_minima_1pct_mean": d1m, "n_distinct_minima_1pct_se": d1se,
        "frac_starts_at_best_mean": fbm, "frac_starts_at_best_se": fbse,
        "worst_over_best_max": max(r["worst_over_best"] for r in runs),
        "lloyd_inertia_increases": increases,
        "lloyd_all_converged": all(r["lloyd_all_converged"] for r in runs),
        "lloyd_max_iter": max(r["lloyd_max_iter"] for r in runs),
        "lloyd_equals_gd_with_eta_k_1_over_2n_k_max_err": identity,
        "cluster_size_ratio_nmax_over_nmin_min": ratio,
        "gd_n_starts_per_seed": n_gd,
        "lloyd_moving_steps_mean": lm, "lloyd_moving_steps_se": lse,
        "gd_steps_to_1e-8_mean": gm, "gd_steps_to_1e-8_se": gse,
        "gd_over_lloyd_steps": speedup,
        "gd_rate_per_cluster_vs_abs_1_minus_2eta_nk_max_err": rate_err_max,
        "gd_rate_n_clusters_measured": len(rate_err),
        "gd_same_minimum_as_lloyd_frac_mean": sm, "gd_same_minimum_as_lloyd_frac_se": sse,
        "gd_status": [r["gd_status"] for r in runs],
        "per_seed": per_seed,
        "control_setting": "4 blobs 100 apart, sigma 0.5, k-means++",
        "control_n_distinct_minima_mean": cm, "control_n_distinct_minima_se": cse,
        "control_n_distinct_minima_max": control_max,
        "control_all_converged": all(r["control_all_converged"] for r in runs),
        "control_verdict": control_verdict,
    }
    return Result(
        verdict=verdict,
        numbers=numbers,
        threshold=(f"more than one minimum: the mean number of distinct final inertias (relative gap > "
                   f"{DISTINCT_RTOL:g}) over {N_SEEDS} seeds, ± 2 SE, above {MINIMA_THRESHOLD}; Lloyd's step = "
                   f"the gradient step with η_k = 1/(2 n_k) to {IDENTITY_TOL:g}; holds if the cluster sizes are "
                   "equal (one η), holds-with-correction if they differ (η depends on the cluster); fails below "
                   f"{MINIMA_THRESHOLD} or if the identity breaks; inconclusive if the interval contains "
                   f"{MINIMA_THRESHOLD} or the control (separated blobs, k-means++) has more than one minimum"),
        explanation=(
            f"{n_init} Forgy starts on 4 unequal Gaussian blobs reach {dm:.1f} ± {dse:.1f} distinct local minima "
            f"per seed ({d1m:.1f} ± {d1se:.1f} at least 1 % apart; the worst up to "
            f"{numbers['worst_over_best_max']:.2f}× the best; {fbm:.0%} ± {fbse:.0%} of starts at the best), "
            f"seeds {numbers['seeds']}. Lloyd's W never increased ({increases} increases) and every run stopped "
            f"exactly (a step that moved nothing) after at most {numbers['lloyd_max_iter']} steps. At every start, "
            f"the autograd gradient step with η_k = 1/(2 n_k) equals Lloyd's step to {identity:.1e}: Lloyd is the "
            f"Newton step of the active quadratic piece, a gradient step whose size differs by cluster (n_max/n_min "
            f"≥ {ratio:.2f} at the best partitions). Plain GD on the same W with the best single step "
            f"η = 1/(n_min + n_max) from the same starts needs {gm:.0f} ± {gse:.0f} steps to come within "
            f"{GD_CONV:g} of its end point against Lloyd's {lm:.1f} ± {lse:.1f} moving steps ({speedup:.0f}×), "
            f"and ends in the same minimum as Lloyd from {sm:.0%} ± {sse:.0%} of the starts; its measured contraction per "
            f"step, cluster by cluster, is |1 − 2ηn_k| to {rate_err_max:.1e} ({len(rate_err)} clusters measured). Control: 4 blobs "
            f"100 apart (σ = 0.5) with k-means++ reach {cm:.0f} minimum on every seed (max {control_max}), so "
            "the count separates the two landscapes."
        ),
        corrected=(
            "The local-minima part holds: W is non-convex and different starts end in different minima. But "
            "Lloyd's algorithm is alternating minimisation (assign, then average), which reaches its fixed point "
            "exactly in finitely many steps; as a gradient step it is one with a cluster-dependent size "
            "η_k = 1/(2 n_k) (a Newton step on the piecewise quadratic W), and plain gradient descent with one "
            f"η is a different, slower algorithm ({speedup:.0f}× more steps here) that can end elsewhere."
        ) if verdict in ("holds-with-correction", "fails") else None,
    )
