"""ch08.verifier_threshold — when does a verifier remove a wrong attractor (the book's ch08 Theorem 2)?

The book: p_wrong stops being a fixed point of F + η_v∇V once ‖η_v∇V(p_wrong)‖ > max|Re λ(J)|·diam(B).
What happens: for any η_v > 0 the old point is no longer a fixed point, but the attractor only moves
(implicit function theorem) and disappears at a saddle-node bifurcation, which pseudo-arclength
continuation (``terrainlab.dynamics.continuation``) locates. Two systems: the 1-D double well
E = (x² − 1)² + 0.3x with a constant push (V(x) = −x), and the multi-well reasoning field of
ch08.reasoning_field with a verifier that penalises belief in the plausible error, V(p) = −p₂.
diam(B) is read as the distance from the wrong attractor to the nearest saddle.

A theorem check (``claim_kind`` "theorem-check"): the saddle-node point is a property of the field, computed;
no seeds (the random starts only locate the toy's fixed points).

Control: a 1-D field whose restoring force is linear all the way to the edge of the basin,
F(x) = −λx(1 − (x/d)^``CONTROL_POWER``) + η_v (attractor 0, saddle d, J = −λ, diam = d): there the push has to
beat max|F| ≈ λd over the basin, so the book's |λ|·diam is right, and the same measurement (continuation's fold
against the book's threshold) must say "holds" (``control_verdict``); else the verdict is inconclusive (the
measurement could not tell a right threshold from a wrong one).

Verdict (:func:`decide_verifier_threshold`): inconclusive when the control's ratio is off by more than
``RATIO_TOL``; holds when the book's threshold is within ``RATIO_TOL`` of the fold in both systems; fails when it
is not in either.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from terrainlab.atlas import Context, Result, experiment
from terrainlab.atlas.chapters._digits import one_thread
from terrainlab.atlas.chapters.ch08.reasoning_field import multiwell
from terrainlab.belief import GradientField, simplex_fixed_points, tangent_project
from terrainlab.dynamics import continuation, jacobian, simplex_tangent_basis
from terrainlab.plotting import BLUE, GREEN, VERMILLION, figure, style

RATIO_TOL = 0.25
CONTROL_LAMBDA, CONTROL_D, CONTROL_POWER = 2.0, 1.0, 40  # the control's linear-to-the-edge well


def decide_verifier_threshold(eta_fold: float, eta_book: float, control_ratio: float | None = None) -> str:
    """holds when the book's threshold is within ``RATIO_TOL`` (relative) of the saddle-node point
    found by continuation; fails otherwise (or when no fold exists but the book predicts one);
    inconclusive when the control's ratio book/fold (a field where the book's formula is right) is
    given and off by more than ``RATIO_TOL``.

    >>> decide_verifier_threshold(1.24, 6.25, control_ratio=1.1)
    'fails'
    >>> decide_verifier_threshold(1.24, 6.25, control_ratio=3.0)
    'inconclusive'
    """
    for name, v in (("eta_fold", eta_fold), ("eta_book", eta_book)):
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise ValueError(f"{name} must be a number (NaN or inf: no fold / no threshold), got {v!r}")
    if control_ratio is not None:
        if not isinstance(control_ratio, (int, float)) or isinstance(control_ratio, bool):
            raise ValueError(f"control_ratio must be a number or None, got {control_ratio!r}")
        if not (math.isfinite(control_ratio) and abs(control_ratio - 1) <= RATIO_TOL):
            return "inconclusive"
    if not math.isfinite(eta_fold):
        return "fails" if math.isfinite(eta_book) else "inconclusive"
    return "holds" if abs(eta_book / eta_fold - 1) <= RATIO_TOL else "fails"


def control_fold() -> dict:
    """The control: the fold of F(x) = −λx(1 − (x/d)^p) + η_v by continuation from the attractor x = 0, and the
    book's threshold |J|·diam = λ·d (|∇V| = 1)."""
    lam, d, pw = CONTROL_LAMBDA, CONTROL_D, CONTROL_POWER

    def F(x, mu):
        return -lam * x * (1 - (x / d) ** pw) + mu

    res = continuation(F, torch.tensor([0.0], dtype=torch.float64), 0.0, ds=0.05, steps=400, mu_bounds=(-0.05, 10.0))
    fold = res.folds[0].mu if res.folds else math.nan
    book = lam * d
    return {"result": res, "eta_fold": fold, "eta_book": book, "ratio": book / fold if fold else math.inf,
            "x_fold": float(res.folds[0].x[0]) if res.folds else math.nan}


