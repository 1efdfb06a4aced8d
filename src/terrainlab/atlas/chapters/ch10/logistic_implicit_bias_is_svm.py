"""ch10.logistic_implicit_bias_is_svm — on separable data the logistic loss has no minimiser: gradient descent
walks off to infinity along the hard-margin SVM direction.

The book (§10.1, §10.7) pictures the cross-entropy L(θ) = −(1/n) Σ [y log σ(xᵀθ) + (1 − y) log(1 − σ(xᵀθ))]
as a convex, non-quadratic bowl with a position-dependent Hessian, which gradient descent walks down "to an
extremum"; it says ‖θ‖ sets how hard the boundary is, and places the high curvature "in data-dense regions".
What it omits: on linearly separable data L has no minimiser (inf L = 0 is approached as ‖θ‖ → ∞), and
gradient descent (step η below 2/β, β = λ_max(XᵀX/n)/4) follows θ_t = ŵ log t + ρ(t) with ρ bounded, where ŵ
is the hard-margin SVM through the origin, argmin ‖w‖ s.t. s_i x_iᵀw ≥ 1 (s_i = 2y_i − 1) — so ‖θ_t‖ grows
like ‖ŵ‖ log t and the angle between θ_t and ŵ falls like 1/log t (Soudry, Hoffer, Nacson, Gunasekar & Srebro
2018, "The implicit bias of gradient descent on separable data", JMLR 19(70), Theorem 3).

Measured, per seed (``N_SEEDS`` generated data sets): 24 points in 2-D, two Gaussian clouds at ±(2, 1)
through the origin (points within 0.3 of the origin along (2, 1) rejected, so the set is separable by a
line through 0; no intercept, so GD and the SVM are the same homogeneous model), and non-support points
with functional margin below ``GAP`` under ŵ removed (that leaves the SVM unchanged and keeps the
transient short: a point with margin m pulls on θ_t like t^(−m)). ŵ by the project's own QP
(:func:`terrainlab.classical.hard_margin_svm`, ``bias=False``); GD from θ = 0 with η = 4/λ_max(XᵀX/n)
through the core (:func:`terrainlab.classical.implicit_bias_path`), read at log-spaced t ≤ T. The verdict's
number is the drift of θ_t off ŵ log t over the last decade,

    drift = ‖(θ_T − θ_(T/10))/ln 10 − ŵ‖ / ‖ŵ‖,

0 in the limit (Soudry: θ_t − ŵ log t stays bounded, and ρ converges) and 1 when θ_t converges to a finite
point; reported as mean ± SE over the seeds. Also reported: the growth ratio ‖θ_T − θ_(T/10)‖/(‖ŵ‖ ln 10),
cos(θ_T, ŵ), angle(θ_t, ŵ)·log t at t ≈ T/100, T/10, T (bounded for an angle O(1/log t); 1 − cos ≈
angle²/2 then falls like 1/log² t), the normalised margin of θ_T against the SVM's, and the trace of
the Hessian (1/n) Σ σ(1 − σ)‖x_i‖² at T against t = 0 (it vanishes: the curvature goes to zero along the
walk, everywhere, not only where data are dense).

Control inside the experiment: the same data with ``N_FLIP`` labels flipped (non-separable; the SVM QP
returns status "non-separable"), where a finite minimiser exists: θ_t must converge (drift ≈ 1 to the clean
data's ŵ, growth ≈ 0) and its angle to the clean ŵ must stay away from 0.

Verdict (:func:`decide_implicit_bias`), threshold ``DRIFT_THRESHOLD`` against mean ± 2 SE: inconclusive
unless the control's SVM is "non-separable" and its drift lies above the threshold; then
holds-with-correction when the separable drift lies below it (no minimiser: GD follows ŵ log t); holds when
the drift lies above it and the growth ratio below it (θ_t converges to a minimiser, as the book pictures);
fails when both lie above (θ_t grows, but not along ŵ); inconclusive when the threshold is inside an interval.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from matplotlib.ticker import NullLocator

from terrainlab.atlas import Context, Result, experiment
from terrainlab.atlas.chapters._digits import one_thread
from terrainlab.atlas.stats import mean_se, side_of
from terrainlab.classical import hard_margin_svm, implicit_bias_path, logistic_hessian
from terrainlab.plotting import BLACK, BLUE, ORANGE, SKY, VERMILLION, figure

N_SEEDS = 3
N_POINTS = 24
MEAN = (2.0, 1.0)  # the clouds sit at ±MEAN
REJECT = 0.3  # points closer than this to the origin along MEAN are redrawn
GAP = 1.5  # non-support points with s_i x_iᵀŵ below this are dropped (the SVM is unchanged)
N_FLIP = 3  # labels flipped in the control
DRIFT_THRESHOLD = 0.5  # drift / growth ratio: below → follows ŵ log t, above → not
STEPS_FULL, STEPS_QUICK = 20_000, 5_000


def decide_implicit_bias(drift_mean: float, drift_se: float, growth_mean: float, growth_se: float,
                         control_drift_mean: float, control_drift_se: float, control_svm_status: str,
                         threshold: float = DRIFT_THRESHOLD) -> str:
    """inconclusive unless the control (labels flipped) has SVM status "non-separable" and its drift lies
    above ``threshold`` (mean − 2 SE); then, with the separable runs' drift: below the threshold →
    holds-with-correction (GD follows ŵ log t: no minimiser, direction → SVM); above it → holds when the
    growth ratio lies below the threshold (θ converges: the book's bowl with a bottom), fails when the
    growth lies above (θ runs off, but not along ŵ); inconclusive whenever the threshold is inside a
    mean ± 2 SE interval or a number is not finite."""
    if not isinstance(control_svm_status, str):
        raise ValueError(f"control_svm_status must be a status string, got {control_svm_status!r}")
    if not (isinstance(threshold, (int, float)) and threshold > 0):
        raise ValueError(f"threshold must be a number > 0, got {threshold!r}")
    if control_svm_status != "non-separable" or side_of(control_drift_mean, control_drift_se, threshold) != "above":
        return "inconclusive"
    drift = side_of(drift_mean, drift_se, threshold)
    if drift == "below":
        return "holds-with-correction"
    if drift == "inside":
        return "inconclusive"
    growth = side_of(growth_mean, growth_se, threshold)
    return {"below": "holds", "above": "fails"}.get(growth, "inconclusive")


def separable_set(seed: int, n: int = N_POINTS) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` points (float64) in 2-D, alternately from N(+MEAN, I) (label 1) and N(−MEAN, I) (label 0),
    separable through the origin, with non-support points of margin below ``GAP`` under the SVM removed."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 4 or n % 2:
        raise ValueError(f"n must be an even int >= 4, got {n!r}")
    rng = np.random.default_rng(seed)
    mu = np.array(MEAN)
    u = mu / np.linalg.norm(mu)
    X, s = [], []
    while len(X) < 3 * n:
        lab = 1.0 if len(X) % 2 == 0 else -1.0
        x = rng.normal(size=2) + lab * mu
        if lab * float(x @ u) >= REJECT:
            X.append(x)
            s.append(lab)
    X, s = torch.tensor(np.array(X)), torch.tensor(s, dtype=torch.float64)
    fm = s * (X @ hard_margin_svm(X, s, bias=False).w)
    keep = torch.nonzero((fm < 1 + 1e-9) | (fm >= GAP)).flatten()
    # keep the support vectors, then fill up to n from the rest in order, balanced
    sv = keep[fm[keep] < 1 + 1e-9].tolist()
    rest = [i for i in keep.tolist() if i not in sv]
    chosen = sv + [i for i in rest if s[i] > 0][: n // 2 - sum(1 for i in sv if s[i] > 0)] \
        + [i for i in rest if s[i] < 0][: n // 2 - sum(1 for i in sv if s[i] < 0)]
    chosen = sorted(chosen)
    if len(chosen) != n:
        raise ValueError(f"seed {seed}: too few points with margin ≥ {GAP} to build a set of n = {n}")
    return X[chosen], (s[chosen] + 1) / 2


def flipped(y: torch.Tensor, seed: int, k: int = N_FLIP) -> torch.Tensor:
    """``y`` with ``k`` labels flipped (chosen by ``seed``)."""
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= len(y):
        raise ValueError(f"k must be an int in [0, {len(y)}], got {k!r}")
    idx = np.random.default_rng(seed + 10_000).choice(len(y), size=k, replace=False)
    out = y.clone()
    out[idx] = 1 - out[idx]
    return out


def checkpoints(T: int) -> list[int]:
    """About 40 log-spaced step counts from 1 to ``T`` (distinct ints, increasing, ending at T)."""
    if isinstance(T, bool) or not isinstance(T, int) or T < 100:
        raise ValueError(f"T must be an int >= 100, got {T!r}")
    return sorted(set(np.unique(np.logspace(0, math.log10(T), 40).round().astype(int)).tolist()))


def _angle(cos: torch.Tensor) -> torch.Tensor:
    return torch.arccos(cos.clamp(-1.0, 1.0))


@experiment(
    id="ch10.logistic_implicit_bias_is_svm",
    chapter=10,
    title="Separable logistic regression has no minimiser: GD runs off along the hard-margin SVM direction",
    claim="The logistic cross-entropy is a convex, non-quadratic bowl with a position-dependent Hessian "
    "(curvature high in data-dense regions), which gradient descent walks down to its extremum; ‖θ‖ only sets "
    "how hard the boundary is.",
)
def logistic_implicit_bias_is_svm(ctx: Context) -> Result:
    T = STEPS_QUICK if ctx.quick else STEPS_FULL
    cps = checkpoints(T)
    seeds = [ctx.seed + i for i in range(N_SEEDS)]
    with one_thread():
        data = [separable_set(sd) for sd in seeds]
        X = torch.stack([d[0] for d in data])
        Y = torch.stack([d[1] for d in data])
        Yc = torch.stack([flipped(d[1], sd) for d, sd in zip(data, seeds)])
        Xall, Yall = torch.cat([X, X]), torch.cat([Y, Yc])
        lam = torch.linalg.eigvalsh(Xall.transpose(-1, -2) @ Xall / Xall.shape[-2])[..., -1]
        eta = float(4.0 / lam.max())  # β = λ_max/4 bounds the loss's curvature: η = 1/β < 2/β
        path = implicit_bias_path(Xall, Yall, eta, cps)
        h0 = logistic_hessian(torch.zeros_like(path.theta[-1]), Xall, Yall).diagonal(dim1=-2, dim2=-1).sum(-1)
        hT = logistic_hessian(path.theta[-1], Xall, Yall).diagonal(dim1=-2, dim2=-1).sum(-1)
    S = N_SEEDS
    svm_sep, svm_ctrl = path.svm[:S], path.svm[S:]
    W = torch.stack([r.w for r in svm_sep])  # the clean data's ŵ, also the control's reference
    Wn = W.norm(dim=-1)
    steps = path.steps.to(torch.float64)
    kT = len(cps) - 1
    k0 = int(np.argmin(np.abs(np.array(cps) - T / 10)))
    ln = math.log(cps[kT] / cps[k0])
    th = path.theta  # (K, 2S, 2)
    slope = (th[kT] - th[k0]) / ln
    Wall = torch.cat([W, W])
    drift = ((slope - Wall).norm(dim=-1) / torch.cat([Wn, Wn])).tolist()
    growth = (slope.norm(dim=-1) / torch.cat([Wn, Wn])).tolist()
    cos = (th * Wall).sum(-1) / (th.norm(dim=-1) * Wall.norm(dim=-1)).clamp_min(1e-300)  # (K, 2S)
    ang = _angle(cos)
    inv_log = 1.0 / torch.log(steps)
    # angle·log t at t ≈ T/100, T/10, T: bounded (settling to ‖ρ̃⊥‖/‖ŵ‖) when the angle is O(1/log t)
    kk = [int(np.argmin(np.abs(np.array(cps) - T / f))) for f in (100, 10, 1)]
    angle_log_t = [[float(ang[k, b] * math.log(cps[k])) for k in kk] for b in range(2 * S)]
    margin_ratio = [float((((2 * Y[b] - 1) * (X[b] @ th[kT, b])).min() / th[kT, b].norm()) * Wn[b]) for b in range(S)]
    d_m, d_se = mean_se(drift[:S])
    g_m, g_se = mean_se(growth[:S])
    cd_m, cd_se = mean_se(drift[S:])
    cg_m, cg_se = mean_se(growth[S:])
    ctrl_status = "non-separable" if all(r.status == "non-separable" for r in svm_ctrl) else \
        next(r.status for r in svm_ctrl if r.status != "non-separable")
    verdict = decide_implicit_bias(d_m, d_se, g_m, g_se, cd_m, cd_se, ctrl_status)
    control_reading = "converges (finite minimiser)" if side_of(cg_m, cg_se, DRIFT_THRESHOLD) == "below" \
        else "does not converge"
    cosT = cos[kT].tolist()
    angT = ang[kT].tolist()

    # figures: (a) one seed's data, SVM band and GD boundaries; (b) angle against 1/log t; (c) ‖θ_t‖ vs log t
    fig, (a1, a2, a3) = figure("double", height=2.6, ncols=3)
    Xs, ys, r0 = X[0].numpy(), Y[0].numpy(), svm_sep[0]
    w0 = r0.w.numpy()
    a1.scatter(Xs[ys == 1, 0], Xs[ys == 1, 1], s=9, color=ORANGE, label="y = 1")
    a1.scatter(Xs[ys == 0, 0], Xs[ys == 0, 1], s=9, color=BLUE, label="y = 0")
    a1.scatter(Xs[r0.support, 0], Xs[r0.support, 1], s=40, facecolors="none", edgecolors=BLACK, lw=0.8,
               label="support vectors")
    lim = float(np.abs(Xs).max()) * 1.1
    ts = np.linspace(-lim, lim, 2)
    perp = np.array([-w0[1], w0[0]]) / np.linalg.norm(w0)
    for off, st in ((0.0, "-"), (1.0, "--"), (-1.0, "--")):
        p0 = w0 * off / (w0 @ w0)
        a1.plot(p0[0] + ts * perp[0], p0[1] + ts * perp[1], color=BLACK, ls=st, lw=0.8)
    for k, alpha in ((int(np.argmin(np.abs(np.array(cps) - c))), a) for c, a in ((3, 0.35), (30, 0.6), (T, 1.0))):
        v = th[k, 0].numpy()
        pv = np.array([-v[1], v[0]]) / np.linalg.norm(v)
        a1.plot(ts * pv[0], ts * pv[1], color=VERMILLION, alpha=alpha, lw=1.0,
                label=f"GD boundary, t = {cps[k]}")
    a1.set_xlim(-lim, lim)
    a1.set_ylim(-lim, lim)
    a1.set_aspect("equal")
    a1.set_title(f"seed {seeds[0]}: SVM band (black) and GD", fontsize=7)
    a1.legend(frameon=False, fontsize=5, loc="upper left")
    x = inv_log.numpy()
    for b in range(S):
        a2.loglog(x[1:], ang[1:, b].numpy(), color=ORANGE, lw=1.0, label="separable (3 seeds)" if b == 0 else None)
        a2.loglog(x[1:], ang[1:, S + b].numpy(), color=SKY, ls="--", lw=1.0,
                  label="control: labels flipped" if b == 0 else None)
    c_env = max(max(row) for row in angle_log_t[:S])
    a2.loglog(x[1:], c_env * x[1:], color=BLACK, ls=":", lw=0.8, label=f"{c_env:.2f}/log t")
    a2.invert_xaxis()
    a2.xaxis.set_minor_locator(NullLocator())
    a2.set_xticks([0.5, 0.2, 0.1])
    a2.set_xticklabels(["0.5", "0.2", "0.1"])
    a2.set_xlabel("1/log t  (t →)")
    a2.set_ylabel("angle(θ_t, ŵ_SVM) [rad]")
    a2.set_title("Angle to ŵ_SVM: under c/log t; control stays", fontsize=7)
    a2.legend(frameon=False, fontsize=5.5)
    lt = np.log(steps.numpy())
    along = ((th * Wall).sum(-1) / (Wall * Wall).sum(-1)).numpy()  # θ_t·ŵ/‖ŵ‖²: ≈ log t + const (Soudry)
    for b in range(S):
        a3.plot(lt, along[:, b], color=ORANGE, lw=1.0, label="separable θ_t·ŵ/‖ŵ‖²" if b == 0 else None)
        a3.plot(lt, along[:, S + b], color=SKY, ls="--", lw=1.0, label="control (clean ŵ)" if b == 0 else None)
    a3.plot(lt, lt - lt[kT] + float(along[kT, :S].mean()), color=BLACK, ls=":", lw=0.8, label="slope 1: θ_t ≈ ŵ log t")
    a3.set_ylim(0, None)
    a3.set_xlabel("log t")
    a3.set_ylabel("θ_t along ŵ, in units of ŵ")
    a3.set_title(f"No minimiser: drift {d_m:.2f} ± {d_se:.2f} (control {cd_m:.2f})", fontsize=7)
    a3.legend(frameon=False, fontsize=5.5)
    ctx.savefig(fig, "implicit_bias")

    return Result(
        verdict=verdict,
        numbers={
            "claim_kind": "theorem-check",
            "seeds": seeds,
            "n_points": N_POINTS,
            "steps_T": T,
            "eta": eta,
            "svm_norm_w": Wn.tolist(),
            "svm_status": [r.status for r in svm_sep],
            "drift_mean": d_m,
            "drift_se": d_se,
            "drift_per_seed": drift[:S],
            "growth_ratio_mean": g_m,
            "growth_ratio_se": g_se,
            "cos_theta_T_w_svm": cosT[:S],
            "angle_T_rad": angT[:S],
            "angle_times_log_t_at_T100_T10_T": angle_log_t[:S],
            "normalised_margin_ratio_T": margin_ratio,
            "norm_theta_T": th[kT, :S].norm(dim=-1).tolist(),
            "hessian_trace_t0": h0[:S].tolist(),
            "hessian_trace_T": hT[:S].tolist(),
            "control_n_flipped": N_FLIP,
            "control_svm_status": ctrl_status,
            "control_drift_mean": cd_m,
            "control_drift_se": cd_se,
            "control_growth_ratio_mean": cg_m,
            "control_growth_ratio_se": cg_se,
            "control_angle_T_rad": angT[S:],
            "control_angle_times_log_t_at_T100_T10_T": angle_log_t[S:],
            "control_norm_theta_T": th[kT, S:].norm(dim=-1).tolist(),
            "control_hessian_trace_T": hT[S:].tolist(),
            "control_reading": control_reading,
            "control_verdict": "converges" if control_reading.startswith("converges") else "does-not-converge",
        },
        threshold=f"drift ‖(θ_T − θ_(T/10))/ln 10 − ŵ‖/‖ŵ‖ (mean ± 2 SE over {N_SEEDS} seeds) against "
        f"{DRIFT_THRESHOLD}: below → holds-with-correction (no minimiser, GD follows ŵ log t); above with growth "
        f"ratio below {DRIFT_THRESHOLD} → holds (a minimiser reached); above with growth above → fails; "
        "inconclusive when the threshold is inside an interval or the control (labels flipped) is not "
        "'non-separable' with drift above the threshold",
        explanation=(
            f"Theorem check (Soudry et al. 2018). On {N_SEEDS} separable 2-D sets of {N_POINTS} points (seeds "
            f"{seeds}), GD on the logistic loss from 0 with η = {eta:.3f} for T = {T} steps: ‖θ_T‖ = "
            f"{', '.join(f'{v:.2f}' for v in th[kT, :S].norm(dim=-1).tolist())} and still growing — over the last "
            f"decade (θ_T − θ_(T/10))/ln 10 is ŵ_SVM up to a drift of {d_m:.3f} ± {d_se:.3f} (growth ratio "
            f"{g_m:.3f} ± {g_se:.3f}; ‖ŵ‖ = {', '.join(f'{v:.3f}' for v in Wn.tolist())}). cos(θ_T, ŵ) = "
            f"{', '.join(f'{v:.5f}' for v in cosT[:S])} (angles {', '.join(f'{v:.4f}' for v in angT[:S])} rad); angle·log t at t ≈ T/100, T/10, T reads "
            f"{'; '.join(', '.join(f'{v:.2f}' for v in row) for row in angle_log_t[:S])} (it tends to a constant ‖ρ̃⊥‖/‖ŵ‖ "
            "for an angle ~ c/log t, and settles slowly where the direction first swung through ŵ — in 2-D the angle "
            "is not monotone), against the control's "
            f"{'; '.join(', '.join(f'{v:.2f}' for v in row) for row in angle_log_t[S:])}, growing like log t (a "
            "fixed angle); 1 − cos ≈ angle²/2 falls like 1/log² t. The normalised "
            f"margin of θ_T is {', '.join(f'{v:.3f}' for v in margin_ratio)} of the SVM's. The Hessian's trace falls "
            f"from {float(h0[:S].mean()):.3f} at 0 to {float(hT[:S].mean()):.2e} at T: curvature vanishes along the "
            f"walk; it is σ(1 − σ)-weighted, largest for points near the boundary, not where data are dense. "
            f"Control: with {N_FLIP} labels flipped the SVM QP reports '{ctrl_status}'; θ_t {control_reading} "
            f"(‖θ_T‖ = {', '.join(f'{v:.3f}' for v in th[kT, S:].norm(dim=-1).tolist())}, growth ratio "
            f"{cg_m:.4f} ± {cg_se:.4f}, drift {cd_m:.3f} ± {cd_se:.3f}), its angle to the clean ŵ staying at "
            f"{', '.join(f'{v:.3f}' for v in angT[S:])} rad."
        ),
        corrected=(
            "On linearly separable data the cross-entropy has no minimiser (its infimum 0 lies at infinity): "
            "gradient descent's ‖θ_t‖ grows like ‖ŵ‖ log t and its direction converges to the hard-margin SVM's ŵ, "
            "the angle falling only like 1/log t (Soudry et al. 2018); the Hessian (1/n)Σσ(1 − σ)x xᵀ weights points "
            "near the boundary and vanishes along the walk. A finite minimiser exists only when the data are not "
            "separable."
        ) if verdict in ("holds-with-correction", "fails") else None,
    )
