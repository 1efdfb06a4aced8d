"""ch03.momentum_as_physics — heavy ball converges to the damped flow m θ'' + γ θ' = −∇L as h → 0.

Heavy ball v ← βv + ∇L, θ ← θ − ηv is the finite-difference scheme
m(θ_{k+1} − 2θ_k + θ_{k−1})/h² + γ(θ_{k+1} − θ_k)/h = −∇L(θ_k) with β = m/(m + γh) and
η = h²/(m + γh) (``terrainlab.optim.heavy_ball_from_physics``). On the double well, for a fixed
mass and friction, the experiment runs ``HeavyBallScheme`` with (η, β) mapped from shrinking h and
compares θ_k with the ODE solution θ(kh) (core ``RK4`` on the first-order system, fine step): the
measured order of convergence should be 1 (one-sided difference in the friction term).
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.ticker import NullFormatter

from terrainlab.atlas import Context, Result, experiment
from terrainlab.core import RK4, rollout
from terrainlab.optim import HeavyBallScheme, heavy_ball_from_physics
from terrainlab.plotting import OKABE_ITO, figure, style
from terrainlab.terrains.closed_form import double_well_grad

MASS, FRICTION = 1.0, 0.8
THETA0 = 2.8
T = 6.0
H_REF = 2.5e-3


def decide_momentum_physics(order: float, finest_error: float) -> str:
    """holds if heavy ball converges to the damped flow with measured order within 0.25 of 1 and
    the finest error < 0.05; fails if the order is < 0.5 (no convergence); else holds-with-correction."""
    if order < 0.5:
        return "fails"
    if abs(order - 1.0) <= 0.25 and finest_error < 0.05:
        return "holds"
    return "holds-with-correction"


def _reference():
    def field(s, t=0.0):  # s = (θ, p): θ' = p/m, p' = −∇L − γ p/m
        q, p = s[..., 0], s[..., 1]
        return torch.stack([p / MASS, -double_well_grad(q) - FRICTION * p / MASS], -1)

    s0 = torch.tensor([THETA0, 0.0], dtype=torch.float64)
    tr = rollout(field, s0, eta=H_REF, steps=int(round(T / H_REF)), scheme=RK4())
    return tr.states[:, 0].numpy(), tr.states[:, 1].numpy()


@experiment(
    id="ch03.momentum_as_physics",
    chapter=3,
    title="Momentum is a discretised damped heavy ball",
    claim="Heavy-ball momentum is a discretisation of the damped second-order flow m θ'' + γ θ' = −∇L.",
)
def momentum_as_physics(ctx: Context) -> Result:
    ref_q, ref_p = _reference()
    mult = (32, 16, 8) if ctx.quick else (32, 16, 8, 4, 2)
    hs = [m * H_REF for m in mult]
    errs, paths, maps = [], {}, {}
    for m, h in zip(mult, hs):
        eta, beta = heavy_ball_from_physics(MASS, FRICTION, h)
        sch = HeavyBallScheme(beta)
        n = int(round(T / h))
        tr = rollout(lambda s, t: -double_well_grad(s), sch.init(torch.tensor([THETA0], dtype=torch.float64)),
                     eta=eta, steps=n, scheme=sch)
        q = sch.params(tr.states)[:, 0].numpy()
        errs.append(float(np.abs(q - ref_q[::m][: n + 1]).max()))
        paths[h] = q
        maps[f"{h:g}"] = {"eta": eta, "beta": beta}
    slope = float(np.polyfit(np.log(hs), np.log(errs), 1)[0])
    t_ref = np.arange(len(ref_q)) * H_REF
    energy = 0.5 * ref_p**2 / MASS + (0.25 * ref_q**4 - 2 * ref_q**2 + ref_q + 6)

    with style():
        fig, axes = figure("double", height=2.5, ncols=3)
        axes[0].plot(t_ref, ref_q, color="k", lw=1.6, label="damped flow (RK4)")
        for i, h in enumerate(hs[:3]):
            axes[0].plot(np.arange(len(paths[h])) * h, paths[h], "--", color=OKABE_ITO[[0, 4, 5][i]], lw=0.9,
                         label=f"heavy ball h={h:g} (η={maps[f'{h:g}']['eta']:.2g}, β={maps[f'{h:g}']['beta']:.3f})")
        axes[0].set_xlabel("time t = k·h")
        axes[0].set_ylabel("θ")
        axes[0].set_title(f"m = {MASS}, γ = {FRICTION}, θ0 = {THETA0}")
        axes[0].set_ylim(0.7, 3.9)
        axes[0].legend(frameon=False, fontsize=5.5, loc="upper right")
        axes[1].loglog(hs, errs, "o-", color=OKABE_ITO[5], label=f"measured, slope {slope:.2f}")
        axes[1].loglog(hs, errs[0] * (np.array(hs) / hs[0]), ":", color="0.4", label="order 1")
        axes[1].xaxis.set_minor_formatter(NullFormatter())
        axes[1].set_xticks(hs, [f"{h:g}" for h in hs])
        axes[1].set_xlabel("time step h")
        axes[1].set_ylabel("max_k |θ_k − θ(kh)|")
        axes[1].set_title("convergence to the ODE")
        axes[1].legend(frameon=False, fontsize=6)
        axes[2].plot(t_ref, energy, color=OKABE_ITO[2])
        axes[2].set_xlabel("time t")
        axes[2].set_ylabel("E = p²/2m + L(θ)")
        axes[2].set_title("friction dissipates energy (dE/dt = −γθ'²)")
    ctx.savefig(fig, "momentum_as_physics")

    # decide: a pure function of the numbers measured above (the figure only shows them)
    verdict = decide_momentum_physics(slope, errs[-1])

    return Result(
        verdict=verdict,
        numbers={"mass": MASS, "friction": FRICTION, "h": hs, "max_error": errs, "measured_order": slope,
                 "eta_beta_for_h": maps, "horizon": T},
        threshold="holds if the measured order is within 0.25 of 1 and the finest error < 0.05; fails if order < 0.5",
        explanation=(
            f"With m = {MASS}, γ = {FRICTION} and h from {hs[0]:g} to {hs[-1]:g}, heavy ball with β = m/(m + γh), "
            f"η = h²/(m + γh) stays within {errs[-1]:.2e} of the damped flow over t ∈ [0, {T:g}] at the finest h; the "
            f"error falls with measured order {slope:.2f} (first order: the friction term is a one-sided "
            "difference). In optimizer units: β → 1 and η → 0 together, with (1 − β)/√η fixed by γ/√m."
        ),
    )
