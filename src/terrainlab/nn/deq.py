"""Deep equilibrium layer: the output is the fixed point z* = f(z*, x), not a fixed-depth stack.

    z* = f_θ(z*, x)        (Bai, Kolter & Koltun, "Deep Equilibrium Models", NeurIPS 2019)

The forward pass runs a batched fixed-point solver (Picard, Anderson, Broyden) without storing its
iterates; the number of iterations each input needs is its *emergent depth*. Gradients:

- ``backward="implicit"``: implicit function theorem, by solving the adjoint fixed point
  u = g + Jᵀu at z* (memory of one layer, compute of an extra solve);
- ``backward="jfb"``: Jacobian-free backprop, the gradient of one application f(z*, x), i.e. the
  implicit gradient with (I − J)^{-1} replaced by I (Fung et al., "JFB: Jacobian-free
  backpropagation for implicit networks", AAAI 2022);
- ``backward="unrolled"``: backprop through every solver iteration (memory grows with iterations).

A solve that does not converge is not an exception: the best iterate comes back with
``info.status`` = ``max_iter`` or ``diverged``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from .implicit import BackwardStats, attach_implicit_grad, make_adjoint_solver
from .lipschitz import jacobian_regularizer
from .solvers import Anderson, FixedPointSolver, _resolve

_BACKWARDS = ("implicit", "jfb", "unrolled")


@dataclass(frozen=True)
class DEQInfo:
    """What a DEQ forward pass did.

    iterations:     (B,) solver iterations per sample — the emergent depth.
    residual:       (B,) relative residual ‖f(z) − z‖/‖f(z)‖ at the returned iterate.
    sample_status:  (B,) 0 converged, 1 max_iter, 2 diverged.
    status:         converged | max_iter | diverged (worst over the batch).
    residual_history: max relative residual over active samples per iteration.
    n_evals, seconds, solver (its repr), backward (filled by the backward pass),
    jacobian_loss:  Hutchinson ‖J‖_F²/dim at z* (differentiable) when ``jac_reg`` is on, else None.
    """

    iterations: torch.Tensor
    residual: torch.Tensor
    sample_status: torch.Tensor
    status: str
    residual_history: tuple
    n_evals: int
    seconds: float
    solver: str
    backward: BackwardStats = field(default_factory=BackwardStats)
    jacobian_loss: torch.Tensor | None = None


class DEQ(nn.Module):
    """Equilibrium layer around ``f(z, x)`` (any nn.Module or callable with that signature).

    Args:
        f: the layer; z has the shape of ``init(x)`` (default ``zeros_like(x)``).
        solver: ``Picard()``, ``Anderson(m, beta, lam)``, ``Broyden(m)`` or their names.
        backward: ``"implicit"`` | ``"jfb"`` | ``"unrolled"``.
        tol, max_iter: forward stopping rule on the per-sample relative residual.
        adjoint: ``"fixed_point"`` (solve u = g + Jᵀu with ``adjoint_solver``) or ``"gmres"``.
        adjoint_tol, adjoint_max_iter: stopping rule of the adjoint solve.
        jac_reg: also return the Hutchinson Jacobian penalty in ``info.jacobian_loss``.

    Returns ``(z, info)`` from ``forward(x, z0=None)``.

    Example:
        >>> lin = nn.Linear(16, 16)
        >>> deq = DEQ(lambda z, x: torch.tanh(0.5 * lin(z) + x), solver="anderson", tol=1e-6)
        >>> z, info = deq(torch.randn(4, 16))
        >>> info.status, z.shape
        ('converged', torch.Size([4, 16]))
    """

    def __init__(
        self,
        f,
        *,
        solver: FixedPointSolver | str = "anderson",
        backward: str = "implicit",
        tol: float = 1e-4,
        max_iter: int = 50,
        adjoint: str = "fixed_point",
        adjoint_solver: FixedPointSolver | str | None = None,
        adjoint_tol: float = 1e-6,
        adjoint_max_iter: int | None = None,
        jac_reg: bool = False,
        jac_samples: int = 1,
        init=None,
        divergence_factor: float = 1e4,
    ):
        super().__init__()
        if not callable(f):
            raise ValueError(f"f must be an nn.Module or a callable f(z, x), got {type(f).__name__}")
        if backward not in _BACKWARDS:
            raise ValueError(f"backward must be one of {_BACKWARDS}, got {backward!r}")
        if not (isinstance(tol, (int, float)) and tol > 0):
            raise ValueError(f"tol must be > 0, got {tol!r}")
        if isinstance(max_iter, bool) or not (isinstance(max_iter, int) and max_iter >= 1):
            raise ValueError(f"max_iter must be an int >= 1, got {max_iter!r}")
        if init is not None and not callable(init):
            raise ValueError("init must be a callable x -> z0 or None")
        self.f = f
        self.solver = _resolve(solver)
        self.backward_mode = backward
        self.tol, self.max_iter = float(tol), max_iter
        self.divergence_factor = divergence_factor
        self.jac_reg, self.jac_samples = bool(jac_reg), jac_samples
        self.init = init
        adj_solver = _resolve(adjoint_solver) if adjoint_solver is not None else Anderson()
        self._adjoint = make_adjoint_solver(
            adjoint, adj_solver, tol=adjoint_tol, max_iter=adjoint_max_iter or 2 * max_iter
        )

    def extra_repr(self) -> str:
        return f"solver={self.solver!r}, backward={self.backward_mode!r}, tol={self.tol}, max_iter={self.max_iter}"

    def forward(self, x: torch.Tensor, z0: torch.Tensor | None = None) -> tuple[torch.Tensor, DEQInfo]:
        if z0 is None:
            z0 = self.init(x) if self.init is not None else torch.zeros_like(x)
        if not torch.is_tensor(z0) or not torch.is_floating_point(z0):
            raise ValueError("z0 must be a floating-point tensor")
        start = time.perf_counter()

        def g(z):
            return self.f(z, x)

        record = BackwardStats()
        unroll = self.backward_mode == "unrolled" and torch.is_grad_enabled()
        if unroll:
            res = self.solver.solve(
                g, z0, tol=self.tol, max_iter=self.max_iter, divergence_factor=self.divergence_factor
            )
            z = g(res.z)
        else:
            with torch.no_grad():
                res = self.solver.solve(
                    g, z0.detach(), tol=self.tol, max_iter=self.max_iter,
                    divergence_factor=self.divergence_factor,
                )
            if self.backward_mode == "implicit":
                z = attach_implicit_grad(g, res.z, self._adjoint, record)
            else:
                z = g(res.z.detach())
        jl = None
        if self.jac_reg and torch.is_grad_enabled():
            jl = jacobian_regularizer(g, res.z, n_samples=self.jac_samples)
        info = DEQInfo(
            iterations=res.iterations,
            residual=res.residual,
            sample_status=res.sample_status,
            status=res.status,
            residual_history=res.residual_history,
            n_evals=res.n_evals,
            seconds=time.perf_counter() - start,
            solver=repr(self.solver),
            backward=record,
            jacobian_loss=jl,
        )
        return z, info
