"""ch03.nearest_minimum — does full-batch GD slide into the minimum nearest its start?

Double well L(θ) = θ⁴/4 − 2θ² + θ + 6 (minima ≈ −2.115 and 1.861, maximum ≈ 0.254). "Nearest"
would split the line at the midpoint of the minima (≈ −0.127); the gradient flow splits it at the
maximum (0.254); GD with a finite step has basins of its own, which fragment as η grows and lose the
left minimum altogether once η > 2/L''(−2.115) ≈ 0.212. Basin map from one batched core rollout
(row i runs GD with its own η_i by scaling the field). Measured: for each η, the fraction of settled
runs (starts on a grid of [−3.5, 3.5]) that end in a minimum other than the one nearest their start.

Claim kind: theorem-check (where GD on a fixed closed-form function ends is a mathematical fact; the
map finds the counterexamples). Nothing random: the starts are a grid.

Control: the symmetric double well θ⁴/4 − 2θ² + 6 (minima ±2, maximum at their midpoint 0) in the
gradient-flow regime η ≤ 0.1, where the flow's basin boundary (the maximum) *is* the nearest-minimum
split, so the same measurement must read "holds" (no mismatch); the book's well over the same rows is
reported beside it. If the control shows mismatches, the measurement cannot tell and the verdict is
"inconclusive".

Verdict rule (:func:`decide_nearest_minimum`): fails if at some η more than 1 % of the settled runs end
in a minimum that is not the nearest; holds otherwise; inconclusive when the control's mismatch exceeds 1 %.
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.colors import ListedColormap

from terrainlab.atlas import Context, Result, experiment
from terrainlab.atlas.chapters._digits import one_thread
from terrainlab.core import rollout
from terrainlab.optim import GradientDescentScheme
from terrainlab.plotting import OKABE_ITO, figure, style
from terrainlab.terrains.closed_form import double_well_grad, double_well_loss

MISMATCH_TOL = 0.01
ETA_FLOW = 0.1  # the control's gradient-flow regime: η ≤ this (the symmetric well's basins fragment ≈ 0.12)
OUTCOMES = ("left min", "right min", "not settled", "diverged")


def decide_nearest_minimum(max_mismatch_fraction: float, tol: float = MISMATCH_TOL,
                           control_mismatch_fraction: float = 0.0) -> str:
    """The claim fails if, at some η, more than ``tol`` of the settled runs end in a minimum that is
    not the nearest one to their start; holds otherwise; inconclusive when the control (the symmetric
    well in the flow regime, where nearest = reached) has a mismatch fraction above ``tol`` or a
    fraction is not a number."""
    for name, v in (("max_mismatch_fraction", max_mismatch_fraction),
                    ("control_mismatch_fraction", control_mismatch_fraction)):
        if isinstance(v, (int, float)) and np.isfinite(v) and not 0.0 <= v <= 1.0:
            raise ValueError(f"{name} must be a fraction in [0, 1], got {v!r}")
    if not (np.isfinite(max_mismatch_fraction) and np.isfinite(control_mismatch_fraction)):
        return "inconclusive"
    if control_mismatch_fraction > tol:
        return "inconclusive"
    return "fails" if max_mismatch_fraction > tol else "holds"


def _critical_points():
    r = np.sort(np.roots([1.0, 0.0, -4.0, 1.0]).real)
    return r[0], r[1], r[2]  # left min, max, right min


def _symmetric_grad(x):
    """L'(θ) = θ³ − 4θ of the control's symmetric well θ⁴/4 − 2θ² + 6 (minima ±2, maximum 0)."""
    return x**3 - 4 * x


def basin_map(grad, left: float, right: float, etas: torch.Tensor, th: torch.Tensor, steps: int):
    """Where GD θ ← θ − η·L'(θ) ends from every start in ``th`` at every η in ``etas`` (one batched
    core rollout): an (n_eta, n_th) int array of OUTCOMES indices, and the mismatch fraction per η
    (settled runs ending in the minimum not nearest to their start)."""
    if steps < 1:
        raise ValueError(f"steps must be ≥ 1, got {steps!r}")
    n_eta, n_th = len(etas), len(th)
    th0 = th.repeat(n_eta)[:, None]
    row_eta = etas.repeat_interleave(n_th)[:, None]

    def field(s, t=0.0):
        return -row_eta * grad(s)

    tr = rollout(field, th0, eta=1.0, steps=steps, scheme=GradientDescentScheme(), record="last")
    fin = tr.final[:, 0]
    nxt = rollout(field, tr.final, eta=1.0, steps=1, record="last").final[:, 0]
    finite = torch.isfinite(fin) & (fin.abs() < 1e6)
    still = finite & ((nxt - fin).abs() < 1e-8)
    out = torch.full_like(fin, 2)
    out[still & ((fin - left).abs() < 1e-5)] = 0
    out[still & ((fin - right).abs() < 1e-5)] = 1
    out[~finite] = 3
    out = out.reshape(n_eta, n_th).numpy().astype(int)
    nearest = np.where(np.abs(th.numpy() - left) < np.abs(th.numpy() - right), 0, 1)
    settled = out <= 1
    mism = (settled & (out != nearest[None, :])).sum(1) / np.maximum(settled.sum(1), 1)
    return out, mism


@experiment(
    id="ch03.nearest_minimum",
    chapter=3,
    title="GD basins are not nearest-minimum regions",
    claim="Full-batch gradient descent slides into the minimum nearest to its starting point.",
)
def nearest_minimum(ctx: Context) -> Result:
    with one_thread():  # small elementwise tensors: one thread is ~10× faster than two on a busy machine
        return _nearest_minimum(ctx)


def _nearest_minimum(ctx: Context) -> Result:
    left, top, right = _critical_points()
    n_eta, n_th, steps = (14, 401, 600) if ctx.quick else (36, 1201, 1500)
    etas = torch.linspace(0.01, 0.35, n_eta, dtype=torch.float64)
    th = torch.linspace(-3.5, 3.5, n_th, dtype=torch.float64)
    out, mism = basin_map(double_well_grad, left, right, etas, th, steps)
    e = etas.numpy()
    worst = int(np.argmax(mism))
    # the control: the symmetric well, same grid; decided on the flow-regime rows η ≤ ETA_FLOW
    c_out, c_mism = basin_map(_symmetric_grad, -2.0, 2.0, etas, th, steps)
    flow = e <= ETA_FLOW
    control_mismatch = float(c_mism[flow].max())
    flow_mismatch = float(mism[flow].max())
    control_verdict = decide_nearest_minimum(control_mismatch)

    # named counterexamples
    def one(theta0, eta, n=3000):
        s = torch.tensor([[theta0]], dtype=torch.float64)
        return float(rollout(lambda x, t: -double_well_grad(x), s, eta=eta, steps=n, record="last").final[0, 0])

    ce_flow = one(0.0, 0.01)
    ce_big = one(-3.0, 0.3)
    left_settles_above = bool((out[e > 2 / 9.42 + 1e-3] == 0).any()) if (e > 2 / 9.42).any() else False
    verdict = decide_nearest_minimum(float(mism.max()), control_mismatch_fraction=control_mismatch)

    with style():
        fig, axes = figure("double", height=2.9, ncols=3, gridspec_kw={"width_ratios": [1, 1.25, 1.25]})
        x = np.linspace(-3.5, 3.5, 500)
        axes[0].plot(x, double_well_loss(torch.tensor(x)[:, None]).numpy(), color="k")
        for v, c in ((left, OKABE_ITO[4]), (right, OKABE_ITO[5]), (top, "0.4")):
            axes[0].axvline(v, color=c, lw=0.7, ls="--")
        mid = 0.5 * (left + right)
        axes[0].axvspan(mid, top, color=OKABE_ITO[3], alpha=0.5, lw=0,
                        label=f"nearer the right min, flow goes left\n({mid:.3f} < θ0 < {top:.3f})")
        axes[0].set_xlabel("θ")
        axes[0].set_ylabel("L(θ)")
        axes[0].plot(x, 0.25 * x**4 - 2 * x**2 + 6, color="0.5", ls=":", lw=0.9, label="CONTROL θ⁴/4 − 2θ² + 6")
        axes[0].set_ylim(0, 16)
        axes[0].set_title("double well θ⁴/4 − 2θ² + θ + 6")
        axes[0].legend(frameon=False, fontsize=5.5, loc="upper center")
        cmap = ListedColormap([OKABE_ITO[4], OKABE_ITO[5], "0.8", "0.2"])
        for ax, o, split, title in (
            (axes[1], out, mid, f"book's well: where GD ends ({steps} steps)"),
            (axes[2], c_out, 0.0, f"CONTROL symmetric well: mismatch {100 * control_mismatch:.1f}% for η ≤ {ETA_FLOW}"),
        ):
            ax.imshow(o, aspect="auto", origin="lower", cmap=cmap, vmin=-0.5, vmax=3.5, interpolation="nearest",
                      extent=[th[0].item(), th[-1].item(), e[0], e[-1]])
            ax.axvline(split, color="k", lw=0.8, ls="--", label="nearest-minimum split")
            ax.axhline(ETA_FLOW, color="k", lw=0.8, ls="-.", label=f"flow regime η ≤ {ETA_FLOW}")
            ax.set_xlabel("start θ0")
            ax.set_title(title, fontsize=6.5)
        axes[1].axhline(2 / 9.42, color="w", lw=0.8, ls=":", label="η = 2/L''(left min)")
        axes[1].set_ylabel("step size η")
        for k, name in enumerate(OUTCOMES):
            axes[2].plot([], [], "s", color=cmap(k), label=name)
        axes[1].legend(fontsize=5, loc="upper left", framealpha=0.85)
        axes[2].legend(fontsize=5, loc="upper left", framealpha=0.85)
    ctx.savefig(fig, "nearest_minimum")

    return Result(
        verdict=verdict,
        numbers={
            "claim_kind": "theorem-check",
            "critical_points": [left, top, right], "nearest_split": 0.5 * (left + right),
            "mismatch_fraction_by_eta": {f"{a:.3f}": float(m) for a, m in zip(e, mism)},
            "worst_eta": float(e[worst]), "worst_mismatch_fraction": float(mism[worst]),
            "gd_eta0.01_from_0_ends_at": ce_flow, "gd_eta0.3_from_-3_ends_at": ce_big,
            "left_min_settled_above_its_limit": left_settles_above,
            "flow_regime_eta_max": ETA_FLOW,
            "flow_regime_mismatch_fraction": flow_mismatch,
            "control_well": "theta^4/4 - 2 theta^2 + 6 (minima -2, 2; maximum 0)",
            "control_mismatch_fraction": control_mismatch,
            "control_mismatch_fraction_by_eta": {f"{a:.3f}": float(m) for a, m in zip(e, c_mism)},
            "control_verdict": control_verdict,
        },
        threshold=(f"fails if > {MISMATCH_TOL:.0%} of settled runs at some η end in a minimum that is not the nearest; "
                   f"inconclusive if the control (symmetric well, η ≤ {ETA_FLOW}) exceeds {MISMATCH_TOL:.0%}"),
        explanation=(
            f"Even at η = 0.01 (close to the flow), starts between the midpoint {mid:.3f} and the maximum {top:.3f} "
            f"are nearer the right minimum but roll left (θ0 = 0 ends at {ce_flow:.3f}). As η grows the basins "
            f"fragment; at η = 0.3 GD from θ0 = −3 ends at {ce_big:.3f} (the right minimum), and above "
            f"η = 2/L''(−2.115) ≈ 0.212 no run settles in the left minimum at all. Worst mismatch: "
            f"{100 * mism[worst]:.0f}% of settled runs at η = {e[worst]:.3f}; in the flow regime η ≤ {ETA_FLOW} "
            f"already {100 * flow_mismatch:.1f}%. Control: in the symmetric well θ⁴/4 − 2θ² + 6, whose maximum is "
            f"the midpoint of its minima, the same measurement finds {100 * control_mismatch:.1f}% for η ≤ {ETA_FLOW} "
            f"('{control_verdict}'): the mismatch in the book's well comes from its asymmetry and the finite step, "
            "not from the measurement (the control's basins also fragment at larger η)."
        ),
        corrected=(
            "GD ends in the basin of attraction of its *map* θ ↦ θ − η∇L, not at the nearest minimum: for small η the "
            "basins are split by the maxima (saddles), for larger η they fragment, and minima with L'' > 2/η cannot "
            "be settled in at all."
        ) if verdict == "fails" else None,
    )
