"""ch03.momentum_is_sum_of_gradients — heavy-ball momentum v_t = βv_{t−1} + g_t is the exponentially
weighted *sum* Σ_s β^{t−s} g_s, whose weights total (1 − β^t)/(1 − β) → 1/(1 − β), not an average.

The book writes heavy ball as v_{t+1} = βv_t + g_t, θ_{t+1} = θ_t − ηv_{t+1} (β = 0.9; PyTorch's SGD
momentum with dampening 0; Polyak 1964) and says momentum accumulates an exponentially weighted
*average* of past gradients. Unrolling the recursion from v_0 = 0 gives exactly
v_t = Σ_{s=1}^{t} β^{t−s} g_s for any gradient sequence: a weighted sum whose weights add up to
(1 − β^t)/(1 − β), 10 at β = 0.9 in the long run. An average (weights adding up to 1) is the other
parametrisation m_t = βm_{t−1} + (1 − β)g_t — Adam's first moment (Kingma & Ba 2015), whose weights add
up to 1 − β^t (hence Adam's bias correction) — or SGD with dampening β. A theorem check: the algebra
fixes the outcome, but each number is measured.

Measured (float64):

1. the identity on a real run: heavy ball (``HeavyBallScheme``, β = 0.9, η = 0.002) on the book's
   Rosenbrock (b = 10) from (−1.5, 2) through the core ``rollout``; the gradients g_s = ∇L(θ_{s−1}) are
   recomputed from the recorded θ, the sum Σβ^{t−s}g_s is formed with an explicit lower-triangular
   weight matrix (no recursion), and compared with the recorded v_t: max |v_t − Σ| / max|v|;
2. the weights themselves, by impulses: the gradient at step s is the unit vector e_s (a time-dependent
   field of dimension K = 40), so after K steps coordinate s of the buffer is the weight of g_s. Done for
   heavy ball (the core scheme), and, for comparison, for ``torch.optim.Adam``'s first moment (the EMA)
   and ``torch.optim.SGD(momentum=β, dampening=β)``; the total weight is their sum;
3. the effective step under a constant gradient: on the linear loss L = g·θ, heavy ball's displacement
   after K steps over GD's (η the same).

Control: β = 0, where the same sum must reduce to the current gradient (a single weight 1: the
"average" reading is then exact). If the control's total weight is not 1 the measurement cannot tell a
sum from an average and the verdict is inconclusive.

Verdict rule (:func:`decide_momentum_sum`): inconclusive when the control's total weight is not within
``AVERAGE_TOL`` of 1 (or a number is not finite); fails when the identity is off by more than
``IDENTITY_TOL``; holds when the heavy-ball weights total 1 within ``AVERAGE_TOL`` (an average, as the
book says); holds-with-correction otherwise (a weighted sum with total weight (1 − β^t)/(1 − β)).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from terrainlab.atlas import Context, Result, experiment
from terrainlab.core import gradient_field, rollout
from terrainlab.optim import HeavyBallScheme
from terrainlab.plotting import BLACK, BLUE, ORANGE, SKY, VERMILLION, figure
from terrainlab.terrains import rosenbrock

BETA = 0.9
ETA = 0.002  # stable on Rosenbrock b = 10 (λ_max ≈ 102 at the minimum, heavy ball needs η < 2(1 + β)/λ)
THETA0 = (-1.5, 2.0)
K_IMPULSE = 40
IDENTITY_TOL = 1e-12  # relative; float64 rounding is ~1e-16
AVERAGE_TOL = 0.05  # an average: weights total 1 within 5 %


def decide_momentum_sum(identity_error: float, total_weight: float, control_total_weight: float,
                        identity_tol: float = IDENTITY_TOL, average_tol: float = AVERAGE_TOL) -> str:
    """inconclusive when the control (β = 0, an exact average: one weight 1) does not total 1 within
    average_tol, or a number is not finite; fails when v_t differs from Σβ^{t−s}g_s by more than
    identity_tol (relative); holds when the heavy-ball weights total 1 within average_tol (an average);
    holds-with-correction otherwise (a weighted sum, not an average)."""
    for name, v in (("identity_error", identity_error), ("total_weight", total_weight),
                    ("control_total_weight", control_total_weight)):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"{name} must be a number, got {v!r}")
    if identity_error < 0:
        raise ValueError(f"identity_error must be non-negative, got {identity_error!r}")
    if not all(math.isfinite(v) for v in (identity_error, total_weight, control_total_weight)):
        return "inconclusive"
    if abs(control_total_weight - 1) > average_tol:
        return "inconclusive"
    if identity_error > identity_tol:
        return "fails"
    return "holds" if abs(total_weight - 1) <= average_tol else "holds-with-correction"


def sum_weights(beta: float, t: int) -> np.ndarray:
    """The weights β^{t−s}, s = 1..t, of g_s in the heavy-ball buffer v_t (v_0 = 0).

    >>> sum_weights(0.5, 3).tolist()
    [0.25, 0.5, 1.0]
    """
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0 <= beta < 1:
        raise ValueError(f"beta must be a number in [0, 1), got {beta!r}")
    if isinstance(t, bool) or not isinstance(t, int) or t < 1:
        raise ValueError(f"t must be an int >= 1, got {t!r}")
    return beta ** np.arange(t - 1, -1, -1, dtype=np.float64)


def _identity_on_rosenbrock(beta: float, steps: int) -> dict:
    T = rosenbrock(b=10.0)
    F = gradient_field(T.fn)
    hb = HeavyBallScheme(beta)
    tr = rollout(F, hb.init(torch.tensor(THETA0, dtype=torch.float64)), eta=ETA, steps=steps, scheme=hb)
    theta, v = tr.states  # (steps + 1, 2) each
    g = -F(theta[:-1], 0.0)  # g_s = ∇L(θ_{s−1}), s = 1..steps
    lag = torch.arange(steps)[:, None] - torch.arange(steps)[None, :]  # t − s
    W = torch.where(lag >= 0, float(beta) ** lag.clamp(min=0).to(torch.float64), torch.zeros((), dtype=torch.float64))
    v_sum = W @ g  # Σ_{s ≤ t} β^{t−s} g_s for t = 1..steps
    err = float((v[1:] - v_sum).abs().max() / v[1:].abs().max())
    return {"theta": theta.numpy(), "v": v[1:].numpy(), "v_sum": v_sum.numpy(), "error": err,
            "final_loss": float(T.fn(theta[-1]))}


def _impulse_weights(beta: float, K: int) -> dict:
    """Weights of g_1..g_K in each buffer after K steps, from unit-vector gradients e_1..e_K."""
    eye = torch.eye(K, dtype=torch.float64)
    eta = 1.0

    def F(theta, t=0.0):  # the gradient at step k (time t = kη) is e_{k+1}: F = −e_{k+1}
        return -eye[int(round(t / eta))]

    hb = HeavyBallScheme(beta)
    _, v = rollout(F, hb.init(torch.zeros(K, dtype=torch.float64)), eta=eta, steps=K, scheme=hb, record="last").states
    out = {"heavy_ball": v[-1].numpy()}
    for name, make in (
        ("ema_adam", lambda p: torch.optim.Adam([p], lr=1e-3, betas=(beta, 0.999))),
        ("torch_sgd_dampening", lambda p: torch.optim.SGD([p], lr=1e-3, momentum=beta, dampening=beta)),
    ):
        if beta == 0 and name == "torch_sgd_dampening":
            continue  # momentum 0: torch keeps no buffer
        p = torch.zeros(K, dtype=torch.float64, requires_grad=True)
        opt = make(p)
        for k in range(K):
            p.grad = eye[k].clone()
            opt.step()
        st = opt.state[p]
        out[name] = (st["exp_avg"] if "exp_avg" in st else st["momentum_buffer"]).detach().numpy().copy()
    return out


def _constant_gradient_displacement(beta: float, K: int) -> float:
    """Heavy ball's displacement over GD's after K steps on L = g·θ (constant gradient g)."""
    g = torch.tensor([1.0, -2.0], dtype=torch.float64)

    def F(theta, t=0.0):
        return -g.expand_as(theta)

    hb = HeavyBallScheme(beta)
    th_hb = rollout(F, hb.init(torch.zeros(2, dtype=torch.float64)), eta=ETA, steps=K, scheme=hb,
                    record="last").states[0][-1]
    th_gd = rollout(F, torch.zeros(2, dtype=torch.float64), eta=ETA, steps=K, record="last").states[-1]
    return float(th_hb.norm() / th_gd.norm())


def _measure(beta: float, steps: int) -> dict:
    ident = _identity_on_rosenbrock(beta, steps)
    w = _impulse_weights(beta, K_IMPULSE)
    totals = {k: float(v.sum()) for k, v in w.items()}
    return {"ident": ident, "weights": w, "totals": totals,
            "weights_error": float(np.abs(w["heavy_ball"] - sum_weights(beta, K_IMPULSE)).max()),
            "displacement_ratio": _constant_gradient_displacement(beta, K_IMPULSE)}


@experiment(
    id="ch03.momentum_is_sum_of_gradients",
    chapter=3,
    title="Heavy-ball momentum is an exponentially weighted sum of gradients (total weight 1/(1−β)), not an average",
    claim="Momentum accumulates an exponentially weighted average of past gradients (heavy ball "
    "v_{t+1} = βv_t + g_t, β = 0.9).",
)
def momentum_is_sum_of_gradients(ctx: Context) -> Result:
    steps = 100 if ctx.quick else 300
    m = _measure(BETA, steps)
    c = _measure(0.0, steps)
    total = m["totals"]["heavy_ball"]
    verdict = decide_momentum_sum(m["ident"]["error"], total, c["totals"]["heavy_ball"])
    control_verdict = decide_momentum_sum(c["ident"]["error"], c["totals"]["heavy_ball"], 1.0)
    K = K_IMPULSE
    predicted_total = (1 - BETA**K) / (1 - BETA)

    fig, (ax, ax2) = figure("double", height=2.8, ncols=2)
    lag = np.arange(K - 1, -1, -1)  # t − s for s = 1..K
    ax.semilogy(lag, m["weights"]["heavy_ball"], "o", ms=3, color=ORANGE,
                label=f"heavy ball v = βv + g: Σw = {total:.3f}")
    ax.semilogy(lag, m["weights"]["ema_adam"], "s", ms=2.5, color=BLUE,
                label=f"EMA m = βm + (1−β)g (Adam): Σw = {m['totals']['ema_adam']:.3f}")
    ax.semilogy(lag, m["weights"]["torch_sgd_dampening"], "x", ms=3, color=SKY,
                label=f"torch SGD dampening β: Σw = {m['totals']['torch_sgd_dampening']:.3f}")
    ax.semilogy(lag, sum_weights(BETA, K), color=BLACK, lw=0.7, ls=":", label="β^(t−s)")
    ax.semilogy([0], [c["weights"]["heavy_ball"][-1]], "D", ms=4, color=VERMILLION,
                label=f"control β = 0: Σw = {c['totals']['heavy_ball']:.3f}")
    ax.set_xlabel("lag t − s")
    ax.set_ylabel(f"weight of g_s in the buffer at t = {K}")
    ax.set_title(f"measured weights (unit-gradient impulses), β = {BETA:g}", fontsize=7)
    ax.legend(frameon=False, fontsize=5.5, loc="lower left")
    ident = m["ident"]
    t = np.arange(1, steps + 1)
    ax2.plot(t, np.linalg.norm(ident["v"], axis=1), color=ORANGE, lw=1.2, label="‖v_t‖ (recorded)")
    ax2.plot(t, np.linalg.norm(ident["v_sum"], axis=1), ":", color=BLACK, lw=1.0, label="‖Σ β^(t−s) g_s‖")
    ax2.plot(t, np.linalg.norm(c["ident"]["v"], axis=1), color=VERMILLION, lw=0.8,
             label="control β = 0: ‖v_t‖ = ‖g_t‖")
    ax2.set_yscale("log")
    ax2.set_xlabel("step t")
    ax2.set_ylabel("buffer norm")
    ax2.set_title(f"Rosenbrock b = 10, η = {ETA:g}: identity error {ident['error']:.1e}", fontsize=7)
    ax2.legend(frameon=False, fontsize=5.5)
    ctx.savefig(fig, "momentum_is_sum_of_gradients")

    return Result(
        verdict=verdict,
        numbers={
            "claim_kind": "theorem-check",
            "beta": BETA,
            "eta": ETA,
            "steps_rosenbrock": steps,
            "identity_rel_error_rosenbrock": ident["error"],
            "impulse_steps": K,
            "total_weight_heavy_ball": total,
            "total_weight_predicted": predicted_total,
            "total_weight_limit": 1 / (1 - BETA),
            "weights_max_error_vs_beta_power": m["weights_error"],
            "total_weight_ema_adam": m["totals"]["ema_adam"],
            "total_weight_torch_sgd_dampening_beta": m["totals"]["torch_sgd_dampening"],
            "weight_of_first_gradient_heavy_ball": float(m["weights"]["heavy_ball"][0]),
            "weight_of_first_gradient_ema_adam": float(m["weights"]["ema_adam"][0]),
            "weight_of_first_gradient_torch_sgd_dampening": float(m["weights"]["torch_sgd_dampening"][0]),
            "displacement_ratio_hb_over_gd_constant_gradient": m["displacement_ratio"],
            "control_beta": 0.0,
            "control_total_weight": c["totals"]["heavy_ball"],
            "control_identity_rel_error": c["ident"]["error"],
            "control_displacement_ratio": c["displacement_ratio"],
            "control_verdict": control_verdict,
        },
        threshold=f"fails if |v_t − Σβ^(t−s)g_s| > {IDENTITY_TOL:g}·max|v|; holds if the measured weights total 1 "
        f"within {AVERAGE_TOL:g} (an average); holds-with-correction if they total otherwise (a sum); "
        f"inconclusive if the β = 0 control does not total 1 within {AVERAGE_TOL:g}",
        explanation=(
            f"Theorem check. On Rosenbrock (b = 10) from {THETA0}, heavy ball with β = {BETA:g}, η = {ETA:g} for "
            f"{steps} steps: the recorded buffer equals Σβ^(t−s)g_s to {ident['error']:.1e} (relative). Unit-gradient "
            f"impulses show the weights β^(t−s) (max error {m['weights_error']:.1e}); after {K} steps they total "
            f"{total:.4f} = (1 − β^{K})/(1 − β), heading to 1/(1 − β) = {1 / (1 - BETA):g} — a sum, not an average. "
            f"Adam's first moment (the EMA m = βm + (1 − β)g) totals {m['totals']['ema_adam']:.4f} = 1 − β^{K} (hence "
            f"its bias correction); torch SGD with dampening β totals {m['totals']['torch_sgd_dampening']:.4f}, "
            f"because it does not dampen its first gradient (weight {m['weights']['torch_sgd_dampening'][0]:.4f} "
            f"against the EMA's {m['weights']['ema_adam'][0]:.4f}). Under a constant gradient heavy ball moves "
            f"{m['displacement_ratio']:.2f}× as far as GD in {K} steps (→ 1/(1 − β) as t grows). Control β = 0: "
            f"the buffer is the current gradient, total weight {c['totals']['heavy_ball']:.4f}, displacement "
            f"ratio {c['displacement_ratio']:.2f}."
        ),
        corrected=(
            f"Heavy ball v_t = βv_{{t−1}} + g_t is the exponentially weighted sum Σ_s β^(t−s) g_s, whose weights "
            f"total (1 − β^t)/(1 − β) → 1/(1 − β) ({1 / (1 - BETA):g} at β = {BETA:g}), so it scales the step by "
            "up to 1/(1 − β); an exponentially weighted average is the other parametrisation m_t = βm_{t−1} + "
            "(1 − β)g_t (Adam's first moment, total weight 1 − β^t)."
        ) if verdict == "holds-with-correction" else None,
    )
