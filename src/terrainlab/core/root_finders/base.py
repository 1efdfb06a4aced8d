"""The root-finder contract: find z with z = g(z), batched over independent rows.

Every root finder solves the *fixed-point form* z = g(z) (Newton-type finders solve the equivalent
root problem r(z) = z − g(z) = 0). ``z0`` has shape (B, ...): each row z0[b] is its own problem,
and ``g`` must map rows to rows (row b of g(z) depends on row b of z only — no BatchNorm in g).

**What ``tol`` means** (the same for every finder, every implicit scheme, DEQ and
ImplicitEulerStep): row b has converged when its *relative residual*

    res_b = ‖g(z_b) − z_b‖₂ / max(‖g(z_b)‖₂, 1e-12)  ≤  tol

(norms over the whole row; the torchdeq "rel" rule of Bai et al. 2019). It is scale-invariant; a
fixed point at the origin is judged on the absolute residual ≤ 1e-12·tol. ``tol`` and ``max_iter``
(evaluations of g per row) live on the finder object, as in diffrax: ``Anderson(m=5, tol=1e-6)``.

The loop (shared by all five finders, which differ only in how they propose the next iterate):
rows stop independently — the iteration at which a row converges is its ``iterations`` ("emergent
depth") — and the solve ends when no row is still running or after ``max_iter``. Rows that
converged early keep being refined while the batch is evaluated anyway (except under
:class:`NewtonKrylov`, whose Krylov solves would cost for nothing), and each row's *best* iterate
(lowest residual seen) is returned. A finder never raises on a failed solve: a row whose residual
or iterate becomes NaN/inf is frozen at its best iterate with row status ``nonfinite``; one whose
residual grows ``divergence_factor``× above its first, or whose iterate grows
``divergence_factor``× (a huge iterate fakes a small *relative* residual), is frozen as
``diverged``; a row still above tol after ``max_iter`` is ``max_steps``. Memory is fixed by the
finder's own memory (ring buffers), never by the iteration count.
"""

from __future__ import annotations

import inspect
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..status import Status
from ..validate import (
    check_callable,
    check_int,
    check_number,
    check_positive,
    check_same_dtype,
    check_tensor,
)

__all__ = ["AbstractRootFinder", "RootResult", "ROW_STATUSES", "relative_residual"]

#: row status codes of :attr:`RootResult.row_status`, indexing this tuple
ROW_STATUSES = (Status.CONVERGED, Status.MAX_STEPS, Status.DIVERGED, Status.NONFINITE)
_CONVERGED, _MAX_STEPS, _DIVERGED, _NONFINITE = range(4)
#: floor of the residual's denominator ‖g(z)‖ (see the module docstring)
RESIDUAL_FLOOR = 1e-12


def relative_residual(z: torch.Tensor, gz: torch.Tensor) -> torch.Tensor:
    """Per-row ‖g(z) − z‖₂ / max(‖g(z)‖₂, 1e-12) of flattened (B, n) rows: the quantity ``tol`` bounds."""
    return (gz - z).norm(dim=1) / gz.norm(dim=1).clamp_min(RESIDUAL_FLOOR)


@dataclass(frozen=True)
class RootResult:
    """Result of a batched root solve z = g(z).

    z:              best iterate per row (lowest relative residual seen), the shape of ``z0``.
    fz:             g(z), already computed (one more, free, fixed-point application).
    residual:       (B,) relative residual ‖g(z) − z‖/‖g(z)‖ of the returned iterate.
    iterations:     (B,) evaluations of g each row used until it stopped (its emergent depth).
    row_status:     (B,) int codes indexing :data:`ROW_STATUSES` (0 converged, 1 max_steps,
                    2 diverged, 3 nonfinite).
    status:         a :class:`~terrainlab.core.Status`: ``converged`` when every row converged,
                    else the worst row's (nonfinite > diverged > max_steps).
    residual_history: max relative residual over the still-running rows, per iteration.
    n_evals:        batched evaluations of g, Jacobian-vector products and Jacobian rows counted
                    as evaluations;  seconds: wall time.
    """

    z: torch.Tensor
    fz: torch.Tensor
    residual: torch.Tensor
    iterations: torch.Tensor
    row_status: torch.Tensor
    status: Status
    residual_history: tuple
    n_evals: int
    seconds: float

    @property
    def converged(self) -> torch.Tensor:
        """(B,) bool: the rows that met ``tol``."""
        return self.row_status == _CONVERGED

    @property
    def n_iter(self) -> int:
        """Iterations of the slowest row (the loop's length)."""
        return int(self.iterations.max()) if self.iterations.numel() else 0

    @property
    def sample_status(self) -> torch.Tensor:
        """Deprecated name of :attr:`row_status`."""
        warnings.warn("sample_status is deprecated; use row_status", DeprecationWarning, stacklevel=2)
        return self.row_status