def _double_well_dE(x):
    return 4 * x * (x ** 2 - 1) + 0.3


@experiment(
    id="ch08.verifier_threshold",
    chapter=8,
    title="A verifier removes a wrong attractor only at a saddle-node bifurcation",
    claim="Theorem 2: if ‖η_v∇V(p_wrong)‖ > max|Re λ(J)|·diam(B), the wrong answer is no longer a fixed "
          "point of the verified field F + η_v∇V.",
)
def verifier_threshold(ctx: Context) -> Result:
    with one_thread():  # tiny batched tensors: one thread is many times faster on a shared host
        return _verifier_threshold(ctx)


def _verifier_threshold(ctx: Context) -> Result:
    dt = torch.float64
    # --- 1-D double well
    F1 = lambda x, mu: -_double_well_dE(x) - mu  # noqa: E731
    xw = torch.tensor([0.96], dtype=dt)
    res1 = continuation(F1, xw, 0.0, ds=0.1 if ctx.quick else 0.05, steps=400, mu_bounds=(-0.05, 10.0))
    fold1 = res1.folds[0].mu if res1.folds else math.nan
    x_w = float(res1.branch_x[0, 0])
    J_w = float(-(12 * x_w ** 2 - 4))
    roots = np.roots([4, 0, -4, 0.3])
    saddle = float(sorted(r.real for r in roots if abs(r.imag) < 1e-12)[1])
    book1 = abs(J_w) * abs(x_w - saddle)  # |∇V| = 1

    # --- simplex: multi-well reasoning field, verifier V(p) = −p₂
    E = multiwell(dt)
    G = GradientField(E)
    B = simplex_tangent_basis(3, dtype=dt)
    c = torch.full((3,), 1 / 3, dtype=dt)
    e2 = torch.tensor([0.0, 1.0, 0.0], dtype=dt)
    gradV = tangent_project(-e2)

    def Fs(x, mu):
        p = c + x @ B.T
        return (G(p) + mu * gradV) @ B

    fp = simplex_fixed_points(G, 3, n_starts=150, generator=ctx.generator(3))
    att = fp.points[[k == "attractor" for k in fp.kinds]]
    sad = fp.points[[k == "saddle" for k in fp.kinds]]
    pw = att[(att - E.anchors[1]).norm(dim=-1).argmin()]
    res2 = continuation(Fs, (pw - c) @ B, 0.0, ds=0.015, steps=2000, mu_bounds=(-0.05, 20.0))
    fold2 = res2.folds[0].mu if res2.folds else math.nan
    Jw = jacobian(G, pw[None], basis=B)[0]
    lam = torch.linalg.eigvals(Jw).real
    diam = float((sad - pw).norm(dim=-1).min())
    book2 = float(lam.abs().max()) * diam / float(gradV.norm())
    # the attractor moves before it vanishes: displacement at half the fold value
    half = [i for i in range(len(res2.branch_mu)) if float(res2.branch_mu[i]) <= 0.5 * fold2 and bool(res2.stable[i])]
    moved = float((res2.branch_x[half[-1]] - res2.branch_x[0]).norm()) if half else math.nan

    ctl = control_fold()
    control_verdict = decide_verifier_threshold(ctl["eta_fold"], ctl["eta_book"])
    v1 = decide_verifier_threshold(fold1, book1, control_ratio=ctl["ratio"])
    v2 = decide_verifier_threshold(fold2, book2, control_ratio=ctl["ratio"])
    verdict = "inconclusive" if "inconclusive" in (v1, v2) else "fails" if "fails" in (v1, v2) else "holds"

    with style():
        fig, axes = figure("double", height=2.7, ncols=3, layout="constrained")
        for ax, res, fold, book, lab, ylab in (
            (axes[0], res1, fold1, book1, "(a) double well + constant push", "fixed point x*"),
            (axes[1], res2, fold2, book2, "(b) reasoning field + verifier V = −p₂", "wrong-answer belief p₂ at the fixed point"),
            (axes[2], ctl["result"], ctl["eta_fold"], ctl["eta_book"],
             f"(c) control: F = −{CONTROL_LAMBDA:g}x(1 − x^{CONTROL_POWER}) + η_v, linear to the edge", "fixed point x*"),
        ):
            mu = res.branch_mu.numpy()
            y = res.branch_x[:, 0].numpy() if res is not res2 else (c + res.branch_x @ B.T)[:, 1].numpy()
            st = res.stable.numpy()
            ys = np.where(st, y, np.nan)
            yu = np.where(~st, y, np.nan)
            ax.plot(mu, ys, color=BLUE, label="stable branch (wrong attractor)")
            ax.plot(mu, yu, color=BLUE, ls="--", label="unstable branch (saddle)")
            ax.axvline(fold, color=GREEN, lw=1, label=f"saddle-node (continuation): η_v = {fold:.3f}")
            ax.axvline(book, color=VERMILLION, lw=1, ls=":", label=f"book's threshold: η_v = {book:.2f}")
            ax.set_xlim(-0.05, max(book, fold) * 1.1)
            ax.set_xlabel("verifier strength η_v")
            ax.set_ylabel(ylab)
            ax.set_title(lab, fontsize=7)
            ax.legend(frameon=False, fontsize=5.5)
    ctx.savefig(fig, "verifier_threshold")

    return Result(
        verdict=verdict,
        numbers={"claim_kind": "theorem-check",
                 "control_field": f"F(x) = −{CONTROL_LAMBDA:g}x(1 − (x/{CONTROL_D:g})^{CONTROL_POWER}) + η_v",
                 "control_eta_fold": ctl["eta_fold"], "control_eta_book": ctl["eta_book"],
                 "control_ratio": ctl["ratio"], "control_x_fold": ctl["x_fold"], "control_verdict": control_verdict,
                 "double_well": {"x_wrong": x_w, "jacobian": J_w, "x_saddle": saddle, "eta_fold": fold1,
                                 "eta_book": book1, "ratio": book1 / fold1, "continuation_steps": res1.n_steps},
                 "simplex": {"p_wrong": pw.tolist(), "eigenvalues": lam.tolist(), "dist_to_saddle": diam,
                             "grad_V_norm": float(gradV.norm()), "eta_fold": fold2, "eta_book": book2,
                             "ratio": book2 / fold2, "displacement_at_half_fold": moved,
                             "fold_point": (c + res2.folds[0].x @ B.T).tolist() if res2.folds else None,
                             "continuation_steps": res2.n_steps}},
        threshold=(f"book's η_v within {100 * RATIO_TOL:.0f} % of the continuation's saddle-node point in both systems "
                   f"(holds), off by more in either (fails); decided only if it is within {100 * RATIO_TOL:.0f} % on the "
                   "control field, linear to the basin edge"),
        explanation=(
            f"Double well: the wrong minimum x = {x_w:.3f} (J = {J_w:.2f}) persists, displaced, until the saddle-node "
            f"at η_v = {fold1:.3f}; the book's condition with diam(B) = distance to the saddle ({abs(x_w - saddle):.3f}) "
            f"asks for η_v > {book1:.2f}, {book1 / fold1:.1f}× too large. Reasoning field: the plausible-error "
            f"attractor (eigenvalues {', '.join(f'{v:.2f}' for v in lam.tolist())}) moves by {moved:.3f} at half the "
            f"fold strength and vanishes at η_v = {fold2:.3f}, where the book predicts {book2:.2f} "
            f"({book2 / fold2:.1f}×). For any η_v > 0 the original point stops being a fixed point — trivially — but "
            f"the attractor survives, moved, up to the fold. Control: for a restoring force linear up to the basin edge "
            f"the same measurement finds the fold at η_v = {ctl['eta_fold']:.3f} against the book's {ctl['eta_book']:.2f} "
            f"({ctl['ratio']:.2f}×: {control_verdict}) — the formula is right only when the field stays linear across "
            f"the whole basin."
        ),
        corrected=("A verifier push moves a hyperbolic wrong attractor continuously (implicit function theorem); it "
                   "disappears only at a saddle-node bifurcation, where the push cancels the restoring field along "
                   "the whole path to the saddle; locate it by continuation in η_v, not by |λ|·diam(B)."),
    )
