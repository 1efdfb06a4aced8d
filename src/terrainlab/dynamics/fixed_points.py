"""Fixed points of maps (T(s) = s) and zeros of fields (F(s) = 0), from many starts at once.

Every start is driven to a minimum of q(s) = ½‖r(s)‖², r = F(s) (fields) or r = T(s) − s (maps), by
Levenberg–Marquardt (Levenberg 1944; Marquardt 1963): δ = −(AᵀA + λI)⁻¹Aᵀr with A = ∂r/∂s and a
per-start damping λ that shrinks on success and grows on failure, so it is Newton's method near a
regular zero (quadratic convergence) and gradient descent on q far from one. Minima of q that are
not zeros are the *slow points* of Sussillo & Barak (2013), "Opening the black box", reported with
``is_slow``. For small d the Jacobian is formed densely with batched VJPs (torch.func); for large d
the linear system is solved matrix-free by conjugate gradients with one Jacobian-vector and one
vector-Jacobian product per iteration, so nothing d × d is ever stored.

On the simplex (``geometry=Simplex(...)``) the unknowns are tangent coordinates y, s = c + B y with
B an orthonormal basis of {Σv = 0}; trial points are projected back onto the simplex, and the
Jacobian and its K − 1 eigenvalues are those of the tangent restriction.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..core import project_simplex
from ._util import (
    Coords,
    check_eta,
    check_geometry,
    check_int,
    check_kind,
    check_positive,
    check_states,
    state_fn,
)
from .classify import classify_flow, classify_map, euler_flip_eta, euler_map_eigs
from .jacobian import _batched_jac

_ACTIVE, _CONV, _SLOW, _FAIL = 0, 1, 2, 3


@dataclass(frozen=True)
class FixedPointResult:
    """Distinct fixed points (and slow points) found from a batch of starts.

    points:       (M, d) locations (on the simplex for simplex geometry).
    residuals:    (M,) ‖F(s)‖₂ for fields, ‖T(s) − s‖₂ for maps (tangent part on the simplex).
    eigenvalues:  (M, m) complex; flow eigenvalues of DF for fields, map eigenvalues of DT for maps
                  (m = d, or K − 1 on the simplex: the tangent Jacobian).
    kinds:        class of the system as given: flow class (signs of Re λ) for fields, map class
                  (|μ| vs 1) for maps — "attractor" | "repeller" | "saddle" | "non-hyperbolic".
    map_kinds:    class of the Euler map s + ηF (|1 + ηλ| vs 1) for fields when ``eta`` is given;
                  equal to ``kinds`` for maps; ``None`` for fields without ``eta``.
    flip_eta:     (M,) the η at which the Euler-map class first differs from the flow class
                  (min over stable λ of −2Re λ/|λ|²); ``inf`` for maps or with no stable direction.
    is_slow:      (M,) True for local minima of q that are not zeros (slow points).
    multiplicity: (M,) how many starts ended at each point.
    start_labels: (N,) index of the point each start reached, −1 if it failed.
    start_residuals: (N,) final ‖r‖₂ of every start (diagnostic for failed starts).
    n_starts, n_converged (starts that reached a zero), n_slow (starts at slow points),
    n_failed, n_iter, n_fn_evals (batched evaluations), n_vjp / n_jvp (per-state products),
    seconds, method ("dense" or "matrix-free").
    """

    points: torch.Tensor
    residuals: torch.Tensor
    eigenvalues: torch.Tensor
    kinds: list
    map_kinds: list | None
    flip_eta: torch.Tensor
    is_slow: torch.Tensor
    multiplicity: torch.Tensor
    start_labels: torch.Tensor
    start_residuals: torch.Tensor
    kind: str
    eta: float | None
    n_starts: int
    n_converged: int
    n_slow: int
    n_failed: int
    n_iter: int
    n_fn_evals: int
    n_vjp: int
    n_jvp: int
    seconds: float
    method: str

    @property
    def n_points(self) -> int:
        return int(self.points.shape[0])

    @property
    def fixed(self) -> torch.Tensor:
        """Points that are true zeros (not slow points)."""
        return self.points[~self.is_slow]

    def of_kind(self, kind: str) -> torch.Tensor:
        """The true fixed points of a given class, e.g. ``res.of_kind("attractor")``."""
        idx = [i for i, k in enumerate(self.kinds) if k == kind and not bool(self.is_slow[i])]
        return self.points[idx]

    def summary(self) -> str:
        lines = [f"{self.n_points} point(s) from {self.n_starts} starts ({self.n_converged} converged, "
                 f"{self.n_slow} slow, {self.n_failed} failed) in {self.seconds:.3f}s, {self.n_iter} iterations"]
        for i in range(self.n_points):
            tag = "slow" if bool(self.is_slow[i]) else self.kinds[i]
            lines.append(f"  {i}: {tag:<15} residual={float(self.residuals[i]):.2e} "
                         f"x{int(self.multiplicity[i])} at {self.points[i].tolist()}")
        return "\n".join(lines)


def _dedup(points: torch.Tensor, order: torch.Tensor, tol: float):
    """Greedy clustering: representative = best-residual point; returns (rep indices, labels)."""
    n = points.shape[0]
    labels = torch.full((n,), -1, dtype=torch.long, device=points.device)
    reps = []
    remaining = order.clone()
    while remaining.numel():
        i = int(remaining[0])
        dist = (points[remaining] - points[i]).norm(dim=-1)
        close = dist <= tol
        labels[remaining[close]] = len(reps)
        reps.append(i)
        remaining = remaining[~close]
    return reps, labels


def _cg(apply, b, iters: int, rtol: float):
    """Batched conjugate gradients for SPD systems apply(x) = b, one system per row."""
    x = torch.zeros_like(b)
    r = b.clone()
    p = r.clone()
    rs = (r * r).sum(-1, keepdim=True)
    bnorm = rs.sqrt().clamp(min=torch.finfo(b.dtype).tiny)
    k = 0
    for k in range(1, iters + 1):  # noqa: B007 (k is returned)
        Ap = apply(p)
        denom = (p * Ap).sum(-1, keepdim=True)
        alpha = torch.where(denom > 0, rs / denom.clamp(min=torch.finfo(b.dtype).tiny), torch.zeros_like(rs))
        x = x + alpha * p
        r = r - alpha * Ap
        rs_new = (r * r).sum(-1, keepdim=True)
        if bool((rs_new.sqrt() <= rtol * bnorm).all()):
            break
        p = r + (rs_new / rs.clamp(min=torch.finfo(b.dtype).tiny)) * p
        rs = rs_new
    return x, k


def find_fixed_points(
    fn: Callable,
    inits: torch.Tensor,
    *,
    kind: str = "field",
    geometry=None,
    eta: float | None = None,
    tol: float = 1e-10,
    max_iter: int = 100,
    dedup_tol: float | None = None,
    slow_tol: float = 1e-6,
    class_tol: float = 1e-8,
    method: str = "auto",
    newton_max_dim: int = 256,
    cg_iters: int = 30,
    bound: float | None = None,
    patience: int | None = None,
    t: float = 0.0,
) -> FixedPointResult:
    """Find the fixed points of a map (T(s) = s) or the zeros of a field (F(s) = 0).

    Args:
        fn: a batched field ``F(s, t)``/``F(s)`` (``kind="field"``) or map ``T(s)`` (``kind="map"``)
            taking states of shape (N, d); rows must not interact. Any PyTorch code works:
            closed forms, ``gradient_field(loss)``, ``as_map(F, η)``, an ``nn.GRUCell`` update with
            the input held fixed, a DEQ layer.
        inits: starts, shape (..., d).
        kind: ``"field"`` or ``"map"``.
        geometry: ``None``/``Euclidean()`` or ``Simplex(...)`` (starts must lie on the simplex).
        eta: for fields, also classify the Euler map s + ηF (``map_kinds``).
        tol: a start has converged to a zero when ‖r‖₂ ≤ max(tol, 10·eps·√m·(1+‖s‖∞)).
        max_iter: Levenberg–Marquardt iterations.  dedup_tol: distance under which two points are
            the same (default 1e-6 in float64, 1e-3 in lower precision).
        slow_tol: a stalled start is a slow point when ‖Aᵀr‖ ≤ slow_tol·max(‖A‖_F, 1)·‖r‖
            (a minimum of q).
        class_tol: tolerance of the eigenvalue classification.
        method: ``"dense"`` (Jacobian formed by batched VJPs), ``"matrix-free"`` (CG with JVP/VJP)
            or ``"auto"`` (dense when m ≤ newton_max_dim).
        patience: if given, a start whose q fell by less than 1% over this many iterations has
            stalled (a slow point if its gradient test passes, else a failure) — saves time on
            starts crawling along slow manifolds; off by default so slow points are resolved.
        bound: optional box |s|∞ ≤ bound (Euclidean geometry): iterates are clipped to it
            (projected Levenberg–Marquardt), starts outside it fail. Useful where q has spurious zeros at infinity (e.g. an RNN whose gates saturate to
            exactly 1 in float32 far outside the range of its states).

    Returns:
        :class:`FixedPointResult`. Starts that produce NaN or never settle are counted in
        ``n_failed``; nothing raises for non-convergence.

    Example:
        >>> from terrainlab.core import gradient_field
        >>> F = gradient_field(lambda s: (s[..., 0] ** 2 - 1) ** 2 + s[..., 1] ** 2)
        >>> res = find_fixed_points(F, torch.randn(64, 2, dtype=torch.float64))
        >>> sorted(res.kinds)
        ['attractor', 'attractor', 'saddle']
    """
    check_kind(kind)
    check_eta(eta)
    check_positive(tol, "tol")
    check_int(max_iter, "max_iter", 1)
    check_int(cg_iters, "cg_iters", 1)
    if patience is not None:
        check_int(patience, "patience", 1)
    check_positive(slow_tol, "slow_tol")
    if dedup_tol is not None:
        check_positive(dedup_tol, "dedup_tol")
    if bound is not None:
        check_positive(bound, "bound")
    if method not in ("auto", "dense", "matrix-free"):
        raise ValueError(f"method must be 'auto', 'dense' or 'matrix-free', got {method!r}")
    geometry = check_geometry(geometry)
    x0 = check_states(inits, "inits").detach()
    geometry.validate(x0, "inits")
    start = time.perf_counter()
    N, d = x0.shape
    dtype, device = x0.dtype, x0.device
    co = Coords(geometry, d, dtype, device)
    m = co.m
    g = state_fn(fn, t)
    if method == "auto":
        method = "dense" if m <= newton_max_dim else "matrix-free"
    eps = torch.finfo(dtype).eps
    if dedup_tol is None:
        dedup_tol = 1e-6 if dtype == torch.float64 else 1e-3

    counters = {"fn": 0, "vjp": 0, "jvp": 0}

    def R(y):
        s = co.to_s(y)
        out = g(s)
        if not torch.is_tensor(out) or out.shape != s.shape:
            raise ValueError(f"fn must return a tensor with the state's shape {tuple(s.shape)}, got "
                             f"{tuple(out.shape) if torch.is_tensor(out) else type(out).__name__}")
        return co.tangent(out - s) if kind == "map" else co.tangent(out)

    def evalR(y):
        counters["fn"] += 1
        with torch.no_grad():
            return R(y)

    def land(y, delta):
        """y + δ, kept on the simplex: an interior start moves at most 95% of the way to the
        boundary along δ (fraction-to-boundary rule), a start already on the boundary that δ
        pushes out is projected back."""
        if not co.simplex:
            return y + delta if bound is None else (y + delta).clamp(-bound, bound)
        p, dp = co.to_s(y), delta @ co.B.T
        neg = dp < 0
        ratio = torch.where(neg, p.clamp(min=0) / (-dp).clamp(min=torch.finfo(dtype).tiny), torch.full_like(p, math.inf))
        amax = ratio.amin(-1)
        alpha = torch.where(amax >= 1, torch.ones_like(amax), 0.95 * amax)
        stuck = amax <= 0
        out = co.to_y(project_simplex(p + alpha[:, None] * dp))
        if bool(stuck.any()):
            out[stuck] = co.to_y(project_simplex(p[stuck] + dp[stuck]))
        return out

    def tol_of(y):
        return torch.clamp(10 * eps * math.sqrt(m) * (1 + co.to_s(y).abs().amax(-1)), min=tol)

    y = co.to_y(x0).clone()
    r = evalR(y)
    q = 0.5 * (r * r).sum(-1)
    status = torch.full((N,), _ACTIVE, dtype=torch.long, device=device)
    status[~torch.isfinite(q)] = _FAIL
    if bound is not None:
        status[x0.abs().amax(-1) > bound] = _FAIL
    lam = torch.full((N,), 1e-6, dtype=dtype, device=device)
    conv = r.norm(dim=-1) <= tol_of(y)
    status[conv & (status == _ACTIVE)] = _CONV
    gnorm_rel = torch.full((N,), math.inf, dtype=dtype, device=device)
    dscale = torch.full((N,), math.nan, dtype=dtype, device=device)
    have_jac = torch.zeros(N, dtype=torch.bool, device=device)
    q_check = q.clone()
    H_cache = g_cache = a_cache = None
    it = 0
    for it in range(1, max_iter + 1):
        act = torch.nonzero(status == _ACTIVE).flatten()
        if act.numel() == 0:
            it -= 1
            break
        ya, ra, qa, la = y[act], r[act], q[act], lam[act]
        if method == "dense":
            # AᵀA, Aᵀr and ‖A‖ only change where the last step was accepted: reuse them elsewhere
            need = ~have_jac[act]
            if bool(need.any()):
                idx_new = act[need]
                A_new = _batched_jac(R, y[idx_new])
                counters["vjp"] += idx_new.numel() * m
                if H_cache is None:
                    H_cache = torch.zeros(N, m, m, dtype=A_new.dtype, device=device)
                    g_cache = torch.zeros(N, m, dtype=A_new.dtype, device=device)
                    a_cache = torch.zeros(N, dtype=A_new.dtype, device=device)
                H_cache[idx_new] = A_new.transpose(-1, -2) @ A_new
                g_cache[idx_new] = (A_new.transpose(-1, -2) @ r[idx_new].unsqueeze(-1)).squeeze(-1)
                a_cache[idx_new] = A_new.flatten(1).norm(dim=-1)
                have_jac[idx_new] = True
                del A_new
            H = H_cache[act]
            grad_q = g_cache[act]
            anorm = a_cache[act]
            # damping scale fixed per start at its first iteration (Marquardt's scaling would
            # vanish together with A at a slow point and stall the descent there)
            hdiag = H.diagonal(dim1=-2, dim2=-1).mean(-1)
            sc = dscale[act]
            sc = torch.where(torch.isnan(sc), hdiag, sc)
            dscale[act] = sc
            scale = torch.maximum(sc, hdiag).clamp(min=torch.finfo(dtype).tiny)
            lhs = H
            lhs.diagonal(dim1=-2, dim2=-1).add_((la * scale)[:, None])  # H is a fresh gathered copy
            delta = torch.linalg.solve_ex(lhs, -grad_q.unsqueeze(-1))[0].squeeze(-1)
            delta = torch.where(torch.isfinite(delta), delta, torch.zeros_like(delta))
        else:
            # matrix-free: A v by the double-VJP trick (v ↦ ∂/∂u ⟨Aᵀu, v⟩), Aᵀ w by one VJP,
            # both over one retained graph per iteration
            with torch.enable_grad():
                yr = ya.detach().requires_grad_(True)
                out = R(yr)
                u = torch.zeros_like(out, requires_grad=True)
                (gy,) = torch.autograd.grad(out, yr, u, create_graph=True)

            def Aop(v):
                counters["jvp"] += act.numel()
                return torch.autograd.grad(gy, u, v, retain_graph=True)[0]

            def ATop(w):
                counters["vjp"] += act.numel()
                return torch.autograd.grad(out, yr, w, retain_graph=True)[0]

            grad_q = ATop(ra)

            def apply(v, la=la):
                return ATop(Aop(v)) + la[:, None] * v

            # inexact Newton: the forcing term shrinks with the residual (Dembo, Eisenstat &
            # Steihaug 1982), so far from a zero CG stops early
            forcing = float(ra.norm(dim=-1).max().clamp(max=1e-1).clamp(min=1e-10))
            delta, _ = _cg(apply, -grad_q, cg_iters, forcing)
            scale = torch.ones_like(la)
            # ‖A‖ estimate for the slow-point test: ‖A u‖ along the normalised gradient direction
            un = grad_q / grad_q.norm(dim=-1, keepdim=True).clamp(min=torch.finfo(dtype).tiny)
            anorm = Aop(un).norm(dim=-1) * math.sqrt(m)
            delta, grad_q = delta.detach(), grad_q.detach()
        gnorm_rel[act] = grad_q.detach().norm(dim=-1) / (anorm.clamp(min=1.0) * ra.norm(dim=-1)).clamp(min=torch.finfo(dtype).tiny)
        trial = land(ya, delta.detach())
        rt = evalR(trial)
        qt = 0.5 * (rt * rt).sum(-1)
        accept = torch.isfinite(qt) & (qt < qa)
        idx_acc = act[accept]
        y[idx_acc], r[idx_acc], q[idx_acc] = trial[accept], rt[accept], qt[accept]
        have_jac[idx_acc] = False
        lam[act] = torch.where(accept, (la / 3).clamp(min=1e-12), la * 8)
        # statuses
        conv = (r[act].norm(dim=-1) <= tol_of(y[act])) & (status[act] == _ACTIVE)
        status[act[conv]] = _CONV
        stalled = (~conv) & (status[act] == _ACTIVE) & (lam[act] > 1e8)
        if patience is not None and it % patience == 0:
            # no progress: q fell by less than 1% over the last `patience` iterations
            stuck = q[act] > 0.99 * q_check[act]
            stalled |= (~conv) & (status[act] == _ACTIVE) & stuck
            q_check[act] = q[act]
        slow = stalled & (gnorm_rel[act] <= slow_tol)
        status[act[slow]] = _SLOW
        status[act[stalled & ~slow]] = _FAIL
    # starts still active after max_iter were still descending q: failures (not slow points, which
    # must have stalled at a minimum of q; e.g. q of e^x keeps falling as x → −∞)
    status[status == _ACTIVE] = _FAIL

    s_final = co.to_s(y)
    res_norm = r.norm(dim=-1)
    labels = torch.full((N,), -1, dtype=torch.long, device=device)
    reps: list[int] = []
    slow_flags: list[bool] = []
    for st in (_CONV, _SLOW):
        idx = torch.nonzero(status == st).flatten()
        if idx.numel() == 0:
            continue
        order = torch.argsort(res_norm[idx])
        rep_local, lab_local = _dedup(s_final[idx], order, dedup_tol)
        if st == _SLOW and reps:
            # a slow point that coincides with a fixed point is that fixed point
            fixed_pts = s_final[torch.tensor(reps, device=device)]
            keep = []
            for j, i in enumerate(rep_local):
                dist = (fixed_pts - s_final[idx[i]]).norm(dim=-1)
                if bool((dist <= dedup_tol).any()):
                    lab_local[lab_local == j] = -(int(torch.argmin(dist)) + 2)  # map to existing
                else:
                    keep.append(j)
            remap = {j: k for k, j in enumerate(keep)}
            new_lab = torch.full_like(lab_local, -1)
            for j, k in remap.items():
                new_lab[lab_local == j] = len(reps) + k
            existing = lab_local <= -2
            new_lab[existing] = -lab_local[existing] - 2
            labels[idx] = new_lab
            reps_add = [rep_local[j] for j in keep]
        else:
            labels[idx] = lab_local + len(reps)
            reps_add = rep_local
        reps.extend(int(idx[i]) for i in reps_add)
        slow_flags.extend([st == _SLOW] * len(reps_add))

    M = len(reps)
    rep_idx = torch.tensor(reps, dtype=torch.long, device=device)
    points = s_final[rep_idx]
    if M:
        A = _batched_jac(R, y[rep_idx])
        counters["vjp"] += M * m
        work = A.to(torch.float64) if A.dtype in (torch.float16, torch.bfloat16, torch.float32) else A
        eig = torch.linalg.eigvals(work.detach().cpu()).to(device)
        if kind == "map":
            eig = eig + 1
        order = torch.argsort(eig.real, dim=-1, descending=True)
        eig = torch.gather(eig, -1, order)
    else:
        eig = torch.zeros(0, m, dtype=torch.complex128, device=device)
    if kind == "field":
        kinds = classify_flow(eig, class_tol) if M else []
        map_kinds = (classify_map(euler_map_eigs(eig, eta), class_tol) if M else []) if eta is not None else None
        flip = euler_flip_eta(eig) if M else torch.zeros(0, dtype=torch.float64, device=device)
    else:
        kinds = classify_map(eig, class_tol) if M else []
        map_kinds = list(kinds)
        flip = torch.full((M,), math.inf, dtype=torch.float64, device=device)
    multiplicity = torch.bincount(labels[labels >= 0], minlength=M)[:M] if M else torch.zeros(0, dtype=torch.long, device=device)
    return FixedPointResult(
        points=points.detach(),
        residuals=res_norm[rep_idx].detach(),
        eigenvalues=eig,
        kinds=list(kinds),
        map_kinds=map_kinds,
        flip_eta=flip if torch.is_tensor(flip) else torch.tensor([flip], dtype=torch.float64),
        is_slow=torch.tensor(slow_flags, dtype=torch.bool, device=device),
        multiplicity=multiplicity,
        start_labels=labels,
        start_residuals=res_norm.detach(),
        kind=kind,
        eta=eta,
        n_starts=N,
        n_converged=int((status == _CONV).sum()),
        n_slow=int((status == _SLOW).sum()),
        n_failed=int((status == _FAIL).sum()),
        n_iter=it,
        n_fn_evals=counters["fn"],
        n_vjp=counters["vjp"],
        n_jvp=counters["jvp"],
        seconds=time.perf_counter() - start,
        method=method,
    )