class AbstractRootFinder:
    """Base class: subclasses set ``name`` and implement ``_propose`` (and ``_init`` if they keep
    memory) on flattened (B, n) iterates. See the module docstring for the shared loop."""

    name = "root_finder"
    #: True: rows that converged are held fixed (their proposal would cost work for nothing).
    hold_converged = False

    def __init__(self, tol: float, max_iter: int, divergence_factor: float = 1e4):
        self.tol = float(check_positive(tol, "tol"))
        self.max_iter = check_int(max_iter, "max_iter", minimum=1)
        self.divergence_factor = float(check_number(divergence_factor, "divergence_factor", minimum=1,
                                                    strict_min=True))

    # ---- hooks --------------------------------------------------------------------------------
    def _init(self, x: torch.Tensor, g_rows) -> dict:
        """Per-solve memory. ``g_rows`` maps (m, n) flattened rows to g of them (any m)."""
        return {}

    def _propose(self, st: dict, x, gx, alive, k):  # pragma: no cover - abstract
        """Next iterate of every row from x, g(x) (rows not ``alive`` are discarded by the loop).
        Extra evaluations of g (Jacobians, JVPs) are added to ``st["evals"]``."""
        raise NotImplementedError

    # ---- public -------------------------------------------------------------------------------
    def replace(self, **changes) -> AbstractRootFinder:
        """A copy with some settings changed: ``Anderson(m=5).replace(tol=1e-8)``."""
        kw = self._settings()
        unknown = set(changes) - set(kw)
        if unknown:
            raise ValueError(f"{type(self).__name__} has no setting(s) {sorted(unknown)}")
        kw.update(changes)
        return type(self)(**kw)

    def solve(self, g: Callable[[torch.Tensor], torch.Tensor], z0: torch.Tensor, *, tol=None, max_iter=None,
              divergence_factor=None) -> RootResult:
        """Iterate to z = g(z) from ``z0`` (shape (B, ...), rows independent).

        ``tol``/``max_iter``/``divergence_factor`` here are deprecated: set them on the finder.
        """
        over = {k: v for k, v in (("tol", tol), ("max_iter", max_iter), ("divergence_factor", divergence_factor))
                if v is not None}
        if over:
            warnings.warn(f"{type(self).__name__}.solve({', '.join(over)}=...) is deprecated; set them on the "
                          f"finder: {type(self).__name__}(..., {', '.join(f'{k}=' for k in over)}...)",
                          DeprecationWarning, stacklevel=2)
            return self.replace(**over)._solve(g, z0)
        return self._solve(g, z0)

    def _settings(self) -> dict:
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {n: getattr(self, n) for n in names}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self._settings().items())})"

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other._settings() == self._settings()

    def __hash__(self) -> int:
        return hash((type(self), tuple(self._settings().items())))

    # ---- the shared loop ----------------------------------------------------------------------
    def _solve(self, g, z0) -> RootResult:
        check_callable(g, "g")
        check_tensor(z0, "z0", min_ndim=1)
        start = time.perf_counter()
        shape, B = z0.shape, z0.shape[0]
        dev = z0.device
        if B == 0:  # nothing to solve: trivially converged
            empty = torch.zeros(0, dtype=torch.long, device=dev)
            return RootResult(z=z0, fz=z0, residual=torch.zeros(0, dtype=z0.dtype, device=dev), iterations=empty,
                              row_status=empty, status=Status.CONVERGED, residual_history=(), n_evals=0,
                              seconds=time.perf_counter() - start)
        event = shape[1:]

        checked = False

        def g_rows(x):
            nonlocal checked
            out = g(x.reshape(x.shape[0], *event))
            if not checked:  # the map's output contract, checked on its first call only (no per-iteration cost)
                if not torch.is_tensor(out) or out.shape != (x.shape[0], *event):
                    got = tuple(out.shape) if torch.is_tensor(out) else type(out).__name__
                    raise ValueError(f"g must return the state's shape {(x.shape[0], *event)}, got {got}")
                check_same_dtype(out, "g(z)", x, "z0")
                checked = True
            return out.reshape(x.shape[0], -1)

        x = z0.reshape(B, -1)
        st = self._init(x, g_rows)
        st["evals"] = 0
        best, best_f = x.clone(), x.clone()
        best_res = torch.full((B,), math.inf, dtype=x.dtype, device=dev)
        iters = torch.zeros(B, dtype=torch.long, device=dev)
        status = torch.full((B,), _MAX_STEPS, dtype=torch.long, device=dev)
        active = torch.ones(B, dtype=torch.bool, device=dev)  # still iterating (not converged, not failed)
        alive = torch.ones(B, dtype=torch.bool, device=dev)  # finite and bounded (converged rows included)
        r0 = size0 = None
        history = []
        n_evals = 0
        codes = {c: torch.tensor(c, dtype=torch.long, device=dev) for c in (_CONVERGED, _NONFINITE, _DIVERGED)}
        for k in range(1, self.max_iter + 1):
            gx = g_rows(x)
            n_evals += 1
            xn, gn = x.norm(dim=1), gx.norm(dim=1)
            diff = (gx - x).norm(dim=1)
            res = diff / gn.clamp_min(RESIDUAL_FLOOR)
            if r0 is None:
                r0 = torch.where(torch.isfinite(diff), diff, torch.ones_like(diff)).clamp_min(1e-30)
                size0 = 1.0 + torch.nan_to_num(xn + gn, posinf=0.0)
            finite = torch.isfinite(res)  # an inf/NaN anywhere in g(x) or x makes res non-finite
            blown = (diff > self.divergence_factor * r0) | (xn > self.divergence_factor * size0)
            bad = ~finite | blown
            better = alive & ~bad & (res < best_res)
            best = torch.where(better[:, None], x, best)
            best_f = torch.where(better[:, None], gx, best_f)
            best_res = torch.where(better, res, best_res)
            iters.masked_fill_(active, k)
            conv = ~bad & (res <= self.tol)
            # rows that end now: converged, or failed (non-finite first, then diverged)
            ending = active & (conv | bad)
            code = torch.where(finite, torch.where(blown, codes[_DIVERGED], codes[_CONVERGED]), codes[_NONFINITE])
            status = torch.where(ending, code, status)
            res_act = torch.where(active & finite, res, torch.zeros_like(res))
            active = active & ~ending
            alive = alive & ~bad
            # one host synchronisation per iteration: the history value and two counts
            hmax, n_act, n_alive = torch.stack(
                [res_act.max().to(torch.float64), active.sum().to(torch.float64), alive.sum().to(torch.float64)]
            ).tolist()
            history.append(hmax)
            if n_act == 0 or k == self.max_iter:
                break
            moving = active if self.hold_converged else alive
            st["active"] = active
            safe_gx = gx if n_alive == B else torch.where(alive[:, None], gx, x)
            x_new = self._propose(st, x, safe_gx, moving, k)
            x = x_new if (n_alive == B and not self.hold_converged) else torch.where(moving[:, None], x_new, x)
        codes = torch.bincount(status, minlength=4).tolist()
        overall = next((ROW_STATUSES[c] for c in (_NONFINITE, _DIVERGED, _MAX_STEPS) if codes[c]), Status.CONVERGED)
        return RootResult(
            z=best.reshape(shape),
            fz=best_f.reshape(shape),
            residual=best_res,
            iterations=iters,
            row_status=status,
            status=overall,
            residual_history=tuple(history),
            n_evals=n_evals + st["evals"],
            seconds=time.perf_counter() - start,
        )
