"""ch08.wrong_attractors — do frequent wrong answers carve attractors (the book's ch08 Theorem 1)?

In belief space the training energy is the expected cross-entropy E(p) = E_{y∼q}[−log p_y] =
H(q) + KL(q‖p), strictly convex on the simplex with the single minimiser p = q (Gibbs' inequality),
however frequent the wrong label is. Measured for wrong-label frequencies r up to 0.45: the zeros of
the (natural-)gradient field found by ``find_fixed_points``, where projected gradient descent from
Dirichlet(1) starts ends, and the smallest tangent-Hessian eigenvalue over the simplex. Where
bistability really arises: iterated self-conditioning, the map Φ_β(p) = softmax(β·p + log q) (the
belief fed back into the model); the number of attractors of the map against the feedback gain β.

A theorem check (``claim_kind`` "theorem-check": Gibbs' inequality makes the energy strictly convex, so the
count cannot come out otherwise; the counterexample is what is shown). No seeds: the random starts only
locate fixed points.

The minima are also counted from the Fisher-flow orbits themselves (:func:`endpoint_minima`: their distinct
endpoints that are attractors by the tangent Jacobian). Control: that orbit measurement (distinct attracting
endpoints, share of orbits that end at the global minimiser) on a non-convex energy where wrong attractors DO
exist — the book's three-well reasoning energy (``ch08.reasoning_field.multiwell``); the same rule must say
"holds" there (``control_verdict``), else the verdict is inconclusive (the measurement could not see a second
minimum).

Verdict (:func:`decide_wrong_attractors`): inconclusive unless the control has ≥ 2 minima; holds when a frequent
wrong label creates a second minimum; fails when every frequency gives one minimum with ≥ ``CONVERGED_MIN`` of
the starts ending at q; inconclusive otherwise.
"""

from __future__ import annotations

import numpy as np
import torch

from terrainlab.atlas import Context, Result, experiment
from terrainlab.atlas.chapters._digits import one_thread
from terrainlab.atlas.chapters.ch08.reasoning_field import multiwell
from terrainlab.belief import (
    CrossEntropyEnergy,
    GradientField,
    orbit,
    sample_dirichlet,
    simplex_fixed_points,
    tangent_basis,
)
from terrainlab.belief.plotting import simplex_field_map, simplex_frame, simplex_points
from terrainlab.core import Simplex
from terrainlab.dynamics import (
    classify_flow,
    dirichlet_starts,
    find_fixed_points,
    jacobian,
    simplex_tangent_basis,
)
from terrainlab.plotting import BLUE, GREEN, ORANGE, VERMILLION, figure, style

RATES = (0.05, 0.15, 0.3, 0.45)
CONVERGED_MIN = 0.99  # "every start ends at the minimiser"
CONVERGED_TOL = 1e-4  # an orbit has ended at a point when its max-norm distance is below this


def label_freqs(r: float, dtype=torch.float64) -> torch.Tensor:
    """Correct label 0 with frequency 1 − r − 0.05, the systematic wrong label 1 with r, noise 0.05."""
    return torch.tensor([1 - r - 0.05, r, 0.05], dtype=dtype)


