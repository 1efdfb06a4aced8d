"""Implicit differentiation through a fixed point, and the implicit Euler layer.

If z* = T(z*, θ) then, by the implicit function theorem, dz*/dθ = (I − J)^{-1} ∂T/∂θ with
J = ∂T/∂z at z*. A loss gradient g = ∂ℓ/∂z* is therefore pulled back by solving the *adjoint* fixed
point

    u = g + Jᵀ u        (equivalently (I − Jᵀ) u = g),

after which ∂ℓ/∂θ = uᵀ ∂T/∂θ — one vector–Jacobian product through one application of T, however
many iterations the forward solve took (Bai, Kolter & Koltun, "Deep Equilibrium Models", NeurIPS
2019; Krantz & Parks, *The Implicit Function Theorem*). The forward iterations are never stored.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from ._field import as_field
from ._linalg import gmres, linearize
from .solvers import Anderson, FixedPointSolver, Picard, _resolve


@dataclass
class BackwardStats:
    """Filled in when the backward pass runs (it happens after the forward result was returned,
    so this small record is the one mutable part of a result): adjoint solves done, the last
    one's iterations, relative residual, whether it converged, and its wall time."""

    calls: int = 0
    iterations: int = 0
    residual: float = math.nan
    converged: bool | None = None
    seconds: float = 0.0


_ADJOINTS = ("fixed_point", "gmres")


def make_adjoint_solver(
    method: str = "fixed_point",
    solver: FixedPointSolver | str = "anderson",
    tol: float = 1e-8,
    max_iter: int = 100,
):
    """Build u ↦ solve(u = g + Jᵀu): by a fixed-point solver (needs ρ(J) < 1) or by GMRES on
    (I − Jᵀ)u = g (any non-singular I − J, e.g. stiff implicit-Euler steps)."""
    if method not in _ADJOINTS:
        raise ValueError(f"adjoint method must be one of {_ADJOINTS}, got {method!r}")
    if not tol > 0:
        raise ValueError(f"tol must be > 0, got {tol!r}")
    if not (isinstance(max_iter, int) and max_iter >= 1):
        raise ValueError(f"max_iter must be an int >= 1, got {max_iter!r}")
    fp_solver = _resolve(solver) if method == "fixed_point" else None

    def adjoint(vjp, g, record: BackwardStats):
        start = time.perf_counter()
        shape, B = g.shape, g.shape[0]
        if method == "fixed_point":
            res = fp_solver.solve(lambda u: g + vjp(u), torch.zeros_like(g), tol=tol, max_iter=max_iter)
            u = res.z
            it, resid, ok = int(res.iterations.max()), float(res.residual.max()), res.status == "converged"
        else:
            flat = g.reshape(B, -1)
            kr = gmres(
                lambda v: v - vjp(v.reshape(shape)).reshape(B, -1), flat, tol=tol, max_iter=max_iter
            )
            u = kr.x.reshape(shape)
            it, resid, ok = kr.iterations, float(kr.residual.max()), bool(kr.converged.all())
        record.calls += 1
        record.iterations, record.residual, record.converged = it, resid, ok
        record.seconds += time.perf_counter() - start
        return u

    return adjoint


class _ImplicitGrad(torch.autograd.Function):
    """Identity in the forward pass on T(z*); the backward replaces the incoming gradient g by the
    solution u of u = g + Jᵀu, J = ∂T/∂z at z*, then autograd carries u through T to θ and x."""

    @staticmethod
    def forward(ctx, fz, z0, adjoint, record):
        ctx.adjoint, ctx.record = adjoint, record
        ctx.save_for_backward(fz, z0)
        return fz.clone()

    @staticmethod
    def backward(ctx, grad):
        fz, z0 = ctx.saved_tensors

        def vjp(u):
            return torch.autograd.grad(fz, z0, u, retain_graph=True)[0]

        u = ctx.adjoint(vjp, grad, ctx.record)
        return u, None, None, None


