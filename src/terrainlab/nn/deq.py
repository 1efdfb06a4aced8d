"""Deep equilibrium layer: the output is the fixed point z* = f(z*, x), not a fixed-depth stack.

    z* = f_θ(z*, x)        (Bai, Kolter & Koltun, "Deep Equilibrium Models", NeurIPS 2019)

The forward pass runs a batched core root finder (:mod:`terrainlab.core.root_finders`: Picard,
Anderson, Broyden, Newton, NewtonKrylov) without storing its iterates; the number of iterations
each input needs is its *emergent depth*. Gradients:

- ``backward="implicit"``: implicit function theorem, by solving the adjoint fixed point
  u = g + Jᵀu at z* (memory of one layer, compute of an extra solve);
- ``backward="jfb"``: Jacobian-free backprop, the gradient of one application f(z*, x), i.e. the
  implicit gradient with (I − J)^{-1} replaced by I (Fung et al., "JFB: Jacobian-free
  backpropagation for implicit networks", AAAI 2022);
- ``backward="unrolled"``: backprop through every solver iteration (memory grows with iterations).

A solve that does not converge is not an exception: the best iterate comes back with
``info.status`` = ``max_steps``, ``diverged`` or ``nonfinite``, and that status carries into the
backward record (``info.backward.converged`` is False after a forward that did not converge).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from ..core.root_finders import (
    AbstractRootFinder,
    BackwardStats,
    attach_implicit_grad,
    make_adjoint_solver,
    resolve_root_finder,
)
from ..core.status import Status
from ..core.validate import check_callable, check_choice, check_int, check_tensor
from .lipschitz import jacobian_regularizer

_BACKWARDS = ("implicit", "jfb", "unrolled")


@dataclass(frozen=True)
class DEQInfo:
    """What a DEQ forward pass did.

    iterations:     (B,) solver iterations per sample — the emergent depth.
    residual:       (B,) relative residual ‖f(z) − z‖/‖f(z)‖ at the returned iterate.
    row_status:     (B,) codes indexing ``core.root_finders.ROW_STATUSES`` (0 converged,
                    1 max_steps, 2 diverged, 3 nonfinite).
    status:         a core Status, the worst over the batch.
    residual_history: max relative residual over active samples per iteration.
    n_evals, seconds, solver (its repr), backward (filled by the backward pass; its
    ``forward_status`` is ``status``),
    jacobian_loss:  Hutchinson ‖J‖_F²/dim at z* (differentiable) when ``jac_reg`` is on, else None.
    """

    iterations: torch.Tensor
    residual: torch.Tensor
    row_status: torch.Tensor
    status: Status
    residual_history: tuple
    n_evals: int
    seconds: float
    solver: str
    backward: BackwardStats = field(default_factory=BackwardStats)
    jacobian_loss: torch.Tensor | None = None

    @property
    def sample_status(self) -> torch.Tensor:
        """Deprecated name of :attr:`row_status`."""
        warnings.warn("DEQInfo.sample_status is deprecated; use row_status", DeprecationWarning, stacklevel=2)
        return self.row_status


class DEQ(nn.Module):
    """Equilibrium layer around ``f(z, x)`` (any nn.Module or callable with that signature).

    Args:
        f: the layer; z has the shape of ``init(x)`` (default ``zeros_like(x)``).
        solver: a core root finder (``Anderson(m, beta, lam)``, ``Picard()``, ``Broyden(m)``,
            ``Newton()``, ``NewtonKrylov()``) or its name; it carries ``tol`` and ``max_iter``.
        backward: ``"implicit"`` | ``"jfb"`` | ``"unrolled"``.
        tol, max_iter, divergence_factor: when given, override the finder's (the forward stopping
            rule on the per-sample relative residual; Anderson's defaults are 1e-4 and 50).
        adjoint: ``"fixed_point"`` (solve u = g + Jᵀu with ``adjoint_solver``, default Anderson)
            or ``"gmres"``.
        adjoint_tol, adjoint_max_iter: stopping rule of the adjoint solve (default 2·max_iter).
        jac_reg, jac_samples: also return the Hutchinson Jacobian penalty in ``info.jacobian_loss``,
            from ``jac_samples`` probe vectors.

    Returns ``(z, info)`` from ``forward(x, z0=None, *, generator=None)``; ``generator`` draws the
    Hutchinson probes of the Jacobian penalty (None: torch's global generator), so a training run with
    ``jac_reg`` is reproducible without touching global state.

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
        solver: AbstractRootFinder | str = "anderson",
        backward: str = "implicit",
        tol: float | None = None,
        max_iter: int | None = None,
        adjoint: str = "fixed_point",
        adjoint_solver: AbstractRootFinder | str | None = None,
        adjoint_tol: float = 1e-6,
        adjoint_max_iter: int | None = None,
        jac_reg: bool = False,
        jac_samples: int = 1,
        init=None,
        divergence_factor: float | None = None,
    ):
        super().__init__()
        check_callable(f, "f")
        check_choice(backward, "backward", _BACKWARDS)
        finder = resolve_root_finder(solver, "solver")
        over = {k: v for k, v in (("tol", tol), ("max_iter", max_iter), ("divergence_factor", divergence_factor))
                if v is not None}
        self.solver = finder.replace(**over) if over else finder
        self.jac_samples = check_int(jac_samples, "jac_samples", minimum=1)
        if init is not None:
            check_callable(init, "init")
        self.f = f
        self.backward_mode = backward
        self.jac_reg = bool(jac_reg)
        self.init = init
        if adjoint_max_iter is None:
            adjoint_max_iter = 2 * self.solver.max_iter
        self._adjoint = make_adjoint_solver(adjoint, adjoint_solver, tol=adjoint_tol, max_iter=adjoint_max_iter,
                                            tol_name="adjoint_tol", max_iter_name="adjoint_max_iter")

    @property
    def tol(self) -> float:
        return self.solver.tol

    @property
    def max_iter(self) -> int:
        return self.solver.max_iter

    def extra_repr(self) -> str:
        return f"solver={self.solver!r}, backward={self.backward_mode!r}"

    def forward(self, x: torch.Tensor, z0: torch.Tensor | None = None, *,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, DEQInfo]:
        if z0 is None:
            if self.init is None:
                z0 = torch.zeros_like(check_tensor(x, "x", min_ndim=1))
            else:
                z0 = check_tensor(self.init(x), "init(x)", min_ndim=1)
        else:
            if self.init is not None:
                with torch.no_grad():
                    want = tuple(self.init(x).shape)
            else:
                want = tuple(x.shape) if torch.is_tensor(x) else tuple(z0.shape)
            check_tensor(z0, "z0", shape=want)
        start = time.perf_counter()

        def g(z):
            return self.f(z, x)

        unroll = self.backward_mode == "unrolled" and torch.is_grad_enabled()
        if unroll:
            res = self.solver.solve(g, z0)
            z = g(res.z)
        else:
            with torch.no_grad():
                res = self.solver.solve(g, z0.detach())
        record = BackwardStats(forward_status=res.status)
        if not unroll:
            if self.backward_mode == "implicit":
                z = attach_implicit_grad(g, res.z, self._adjoint, record)
            else:
                z = g(res.z.detach())
        jl = None
        if self.jac_reg and torch.is_grad_enabled():
            jl = jacobian_regularizer(g, res.z, n_samples=self.jac_samples, generator=generator)
        info = DEQInfo(
            iterations=res.iterations,
            residual=res.residual,
            row_status=res.row_status,
            status=res.status,
            residual_history=res.residual_history,
            n_evals=res.n_evals,
            seconds=time.perf_counter() - start,
            solver=repr(self.solver),
            backward=record,
            jacobian_loss=jl,
        )
        return z, info
