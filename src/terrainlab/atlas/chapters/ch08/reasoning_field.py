"""ch08.reasoning_field — are correct attractors "round" and wrong ones "squashed"? Tested on random
reasoning fields, with the book's three-basin picture drawn beside it as a reproduction.

The book (§8.1, Def. 4) attaches an empirical remark to its stability classes: at a correct attractor
the Jacobian eigenvalues have uniform magnitudes (a round basin), at a wrong one some are very negative
and some near zero (a squashed basin). Measured on fields not built to show it: multi-well energies
E(p) = −τ log Σ_j w_j exp(−KL(a_j‖p)/τ) on Δ² with three random anchors a_j (Dirichlet(1), kept 1 %
inside the simplex), random weights w (Dirichlet(1)) and τ log-uniform in ``TAU_RANGE``; the field is
the book's F = −P_T∇E. Its attractors and their K − 1 tangent-Jacobian eigenvalues come from
:func:`terrainlab.dynamics.find_fixed_points` started at the anchors (the bottoms of the wells: a minimum
of the soft minimum lies in a well, or in a merger of wells). For every draw with ≥ 2 attractors the
correct attractor is the deepest
one (lowest E: the answer the energy prefers), and the remark holds in that draw when the coefficient of
variation (std/mean) of the eigenvalue magnitudes is smaller at the correct attractor than at every wrong
one. Reported: the fraction of draws where it holds with its 95 % Wilson interval, against the rate a
remark unrelated to correctness would reach (the mean of 1/#attractors), the same fraction with the
Jacobian of the Fisher natural-gradient field at the same zeros, and the rank correlation of an
attractor's CV with its confidence max_i p_i (what the CV does track).

Control: the same family and the same code, with the answer known — the correct anchor near the centre
of the simplex (where a KL well's tangent Hessian is ≈ 3·I: round) and the wrong anchors at confident
beliefs (``SQUASHED`` rearranged to lean toward distinct vertices, perturbed: squashed), the correct well the deepest. The remark
must come out holding there.

Reproduction (not evidence: its anchors and weights were chosen to draw the book's figure): the book's
three-basin field with the Fisher natural gradient, its fixed points and classes, basin map and the §8.6
diagnostics (coverage, separation, ‖F‖ uniformity) from :func:`terrainlab.belief.field_diagnostics`.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from terrainlab.atlas import Context, Result, experiment
from terrainlab.belief import (
    GradientField,
    MultiWellEnergy,
    field_diagnostics,
    orbit,
    sample_dirichlet,
    simplex_fixed_points,
    simplex_grid,
    to_xy,
)
from terrainlab.belief.plotting import simplex_frame, simplex_path, simplex_points
from terrainlab.core import Simplex
from terrainlab.dynamics import basin_map, find_fixed_points, jacobian, simplex_tangent_basis
from terrainlab.plotting import BLACK, BLUE, GREEN, ORANGE, SKY, VERMILLION, YELLOW, figure, style

# the book's figure (reproduction only)
ANCHORS = ((0.72, 0.14, 0.14), (0.12, 0.76, 0.12), (0.10, 0.10, 0.80))
WEIGHTS = (0.7, 0.2, 0.1)
TAU = 0.1
ETA = 0.5

HOLD = 0.8  # the remark, read as a rule, must hold in at least this fraction of random fields
TAU_RANGE = (0.02, 0.1)  # τ of the random fields, log-uniform
SQUASHED = (0.75, 0.2, 0.05)  # the control's wrong anchors: permutations of this confident belief
Z95 = 1.959963984540054


def multiwell(dtype=torch.float64):
    """The book's three-basin toy (anchors and weights chosen to draw its figure)."""
    return MultiWellEnergy(torch.tensor(ANCHORS, dtype=dtype), WEIGHTS, TAU)