def attach_implicit_grad(T, z_star: torch.Tensor, adjoint, record: BackwardStats) -> torch.Tensor:
    """Return T(z*) whose gradient is the implicit-function-theorem gradient of the fixed point.

    ``T`` is the map (z ↦ T(z), closing over θ and the input); ``z_star`` is a (detached) fixed
    point. One differentiable application of T is built; its backward solves the adjoint fixed
    point with ``adjoint`` (from :func:`make_adjoint_solver`) and records the solve in ``record``.
    """
    z0 = z_star.detach().requires_grad_(True)
    with torch.enable_grad():
        fz = T(z0)
    if not fz.requires_grad:
        return fz.detach()
    return _ImplicitGrad.apply(fz, z0, adjoint, record)


@dataclass(frozen=True)
class ImplicitStepResult:
    """One implicit Euler step: the new ``state``, per-sample inner ``iterations`` and relative
    ``residual`` ‖y − h − ηf(y)‖/‖h + ηf(y)‖, ``failures`` (samples that missed ``tol``),
    ``status`` (converged | max_iter | diverged), batched field evaluations ``n_evals`` (JVPs
    counted as evaluations), ``seconds``, and the ``backward`` record."""

    state: torch.Tensor
    iterations: torch.Tensor
    residual: torch.Tensor
    failures: int
    status: str
    n_evals: int
    seconds: float
    backward: BackwardStats = field(default_factory=BackwardStats)


_STEP_SOLVERS = ("fixed_point", "anderson", "newton_krylov")


