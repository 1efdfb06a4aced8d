"""ch06.stiff_field — explicit Euler layers explode on a stiff residual field, implicit ones do not.

The book (ch06): implicit (Euler) layers are stable where explicit Euler residual layers explode. The
residual field f(h) = A h + ½·tanh(W h) has Jacobian eigenvalues at its rest point h = 0 spread over
two decades (down to about −50): it is *stiff*. A stack of explicit Euler layers h ← h + ηf(h)
multiplies the λ-component by R(z) = 1 + z, z = ηλ, so it is stable only while |1 + ηλ| ≤ 1 for every
eigenvalue; an implicit Euler layer h ← h + ηf(h⁺) multiplies by R(z) = 1/(1 − z), which is below 1 on
the whole left half-plane (A-stability; Dahlquist 1963, Hairer & Wanner vol. II §IV.3). A theorem check:
the threshold is predicted from the core schemes' R and the Jacobian's eigenvalues, then measured by
bisection on the ``ODEStack`` (same weights, same η); the implicit layers' growth ‖h_L‖/‖h_0‖ is measured
on η ∈ [0.1, 100]× the explicit limit. The flip side is measured too: R(z) = 1/(1 − z) is also below 1 for
z > 2, so an implicit layer damps a mode that the true flow amplifies.

Control: the same implicit-growth measurement on the field shifted by ``CONTROL_MU``·h, whose Jacobian
has an eigenvalue with positive real part (a genuinely growing mode): there the implicit layers must grow
(max ‖h_L‖/‖h_0‖ > 1) — A-stability needs Re λ ≤ 0 — else the measurement could not see growth and the
verdict is inconclusive.

Verdict (:func:`decide_stiff`): inconclusive when the control's implicit layers did not grow or the
measured explicit threshold is off the prediction by more than ``THRESH_TOL``; fails when an implicit
layer grew on the stiff field; holds-with-correction when, besides, the implicit layer damps an unstable
mode (stable ≠ faithful); holds otherwise.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn

from terrainlab.atlas import Context, Result, experiment
from terrainlab.core import Euler, ImplicitEuler, NewtonKrylov
from terrainlab.nn import ImplicitEulerStep, ODEStack
from terrainlab.plotting import BLACK, BLUE, ORANGE, VERMILLION, figure

THRESH_TOL = 0.05
CONTROL_MU = 1.0  # the control field f(h) + μh has an eigenvalue with Re λ > 0


class Shifted(nn.Module):
    """f(h) + μh: the control field (``f`` shifted so that a mode grows)."""

    def __init__(self, f: nn.Module, mu: float):
        super().__init__()
        self.f, self.mu = f, float(mu)

    def forward(self, h):
        return self.f(h) + self.mu * h


class StiffField(nn.Module):
    """f(h) = A h + ½ tanh(W h), A = Q diag(−λ) Qᵀ with λ log-spaced in [λ_min, λ_max]."""

    def __init__(self, d: int = 16, lam_min: float = 0.5, lam_max: float = 50.0, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        Q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
        lam = torch.logspace(math.log10(lam_min), math.log10(lam_max), d, dtype=torch.float64)
        self.A = nn.Linear(d, d, bias=False).double()
        self.W = nn.Linear(d, d, bias=False).double()
        with torch.no_grad():
            self.A.weight.copy_((Q * -lam) @ Q.T)
            Wm = torch.randn(d, d, generator=g, dtype=torch.float64)
            self.W.weight.copy_(Wm / torch.linalg.matrix_norm(Wm, 2))

    def forward(self, h):
        return self.A(h) + 0.5 * torch.tanh(self.W(h))

    def jacobian_at_rest(self) -> np.ndarray:
        return (self.A.weight + 0.5 * self.W.weight).detach().numpy()


def predicted_threshold(scheme, eigs: np.ndarray, eta_max: float = 10.0, n: int = 200_001) -> float:
    """Largest η with max_i |R(ηλ_i)| ≤ 1 on (0, η], from the scheme's stability function."""
    etas = np.linspace(0.0, eta_max, n)[1:]
    amp = np.abs(np.asarray(scheme.R(etas[:, None] * eigs[None, :].astype(complex)))).max(axis=1)
    bad = np.nonzero(amp > 1 + 1e-12)[0]
    return float("inf") if bad.size == 0 else float(etas[bad[0] - 1]) if bad[0] > 0 else 0.0


def growth(stack: ODEStack, h0: torch.Tensor, scheme, eta: float, layers: int) -> tuple[float, int]:
    with torch.no_grad():
        res = stack.integrate(h0, scheme=scheme, steps=layers, T=layers * eta)
    g = float(res.state.norm() / h0.norm()) if res.status != "nonfinite" else float("inf")
    return (g if math.isfinite(g) else float("inf")), res.inner_iterations