def eigen_cv(eigs: torch.Tensor) -> torch.Tensor:
    """std/mean of the eigenvalue magnitudes |Re λ| along the last dimension (0 for a round well).

    Example:
        >>> eigen_cv(torch.tensor([[-2.0, -2.0], [-3.0, -1.0]]))
        tensor([0.0000, 0.5000])
    """
    if not torch.is_tensor(eigs) or eigs.ndim < 1 or eigs.shape[-1] < 1:
        raise ValueError("eigs must be a tensor of eigenvalues (..., m)")
    lam = eigs.real.abs() if eigs.is_complex() else eigs.abs()
    return lam.std(-1, unbiased=False) / lam.mean(-1)


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion k/n (Wilson 1927); (0, 1) when n = 0.

    Example:
        >>> [round(v, 3) for v in wilson_interval(8, 10)]
        [0.49, 0.943]
    """
    if not (isinstance(n, int) and n >= 0):
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    if not (isinstance(k, int) and 0 <= k <= n):
        raise ValueError(f"k must be an integer in [0, n={n}], got {k!r}")
    if n == 0:
        return 0.0, 1.0
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, c - h), min(1.0, c + h)


def random_energy(generator: torch.Generator, *, control: bool = False, K: int = 3, J: int = 3,
                  dtype=torch.float64) -> MultiWellEnergy:
    """One draw of the family: random anchors, weights and τ (``control``: the correct anchor near the
    centre and deepest, the wrong ones at permutations of ``SQUASHED``; needs K = 3)."""
    if control:
        if K != len(SQUASHED):
            raise ValueError(f"K must be {len(SQUASHED)} for the control, got {K}")
        a0 = 0.9 / K + 0.1 * sample_dirichlet(1, K, generator=generator, dtype=dtype)
        sq = torch.tensor(SQUASHED, dtype=dtype)
        rows = []
        for v in torch.randperm(K, generator=generator)[:J - 1].tolist():  # distinct vertices: wells stay apart
            rest = [i for i in range(K) if i != v]
            order = [rest[i] for i in torch.randperm(K - 1, generator=generator).tolist()]
            a = torch.empty(K, dtype=dtype)
            a[[v] + order] = sq
            rows.append(a)
        aw = torch.stack(rows)
        A = torch.cat([a0, 0.9 * aw + 0.1 * sample_dirichlet(J - 1, K, generator=generator, dtype=dtype)])
    else:
        A = 0.99 * sample_dirichlet(J, K, generator=generator, dtype=dtype) + 0.01 / K
    w = sample_dirichlet(1, J, generator=generator, dtype=dtype)[0]
    if control:
        w = torch.sort(w, descending=True).values
    lo, hi = TAU_RANGE
    tau = math.exp(math.log(lo) + math.log(hi / lo) * float(torch.rand(1, generator=generator, dtype=dtype)))
    return MultiWellEnergy(A, w, tau)


def attractor_roundness(E: MultiWellEnergy) -> dict | None:
    """The attractors of F = −P_T∇E, the deepest one (``correct``), the eigenvalue CV at each for the
    Euclidean field and for the Fisher natural-gradient field (same zeros), and each attractor's
    confidence max_i p_i; ``None`` when the field has fewer than two attractors."""
    F = GradientField(E)
    K = E.anchors.shape[1]
    fp = find_fixed_points(F, E.anchors, geometry=Simplex("euclid"))
    idx = [i for i, k in enumerate(fp.kinds) if k == "attractor" and not bool(fp.is_slow[i])]
    if len(idx) < 2:
        return None
    P = fp.points[idx]
    correct = int(E(P).argmin())
    B = simplex_tangent_basis(K, dtype=P.dtype)
    cv_e = eigen_cv(fp.eigenvalues[idx])
    cv_f = eigen_cv(torch.linalg.eigvals(jacobian(GradientField(E, natural=True), P, basis=B)))
    wrong = [j for j in range(len(idx)) if j != correct]
    return {"n": len(idx), "correct": correct, "cv_euclid": cv_e.tolist(), "cv_fisher": cv_f.tolist(),
            "confidence": P.max(-1).values.tolist(),
            "holds_euclid": bool(all(cv_e[correct] < cv_e[j] for j in wrong)),
            "holds_fisher": bool(all(cv_f[correct] < cv_f[j] for j in wrong))}


def _rank_corr(x: list, y: list) -> float:
    r = [torch.tensor(v, dtype=torch.float64).argsort().argsort().double() for v in (x, y)]
    return float(torch.corrcoef(torch.stack(r))[0, 1])


def survey(generator: torch.Generator, n_draws: int, *, control: bool = False) -> dict:
    """``n_draws`` random fields: the fraction where the remark holds (Euclidean and Fisher Jacobian),
    its Wilson interval, the chance rate, per-draw CVs and the CV–confidence rank correlation."""
    rows = [attractor_roundness(random_energy(generator, control=control)) for _ in range(n_draws)]
    rows = [r for r in rows if r is not None]
    n = len(rows)
    out = {"n_draws": n_draws, "n_usable": n}
    for geo in ("euclid", "fisher"):
        k = sum(r[f"holds_{geo}"] for r in rows)
        out[f"fraction_{geo}"] = k / n if n else float("nan")
        out[f"fraction_{geo}_ci95"] = list(wilson_interval(k, n))
    out["chance_rate"] = float(np.mean([1 / r["n"] for r in rows])) if n else float("nan")
    out["cv_correct"] = [r["cv_euclid"][r["correct"]] for r in rows]
    out["cv_wrong_min"] = [min(c for j, c in enumerate(r["cv_euclid"]) if j != r["correct"]) for r in rows]
    for geo in ("euclid", "fisher"):
        out[f"median_cv_{geo}"] = float(np.median([c for r in rows for c in r[f"cv_{geo}"]])) if n else float("nan")
    cv = [c for r in rows for c in r["cv_euclid"]]
    conf = [c for r in rows for c in r["confidence"]]
    out["rank_corr_cv_confidence"] = _rank_corr(cv, conf) if len(cv) > 2 else float("nan")
    return out


def decide_reasoning_field(frac_lo: float, frac_hi: float, control_lo: float, hold: float = HOLD) -> str:
    """inconclusive unless the control (round correct well, squashed wrong wells by construction)
    gives a 95 % interval of the holding fraction above ``hold``; then holds when the random fields'
    interval lies above ``hold``, fails when it lies below, inconclusive when it contains it."""
    if not control_lo >= hold:
        return "inconclusive"
    if frac_lo >= hold:
        return "holds"
    if frac_hi < hold:
        return "fails"
    return "inconclusive"


def _toy(ctx: Context) -> dict:
    """The book's figure: fixed points, §8.6 diagnostics, orbits and the basin map of the toy."""
    dt = torch.float64
    E = multiwell(dt)
    F = GradientField(E, natural=True)
    g = ctx.generator(8)
    fp = simplex_fixed_points(F, 3, n_starts=100, eta=ETA, generator=g)
    kinds = fp.kinds
    att = fp.points[[k == "attractor" for k in kinds]]
    att = att[torch.argsort(E(att))]  # deepest (correct) first
    sad = fp.points[[k == "saddle" for k in kinds]]
    rep = fp.points[[k == "repeller" for k in kinds]]
    correct = int((att - torch.tensor(ANCHORS[0], dtype=dt)).norm(dim=-1).argmin())
    diag = field_diagnostics(F, att, correct=correct, eta=ETA, n_samples=1500 if ctx.quick else 4000,
                             n_rays=16 if ctx.quick else 32, bisect_iters=10 if ctx.quick else 12,
                             steps=200, proj=None, generator=g)
    u = torch.full((1, 3), 1 / 3, dtype=dt)
    others = torch.tensor([[0.2, 0.62, 0.18], [0.3, 0.2, 0.5], [0.22, 0.33, 0.45]], dtype=dt)
    paths = orbit(F, torch.cat([u, others]), ETA, 60, proj="euclid").states
    reach = (paths[-1] - att[:, None, :]).norm(dim=-1).argmin(0)
    n_img = 1200 if ctx.quick else 3000
    pts = (1 - 1e-3) * simplex_grid(int(np.sqrt(2 * n_img)), dtype=dt) + 1e-3 / 3
    lab = basin_map(F, pts, att, eta=ETA, steps=200).labels
    wrong = [i for i in range(len(att)) if i != correct]
    return {"F": F, "att": att, "sad": sad, "rep": rep, "diag": diag, "paths": paths, "pts": pts, "lab": lab,
            "correct": correct, "wrong": wrong, "uniform_to_correct": int(reach[0]) == correct, "kinds": kinds}


