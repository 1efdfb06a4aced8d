"""ch03.sharp_vs_flat — the book's sharp 0.8θ² and flat 0.08θ⁴ minima, measured.

Both losses are wrapped as one-parameter torch modules and measured with the library's own
instruments: the Hessian at the minimum by :class:`HessianOperator` (float64, dense), the loss rise
ΔL(δ) under the same perturbation δ by :func:`terrainlab.landscape.line`, and GD from θ₀ = 1.
Sharpness as the Hessian's size at the minimum (flat minima: Hochreiter & Schmidhuber 1997, "Flat
Minima"; Keskar et al. 2017), and its limits (Dinh et al. 2017, "Sharp Minima Can Generalize for Deep
Nets"): the claim is that λ(0.08θ⁴) < λ(0.8θ²) and ΔL_flat(δ) < ΔL_sharp(δ) for the same δ.

Claim kind: theorem-check (the Hessians of two closed-form polynomials at 0 and the crossing of their
rises at |δ| = √10 are mathematical facts; the instruments are checked against them). Nothing random.

Controls, measured by the same instruments and decided by the same rule:

* equal curvature: 0.8θ² against 0.8θ² + 0.08θ⁴ — the same Hessian 1.6 at the minimum, so the "flat"
  one is not flatter and the rule must read "fails";
* a truly flat quadratic: 0.8θ² against 0.08θ² — non-degenerate, a ten times smaller Hessian and a
  smaller rise for every δ, so the rule must read plain "holds".

Verdict rule (:func:`decide_sharp_vs_flat`): fails if λ_flat ≥ λ_sharp; holds-with-correction if λ_flat
is degenerate (|λ| ≤ 1e-12) or the ΔL curves cross for |δ| ≤ 4; holds otherwise — and "inconclusive"
when either control does not come out as stated above (the measurement could then not tell them apart).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from terrainlab.atlas import Context, Result, experiment
from terrainlab.atlas.chapters._digits import one_thread
from terrainlab.core import Euler, rollout
from terrainlab.curvature import HessianOperator
from terrainlab.landscape import line


class _Poly(torch.nn.Module):
    """L(θ) = Σ coef·θ^power over ``terms`` ((coef, power), ...), or one term ``coef``·θ^``power``."""

    def __init__(self, coef: float = 0.0, power: int = 2, terms: tuple[tuple[float, int], ...] | None = None):
        super().__init__()
        self.terms = tuple(terms) if terms is not None else ((coef, power),)
        self.theta = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))

    def forward(self, _x):
        return sum(c * (self.theta**p).sum() for c, p in self.terms)


def _loss(m, _batch):
    return m(None)


_DATA = [(torch.zeros(1, 1),)]


def decide_sharp_vs_flat(lam_sharp: float, lam_flat: float, crossover: float, delta_max: float,
                         degenerate_tol: float = 1e-12, control_equal: str = "fails",
                         control_quadratic: str = "holds") -> str:
    """holds: the flat minimum has the smaller Hessian eigenvalue, is non-degenerate and its ΔL stays
    below the sharp one over the whole plotted range; holds-with-correction: flat is smaller only
    because its Hessian is degenerate (λ ≤ degenerate_tol) or the ΔL curves cross inside the range;
    fails: the 'flat' minimum has λ ≥ the sharp one; inconclusive: the equal-curvature control
    (``control_equal``, this rule on 0.8θ² vs 0.8θ² + 0.08θ⁴) is not "fails" or the flat-quadratic
    control (``control_quadratic``, 0.8θ² vs 0.08θ²) is not "holds"."""
    for name, v in (("control_equal", control_equal), ("control_quadratic", control_quadratic)):
        if v not in ("holds", "holds-with-correction", "fails", "inconclusive"):
            raise ValueError(f"{name} must be a verdict, got {v!r}")
    if control_equal != "fails" or control_quadratic != "holds":
        return "inconclusive"
    if lam_flat >= lam_sharp:
        return "fails"
    if abs(lam_flat) <= degenerate_tol or crossover <= delta_max:
        return "holds-with-correction"
    return "holds"


def _hessian_at_0(m: _Poly) -> float:
    return float(HessianOperator(m, _loss, _DATA, dtype=torch.float64).to_dense()[0, 0])


def _crossover(d: np.ndarray, dl_sharp: np.ndarray, dl_flat: np.ndarray) -> float:
    """First |δ| > 0 where ΔL_flat rises above ΔL_sharp (linear interpolation of the sign change), inf if never."""
    above = np.nonzero((dl_flat > dl_sharp) & (d > 0))[0]
    if not above.size:
        return float("inf")
    i = int(above[0])
    f0, f1 = dl_flat[i - 1] - dl_sharp[i - 1], dl_flat[i] - dl_sharp[i]
    return float(d[i - 1] + (d[i] - d[i - 1]) * (-f0) / (f1 - f0))


def _gd(coef: float, power: int, eta: float, theta0: float, steps: int) -> np.ndarray:
    """|θ_t| of gradient descent θ ← θ − η·L'(θ) on L = coef·θ^power, run by the core ``rollout``
    (inf once the iterate is no longer finite)."""

    def field(th, t=0.0):  # −L'(θ)
        return -(coef * power) * th ** (power - 1)

    tr = rollout(field, torch.tensor([theta0], dtype=torch.float64), eta=eta, steps=steps, scheme=Euler())
    out = tr.states[:, 0].abs().numpy()
    return np.where(np.isfinite(out), out, np.inf)


@experiment(
    id="ch03.sharp_vs_flat",
    chapter=3,
    title="Sharp 0.8θ² vs flat 0.08θ⁴: what the Hessian sees",
    claim="The flat minimum 0.08θ⁴ has a small Hessian eigenvalue, so the same perturbation raises "
    "its loss less than at the sharp minimum 0.8θ².",
)
def sharp_vs_flat(ctx: Context) -> Result:
    with one_thread():  # small tensors: one thread is several times faster than two on a busy host
        return _sharp_vs_flat(ctx)


def _sharp_vs_flat(ctx: Context) -> Result:
    from terrainlab.plotting import BLUE, VERMILLION, figure, style

    sharp, flat = _Poly(0.8, 2), _Poly(0.08, 4)
    lam = {}
    for name, m in (("sharp", sharp), ("flat", flat)):
        H = HessianOperator(m, _loss, _DATA, dtype=torch.float64)
        lam[name] = float(H.to_dense()[0, 0])
    # Hessian of the quartic away from the minimum: 0.96 θ² (measured at a few θ)
    lam_flat_at = {}
    for th in (0.5, 1.0, 2.0):
        with torch.no_grad():
            flat.theta.fill_(th)
        lam_flat_at[str(th)] = float(HessianOperator(flat, _loss, _DATA).to_dense()[0, 0])
    with torch.no_grad():
        flat.theta.zero_()
    delta_max = 4.0
    n = 81 if ctx.quick else 401
    deltas = torch.linspace(0, delta_max, n, dtype=torch.float64)
    one = torch.ones(1, dtype=torch.float64)
    dl_sharp = line(sharp, _loss, _DATA, one, deltas).losses.numpy()
    dl_flat = line(flat, _loss, _DATA, one, deltas).losses.numpy()
    d = deltas.numpy()
    crossover = _crossover(d, dl_sharp, dl_flat)
    # controls: the same instruments and rule on an equal-curvature pair and on a truly flat quadratic
    controls = {}
    for key, m in (("equal", _Poly(terms=((0.8, 2), (0.08, 4)))), ("quadratic", _Poly(0.08, 2))):
        dl = line(m, _loss, _DATA, one, deltas).losses.numpy()
        lam_c = _hessian_at_0(m)
        cross_c = _crossover(d, dl_sharp, dl)
        controls[key] = {"hessian": lam_c, "crossover_delta": cross_c, "delta_loss": dl,
                         "verdict": decide_sharp_vs_flat(lam["sharp"], lam_c, cross_c, delta_max)}
    # GD from θ0 = 1 with η = 0.5 (stable for both: 2/1.6 = 1.25 > 0.5)
    steps = 2000 if ctx.quick else 20000
    eta = 0.5
    gd_sharp = _gd(0.8, 2, eta, 1.0, steps)
    gd_flat = _gd(0.08, 4, eta, 1.0, steps)
    reach = float(np.argmax(gd_sharp < 1e-6)) if (gd_sharp < 1e-6).any() else float("inf")
    flat_final = float(gd_flat[-1])
    # sublinear rate: |θ_t| ≈ (2·0.32·η·t)^(-1/2) → slope −1/2 on log-log
    tt = np.arange(steps // 10, steps + 1)
    slope = float(np.polyfit(np.log(tt), np.log(gd_flat[tt]), 1)[0])

    with style():
        fig, ax = figure("double", height=2.4, ncols=3)
        th = np.linspace(-4, 4, 400)
        ax[0].plot(th, 0.8 * th**2, color=VERMILLION, label="sharp 0.8θ²")
        ax[0].plot(th, 0.08 * th**4, color=BLUE, label="flat 0.08θ⁴")
        ax[0].plot(th, 0.5 * lam["flat"] * th**2, color=BLUE, ls=":", label=f"½λθ², λ={lam['flat']:.0f}")
        ax[0].set_ylim(0, 14)
        ax[0].set_xlabel("θ")
        ax[0].set_ylabel("L(θ)")
        ax[0].set_title(f"measured Hessian at 0: {lam['sharp']:.2f} vs {lam['flat']:.0f}")
        ax[0].legend(frameon=False)
        ax[1].loglog(d[1:], dl_sharp[1:], color=VERMILLION, label="sharp")
        ax[1].loglog(d[1:], dl_flat[1:], color=BLUE, label="flat")
        ax[1].loglog(d[1:], controls["equal"]["delta_loss"][1:], color="0.35", ls="--", lw=0.9,
                     label=f"CONTROL 0.8θ²+0.08θ⁴ (λ={controls['equal']['hessian']:.1f}): {controls['equal']['verdict']}")
        ax[1].loglog(d[1:], controls["quadratic"]["delta_loss"][1:], color="0.35", ls=":", lw=0.9,
                     label=f"CONTROL 0.08θ² (λ={controls['quadratic']['hessian']:.2f}): "
                     f"{controls['quadratic']['verdict']}")
        if math.isfinite(crossover):
            ax[1].axvline(crossover, color="0.4", ls="--", lw=0.8)
            ax[1].text(crossover * 0.55, dl_sharp[1] * 3, f"cross at |δ|={crossover:.2f}", fontsize=6)
        ax[1].set_xlabel("perturbation |δ|")
        ax[1].set_ylabel("ΔL = L(δ) − L(0)")
        ax[1].set_title("same perturbation, measured ΔL")
        ax[1].legend(frameon=False, fontsize=5.5)
        t = np.arange(steps + 1)
        ax[2].loglog(t[1:], np.maximum(gd_sharp[1:], 1e-300), color=VERMILLION, label="sharp: linear rate")
        ax[2].loglog(t[1:], gd_flat[1:], color=BLUE, label=f"flat: slope {slope:.2f}")
        ax[2].set_ylim(1e-8, 2)
        ax[2].set_xlabel("GD step t (η = 0.5)")
        ax[2].set_ylabel("|θ_t|")
        ax[2].set_title("GD into each minimum")
        ax[2].legend(frameon=False)
    ctx.savefig(fig, "sharp_vs_flat")
    verdict = decide_sharp_vs_flat(lam["sharp"], lam["flat"], crossover, delta_max,
                                   control_equal=controls["equal"]["verdict"],
                                   control_quadratic=controls["quadratic"]["verdict"])
    return Result(
        verdict=verdict,
        numbers={
            "claim_kind": "theorem-check",
            "hessian_sharp": lam["sharp"],
            "hessian_flat": lam["flat"],
            "hessian_flat_away_from_min": lam_flat_at,
            "crossover_delta": crossover,
            "crossover_delta_exact": math.sqrt(10.0),
            "delta_range": delta_max,
            "gd_eta": eta,
            "gd_steps_sharp_to_1e-6": reach,
            "gd_flat_theta_after_steps": flat_final,
            "gd_flat_steps": steps,
            "gd_flat_loglog_slope": slope,
            "control_equal_curvature_hessian": controls["equal"]["hessian"],
            "control_equal_curvature_crossover_delta": controls["equal"]["crossover_delta"],
            "control_equal_curvature_verdict": controls["equal"]["verdict"],
            "control_flat_quadratic_hessian": controls["quadratic"]["hessian"],
            "control_flat_quadratic_crossover_delta": controls["quadratic"]["crossover_delta"],
            "control_flat_quadratic_verdict": controls["quadratic"]["verdict"],
            "control_verdict": {"equal_curvature": controls["equal"]["verdict"],
                                "flat_quadratic": controls["quadratic"]["verdict"]},
        },
        threshold="flat λ < sharp λ; degenerate if |λ_flat| ≤ 1e-12; ΔL curves must not cross for "
        "|δ| ≤ 4 for a plain 'holds'; inconclusive unless the controls read fails (equal curvature "
        "0.8θ²+0.08θ⁴) and holds (flat quadratic 0.08θ²)",
        explanation=(
            f"The measured Hessians at the minima are {lam['sharp']:.3f} (0.8θ²) and {lam['flat']:.1e} "
            f"(0.08θ⁴): the quartic's Hessian is exactly zero, a degenerate minimum, not a 'small "
            f"eigenvalue'. Under the same perturbation the quartic rises less only for |δ| < "
            f"{crossover:.3f} (analytically √10); beyond it the 'flat' minimum is the steeper one. "
            f"Hessian-based sharpness (λ_max, trace) rates the quartic perfectly flat, and GD's "
            f"stability bound 2/λ is infinite there, yet GD with η = {eta} converges only "
            f"sublinearly into it (|θ_t| ∝ t^{slope:.2f}, |θ| = {flat_final:.1e} after {steps} "
            f"steps) while it reaches 1e-6 in {reach:.0f} steps in the quadratic. Controls: against "
            f"0.8θ² + 0.08θ⁴ (Hessian {controls['equal']['hessian']:.2f}, the same as the sharp one) the rule "
            f"reads '{controls['equal']['verdict']}', and against the truly flat quadratic 0.08θ² (Hessian "
            f"{controls['quadratic']['hessian']:.2f}, rise below the sharp one for every δ) it reads "
            f"'{controls['quadratic']['verdict']}': the measurement tells the three cases apart."
        ),
        corrected=(
            "0.08θ⁴ is flatter than 0.8θ² only for perturbations |δ| < √10 ≈ 3.16; its Hessian at the "
            "minimum is zero (degenerate), so second-order sharpness cannot rank the two — compare "
            "finite-perturbation loss rises at the scale of interest instead."
        ) if verdict in ("holds-with-correction", "fails") else None,
    )