def decide_wrong_attractors(max_minima_cross_entropy: int, frac_converged_min: float,
                            max_attractors_feedback: int, control_n_minima: int | None = None,
                            converged_min: float = CONVERGED_MIN) -> str:
    """fails when the cross-entropy energy has a single minimum (≥ ``converged_min`` of the starts
    converge to q) for every wrong-label frequency — the theorem's mechanism does not create
    attractors — and says so even if self-feedback creates several; holds if a frequent wrong label
    creates a second minimum; inconclusive otherwise, and whenever the control (a non-convex energy,
    ``control_n_minima`` zeros found) shows fewer than 2 minima: the measurement could not see one.

    >>> decide_wrong_attractors(1, 1.0, 3, control_n_minima=3)
    'fails'
    >>> decide_wrong_attractors(1, 1.0, 3, control_n_minima=1)
    'inconclusive'
    """
    for name, v in (("max_minima_cross_entropy", max_minima_cross_entropy),
                    ("max_attractors_feedback", max_attractors_feedback)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise ValueError(f"{name} must be a non-negative int, got {v!r}")
    if control_n_minima is not None and (not isinstance(control_n_minima, int) or control_n_minima < 0):
        raise ValueError(f"control_n_minima must be a non-negative int or None, got {control_n_minima!r}")
    if not (isinstance(frac_converged_min, (int, float)) and 0 <= frac_converged_min <= 1):
        raise ValueError(f"frac_converged_min must be a fraction in [0, 1], got {frac_converged_min!r}")
    if control_n_minima is not None and control_n_minima < 2:
        return "inconclusive"
    if max_minima_cross_entropy >= 2:
        return "holds"
    if frac_converged_min >= converged_min:
        return "fails"
    return "inconclusive"


def orbit_minima(E, starts: torch.Tensor) -> dict:
    """Where the Fisher gradient flow of an energy E over Δ² goes (Euler, η = 0.5, 200 steps from ``starts``):
    the distinct endpoints (max-norm ``CONVERGED_TOL`` apart) that are attractors of F = −G⁻¹∇E by their tangent
    Jacobian (the minima the orbits find), and the share of orbits that end at the global minimiser (the
    attractor of lowest E)."""
    F = GradientField(E, natural=True)
    return endpoint_minima(E, orbit(F, starts, 0.5, 200, proj="euclid", record="last").final)


def endpoint_minima(E, fin: torch.Tensor) -> dict:
    """:func:`orbit_minima` from the orbits' endpoints ``fin`` (N, 3)."""
    F = GradientField(E, natural=True)
    uniq: list[torch.Tensor] = []
    for x in fin[torch.isfinite(fin).all(-1)]:
        if all(float((x - u).abs().max()) > CONVERGED_TOL for u in uniq):
            uniq.append(x)
    U = torch.stack(uniq)
    kinds = classify_flow(torch.linalg.eigvals(jacobian(F, U, basis=simplex_tangent_basis(3, dtype=U.dtype))))
    att = U[[k == "attractor" for k in kinds]]
    best = att[E(att).argmin()] if len(att) else torch.full((3,), float("nan"), dtype=fin.dtype)
    return {"n_minima": len(att), "attractors": att, "finals": fin,
            "frac_converged": float(((fin - best).abs().amax(-1) < CONVERGED_TOL).to(fin.dtype).mean())}


@experiment(
    id="ch08.wrong_attractors",
    chapter=8,
    title="Frequent wrong answers do not create attractors in belief space",
    claim="Theorem 1: with E(p) = E[−log p_y], any sufficiently frequent wrong pattern creates a local "
          "minimum of E, hence a wrong attractor of F = −∇E.",
)
def wrong_attractors(ctx: Context) -> Result:
    with one_thread():  # tiny batched tensors: one thread is many times faster on a shared host
        return _wrong_attractors(ctx)


def _wrong_attractors(ctx: Context) -> Result:
    dt = torch.float64
    g = ctx.generator(21)
    n = 400 if ctx.quick else 1000
    n_minima, frac_conv, frac_conv_pgd, min_eig, finals, n_minima_orbits = [], [], [], [], {}, []
    B = tangent_basis(3, dtype=dt)
    samples = sample_dirichlet(4000, 3, generator=g, dtype=dt).clamp(min=1e-6)
    samples = samples / samples.sum(-1, keepdim=True)
    for r in RATES:
        q = label_freqs(r)
        E = CrossEntropyEnergy(q)
        fp = simplex_fixed_points(GradientField(E, natural=True), 3, n_starts=60, generator=g)
        n_minima.append(sum(k == "attractor" for k in fp.kinds))
        starts = sample_dirichlet(n, 3, generator=g, dtype=dt)
        # the gradient flow in the Fisher metric, p' = q − p (Euler, η = 0.5)
        fin = orbit(GradientField(E, natural=True), starts, 0.5, 200, proj="euclid", record="last").final
        finals[r] = fin
        n_minima_orbits.append(endpoint_minima(E, fin)["n_minima"])
        frac_conv.append(float(((fin - q).abs().amax(-1) < CONVERGED_TOL).to(dt).mean()))
        # and the book's Def. 2, Euclidean projected gradient descent at a small step
        fin2 = orbit(GradientField(E), starts, 0.01, 1500 if ctx.quick else 2000, proj="euclid", record="last").final
        frac_conv_pgd.append(float(((fin2 - q).abs().amax(-1) < CONVERGED_TOL).to(dt).mean()))
        H = B.T @ torch.diag_embed(q / samples ** 2) @ B  # ∇²E = diag(q/p²) on the tangent space
        min_eig.append(float(torch.linalg.eigvalsh(H)[:, 0].min()))

    # self-conditioning map: Φ_β(p) = softmax(β p + log q), q with the most frequent wrong label
    q = label_freqs(RATES[-1])
    betas = np.linspace(0, 8, 9 if ctx.quick else 13)
    n_att, branch = [], []
    for b in betas:
        s = dirichlet_starts(3, 80 if ctx.quick else 100, g, dtype=dt) * 0.98 + 0.02 / 3
        res = find_fixed_points(lambda p, b=float(b): torch.softmax(b * p + torch.log(q), -1), s, kind="map",
                                geometry=Simplex("euclid"))
        atts = [p for p, k in zip(res.points, res.kinds) if k == "attractor"]
        n_att.append(len(atts))
        for p, k in zip(res.points, res.kinds):
            if k in ("attractor", "saddle", "repeller"):
                branch.append((float(b), float(p[1]), k))
    beta_c = float(betas[np.argmax(np.array(n_att) >= 2)]) if max(n_att) >= 2 else float("nan")

    # control: the same measurements on the non-convex three-well energy, where wrong attractors exist
    ctl = orbit_minima(multiwell(dt), sample_dirichlet(n // 4, 3, generator=g, dtype=dt))
    control_verdict = decide_wrong_attractors(ctl["n_minima"], ctl["frac_converged"], 0)
    verdict = decide_wrong_attractors(max(n_minima + n_minima_orbits), min(frac_conv), max(n_att),
                                      control_n_minima=ctl["n_minima"])

    with style():
        fig, axes = figure("double", height=2.8, ncols=2, layout="constrained")
        ax = axes[0]
        qh = label_freqs(RATES[-1])
        simplex_field_map(ax, lambda P: CrossEntropyEnergy(qh)(P) - CrossEntropyEnergy(qh)(qh), log=True, n=80,
                          levels=16, vmin=1e-3, vmax=5, cmap="Greys_r")
        simplex_frame(ax, labels=("correct", "wrong", "other"))
        cols = (BLUE, GREEN, ORANGE, VERMILLION)
        for r, c in zip(RATES, cols):
            simplex_points(ax, finals[r][:200], color=c, s=30, marker="o", alpha=0.6,
                           label=f"r = {r}: {100 * frac_conv[RATES.index(r)]:.0f} % of starts end at q")
        simplex_points(ax, ctl["attractors"], color="black", marker="^", s=28, zorder=7,
                       label=f"control (three-well energy): {ctl['n_minima']} minima, "
                             f"{100 * ctl['frac_converged']:.0f} % of starts at the deepest")
        ax.legend(frameon=False, fontsize=5.5, loc="upper center", bbox_to_anchor=(0.5, 0.03))
        ax.set_title("(a) cross-entropy in belief space: one minimum, p = q", fontsize=7)
        ax = axes[1]
        for kind, c, mk in (("attractor", BLUE, "o"), ("saddle", "black", "x"), ("repeller", VERMILLION, "s")):
            pts = [(b, y) for b, y, k in branch if k == kind]
            if pts:
                ax.plot(*zip(*pts), mk, color=c, ms=3.5, ls="none", label=kind)
        ax.axhline(float(q[1]), color="grey", ls=":", lw=0.8, label=f"wrong-label frequency {float(q[1])}")
        ax.set_xlabel("feedback gain β in Φ(p) = softmax(βp + log q)")
        ax.set_ylabel("fixed point's wrong-answer belief p₂")
        ax.set_title(f"(b) self-conditioning: bistable for β ≥ {beta_c:g}", fontsize=7)
        ax.legend(frameon=False, fontsize=6, loc="upper left")
    ctx.savefig(fig, "wrong_attractors")

    return Result(
        verdict=verdict,
        numbers={"claim_kind": "theorem-check", "rates": list(RATES), "n_minima_cross_entropy": n_minima,
                 "n_minima_cross_entropy_orbit_endpoints": n_minima_orbits, "frac_converged_to_q": frac_conv,
                 "frac_converged_projected_gd_eta_0.01": frac_conv_pgd,
                 "min_tangent_hessian_eig": min_eig, "n_starts": n, "feedback_betas": betas.tolist(),
                 "feedback_n_attractors": n_att, "feedback_beta_bistable": beta_c,
                 "control_energy": "three-well reasoning energy (ch08.reasoning_field.multiwell)",
                 "control_n_minima": ctl["n_minima"], "control_minima": ctl["attractors"].tolist(),
                 "control_frac_converged_to_deepest": ctl["frac_converged"], "control_verdict": control_verdict},
        threshold=f"a second minimum for some wrong-label frequency (holds) vs one minimum with ≥ {100 * CONVERGED_MIN:g} % "
                  "of starts at q for all frequencies (fails); decided only if the same measurement finds ≥ 2 minima on "
                  "the control's three-well energy",
        explanation=(
            f"For wrong-label frequencies {', '.join(str(r) for r in RATES)} the cross-entropy energy has "
            f"{', '.join(str(m) for m in n_minima)} zero(s) of its gradient field on the simplex, all attractors at "
            f"p = q, and {', '.join(f'{100 * f:.0f} %' for f in frac_conv)} of {n} random starts of the (Fisher) "
            f"gradient flow end there (projected Euclidean GD at η = 0.01: "
            f"{', '.join(f'{100 * f:.0f} %' for f in frac_conv_pgd)}; the rest land on the boundary, where the "
            f"unbounded gradient −q/p makes the iterate non-finite; none is caught by another minimum); the tangent Hessian diag(q/p²) is positive definite everywhere (smallest eigenvalue "
            f"over 4000 samples {min(min_eig):.3f}). A frequent wrong label only moves the single minimum toward the "
            f"mixture. Bistability needs feedback: iterating Φ_β(p) = softmax(βp + log q) has "
            f"{max(n_att)} attractors for β ≥ {beta_c:g} (one for small β), a wrong attractor created by a "
            f"saddle-node bifurcation of the self-conditioning map, not by label frequency. Control: the same "
            f"measurement on the non-convex three-well energy finds {ctl['n_minima']} minima and "
            f"{100 * ctl['frac_converged']:.0f} % of starts at the deepest one (rule: {control_verdict}), so it does see "
            f"wrong attractors where they exist."
        ),
        corrected=("In belief space the expected cross-entropy is strictly convex with the unique minimiser p = q; "
                   "wrong attractors need a non-convex parametrisation (θ-space) or self-feedback dynamics, e.g. "
                   "Φ(p) = softmax(βp + log q) is bistable above a critical gain β."),
    )
