"""ch03.nearest_minimum — does full-batch GD slide into the minimum nearest its start?

Double well L(θ) = θ⁴/4 − 2θ² + θ + 6 (minima ≈ −2.115 and 1.861, maximum ≈ 0.254). "Nearest"
would split the line at the midpoint of the minima (≈ −0.127); the gradient flow splits it at the
maximum (0.254); GD with a finite step has basins of its own, which fragment as η grows and lose the
left minimum altogether once η > 2/L''(−2.115) ≈ 0.212. Basin map from one batched core rollout
(row i runs GD with its own η_i by scaling the field).
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.colors import ListedColormap

from terrainlab.atlas import Context, Result, experiment
from terrainlab.core import rollout
from terrainlab.optim import GradientDescentScheme
from terrainlab.plotting import OKABE_ITO, figure, style
from terrainlab.terrains.closed_form import double_well_grad, double_well_loss

MISMATCH_TOL = 0.01
OUTCOMES = ("left min", "right min", "not settled", "diverged")


def decide_nearest_minimum(max_mismatch_fraction: float, tol: float = MISMATCH_TOL) -> str:
    """The claim fails if, at some η, more than ``tol`` of the settled runs end in a minimum that is
    not the nearest one to their start; holds otherwise."""
    return "fails" if max_mismatch_fraction > tol else "holds"


def _critical_points():
    r = np.sort(np.roots([1.0, 0.0, -4.0, 1.0]).real)
    return r[0], r[1], r[2]  # left min, max, right min


@experiment(
    id="ch03.nearest_minimum",
    chapter=3,
    title="GD basins are not nearest-minimum regions",
    claim="Full-batch gradient descent slides into the minimum nearest to its starting point.",
)
def nearest_minimum(ctx: Context) -> Result:
    left, top, right = _critical_points()
    n_eta, n_th, steps = (14, 401, 600) if ctx.quick else (36, 1201, 1500)
    etas = torch.linspace(0.01, 0.35, n_eta, dtype=torch.float64)
    th = torch.linspace(-3.5, 3.5, n_th, dtype=torch.float64)
    th0 = th.repeat(n_eta)[:, None]
    row_eta = etas.repeat_interleave(n_th)[:, None]

    def field(s, t=0.0):
        return -row_eta * double_well_grad(s)

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
    e = etas.numpy()
    worst = int(np.argmax(mism))

    # named counterexamples
    def one(theta0, eta, n=3000):
        s = torch.tensor([[theta0]], dtype=torch.float64)
        return float(rollout(lambda x, t: -double_well_grad(x), s, eta=eta, steps=n, record="last").final[0, 0])

    ce_flow = one(0.0, 0.01)
    ce_big = one(-3.0, 0.3)
    left_settles_above = bool((out[e > 2 / 9.42 + 1e-3] == 0).any()) if (e > 2 / 9.42).any() else False
    verdict = decide_nearest_minimum(float(mism.max()))

    with style():
        fig, axes = figure("double", height=2.8, ncols=2, gridspec_kw={"width_ratios": [1, 1.6]})
        x = np.linspace(-3.5, 3.5, 500)
        axes[0].plot(x, double_well_loss(torch.tensor(x)[:, None]).numpy(), color="k")
        for v, c in ((left, OKABE_ITO[4]), (right, OKABE_ITO[5]), (top, "0.4")):
            axes[0].axvline(v, color=c, lw=0.7, ls="--")
        mid = 0.5 * (left + right)
        axes[0].axvspan(mid, top, color=OKABE_ITO[3], alpha=0.5, lw=0,
                        label=f"nearer the right min, flow goes left\n({mid:.3f} < θ0 < {top:.3f})")
        axes[0].set_xlabel("θ")
        axes[0].set_ylabel("L(θ)")
        axes[0].set_title("double well θ⁴/4 − 2θ² + θ + 6")
        axes[0].legend(frameon=False, fontsize=6, loc="upper center")
        cmap = ListedColormap([OKABE_ITO[4], OKABE_ITO[5], "0.8", "0.2"])
        axes[1].imshow(out, aspect="auto", origin="lower", cmap=cmap, vmin=-0.5, vmax=3.5, interpolation="nearest",
                       extent=[th[0].item(), th[-1].item(), e[0], e[-1]])
        axes[1].axvline(mid, color="k", lw=0.8, ls="--", label="nearest-minimum split")
        axes[1].axhline(2 / 9.42, color="w", lw=0.8, ls=":", label="η = 2/L''(left min)")
        for k, name in enumerate(OUTCOMES):
            axes[1].plot([], [], "s", color=cmap(k), label=name)
        axes[1].set_xlabel("start θ0")
        axes[1].set_ylabel("step size η")
        axes[1].set_title(f"where GD ends ({steps} steps)")
        axes[1].legend(frameon=False, fontsize=5.5, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ctx.savefig(fig, "nearest_minimum")

    return Result(
        verdict=verdict,
        numbers={
            "critical_points": [left, top, right], "nearest_split": 0.5 * (left + right),
            "mismatch_fraction_by_eta": {f"{a:.3f}": float(m) for a, m in zip(e, mism)},
            "worst_eta": float(e[worst]), "worst_mismatch_fraction": float(mism[worst]),
            "gd_eta0.01_from_0_ends_at": ce_flow, "gd_eta0.3_from_-3_ends_at": ce_big,
            "left_min_settled_above_its_limit": left_settles_above,
        },
        threshold=f"fails if > {MISMATCH_TOL:.0%} of settled runs at some η end in a minimum that is not the nearest",
        explanation=(
            f"Even at η = 0.01 (close to the flow), starts between the midpoint {mid:.3f} and the maximum {top:.3f} "
            f"are nearer the right minimum but roll left (θ0 = 0 ends at {ce_flow:.3f}). As η grows the basins "
            f"fragment; at η = 0.3 GD from θ0 = −3 ends at {ce_big:.3f} (the right minimum), and above "
            f"η = 2/L''(−2.115) ≈ 0.212 no run settles in the left minimum at all. Worst mismatch: "
            f"{100 * mism[worst]:.0f}% of settled runs at η = {e[worst]:.3f}."
        ),
        corrected=(
            "GD ends in the basin of attraction of its *map* θ ↦ θ − η∇L, not at the nearest minimum: for small η the "
            "basins are split by the maxima (saddles), for larger η they fragment, and minima with L'' > 2/η cannot "
            "be settled in at all."
        ) if verdict == "fails" else None,
    )
