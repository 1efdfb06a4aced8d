"""The belief energy E(p) = KL(p*‖p), its curvature, and the step sizes that keep Euler steps on it
stable — what the book calls the "Yonglin Limit", implemented as what is true.

Closed forms (p in the interior of Δ^{K−1}):

    E(p) = Σ p*_i log(p*_i / p_i),   ∇E(p) = −p*/p,   ∇²E(p) = diag(p*_i / p_i²)

(the Hessian is diag(1/p) only at p = p*). The projected Euler step is
Φ_η(p) = proj_Δ(p − η∇E(p)) (:func:`energy_step`; iterated, it is a core ``rollout`` of
:func:`energy_field` with ``Simplex("euclid")``). At the fixed point p* its Jacobian on the tangent space {Σv = 0} is
I − η·Bᵀ diag(1/p*) B (B an orthonormal tangent basis), so p* is linearly stable exactly for

    η < η_crit = 2/θ_max,   θ_max = λ_max(Bᵀ diag(1/p*) B),

for any K (for K = 3, θ_max is the larger root of 3q₀q₁q₂θ² − 2(q₀q₁+q₀q₂+q₁q₂)θ + 1 = 0, the
secular equation Σ q_i/(1 − q_iθ) = 0). The book's bound η_max(p) = 2μ/L² = 2·min p²/max p (with
μ = 1/max p, L = 1/min p) is sufficient at p* but conservative, and no global bound exists because
∇²E is unbounded near the boundary: the "KL contraction from any initial belief" is false
(see :func:`contraction_audit`).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.func import hessian, vmap

from terrainlab.core import Simplex, map_field, rollout
from terrainlab.core.cycles import detect_cycle
from terrainlab.core.geometry import simplex_rule
from terrainlab.core.validate import (
    check_callable,
    check_choice,
    check_int,
    check_nonnegative,
    check_tensor,
)

from .divergences import _kl
from .simplex import _check_p, project_simplex, sample_dirichlet, tangent_basis

__all__ = [
    "energy",
    "grad_energy",
    "hess_energy",
    "eta_max_book",
    "kappa_book",
    "theta_max",
    "eta_crit_tangent",
    "hessian_tangent",
    "energy_field",
    "energy_step",
    "yonglin_step",
    "ThresholdScan",
    "threshold_scan",
    "ContractionAudit",
    "contraction_audit",
]


def energy(p: torch.Tensor, p_star: torch.Tensor) -> torch.Tensor:
    """E(p) = KL(p*‖p); +∞ where p_i = 0 < p*_i."""
    _check_p(p)
    _check_p(p_star, "p_star")
    return _kl(p_star, p)


def _grad_energy(p, p_star, clip):
    return -p_star / (p.clamp(min=clip) if clip is not None else p)


def grad_energy(p: torch.Tensor, p_star: torch.Tensor, clip: float | None = None) -> torch.Tensor:
    """∇E(p) = −p*/p (Euclidean, ambient coordinates). ``clip`` floors p (the book's script uses
    1e−12) so the gradient stays finite at the boundary."""
    _check_p(p)
    _check_p(p_star, "p_star")
    return _grad_energy(p, p_star, clip)


def hess_energy(p: torch.Tensor, p_star: torch.Tensor) -> torch.Tensor:
    """∇²E(p) = diag(p*_i/p_i²), shape (..., K, K)."""
    _check_p(p)
    _check_p(p_star, "p_star")
    return torch.diag_embed(p_star / p ** 2)


def eta_max_book(p: torch.Tensor) -> torch.Tensor:
    """The book's "safe step" η_max(p) = 2μ/L² = 2·min_i p_i² / max_i p_i (μ = 1/max p,
    L = 1/min p). Faithful to the book; its maximum over the simplex is 2/K at the uniform point
    (2/3 for K = 3, not 2/9) and it tends to 0 at the vertices."""
    _check_p(p)
    return 2 * p.amin(-1) ** 2 / p.amax(-1)


def kappa_book(p: torch.Tensor) -> torch.Tensor:
    """κ = L/μ = max p / min p, the condition number of diag(1/p)."""
    _check_p(p)
    return p.amax(-1) / p.amin(-1)


def theta_max(q: torch.Tensor) -> torch.Tensor:
    """Largest eigenvalue of diag(1/q) restricted to the tangent space {Σv = 0}, any K, batched."""
    _check_p(q, "q")
    B = tangent_basis(q.shape[-1], dtype=q.dtype, device=q.device)
    M = B.T @ torch.diag_embed(1.0 / q) @ B
    return torch.linalg.eigvalsh(M)[..., -1]


def eta_crit_tangent(q: torch.Tensor) -> torch.Tensor:
    """The exact local stability threshold of projected Euler on KL(q‖·) at its minimiser q:
    η_crit = 2/θ_max (Jacobian I − η·Bᵀdiag(1/q)B on the tangent space)."""
    return 2.0 / theta_max(q)


def hessian_tangent(energy_fn: Callable[[torch.Tensor], torch.Tensor], p: torch.Tensor) -> torch.Tensor:
    """Bᵀ ∇²E(p) B, the Hessian of ``energy_fn`` restricted to the tangent space, by autograd
    (``torch.func.hessian`` under ``vmap``), shape (..., K−1, K−1). ``energy_fn`` maps (K,) → ()
    (and, batched, (..., K) → (...))."""
    check_callable(energy_fn, "energy_fn")
    _check_p(p)
    K = p.shape[-1]
    flat = p.reshape(-1, K)
    H = vmap(hessian(lambda x: energy_fn(x)))(flat)
    B = tangent_basis(K, dtype=p.dtype, device=p.device)
    return (B.T @ H @ B).reshape(*p.shape[:-1], K - 1, K - 1)


def energy_field(p_star: torch.Tensor, eta_scale: torch.Tensor | float = 1.0, clip: float | None = 1e-12, *,
                 natural: bool = False):
    """The field of E = KL(p*‖p) for ``rollout``, scaled by ``eta_scale`` s (a per-row tensor lets many
    step sizes run in one batch with rollout's η = 1):

    - ``natural=False``: F(p) = −s·∇E(p) = s·p*/p (Euclidean gradient; p floored at ``clip``);
    - ``natural=True``:  F(p) = −s·p ⊙ (∇E − ⟨p, ∇E⟩) = s·(p* − p), the Fisher natural gradient
      (Amari 1998), bounded and tangent.

    With the core landings these are the three classic steps on E:
    ``Simplex("euclid")`` + Euclidean field = projected gradient descent proj_Δ(p − η∇E) (the book's
    §5.9 operator); ``Simplex("mirror")`` + natural field = exponentiated gradient p ∝ p·e^{−η∇E}
    (the landing maps Δ/p = η(p*/p − 1) to dual coordinates); ``Simplex("logit")`` + natural field =
    gradient descent on the logits, z ← z − η(p − p*) (∇_z E = p − p*).

    Example:
        >>> from terrainlab.core import Simplex, rollout
        >>> ps = torch.tensor([0.7, 0.2, 0.1], dtype=torch.float64)
        >>> tr = rollout(energy_field(ps, natural=True), torch.full((3,), 1 / 3, dtype=torch.float64),
        ...              eta=0.5, steps=60, geometry=Simplex("mirror"), record="last")
        >>> bool((tr.final - ps).abs().max() < 1e-12)
        True
    """
    _check_p(p_star, "p_star")
    if natural:

        def field(p, t=0.0):
            return eta_scale * (p_star - p)

    else:

        def field(p, t=0.0):
            return -eta_scale * _grad_energy(p, p_star, clip)

    return field


def energy_step(p: torch.Tensor, p_star: torch.Tensor, eta, projection: str = "euclid",
                clip: float | None = 1e-12) -> torch.Tensor:
    """The one-step map Φ_η(p) of gradient descent on E = KL(p*‖p), landed by the core rule
    ``Simplex(projection).descend(p, ∇E(p), η)``:

    ``"euclid"`` proj_Δ(p − η∇E) (the book's §5.9 operator and script), ``"mirror"`` exponentiated
    gradient p ∝ p·exp(−η∇E), ``"logit"`` softmax(log p − η (p − p*)) (gradient descent on the
    logits). ∇E = −p*/p with p floored at ``clip``. Iterating it is a rollout of
    :func:`energy_field` (see there); this is the map itself, for audits and Jacobians.
    """
    _check_p(p)
    _check_p(p_star, "p_star")
    rule = Simplex(simplex_rule(projection))
    return rule.descend(p, _grad_energy(p, p_star, clip), eta)


def yonglin_step(p: torch.Tensor, p_star: torch.Tensor, eta, geometry: str = "euclidean_projected",
                 clip: float | None = 1e-12) -> torch.Tensor:
    """Deprecated: :func:`energy_step` (the name says what the step does; ``geometry`` is now
    ``projection`` and ``"euclidean_projected"`` is ``"euclid"``)."""
    warnings.warn("terrainlab.belief.yonglin_step is deprecated; use energy_step(p, p_star, eta, projection)",
                  DeprecationWarning, stacklevel=2)
    rule = "euclid" if geometry == "euclidean_projected" else simplex_rule(geometry, "geometry")
    return energy_step(p, p_star, eta, rule, clip)


# --------------------------------------------------------------------------------------------
# step-size scans


@dataclass(frozen=True)
class ThresholdScan:
    """Measured stability thresholds of projected Euler on KL(p*‖·), one per target.

    etas: (E,) scanned step sizes;  stable: (N, E) bool (all starts stable / converged);
    eta_largest_stable: (N,) largest stable η in the scan (the book script's definition);
    eta_first_fail: (N,) smallest η that is not stable (nan if none);  mode: "local"|"global";
    steps, n_starts, seconds."""

    etas: torch.Tensor
    stable: torch.Tensor
    eta_largest_stable: torch.Tensor
    eta_first_fail: torch.Tensor
    mode: str
    steps: int
    n_starts: int
    seconds: float


def threshold_scan(targets: torch.Tensor, etas: torch.Tensor, *, mode: str = "local", steps: int = 500,
                   starts: torch.Tensor | None = None, n_starts: int = 8, noise: float = 0.02,
                   noise_shape: tuple | None = (1.0, 0.5, 0.25), tol: float = 1e-3,
                   generator: torch.Generator | None = None, clip: float = 1e-12) -> ThresholdScan:
    """Scan η for the true stability threshold of p ← proj_Δ(p − η∇E(p)), E = KL(q‖p), all targets,
    step sizes and starts in one batch (rows = target × η × start) through core ``rollout``.

    ``mode="local"``: starts proj_Δ(q + noise·N(0,1)·noise_shape) (default: the book script's
    perturbation); stable when the final distance ratio ‖p_T − q‖/‖p_0 − q‖ < 1 for every start.
    ``mode="global"``: start at ``starts`` (default uniform); stable ("converged") when
    KL(q‖p_T) < ``tol`` for every start.
    """
    check_tensor(targets, "targets", ndim=2)
    _check_p(targets, "targets")
    check_choice(mode, "mode", ("local", "global"))
    check_tensor(etas, "etas", ndim=1)
    if not bool(((etas > 0) & torch.isfinite(etas)).all()):
        raise ValueError("etas must hold finite step sizes > 0")
    t0 = time.perf_counter()
    N, K = targets.shape
    E = etas.shape[0]
    dt = targets.dtype
    etas = etas.to(dt)
    if mode == "local":
        shape = torch.ones(K, dtype=dt) if noise_shape is None else torch.tensor(noise_shape, dtype=dt)
        z = torch.randn(N, n_starts, K, generator=generator, dtype=dt)
        p0 = project_simplex(targets[:, None, :] + noise * z * shape)  # (N, S, K)
    else:
        if starts is None:
            starts = torch.full((1, K), 1.0 / K, dtype=dt)
        p0 = starts.to(dt).expand(N, -1, -1) if starts.ndim == 2 else starts
    S = p0.shape[1]
    P0 = p0[:, None, :, :].expand(N, E, S, K).reshape(-1, K).contiguous()
    Q = targets[:, None, None, :].expand(N, E, S, K).reshape(-1, K)
    H = etas[None, :, None, None].expand(N, E, S, 1).reshape(-1, 1)
    tr = rollout(energy_field(Q, H, clip), P0, eta=1.0, steps=steps, geometry=Simplex("euclid"),
                 record="last")
    pT = tr.final
    if mode == "local":
        d0 = (P0 - Q).norm(dim=-1)
        dT = (pT - Q).norm(dim=-1)
        ok = torch.isfinite(dT) & (dT < d0)
    else:
        ok = _kl(Q, pT) < tol
    stable = ok.reshape(N, E, S).all(-1)
    big = torch.where(stable, etas[None, :], torch.full_like(etas[None, :], -math.inf)).amax(-1)
    largest = torch.where(torch.isfinite(big), big, torch.full_like(big, math.nan))
    first = torch.full((N,), math.nan, dtype=dt)
    for i in range(N):
        bad = (~stable[i]).nonzero()
        if len(bad):
            first[i] = etas[bad[0, 0]]
    return ThresholdScan(etas, stable, largest, first, mode, steps, S, time.perf_counter() - t0)


# --------------------------------------------------------------------------------------------
# contraction audit


@dataclass(frozen=True)
class ContractionAudit:
    """Empirical test of "Φ is a KL contraction" on random pairs and starts.

    pair_ratio_*: statistics of KL(Φp₁‖Φp₂)/KL(p₁‖p₂) over ``n_pairs`` pairs (sup over finite
    ratios, fraction > 1, fraction infinite); energy_ratio_*: E(Φp)/E(p) over ``n_starts`` starts;
    euclid_ratio_sup: sup of ‖Φp₁ − Φp₂‖/‖p₁ − p₂‖; n_cycles: starts whose orbit ends on a cycle of
    period ≥ 2 (checked after ``orbit_steps`` steps); cycle_example: one such start (or None)."""

    pair_ratio_sup: float
    pair_ratio_frac_gt1: float
    pair_ratio_frac_inf: float
    energy_ratio_sup: float
    energy_ratio_frac_gt1: float
    energy_ratio_frac_inf: float
    euclid_ratio_sup: float
    n_cycles: int
    cycle_example: list | None
    n_pairs: int
    n_starts: int
    seconds: float


def _ratio_stats(num, den):
    r = num / den
    fin = torch.isfinite(r)
    sup = float(r[fin].max()) if bool(fin.any()) else math.nan
    return r, sup, float((r > 1).double().mean()), float((~torch.isfinite(r)).double().mean())


def _ends_on_cycle(step_fn, starts: torch.Tensor, steps: int, max_period: int, tol: float) -> torch.Tensor:
    """(n,) bool: the orbit of each start under the map ends on a cycle of period 2..max_period.

    The orbit is a core rollout of the map's residual field Φ(p) − p (Euler with η = 1 iterates Φ):
    ``steps`` steps of transient, then a window of 2·max_period steps read by the core cycle test
    (:func:`terrainlab.core.cycles.detect_cycle`: the tail repeats within ``tol`` for two full
    periods). Only rows still moving at the end can cycle, so only they are tested."""
    field = map_field(step_fn)
    tail = rollout(field, starts, eta=1.0, steps=steps, record="last").final
    window = rollout(field, tail, eta=1.0, steps=2 * max_period).states  # (2P + 1, n, K)
    moving = ((window[-1] - window[-2]).abs().amax(-1) > tol).nonzero()[:, 0]
    out = torch.zeros(starts.shape[0], dtype=torch.bool, device=starts.device)
    if len(moving):
        found = detect_cycle(window[:, moving], max_period, tol=tol, min_repeats=2)
        out[moving] = torch.tensor([c.period >= 2 for c in found], device=starts.device)
    return out


def contraction_audit(step_fn: Callable[[torch.Tensor], torch.Tensor], p_star: torch.Tensor, *,
                      n_pairs: int = 20000, n_starts: int = 20000, K: int | None = None,
                      generator: torch.Generator | None = None, orbit_steps: int = 300,
                      extra_starts: torch.Tensor | None = None, max_period: int = 8,
                      cycle_tol: float = 1e-9) -> ContractionAudit:
    """Audit the claim that ``step_fn`` (a batched map Δ → Δ) contracts KL from any initial belief:
    pairs and starts ~ Dirichlet(1) (uniform on the simplex), plus ``extra_starts``. Orbits run
    ``orbit_steps`` steps through core ``rollout`` and count as cycles when they end on a period
    2..``max_period`` cycle within ``cycle_tol`` (a contraction has none)."""
    check_callable(step_fn, "step_fn")
    _check_p(p_star, "p_star")
    check_int(orbit_steps, "orbit_steps", minimum=0)
    check_int(max_period, "max_period", minimum=2)
    check_nonnegative(cycle_tol, "cycle_tol")
    t0 = time.perf_counter()
    K = K or p_star.shape[-1]
    dt = p_star.dtype
    p1 = sample_dirichlet(n_pairs, K, generator=generator, dtype=dt)
    p2 = sample_dirichlet(n_pairs, K, generator=generator, dtype=dt)
    q1, q2 = step_fn(p1), step_fn(p2)
    _check_p(q1, "step_fn(p)")  # the audit measures KL, which needs beliefs on both sides
    _, psup, pgt, pinf = _ratio_stats(_kl(q1, q2), _kl(p1, p2))
    eu = (q1 - q2).norm(dim=-1) / (p1 - p2).norm(dim=-1)
    s = sample_dirichlet(n_starts, K, generator=generator, dtype=dt)
    if extra_starts is not None:
        s = torch.cat([s, _check_p(extra_starts, "extra_starts").to(dt)], 0)
    e0 = _kl(p_star.expand_as(s), s)
    e1 = _kl(p_star.expand_as(s), step_fn(s))
    _, esup, egt, einf = _ratio_stats(e1, e0)
    cyc = _ends_on_cycle(step_fn, s, orbit_steps, max_period, cycle_tol)
    ex = s[cyc.nonzero()[0, 0]].tolist() if bool(cyc.any()) else None
    return ContractionAudit(psup, pgt, pinf, esup, egt, einf, float(eu[torch.isfinite(eu)].max()),
                            int(cyc.sum()), ex, n_pairs, s.shape[0], time.perf_counter() - t0)