def decide_stiff(pred: float, measured: float, implicit_max_growth: float, unstable_mode_damped: bool,
                 tol: float = THRESH_TOL, *, control_implicit_max_growth: float | None = None) -> str:
    """holds: the explicit layers' measured blow-up threshold matches the R(z) prediction within
    ``tol`` and implicit layers never grow. holds-with-correction: additionally the implicit layer
    damps a genuinely unstable mode (stable ≠ faithful). fails: an implicit layer grew.
    inconclusive: the threshold does not match the prediction, or ``control_implicit_max_growth`` (the
    implicit layers' growth on a field with a growing mode; the experiment always passes it) is given
    and not > 1 (the measurement could not see growth).

    >>> decide_stiff(0.04, 0.0401, 0.5, True, control_implicit_max_growth=1e11)
    'holds-with-correction'
    >>> decide_stiff(0.04, 0.0401, 0.5, True, control_implicit_max_growth=0.9)
    'inconclusive'
    """
    if control_implicit_max_growth is not None and not control_implicit_max_growth > 1.0:
        return "inconclusive"  # NaN included
    if implicit_max_growth > 1.0:
        return "fails"
    if not (math.isfinite(pred) and abs(measured - pred) <= tol * pred):
        return "inconclusive"
    return "holds-with-correction" if unstable_mode_damped else "holds"


