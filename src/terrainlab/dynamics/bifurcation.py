"""Bifurcations: fixed-point scans along a parameter, pseudo-arclength continuation with fold
(saddle-node) location, and orbit diagrams of 1-parameter map families.

Continuation follows the solution curve G(x, μ) = F(x, μ) = 0 in (x, μ)-space by arclength
(Keller 1977, "Numerical solution of bifurcation and nonlinear eigenvalue problems"): predictor
u + Δs·t along the unit tangent t (the null vector of DG, oriented to keep going the same way),
corrector Newton on [G(u) = 0, tᵀ(u − u_pred) = 0]. A fold is where the μ-component of t changes
sign; it is then located to machine precision by Newton on the minimally extended system
F(x, μ) = 0, D_xF(x, μ) v = 0, v₀ᵀv = 1 (Moore & Spence 1980; Seydel, *Practical Bifurcation and
Stability Analysis*, §5).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..core import Euler, rollout
from ..core.cycles import detect_cycle
from ..core.status import Status
from ..core.validate import check_callable, check_int, check_positive
from ._util import check_states
from .classify import CLASSES
from .fixed_points import FixedPointResult, find_fixed_points


@dataclass(frozen=True)
class BifurcationScan:
    """Fixed points along a parameter.

    params (P,), results (one :class:`FixedPointResult` per parameter), n_points (P,) true fixed
    points, counts {class: (P,) tensor}, changes: list of (p_left, p_right, counts_left,
    counts_right) where the class counts change between neighbouring parameters (a bifurcation
    lies in between), seconds.
    """

    params: torch.Tensor
    results: list
    n_points: torch.Tensor
    counts: dict
    changes: list
    seconds: float


def bifurcation_scan(family: Callable, params, inits: torch.Tensor, **kwargs) -> BifurcationScan:
    """Count and classify the fixed points of ``family(p)`` for each parameter p.

    ``family(p)`` returns a field or map; ``kwargs`` go to :func:`find_fixed_points` (``kind``,
    ``geometry``, ``eta``, ``tol``, …). The same ``inits`` are used at every parameter.

    Example:
        >>> fam = lambda mu: (lambda x: mu - x ** 2)
        >>> scan = bifurcation_scan(fam, [-1.0, 1.0], torch.linspace(-2, 2, 9, dtype=torch.float64)[:, None])
        >>> scan.n_points.tolist()
        [0, 2]
    """
    check_callable(family, "family")
    ps = torch.as_tensor(params, dtype=torch.float64).flatten()
    if ps.numel() == 0:
        raise ValueError("params must hold at least one parameter value")
    start = time.perf_counter()
    results: list[FixedPointResult] = []
    for p in ps.tolist():
        results.append(find_fixed_points(family(p), inits, **kwargs))
    counts = {c: torch.tensor([sum(1 for i, k in enumerate(r.kinds) if k == c and not bool(r.is_slow[i]))
                               for r in results]) for c in CLASSES}
    n_points = torch.tensor([int((~r.is_slow).sum()) for r in results])
    changes = []
    for i in range(len(results) - 1):
        a = {c: int(counts[c][i]) for c in CLASSES}
        b = {c: int(counts[c][i + 1]) for c in CLASSES}
        if a != b:
            changes.append((float(ps[i]), float(ps[i + 1]), a, b))
    return BifurcationScan(ps, results, n_points, counts, changes, time.perf_counter() - start)


@dataclass(frozen=True)
class Fold:
    """A saddle-node point: state x, parameter mu, null vector v of D_xF, and the residual of the
    extended system."""

    x: torch.Tensor
    mu: float
    v: torch.Tensor
    residual: float
    converged: bool


@dataclass(frozen=True)
class ContinuationResult:
    """branch_x (M, n), branch_mu (M,), tangents (M, n+1), stable (M,) (all Re λ < 0 of D_xF),
    folds (list of :class:`Fold`), status (a :class:`~terrainlab.core.status.Status`: ``completed`` —
    all ``steps`` taken; ``diverged`` — the branch left ``mu_bounds`` or ``x_bound``, often the planned
    end of a scan; ``stalled`` — the corrector failed), n_steps, n_newton, seconds."""

    branch_x: torch.Tensor
    branch_mu: torch.Tensor
    tangents: torch.Tensor
    stable: torch.Tensor
    folds: list
    status: Status
    n_steps: int
    n_newton: int
    seconds: float


def _jac_full(fun, u: torch.Tensor) -> torch.Tensor:
    return torch.autograd.functional.jacobian(fun, u)


def continuation(
    F: Callable,
    x0,
    mu0: float,
    *,
    ds: float = 0.02,
    steps: int = 500,
    direction: float = 1.0,
    mu_bounds: tuple = (-math.inf, math.inf),
    x_bound: float = 1e3,
    tol: float = 1e-12,
    max_newton: int = 20,
) -> ContinuationResult:
    """Pseudo-arclength continuation of F(x, μ) = 0 from (x0, μ0), locating saddle-node folds.

    Args:
        F: F(x, mu) with x of shape (N, n) and mu of shape (N, 1) → (N, n); called with N = 1.
        x0: a point on (or near) the branch at μ0, shape (n,) (corrected first).
        ds: arclength step; steps: maximum steps; direction: initial sign of dμ.
        mu_bounds, x_bound: stop when the branch leaves them.

    Returns:
        :class:`ContinuationResult`; each fold is refined on the extended system to ``tol``.

    Example:
        >>> F = lambda x, mu: mu - x ** 2           # saddle-node at μ = 0, x = 0
        >>> res = continuation(F, torch.tensor([1.0], dtype=torch.float64), 1.0, direction=-1.0, steps=200)
        >>> round(res.folds[0].mu, 10)
        0.0
    """
    check_callable(F, "F")
    check_positive(ds, "ds")
    check_int(steps, "steps", minimum=1)
    check_int(max_newton, "max_newton", minimum=1)
    x0 = torch.as_tensor(x0).to(torch.float64).flatten()
    if x0.numel() == 0:
        raise ValueError("x0 must hold at least one coordinate")
    n = x0.numel()
    dt = x0.dtype
    start = time.perf_counter()

    def G(u):
        return F(u[:n][None], u[n:].reshape(1, 1))[0]

    n_newton = 0

    def tangent(u, prev=None):
        A = _jac_full(G, u)  # (n, n+1)
        # null vector of A: last right-singular vector
        _, _, Vh = torch.linalg.svd(A)
        t = Vh[-1]
        if prev is not None:
            if float(t @ prev) < 0:
                t = -t
        elif float(t[n]) * direction < 0:
            t = -t
        return t

    # correct the start at fixed μ0
    x = x0.clone()
    for _ in range(max_newton):
        r = F(x[None], torch.tensor([[mu0]], dtype=dt, device=x0.device))[0]
        if float(r.norm()) <= tol:
            break
        Jx = _jac_full(lambda z: F(z[None], torch.tensor([[mu0]], dtype=dt, device=x0.device))[0], x)
        x = x - torch.linalg.lstsq(Jx, r[:, None]).solution[:, 0]
        n_newton += 1
    u = torch.cat([x, torch.tensor([mu0], dtype=dt, device=x0.device)])
    t = tangent(u)
    us, ts = [u], [t]
    status = Status.COMPLETED
    for _ in range(steps):
        up = u + ds * t
        v = up.clone()
        ok = False
        for _ in range(max_newton):
            r = torch.cat([G(v), (t @ (v - up))[None]])
            if float(r.norm()) <= tol * (1 + float(v.norm())):
                ok = True
                break
            A = _jac_full(G, v)
            M = torch.cat([A, t[None]], 0)
            v = v - torch.linalg.solve(M, r)
            n_newton += 1
        if not ok:
            r = torch.cat([G(v), (t @ (v - up))[None]])
            ok = float(r.norm()) <= 1e3 * tol * (1 + float(v.norm()))
        if not ok:
            status = Status.STALLED
            break
        t_new = tangent(v, t)
        u, t = v, t_new
        us.append(u)
        ts.append(t)
        if not (mu_bounds[0] <= float(u[n]) <= mu_bounds[1]) or float(u[:n].abs().max()) > x_bound:
            status = Status.DIVERGED
            break
    U = torch.stack(us)
    Tn = torch.stack(ts)
    stable = []
    for ui in U:
        Jx = _jac_full(lambda z, m=ui[n]: F(z[None], m.reshape(1, 1))[0], ui[:n])
        stable.append(bool((torch.linalg.eigvals(Jx).real < 0).all()))
    folds = []
    for i in range(len(us) - 1):
        if float(Tn[i, n]) * float(Tn[i + 1, n]) < 0:
            folds.append(_refine_fold(F, U[i], U[i + 1], n, tol, max_newton))
    return ContinuationResult(U[:, :n], U[:, n], Tn, torch.tensor(stable), folds, status, len(us) - 1,
                              n_newton, time.perf_counter() - start)


def _refine_fold(F, ua, ub, n, tol, max_newton) -> Fold:
    """Newton on the extended system F = 0, D_xF v = 0, v0ᵀ v = 1 (2n + 1 unknowns)."""
    u = 0.5 * (ua + ub)
    x, mu = u[:n], u[n]
    Jx = _jac_full(lambda z: F(z[None], mu.reshape(1, 1))[0], x)
    _, _, Vh = torch.linalg.svd(Jx)
    v0 = Vh[-1].clone()

    def H(w):
        xx, mm, vv = w[:n], w[n], w[n + 1:]
        fx = F(xx[None], mm.reshape(1, 1))[0]
        Jv = torch.func.jvp(lambda z: F(z[None], mm.reshape(1, 1))[0], (xx,), (vv,))[1]
        return torch.cat([fx, Jv, (v0 @ vv - 1)[None]])

    w = torch.cat([x, mu[None], v0])
    res = math.inf
    for _ in range(max_newton * 2):
        h = H(w)
        res = float(h.norm())
        if res <= tol:
            break
        A = _jac_full(H, w)
        w = w - torch.linalg.lstsq(A, h[:, None]).solution[:, 0]
    h = H(w)
    res = float(h.norm())
    return Fold(x=w[:n].detach(), mu=float(w[n]), v=w[n + 1:].detach(), residual=res, converged=res <= 1e3 * tol)


@dataclass(frozen=True)
class OrbitDiagram:
    """params (P,), orbits (P, I, keep, d) post-transient iterates for I initial states per
    parameter, lyapunov (P, I) (mean log-stretching along the kept orbit, per step), periods (P, I)
    (1 = converged, k ≥ 2 = period-k, 0 = none found), labels [P][I] strings, diverged (P, I)."""

    params: torch.Tensor
    orbits: torch.Tensor
    lyapunov: torch.Tensor
    periods: torch.Tensor
    labels: list
    diverged: torch.Tensor
    seconds: float


def orbit_diagram(
    family_map: Callable,
    params,
    x0: torch.Tensor,
    *,
    burn_in: int = 1000,
    keep: int = 200,
    max_period: int = 64,
    tol: float = 1e-9,
    lyap_tol: float = 1e-3,
    bound: float = 1e6,
) -> OrbitDiagram:
    """Orbit (bifurcation) diagram of a parameterised map family s ↦ T(s, p), all parameters and
    initial states at once.

    ``family_map(x, p)`` takes x (N, d) and p (N, 1). After ``burn_in`` iterations (through the
    core ``rollout``), ``keep`` iterates are recorded; the Lyapunov exponent is the orbit average of
    log-stretching, λ = (1/n) Σ log ‖DT(x_t) q_t‖ (exact for d = 1: the mean of log|T'(x_t)|),
    computed from one batched Jacobian of all kept states. Periods come from :func:`detect_cycle`.
    The classic example is gradient descent x ← x − η L'(x) as η grows (period doubling → chaos).

    Example:
        >>> T = lambda x, r: r * x * (1 - x)
        >>> od = orbit_diagram(T, [2.8, 3.2, 3.5], torch.tensor([[0.3]], dtype=torch.float64))
        >>> od.periods[:, 0].tolist()
        [1, 2, 4]
    """
    check_callable(family_map, "family_map")
    check_int(burn_in, "burn_in", minimum=0)
    check_int(keep, "keep", minimum=2)
    ps = torch.as_tensor(params, dtype=torch.float64).flatten()
    if ps.numel() == 0:
        raise ValueError("params must hold at least one parameter value")
    X0 = check_states(x0, "x0")
    I, d = X0.shape
    P = ps.numel()
    ps_t = ps.to(X0.dtype).to(X0.device)
    prep = ps_t.repeat_interleave(I)[:, None]  # (P·I, 1)
    xs = X0.repeat(P, 1)
    start = time.perf_counter()

    def T(x):
        return family_map(x, prep)

    def guarded(x, t=0.0):
        f = T(x) - x
        bad = (~torch.isfinite(f).all(-1)) | (x.abs().amax(-1) > bound)
        return torch.where(bad[:, None], torch.zeros_like(f), f)

    tr = rollout(guarded, xs, eta=1.0, steps=max(burn_in, 1), scheme=Euler(), record="last")
    tail = rollout(guarded, tr.final.detach(), eta=1.0, steps=keep - 1, scheme=Euler(), record="all")
    W = tail.states.detach()  # (keep, P·I, d)
    diverged = (~torch.isfinite(W).all(0).all(-1)) | (W.abs().amax(0).amax(-1) > bound)
    # Lyapunov exponent along the kept orbit from batched Jacobians (one reverse pass per coordinate)
    from .jacobian import _batched_jac

    flat = torch.nan_to_num(W).reshape(keep * P * I, d)
    prep_all = prep.repeat(keep, 1)
    J = _batched_jac(lambda x: family_map(x, prep_all), flat).reshape(keep, P * I, d, d)
    q = torch.ones(P * I, d, dtype=X0.dtype, device=X0.device) / math.sqrt(d)
    logs = torch.zeros(P * I, dtype=torch.float64, device=X0.device)
    tiny = torch.finfo(X0.dtype).tiny
    for j in range(keep):
        v = (J[j] @ q[..., None])[..., 0]
        nv = v.norm(dim=-1).clamp(min=tiny)
        logs += torch.log(nv).to(torch.float64)
        q = v / nv[:, None]
    lyap = (logs / keep).reshape(P, I)
    periods = torch.zeros(P * I, dtype=torch.long)
    labels = []
    for b in range(P * I):
        if bool(diverged[b]):
            labels.append("divergent")
            continue
        if float((W[-1, b] - W[-2, b]).abs().max()) <= tol:
            periods[b] = 1
            labels.append("converged")
            continue
        cyc = detect_cycle(W[:, b], max_period, tol=tol * 10, min_repeats=2)
        if cyc.period >= 2 and cyc.start == 0:
            periods[b] = cyc.period
            labels.append(f"period-{cyc.period}")
        else:
            labels.append("chaotic" if float(lyap.flatten()[b]) > lyap_tol else "quasi-periodic")
    lab2 = [labels[i * I:(i + 1) * I] for i in range(P)]
    return OrbitDiagram(ps, W.permute(1, 0, 2).reshape(P, I, keep, d), lyap, periods.reshape(P, I), lab2,
                        diverged.reshape(P, I), time.perf_counter() - start)


def period_doubling_points(params: torch.Tensor, periods: torch.Tensor, max_gap: int = 2) -> list:
    """Parameters where the period doubles along a sorted scan: [(p_left, p_right, k, 2k)] — the
    bracket in which the period-k orbit gives way to period 2k. Up to ``max_gap`` consecutive
    undetermined entries (period 0, e.g. slow convergence right at a bifurcation) are bridged;
    longer stretches (chaos) break the chain."""
    out = []
    ps = params.tolist() if torch.is_tensor(params) else list(params)
    pr = periods.tolist() if torch.is_tensor(periods) else list(periods)
    last_i = None
    for i, k in enumerate(pr):
        if k < 1:
            continue
        if last_i is not None and k == 2 * pr[last_i] and i - last_i - 1 <= max_gap:
            out.append((ps[last_i], ps[i], pr[last_i], k))
        last_i = i
    return out