class ImplicitEulerStep(nn.Module):
    """Implicit (backward) Euler layer h ↦ y with y = h + η·f(y, t + η).

    A-stable: on h' = λh it multiplies by R(z) = 1/(1 − z), |R| < 1 for every Re z < 0, so a stiff
    residual field that makes the explicit layer h + ηf(h) explode is damped instead (Hairer &
    Wanner, *Solving ODEs II*, §IV.3). The equation is solved per sample by

    - ``solver="fixed_point"``: y ← h + ηf(y) (needs η·Lip(f) < 1), or ``"anderson"``;
    - ``solver="newton_krylov"``: Newton on G(y) = y − h − ηf(y) with batched GMRES on
      (I − ηJ)δ = G using exact Jacobian-vector products (Knoll & Keyes, "Jacobian-free Newton–Krylov methods",
      J. Comput. Phys. 2004). Works for stiff fields where the fixed point diverges.

    ``tol`` is a relative residual, raised to 16 ulps of the state's dtype when set below it.
    Gradients come from implicit differentiation (GMRES on (I − ηJ)ᵀu = g), not from the inner
    iterations. Samples must be independent rows of the batch (no BatchNorm inside ``field``).

    Example:
        >>> step = ImplicitEulerStep(nn.Linear(4, 4), eta=0.5)
        >>> out = step.solve(torch.randn(8, 4))
        >>> out.state.shape, out.status
        (torch.Size([8, 4]), 'converged')
    """

    def __init__(
        self,
        field,
        eta: float = 1.0,
        *,
        solver: str = "newton_krylov",
        tol: float = 1e-6,
        max_iter: int = 50,
        krylov_dim: int = 30,
        adjoint_tol: float = 1e-8,
        time_arg: bool | None = None,
    ):
        super().__init__()
        if isinstance(eta, bool) or not (isinstance(eta, (int, float)) and eta > 0 and math.isfinite(eta)):
            raise ValueError(f"eta must be a finite number > 0, got {eta!r}")
        if solver not in _STEP_SOLVERS:
            raise ValueError(f"solver must be one of {_STEP_SOLVERS}, got {solver!r}")
        if not tol > 0:
            raise ValueError(f"tol must be > 0, got {tol!r}")
        if not (isinstance(max_iter, int) and max_iter >= 1):
            raise ValueError(f"max_iter must be an int >= 1, got {max_iter!r}")
        if not (isinstance(krylov_dim, int) and krylov_dim >= 1):
            raise ValueError(f"krylov_dim must be an int >= 1, got {krylov_dim!r}")
        self.field = field
        self._f = as_field(field, time_arg)
        self.eta, self.solver, self.tol, self.max_iter = float(eta), solver, tol, max_iter
        self.krylov_dim, self.adjoint_tol = krylov_dim, adjoint_tol

    def extra_repr(self) -> str:
        return f"eta={self.eta}, solver={self.solver!r}, tol={self.tol}, max_iter={self.max_iter}"

    def forward(self, h: torch.Tensor, t: float = 0.0) -> torch.Tensor:
        return self.solve(h, t).state

    def solve(self, h: torch.Tensor, t: float = 0.0, eta: float | None = None) -> ImplicitStepResult:
        """Take the step from ``h`` (shape (B, ...)) at time ``t``; ``eta`` overrides the layer's."""
        if not torch.is_tensor(h) or h.ndim < 1 or not torch.is_floating_point(h):
            raise ValueError("h must be a floating-point tensor with a leading batch dimension")
        eta = self.eta if eta is None else float(eta)
        # a relative residual below ~16 ulps is unreachable in the state's dtype (float32: 1.9e-6)
        tol = max(self.tol, 16 * torch.finfo(h.dtype).eps)
        start = time.perf_counter()
        t1 = t + eta
        f = self._f
        hd = h.detach()
        with torch.no_grad():
            if self.solver == "newton_krylov":
                y, iters, resid, status, n_evals = self._newton_krylov(hd, t1, eta, tol)
            else:
                sol = Picard() if self.solver == "fixed_point" else Anderson()
                y0 = hd + eta * f(hd, t)
                r = sol.solve(lambda y: hd + eta * f(y, t1), y0, tol=tol, max_iter=self.max_iter)
                y, iters, resid, status, n_evals = r.z, r.iterations, r.residual, r.status, r.n_evals + 1
        record = BackwardStats()
        adjoint = make_adjoint_solver("gmres", tol=self.adjoint_tol, max_iter=self.krylov_dim)
        out = attach_implicit_grad(lambda y_: h + eta * f(y_, t1), y, adjoint, record)
        failures = int((resid > tol).sum()) if status != "converged" else 0
        return ImplicitStepResult(
            state=out,
            iterations=iters,
            residual=resid,
            failures=failures,
            status=status,
            n_evals=n_evals,
            seconds=time.perf_counter() - start,
            backward=record,
        )

    def _newton_krylov(self, h, t1, eta, tol):
        f = self._f
        B = h.shape[0]
        shape = h.shape
        y = h + eta * f(h, t1 - eta)
        n_evals = 1
        iters = torch.zeros(B, dtype=torch.long, device=h.device)
        active = torch.ones(B, dtype=torch.bool, device=h.device)
        best, best_res = y.clone(), torch.full((B,), math.inf, dtype=h.dtype, device=h.device)
        diverged = torch.zeros(B, dtype=torch.bool, device=h.device)
        for k in range(1, self.max_iter + 1):
            Ty = h + eta * f(y, t1)
            n_evals += 1
            G = (y - Ty).reshape(B, -1)
            res = G.norm(dim=1) / Ty.reshape(B, -1).norm(dim=1).clamp_min(1e-12)
            finite = torch.isfinite(res)
            better = active & finite & (res < best_res)
            best = torch.where(better.view(-1, *[1] * (y.ndim - 1)), y, best)
            best_res = torch.where(better, res, best_res)
            iters = torch.where(active, torch.full_like(iters, k), iters)
            diverged |= active & ~finite
            active = active & finite & (res > tol)
            if not bool(active.any()) or k == self.max_iter:
                break
            _, jvp, _ = linearize(lambda z: f(z, t1), y)

            def matvec(v, jvp=jvp):
                return v - eta * jvp(v.reshape(shape)).reshape(B, -1)

            kr = gmres(matvec, torch.where(active[:, None], G, torch.zeros_like(G)),
                       tol=1e-4, max_iter=self.krylov_dim)
            n_evals += kr.iterations
            y = y - torch.where(active[:, None], kr.x, torch.zeros_like(kr.x)).reshape(shape)
        if bool(diverged.any()):
            status = "diverged"
        elif bool((best_res > tol).any()):
            status = "max_iter"
        else:
            status = "converged"
        return best, iters, best_res, status, n_evals
