"""Differentiating through a root: implicit-function-theorem gradients of z* = T(z*, θ).

If z* = T(z*, θ) then dz*/dθ = (I − J)⁻¹ ∂T/∂θ with J = ∂T/∂z at z*. A loss gradient g = ∂ℓ/∂z*
is pulled back by solving the *adjoint* equation

    u = g + Jᵀu        (equivalently (I − Jᵀ) u = g),

after which ∂ℓ/∂θ = uᵀ ∂T/∂θ — one vector–Jacobian product through one application of T, however
many iterations the forward solve took; the forward iterations are never stored (Bai, Kolter &
Koltun, "Deep Equilibrium Models", NeurIPS 2019; Krantz & Parks, *The Implicit Function Theorem*).
Used by :class:`~terrainlab.core.ImplicitEuler` (T(y) = s + ηF(y)) and by ``nn.DEQ``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from ..linalg.gmres import gmres
from ..status import Status
from ..validate import check_choice, check_int, check_positive
from .base import AbstractRootFinder

__all__ = ["BackwardStats", "make_adjoint_solver", "attach_implicit_grad"]


@dataclass
class BackwardStats:
    """Filled in when the backward pass runs (after the forward result was returned, so this small
    record is the one mutable part of a result): adjoint solves done, the last one's iterations,
    relative residual, wall time, and

    forward_status: the status of the forward root solve the gradient is taken at;
    converged:      True only when the adjoint solve met its tolerance *and* the forward solve
                    converged (an implicit gradient at a point that is not a root is not to be
                    trusted, however well its adjoint was solved); None before any backward;
    status:         the forward status if the forward did not converge, else the adjoint's.
    """

    calls: int = 0
    iterations: int = 0
    residual: float = math.nan
    converged: bool | None = None
    seconds: float = 0.0
    forward_status: Status | None = None
    status: Status | None = None

    def _record(self, iterations: int, residual: float, adjoint_ok: bool, seconds: float) -> None:
        forward_ok = self.forward_status is None or self.forward_status == Status.CONVERGED
        self.calls += 1
        self.iterations, self.residual = iterations, residual
        self.converged = bool(adjoint_ok and forward_ok)
        if not forward_ok:
            self.status = Status(self.forward_status)
        else:
            self.status = Status.CONVERGED if adjoint_ok else Status.MAX_STEPS
        self.seconds += seconds


_ADJOINTS = ("fixed_point", "gmres")


def make_adjoint_solver(method: str = "fixed_point", solver: AbstractRootFinder | str | None = None,
                        tol: float = 1e-8, max_iter: int = 100, *, tol_name: str = "tol",
                        max_iter_name: str = "max_iter"):
    """Build u ↦ solve(u = g + Jᵀu): by a root finder (``method="fixed_point"``, needs ρ(J) < 1
    for Picard; Anderson/Broyden by default) or by GMRES on (I − Jᵀ)u = g (``"gmres"``: any
    non-singular I − J, e.g. stiff implicit-Euler steps). ``tol_name``/``max_iter_name`` are the
    caller's names of these settings, used in error messages."""
    from .solve import resolve_root_finder

    check_choice(method, "adjoint", _ADJOINTS)
    check_positive(tol, tol_name)
    check_int(max_iter, max_iter_name, minimum=1)
    fp = None
    if method == "fixed_point":
        fp = resolve_root_finder("anderson" if solver is None else solver, "adjoint_solver")
        fp = fp.replace(tol=tol, max_iter=max_iter)

    def adjoint(vjp, g, record: BackwardStats):
        start = time.perf_counter()
        shape, B = g.shape, g.shape[0]
        if fp is not None:
            res = fp.solve(lambda u: g + vjp(u), torch.zeros_like(g))
            u = res.z
            it, resid, ok = res.n_iter, float(res.residual.max()), res.status == Status.CONVERGED
        else:
            flat = g.reshape(B, -1)
            kr = gmres(lambda v: v - vjp(v.reshape(shape)).reshape(B, -1), flat, tol=tol, max_iter=max_iter)
            u = kr.x.reshape(shape)
            it, resid, ok = kr.iterations, float(kr.residual.max()), bool(kr.converged.all())
        record._record(it, resid, ok, time.perf_counter() - start)
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