@experiment(
    id="ch06.stiff_field",
    chapter=6,
    title="Stiff residual fields: explicit Euler layers explode past 2/|λ|, implicit layers stay stable",
    claim="Implicit (Euler) layers are stable where explicit Euler residual layers explode.",
)
def stiff_field(ctx: Context) -> Result:
    layers = 200 if ctx.quick else 400
    n_imp = 6 if ctx.quick else 12
    f = StiffField()
    stack = ODEStack(f, Euler(), steps=1, T=1.0)
    eigs = np.linalg.eigvals(f.jacobian_at_rest())
    pred = predicted_threshold(Euler(), eigs)
    pred_imp = predicted_threshold(ImplicitEuler(), eigs)
    h0 = torch.randn(32, 16, generator=ctx.generator(), dtype=torch.float64)

    lo, hi = 0.2 * pred, 5.0 * pred  # bisection on "explicit layers grow"
    assert growth(stack, h0, Euler(), lo, layers)[0] < 1 and growth(stack, h0, Euler(), hi, layers)[0] > 1
    for _ in range(12 if ctx.quick else 16):
        mid = math.sqrt(lo * hi)
        if growth(stack, h0, Euler(), mid, layers)[0] > 1:
            hi = mid
        else:
            lo = mid
    measured = math.sqrt(lo * hi)

    etas = np.geomspace(0.1 * pred, 100 * pred, 40 if ctx.quick else 80)
    g_exp = [growth(stack, h0, Euler(), float(e), 60)[0] for e in etas]
    etas_imp = np.geomspace(0.1 * pred, 100 * pred, n_imp)
    imp = ImplicitEuler(NewtonKrylov(tol=1e-10, max_iter=30))  # Jacobian-free Newton, as the layers use
    g_imp, inner = [], []
    for e in etas_imp:
        g, it = growth(stack, h0, imp, float(e), 60 if not ctx.quick else 30)
        g_imp.append(g)
        inner.append(it / (60 if not ctx.quick else 30))

    # control: the same implicit-growth measurement on the shifted field, which has a growing mode
    fc = Shifted(f, CONTROL_MU)
    stack_c = ODEStack(fc, Euler(), steps=1, T=1.0)
    eig_c = np.linalg.eigvals(f.jacobian_at_rest() + CONTROL_MU * np.eye(f.A.weight.shape[0]))
    etas_c = [10 * pred] if ctx.quick else [3 * pred, 10 * pred, 30 * pred]
    layers_c = 10 if ctx.quick else 30
    g_c = [growth(stack_c, h0, imp, float(e), layers_c)[0] for e in etas_c]
    control_max = float(max(g_c))

    # the flip side: an *unstable* mode h' = μh, μ = 3, at η = 1
    mu, eta_u = 3.0, 1.0
    h = torch.ones(1, 1, dtype=torch.float64)
    step = ImplicitEulerStep(lambda x: mu * x, eta_u, tol=1e-12)
    out = [1.0]
    x = h
    for _ in range(5):
        x = step(x).detach()
        out.append(float(x))
    implicit_factor = out[1] / out[0]
    true_factor = math.exp(mu * eta_u)
    damped = abs(implicit_factor) < 1.0 < true_factor

    fig, (ax, ax2) = figure("double", height=3.6, ncols=2)
    ge = np.array([min(v, 1e30) for v in g_exp])
    ax.loglog(etas, ge, color=VERMILLION, label="explicit Euler layers (60; overflow drawn at 1e30)")
    ax.loglog(etas_imp, np.maximum(g_imp, 1e-300), "o-", ms=3, color=BLUE, label="implicit Euler layers (Newton–Krylov)")
    ax.loglog(etas_c, np.minimum(g_c, 1e30), "s--", ms=3, color=ORANGE,
              label=f"control: implicit layers ({layers_c}) on f + {CONTROL_MU:g}·h (Re λ_max = {eig_c.real.max():.2f} > 0)")
    ax.axvline(pred, color=BLACK, ls="--", lw=0.9, label=f"predicted limit from R(z): η = {pred:.4f}")
    ax.axhline(1.0, color="0.6", lw=0.6)
    ax.set_ylim(1e-30, 1e30)
    ax.set_xlabel("step η of every layer")
    ax.set_ylabel("‖h_L‖ / ‖h_0‖")
    ax.set_title(f"Stiff field, Jacobian eigenvalues in [{eigs.real.min():.1f}, {eigs.real.max():.2f}]")
    ax.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1)
    z = np.linspace(-8, 5, 800)
    ax2.plot(z, np.abs(Euler().R(z.astype(complex))), color=VERMILLION, label="|R(z)| explicit: |1 + z|")
    ax2.plot(z, np.abs(ImplicitEuler().R(z.astype(complex))), color=BLUE, label="|R(z)| implicit: 1/|1 − z|")
    ax2.plot(z, np.exp(z), color=ORANGE, ls=":", label="exact flow: e^z")
    ax2.axhline(1.0, color="0.6", lw=0.6)
    ax2.axvspan(2, 5, color=BLUE, alpha=0.08, lw=0, label="z > 2: implicit damps a growing mode")
    ax2.set_ylim(0, 3)
    ax2.set_xlabel("z = ηλ")
    ax2.set_ylabel("amplification per layer")
    ax2.set_title("Stability functions of the core schemes")
    ax2.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    ctx.savefig(fig, "stiff_field")

    imp_max = float(max(g_imp))
    verdict = decide_stiff(pred, measured, imp_max, damped, control_implicit_max_growth=control_max)
    return Result(
        verdict=verdict,
        numbers={
            "claim_kind": "theorem-check",
            "jacobian_eig_real_min": float(eigs.real.min()),
            "jacobian_eig_real_max": float(eigs.real.max()),
            "predicted_explicit_limit_eta": pred,
            "measured_explicit_limit_eta": measured,
            "relative_mismatch": abs(measured - pred) / pred,
            "predicted_implicit_limit_eta": pred_imp,
            "implicit_max_growth_over_grid": imp_max,
            "explicit_growth_at_100x_limit": float(g_exp[-1]),
            "implicit_newton_iterations_per_layer": [float(v) for v in inner],
            "unstable_mode_true_factor": true_factor,
            "unstable_mode_implicit_factor": implicit_factor,
            "control_mu": CONTROL_MU,
            "control_jacobian_eig_real_max": float(eig_c.real.max()),
            "control_etas": [float(e) for e in etas_c],
            "control_implicit_growth": [float(v) for v in g_c],
            "control_implicit_max_growth": control_max,
            "control_verdict": "implicit layers grow" if control_max > 1 else "implicit layers do not grow",
        },
        threshold=f"|measured − predicted| ≤ {THRESH_TOL:.0%} of the predicted explicit limit; implicit growth ≤ 1 "
        f"on η ∈ [0.1, 100]·limit; the control (f + {CONTROL_MU:g}·h, a growing mode) must show implicit growth > 1, "
        "else inconclusive",
        explanation=(
            f"With eigenvalues of ∂f/∂h down to {eigs.real.min():.1f}, R(z) = 1 + z predicts explicit Euler layers "
            f"are stable only for η ≤ {pred:.4f}; bisection on {layers} layers of the ODEStack measures "
            f"{measured:.4f} ({abs(measured - pred) / pred:.1%} off). Implicit Euler layers on the same weights "
            f"never grew (max ‖h_L‖/‖h_0‖ = {imp_max:.2e}) for η up to 100× the limit, with "
            f"{min(inner):.0f}–{max(inner):.0f} Newton iterations per layer. But on h' = 3h at η = 1 the implicit "
            f"layer multiplies by {implicit_factor:.2f} while the true flow multiplies by {true_factor:.1f}. Control: on "
            f"f + {CONTROL_MU:g}·h (largest Re λ = {eig_c.real.max():.2f} > 0) the same implicit layers grow by up to "
            f"{control_max:.1e}: the measurement sees growth where there is a growing mode — A-stability is a "
            "property of Re λ ≤ 0, not of the scheme alone."
        ),
        corrected=(
            "Implicit Euler layers are stable for every η on a field whose Jacobian has eigenvalues in the left "
            "half-plane, where explicit layers explode beyond η = 2/|λ_max|. Stability is not fidelity: "
            "R(z) = 1/(1 − z) also damps modes with z > 2 that the true flow amplifies, and drives stiff modes "
            "to zero instead of following them; each implicit layer costs an inner solve."
        ) if verdict == "holds-with-correction" else None,
    )
