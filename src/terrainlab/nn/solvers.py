"""Batched fixed-point solvers for z = g(z): Picard, Anderson acceleration, limited-memory Broyden.

Every sample of the batch (leading dimension) is its own fixed-point problem with its own
convergence test: the iteration at which its relative residual ‖g(z) − z‖ / ‖g(z)‖ first reaches
``tol`` is recorded ("emergent depth"); the solve stops when every sample has converged or given up,
and samples that converged early keep improving meanwhile (the batch is evaluated anyway), the best
iterate of each being returned. A solver never raises on divergence: a sample whose residual or
iterate becomes non-finite or grows ``divergence_factor``× is frozen at its best iterate and marked
diverged; the result carries per-sample statuses and the
overall ``status`` ∈ {converged, max_iter, diverged}. Memory is bounded by the solver's memory
``m`` (ring buffers), never by the iteration count.

References: Picard/Banach iteration; Anderson, "Iterative procedures for nonlinear integral
equations" (J. ACM 1965) and Walker & Ni, "Anderson acceleration for fixed-point iterations"
(SIAM J. Numer. Anal. 2011); Broyden, "A class of methods for solving nonlinear simultaneous
equations" (Math. Comp. 1965), in the inverse "good Broyden" form used by Bai et al., "Deep
Equilibrium Models" (NeurIPS 2019).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

#: per-sample status codes in :attr:`FixedPointResult.sample_status`
CONVERGED, MAX_ITER, DIVERGED = 0, 1, 2
STATUS_NAMES = ("converged", "max_iter", "diverged")


@dataclass(frozen=True)
class FixedPointResult:
    """Result of a batched fixed-point solve.

    z:              best iterate per sample (lowest relative residual seen), the input's shape.
    fz:             g(z), already computed: one more (free) iteration from the best iterate.
    residual:       (B,) relative residual ‖g(z) − z‖/‖g(z)‖ of the returned iterate.
    iterations:     (B,) evaluations of g used by each sample until it stopped (emergent depth).
    sample_status:  (B,) int codes 0 converged, 1 max_iter, 2 diverged (NaN, or residual or
                    iterate grown ``divergence_factor``× — counts as diverged).
    status:         ``converged`` (all samples), ``max_iter`` or ``diverged`` (any sample).
    residual_history: max relative residual over the still-active samples, per iteration.
    n_evals:        batched evaluations of g;  seconds: wall time.
    """

    z: torch.Tensor
    fz: torch.Tensor
    residual: torch.Tensor
    iterations: torch.Tensor
    sample_status: torch.Tensor
    status: str
    residual_history: tuple
    n_evals: int
    seconds: float

    @property
    def converged(self) -> torch.Tensor:
        return self.sample_status == CONVERGED


class FixedPointSolver:
    """Base class: subclasses implement ``_init`` and ``_propose`` on flattened (B, n) iterates."""

    name = "solver"

    def _init(self, x: torch.Tensor) -> dict:
        return {}

    def _propose(self, st: dict, x, gx, active, k):  # pragma: no cover - abstract
        raise NotImplementedError

    def solve(
        self,
        g: Callable[[torch.Tensor], torch.Tensor],
        z0: torch.Tensor,
        *,
        tol: float = 1e-4,
        max_iter: int = 50,
        divergence_factor: float = 1e4,
    ) -> FixedPointResult:
        """Iterate to z = g(z) from ``z0`` (shape (B, ...), samples independent)."""
        return _run(self, g, z0, tol, max_iter, divergence_factor)

    def __repr__(self) -> str:
        keys = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({keys})"


class Picard(FixedPointSolver):
    """Damped Picard iteration z ← (1 − β)·z + β·g(z). Converges at rate Lip(g) when Lip(g) < 1
    (Banach); β < 1 can tame oscillating (negative-eigenvalue) maps."""

    name = "picard"

    def __init__(self, beta: float = 1.0):
        if not (0 < beta <= 1):
            raise ValueError(f"beta must be in (0, 1], got {beta!r}")
        self.beta = beta

    def _propose(self, st, x, gx, active, k):
        if self.beta == 1.0:
            return gx
        return x + self.beta * (gx - x)


class Anderson(FixedPointSolver):
    """Anderson acceleration (type II) with memory ``m``, damping ``beta`` and Tikhonov ``lam``.

    With residuals G_i = g(x_i) − x_i of the last m iterates, solve per sample

        α = argmin ‖Σ α_i G_i‖² + λ·s·‖α‖²   subject to Σ α_i = 1,

    where s = max_i ‖G_i‖² makes the regularisation scale-free (a fixed λ would swamp the least
    squares once residuals are small, turning Anderson into slow averaging). Then

        x⁺ = β·Σ α_i g(x_i) + (1 − β)·Σ α_i x_i.

    The m×m Gram matrix is updated by one row per iteration and solved in float64. History lives in
    (B, m, n) ring buffers: memory is fixed by m, not by the iteration count.

    Example:
        >>> W = 0.5 * torch.eye(3)
        >>> r = Anderson(m=3).solve(lambda z: torch.tanh(z @ W + 1), torch.zeros(2, 3), tol=1e-8)
        >>> r.status
        'converged'
    """

    name = "anderson"

    def __init__(self, m: int = 6, beta: float = 1.0, lam: float = 1e-8):
        if not (isinstance(m, int) and m >= 1):
            raise ValueError(f"m must be an int >= 1, got {m!r}")
        if not (0 < beta <= 1):
            raise ValueError(f"beta must be in (0, 1], got {beta!r}")
        if not lam >= 0:
            raise ValueError(f"lam must be >= 0, got {lam!r}")
        self.m, self.beta, self.lam = m, beta, lam

    def _init(self, x):
        B, n = x.shape
        return {
            "X": x.new_zeros(B, self.m, n),
            "F": x.new_zeros(B, self.m, n),
            "G": x.new_zeros(B, self.m, n),
            "H": torch.zeros(B, self.m, self.m, dtype=torch.float64, device=x.device),
        }

    def _propose(self, st, x, gx, active, k):
        X, F, G, H = st["X"], st["F"], st["G"], st["H"]
        if torch.is_grad_enabled() and x.requires_grad:  # unrolled: keep the autograd graph valid
            X, F, G, H = X.clone(), F.clone(), G.clone(), H.clone()
            st.update(X=X, F=F, G=G, H=H)
        slot = (k - 1) % self.m
        g_new = gx - x
        X[:, slot] = x
        F[:, slot] = gx
        G[:, slot] = g_new
        h = min(k, self.m)
        if h == 1:
            return x + self.beta * (gx - x)
        # Gram matrix H_ij = ⟨G_i, G_j⟩, updated by one new row/column per iteration
        row = torch.bmm(G[:, :h], g_new[:, :, None])[:, :, 0].double()
        H[:, slot, :h] = row
        H[:, :h, slot] = row
        Hh = H[:, :h, :h]
        scale = Hh.diagonal(dim1=1, dim2=2).amax(dim=1).clamp_min(1e-300)
        eye = torch.eye(h, dtype=H.dtype, device=H.device)
        A = Hh + (self.lam * scale + 1e-300)[:, None, None] * eye
        ones = torch.ones(A.shape[0], h, 1, dtype=A.dtype, device=A.device)
        w, info = torch.linalg.solve_ex(A, ones)
        w = w[:, :, 0]
        alpha = w / w.sum(dim=1, keepdim=True)
        bad = (info != 0) | ~torch.isfinite(alpha).all(dim=1)
        if bool(bad.any()):  # a failed solve falls back to the newest pair (plain damped Picard)
            alpha = torch.where(bad[:, None], torch.zeros_like(alpha), alpha)
            alpha[bad, slot] = 1.0
        alpha = alpha.to(x.dtype)[:, None, :]
        fa = torch.bmm(alpha, F[:, :h])[:, 0]
        if self.beta == 1.0:
            return fa
        xa = torch.bmm(alpha, X[:, :h])[:, 0]
        return xa + self.beta * (fa - xa)


class Broyden(FixedPointSolver):
    """Limited-memory "good" Broyden on the root problem r(z) = g(z) − z = 0.

    The inverse Jacobian of r is approximated by H = −I + Σ_{i ≤ m} u_i v_iᵀ, the step is
    z⁺ = z − H·r(z), and each step adds the rank-one Sherman–Morrison correction

        v = Hᵀ·Δz,   u = (Δz − H·Δr) / (vᵀ·Δr).

    At most ``m`` pairs are kept: when the memory is full it restarts from H = −I (restarted
    Broyden), and a sample whose residual grows above ``reset_factor``× its best is sent back to
    its best iterate with a fresh memory (a safeguard in place of a line search). Memory is
    2·B·m·n numbers whatever the iteration count — the fixed-size alternative to storing one pair
    per iteration.
    """

    name = "broyden"

    def __init__(self, m: int = 16, reset_factor: float = 1e3):
        if not (isinstance(m, int) and m >= 1):
            raise ValueError(f"m must be an int >= 1, got {m!r}")
        if not reset_factor > 1:
            raise ValueError(f"reset_factor must be > 1, got {reset_factor!r}")
        self.m, self.reset_factor = m, reset_factor

    def _init(self, x):
        B, n = x.shape
        return {
            "U": x.new_zeros(B, self.m, n),
            "V": x.new_zeros(B, self.m, n),
            "count": torch.zeros(B, dtype=torch.long, device=x.device),
            "prev": None,
            "best": None,
        }

    @staticmethod
    def _H(U, V, r):  # H r = −r + Σ u_i (v_i·r)
        return (V * r[:, None, :]).sum(dim=2)[:, :, None].mul(U).sum(dim=1) - r

    @staticmethod
    def _Ht(U, V, r):  # Hᵀ r = −r + Σ v_i (u_i·r)
        return (U * r[:, None, :]).sum(dim=2)[:, :, None].mul(V).sum(dim=1) - r

    def _propose(self, st, x, gx, active, k):
        U, V, count = st["U"], st["V"], st["count"]
        if torch.is_grad_enabled() and x.requires_grad:  # unrolled: keep the autograd graph valid
            U, V = U.clone(), V.clone()
            st["U"], st["V"] = U, V
        r = gx - x
        rn = r.norm(dim=1)
        if st["best"] is None:
            st["best"] = (x, r, rn)
        bx, br, bn = st["best"]
        improved = rn < bn
        bx = torch.where(improved[:, None], x, bx)
        br = torch.where(improved[:, None], r, br)
        bn = torch.where(improved, rn, bn)
        st["best"] = (bx, br, bn)
        reset = ~torch.isfinite(rn) | (rn > self.reset_factor * bn)
        full = count >= self.m
        wipe = (reset | full)[:, None, None].to(x.dtype)
        if bool((reset | full).any()):
            U.mul_(1 - wipe)
            V.mul_(1 - wipe)
            count = torch.where(reset | full, torch.zeros_like(count), count)
        x = torch.where(reset[:, None], bx, x)
        r = torch.where(reset[:, None], br, r)
        prev = st["prev"]
        used = int(count.max()) + 1 if prev is not None else 0
        Uu, Vu = U[:, : max(used, 1)], V[:, : max(used, 1)]  # slots beyond every count are zero
        if prev is not None:
            x_old, r_old = prev
            dx, dr = x - x_old, r - r_old
            v = self._Ht(Uu, Vu, dx)
            denom = (v * dr).sum(dim=1)
            ok = active & ~reset & torch.isfinite(denom) & (denom.abs() > 1e-30)
            u = (dx - self._H(Uu, Vu, dr)) / torch.where(ok, denom, torch.ones_like(denom))[:, None]
            slot = count.clamp(max=self.m - 1)
            okf = ok[:, None].to(x.dtype)
            idx = slot[:, None, None].expand(-1, 1, x.shape[1])
            U.scatter_(1, idx, (u * okf)[:, None, :] + U.gather(1, idx) * (1 - okf)[:, None, :])
            V.scatter_(1, idx, (v * okf)[:, None, :] + V.gather(1, idx) * (1 - okf)[:, None, :])
            count = count + ok.long()
        st["count"] = count
        st["prev"] = (x, r)
        used = min(int(count.max()), self.m)
        return x - self._H(U[:, :used], V[:, :used], r) if used else x + r


def _resolve(solver) -> FixedPointSolver:
    if isinstance(solver, FixedPointSolver):
        return solver
    table = {"picard": Picard, "anderson": Anderson, "broyden": Broyden}
    if isinstance(solver, str) and solver in table:
        return table[solver]()
    raise ValueError(
        f"solver must be Picard(), Anderson(), Broyden() or one of {tuple(table)}, got {solver!r}"
    )


def _run(solver, g, z0, tol, max_iter, divergence_factor) -> FixedPointResult:
    if not torch.is_tensor(z0) or z0.ndim < 1 or not torch.is_floating_point(z0):
        raise ValueError("z0 must be a floating-point tensor with a leading batch dimension")
    if not (isinstance(tol, (int, float)) and tol > 0):
        raise ValueError(f"tol must be > 0, got {tol!r}")
    if isinstance(max_iter, bool) or not (isinstance(max_iter, int) and max_iter >= 1):
        raise ValueError(f"max_iter must be an int >= 1, got {max_iter!r}")
    if not divergence_factor > 1:
        raise ValueError(f"divergence_factor must be > 1, got {divergence_factor!r}")
    start = time.perf_counter()
    shape, B = z0.shape, z0.shape[0]

    def gflat(x):
        out = g(x.reshape(shape))
        if out.shape != shape:
            raise ValueError(f"g must return the state's shape {tuple(shape)}, got {tuple(out.shape)}")
        return out.reshape(B, -1)

    x = z0.reshape(B, -1)
    st = solver._init(x)
    dev = x.device
    best = x.clone()
    best_f = x.clone()
    best_res = torch.full((B,), math.inf, dtype=x.dtype, device=dev)
    iters = torch.zeros(B, dtype=torch.long, device=dev)
    status = torch.full((B,), MAX_ITER, dtype=torch.long, device=dev)
    active = torch.ones(B, dtype=torch.bool, device=dev)
    alive = torch.ones(B, dtype=torch.bool, device=dev)
    r0 = None
    history = []
    n_evals = 0
    for k in range(1, max_iter + 1):
        gx = gflat(x)
        n_evals += 1
        diff = (gx - x).norm(dim=1)
        res = diff / gx.norm(dim=1).clamp_min(1e-12)
        if r0 is None:
            r0 = torch.where(torch.isfinite(diff), diff, torch.ones_like(diff)).clamp_min(1e-30)
            size0 = 1.0 + torch.nan_to_num(x.norm(dim=1) + gx.norm(dim=1), posinf=0.0)
        finite = torch.isfinite(res)  # an inf/NaN anywhere in g(x) or x makes res non-finite
        # diverged: NaN/inf, the residual or the iterate blew up (a huge iterate also fakes a small
        # *relative* residual, so it must not count as converged)
        blown = (diff > divergence_factor * r0) | (x.norm(dim=1) > divergence_factor * size0)
        bad = ~finite | blown
        div = active & bad
        better = alive & ~bad & (res < best_res)
        bm = better[:, None]
        best = torch.where(bm, x, best)
        best_f = torch.where(bm, gx, best_f)
        best_res = torch.where(better, res, best_res)
        iters = torch.where(active, torch.full_like(iters, k), iters)
        conv = active & ~bad & (res <= tol)
        status = torch.where(conv, torch.full_like(status, CONVERGED), status)
        status = torch.where(div, torch.full_like(status, DIVERGED), status)
        res_act = torch.where(active & finite, res, torch.zeros_like(res))
        active = active & ~conv & ~div
        alive = alive & ~bad  # converged samples keep improving (the batch is evaluated anyway)
        # one host synchronisation per iteration: the history value and two counts
        hmax, n_act, n_alive = torch.stack(
            [res_act.max().to(torch.float64), active.sum().to(torch.float64), alive.sum().to(torch.float64)]
        ).tolist()
        history.append(hmax)
        if n_act == 0 or k == max_iter:
            break
        safe_gx = gx if n_alive == B else torch.where(alive[:, None], gx, x)
        x_new = solver._propose(st, x, safe_gx, alive, k)
        x = x_new if n_alive == B else torch.where(alive[:, None], x_new, x)
    never = ~torch.isfinite(best_res)  # a sample that was never finite keeps its start
    best_res = torch.where(never, torch.full_like(best_res, math.inf), best_res)
    if bool((status == DIVERGED).any()):
        overall = "diverged"
    elif bool((status == MAX_ITER).any()):
        overall = "max_iter"
    else:
        overall = "converged"
    return FixedPointResult(
        z=best.reshape(shape),
        fz=best_f.reshape(shape),
        residual=best_res,
        iterations=iters,
        sample_status=status,
        status=overall,
        residual_history=tuple(history),
        n_evals=n_evals,
        seconds=time.perf_counter() - start,
    )


def fixed_point(
    g: Callable[[torch.Tensor], torch.Tensor],
    z0: torch.Tensor,
    *,
    solver: FixedPointSolver | str = "anderson",
    tol: float = 1e-4,
    max_iter: int = 50,
    divergence_factor: float = 1e4,
) -> FixedPointResult:
    """Solve z = g(z) for a batch of independent samples (leading dimension of ``z0``).

    Example:
        >>> r = fixed_point(lambda z: torch.tanh(0.8 * z + 0.5), torch.full((1, 1), 2.5), tol=1e-10)
        >>> r.status, round(float(r.z), 4)
        ('converged', 0.8196)
    """
    return _resolve(solver).solve(
        g, z0, tol=tol, max_iter=max_iter, divergence_factor=divergence_factor
    )