@experiment(
    id="ch08.reasoning_field",
    chapter=8,
    title="Are correct attractors round and wrong ones squashed? Random reasoning fields on the simplex",
    claim="Correct attractors have uniform Jacobian eigenvalue magnitudes (a round basin), wrong attractors "
          "some very negative and some near-zero eigenvalues (a 'squashed' basin).",
)
def reasoning_field(ctx: Context) -> Result:
    n_draws, n_ctrl = (48, 32) if ctx.quick else (240, 120)
    rnd = survey(ctx.generator(81), n_draws)
    ctl = survey(ctx.generator(82), n_ctrl, control=True)
    lo, hi = rnd["fraction_euclid_ci95"]
    verdict = decide_reasoning_field(lo, hi, ctl["fraction_euclid_ci95"][0])
    toy = _toy(ctx)
    diag = toy["diag"]
    cov = diag.coverage.tolist()

    with style():
        fig, axes = figure("double", height=2.8, ncols=3, layout="constrained",
                           gridspec_kw={"width_ratios": [1.25, 1, 0.8]})
        ax = axes[0]
        xy = to_xy(toy["pts"]).numpy()
        basin_cols = [SKY, "#F4B6A6", YELLOW]
        names = ["correct", "plausible error", "crevice"]
        for j in range(len(toy["att"])):
            m = (toy["lab"] == j).numpy()
            ax.scatter(xy[m, 0], xy[m, 1], s=6, color=basin_cols[j % 3], marker="s", lw=0,
                       label=f"basin {names[j] if j < 3 else j}: {100 * cov[j]:.0f} %")
        simplex_frame(ax)
        paths = toy["paths"]
        simplex_path(ax, paths[:, 0], color=GREEN, lw=1.3, label="from uniform")
        for j in range(1, paths.shape[1]):
            simplex_path(ax, paths[:, j], color=ORANGE, lw=0.9, label="other starts" if j == 1 else None)
        simplex_points(ax, toy["att"], color=BLUE, s=22, zorder=6, label="attractors")
        simplex_points(ax, toy["sad"], color="black", marker="x", s=22, zorder=6, label="saddles")
        if len(toy["rep"]):
            simplex_points(ax, toy["rep"], facecolor="white", edgecolor="black", s=20, zorder=6, label="repeller")
        ax.legend(frameon=False, fontsize=5, loc="upper left", bbox_to_anchor=(-0.12, 1.05))
        ax.set_title("(a) the book's figure, reproduced\n(anchors chosen to draw it: not evidence)", fontsize=6.5)
        ax = axes[1]
        top = max(rnd["cv_correct"] + rnd["cv_wrong_min"] + ctl["cv_correct"] + ctl["cv_wrong_min"] + [0.1]) * 1.05
        ax.plot([0, top], [0, top], color="grey", lw=0.6, ls="--")
        ax.scatter(rnd["cv_correct"], rnd["cv_wrong_min"], s=7, color=VERMILLION, lw=0,
                   label=f"random fields ({rnd['n_usable']})")
        ax.scatter(ctl["cv_correct"], ctl["cv_wrong_min"], s=7, color=BLUE, marker="^", lw=0,
                   label=f"control: round correct, squashed wrong ({ctl['n_usable']})")
        ax.set_xlim(0, top)
        ax.set_ylim(0, top)
        ax.set_xlabel("eigenvalue CV at the correct (deepest) attractor")
        ax.set_ylabel("smallest CV at a wrong attractor")
        ax.set_title("(b) above the diagonal: the remark holds", fontsize=7)
        ax.legend(frameon=False, fontsize=5.5, loc="upper left")
        ax = axes[2]
        bars = [("random\nEuclid", rnd, "euclid", VERMILLION), ("random\nFisher", rnd, "fisher", ORANGE),
                ("control\nEuclid", ctl, "euclid", BLUE)]
        for i, (_, s, geo, col) in enumerate(bars):
            f, (a, b) = s[f"fraction_{geo}"], s[f"fraction_{geo}_ci95"]
            ax.bar(i, f, 0.6, color=col, yerr=[[f - a], [b - f]], capsize=2)
            ax.plot([i - 0.3, i + 0.3], [s["chance_rate"]] * 2, color=BLACK, lw=1, ls=":",
                    label="chance (1/#attractors)" if i == 0 else None)
        ax.axhline(HOLD, color="grey", lw=0.8, ls="--", label=f"threshold {HOLD:g}")
        ax.set_xticks(range(3), [b[0] for b in bars], fontsize=6)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("fraction of fields where it holds (95 % CI)")
        ax.set_title("(c) verdict: " + verdict, fontsize=7)
        ax.legend(frameon=False, fontsize=5.5, loc="upper left")
    ctx.savefig(fig, "reasoning_field")

    def pct(x):
        return f"{100 * x:.0f} %"

    wrong = toy["wrong"]
    return Result(
        verdict=verdict,
        numbers={
            "claim_kind": "empirical",
            "n_draws": n_draws, "n_usable": rnd["n_usable"],
            "fraction_holds": rnd["fraction_euclid"], "fraction_holds_ci95": rnd["fraction_euclid_ci95"],
            "chance_rate": rnd["chance_rate"],
            "fraction_holds_fisher": rnd["fraction_fisher"], "fraction_holds_fisher_ci95": rnd["fraction_fisher_ci95"],
            "median_eigen_cv_euclid": rnd["median_cv_euclid"], "median_eigen_cv_fisher": rnd["median_cv_fisher"],
            "rank_corr_cv_confidence": rnd["rank_corr_cv_confidence"],
            "cv_correct": rnd["cv_correct"], "cv_wrong_min": rnd["cv_wrong_min"],
            "control_n_draws": n_ctrl, "control_n_usable": ctl["n_usable"],
            "control_fraction_holds": ctl["fraction_euclid"],
            "control_fraction_holds_ci95": ctl["fraction_euclid_ci95"],
            "control_chance_rate": ctl["chance_rate"],
            "control_cv_correct": ctl["cv_correct"], "control_cv_wrong_min": ctl["cv_wrong_min"],
            "hold_threshold": HOLD, "tau_range": list(TAU_RANGE),
            "toy": {"kind": "reproduction", "fixed_points": torch.cat([toy["att"], toy["sad"], toy["rep"]]).tolist(),
                    "n_attractors": len(toy["att"]), "n_saddles": len(toy["sad"]), "n_repellers": len(toy["rep"]),
                    "coverage": cov, "coverage_stderr": diag.coverage_stderr.tolist(),
                    "separation_kl": diag.separation_kl.tolist(), "boundary_kl": diag.boundary_kl,
                    "uniformity_cv": diag.uniformity_cv, "uniform_reaches_correct": toy["uniform_to_correct"],
                    "n_samples": diag.n_samples},
        },
        threshold=f"the remark (CV of |eigenvalues| smaller at the deepest attractor than at every other) holds in a "
                  f"fraction of random fields whose 95 % Wilson interval lies above {HOLD:g} ⇒ holds, below ⇒ fails, "
                  f"containing it ⇒ inconclusive; decided only if the control's interval lies above {HOLD:g}.",
        explanation=(
            f"Of {n_draws} random three-well fields (F = −P_T∇E, random anchors, weights and τ), {rnd['n_usable']} "
            f"have two or more attractors; in {pct(rnd['fraction_euclid'])} of them (95 % CI "
            f"{pct(lo)}–{pct(hi)}) the deepest attractor has the roundest spectrum, against "
            f"{pct(rnd['chance_rate'])} for a property unrelated to which attractor is correct. With the Fisher "
            f"natural-gradient Jacobian at the same zeros the wells are rounder (median CV "
            f"{rnd['median_cv_fisher']:.3f} against {rnd['median_cv_euclid']:.2f} Euclidean) and the fraction is "
            f"{pct(rnd['fraction_fisher'])}. The Euclidean CV goes with how confident the attractor is (rank "
            f"correlation {rnd['rank_corr_cv_confidence']:.2f} between an attractor's CV and its largest coordinate; "
            f"a KL well's Hessian is diag(1/a), round only at the centre). The control, built with a round correct well and squashed wrong ones, comes out holding in "
            f"{pct(ctl['fraction_euclid'])} of {ctl['n_usable']} fields (CI {pct(ctl['fraction_euclid_ci95'][0])}–"
            f"{pct(ctl['fraction_euclid_ci95'][1])}). The book's figure (panel a) is reproduced with its anchors: "
            f"{len(toy['att'])} attractors, {len(toy['sad'])} saddles, basin coverage "
            f"{', '.join(pct(c) for c in cov)} (correct first), KL {float(diag.separation_kl[wrong].min()):.2f} to the "
            f"nearest wrong attractor but {diag.boundary_kl:.3f} to its own basin boundary; ‖F‖ CV "
            f"{diag.uniformity_cv:.2f}."
        ),
        corrected=(
            "The roundness of an attractor's spectrum does not tell a correct attractor from a wrong one: in the "
            "Euclidean geometry it reflects how confident the attractor's belief is (wells near the centre of the "
            "simplex are round, wells near an edge squashed), in the Fisher geometry every isolated KL well is "
            "round. Which attractor is correct has to be measured (basin coverage, distance to the basin boundary), "
            "not read off the eigenvalues."
        ) if verdict == "fails" else None,
    )
