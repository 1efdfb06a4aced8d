"""The implicit Euler layer, an ``nn.Module`` over core's :class:`~terrainlab.core.ImplicitEuler`.

    y = h + η·f(y, t + η)        R(z) = 1/(1 − z): A-stable (Hairer & Wanner, *Solving ODEs II*, §IV.3)

The step, its root finder and its implicit-function-theorem gradient are core's
(:mod:`terrainlab.core.root_finders`); this module only makes it a layer with parameters and
re-exports the implicit-gradient helpers (``attach_implicit_grad``, ``make_adjoint_solver``,
``BackwardStats``) that :class:`~terrainlab.nn.DEQ` uses.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from ..core.fields import as_field
from ..core.root_finders import (
    ROOT_FINDERS,
    AbstractRootFinder,
    BackwardStats,
    attach_implicit_grad,
    make_adjoint_solver,
    resolve_root_finder,
)
from ..core.schemes.implicit_euler import ImplicitEuler
from ..core.status import Status
from ..core.validate import check_choice, check_int, check_positive, check_tensor

__all__ = ["ImplicitEulerStep", "ImplicitStepResult", "BackwardStats", "attach_implicit_grad", "make_adjoint_solver"]


@dataclass(frozen=True)
class ImplicitStepResult:
    """One implicit Euler step: the new ``state``, per-sample inner ``iterations`` and relative
    ``residual`` ‖y − h − ηf(y)‖/‖h + ηf(y)‖, ``failures`` (samples that missed ``tol``),
    ``status`` (a core Status: converged | max_steps | diverged | nonfinite), field evaluations
    ``n_evals`` (Jacobian-vector products counted as evaluations), ``seconds``, and the
    ``backward`` record."""

    state: torch.Tensor
    iterations: torch.Tensor
    residual: torch.Tensor
    failures: int
    status: Status
    n_evals: int
    seconds: float
    backward: BackwardStats = field(default_factory=BackwardStats)


_STEP_SOLVERS = ("newton_krylov", "fixed_point", "anderson")
_STRING_TO_FINDER = {"newton_krylov": "newton_krylov", "fixed_point": "picard", "anderson": "anderson"}


class ImplicitEulerStep(nn.Module):
    """Implicit (backward) Euler layer h ↦ y with y = h + η·f(y, t + η).

    A stiff residual field that makes the explicit layer h + ηf(h) explode is damped instead.
    The equation is solved per sample (rows of the leading dimension) by a core root finder:

    - ``solver=NewtonKrylov()`` (default, ``"newton_krylov"``): Newton with batched GMRES on
      (I − ηJ)δ = G using exact Jacobian-vector products (Knoll & Keyes 2004); works where the
      fixed point diverges;
    - ``Picard()`` (``"fixed_point"``, needs η·Lip(f) < 1), ``Anderson()``, ``Broyden()``, ``Newton()``.

    ``tol`` and ``max_iter`` override the finder's (a string solver is built with tol 1e-6,
    max_iter 50); ``tol`` is the relative residual of :mod:`terrainlab.core.root_finders.base`, raised
    to 16 ulps of the state's dtype when set below it. Gradients come from implicit differentiation
    (GMRES on (I − ηJ)ᵀu = g, ``adjoint_tol``, at most ``krylov_dim`` products), not from the
    inner iterations. Samples must be independent rows (no BatchNorm inside ``field``).

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
        solver: AbstractRootFinder | str = "newton_krylov",
        tol: float | None = None,
        max_iter: int | None = None,
        krylov_dim: int = 30,
        adjoint_tol: float = 1e-8,
        time_arg: bool | None = None,
    ):
        super().__init__()
        self.eta = float(check_positive(eta, "eta"))
        check_int(krylov_dim, "krylov_dim", minimum=1)
        if isinstance(solver, str):
            check_choice(solver, "solver", _STEP_SOLVERS)
            extra = {"krylov_dim": krylov_dim} if solver == "newton_krylov" else {}
            finder = ROOT_FINDERS[_STRING_TO_FINDER[solver]](tol=1e-6, max_iter=50, **extra)
        else:
            finder = resolve_root_finder(solver, "solver")
        self.field = field
        self._f = as_field(field, time_arg)
        self.scheme = ImplicitEuler(finder, tol, max_iter, adjoint_tol=adjoint_tol, adjoint_max_iter=krylov_dim)
        self.krylov_dim, self.adjoint_tol = krylov_dim, self.scheme.adjoint_tol

    @property
    def solver(self) -> AbstractRootFinder:
        return self.scheme.root_finder

    @property
    def tol(self) -> float:
        return self.scheme.tol

    @property
    def max_iter(self) -> int:
        return self.scheme.max_iter

    def extra_repr(self) -> str:
        return f"eta={self.eta}, solver={self.solver!r}"

    def forward(self, h: torch.Tensor, t: float = 0.0) -> torch.Tensor:
        return self.solve(h, t).state

    def solve(self, h: torch.Tensor, t: float = 0.0, eta: float | None = None) -> ImplicitStepResult:
        """Take the step from ``h`` (shape (B, ...)) at time ``t``; ``eta`` (> 0) overrides the layer's."""
        check_tensor(h, "h", min_ndim=1)
        eta = self.eta if eta is None else float(check_positive(eta, "eta"))
        start = time.perf_counter()
        f, shape = self._f, h.shape
        if h.ndim == 1:  # (B,) is B scalar samples: give core rows of one number, the field its own shape
            def field(y, t_, f=f):
                return f(y.reshape(shape), t_).reshape(y.shape)

            r = self.scheme.implicit_step(field, h.reshape(-1, 1), t, eta)
            state = r.state.reshape(shape)
        else:
            r = self.scheme.implicit_step(f, h, t, eta)
            state = r.state
        return ImplicitStepResult(
            state=state,
            iterations=r.root.iterations,
            residual=r.root.residual,
            failures=r.failures,
            status=r.root.status,
            n_evals=r.n_evals,
            seconds=time.perf_counter() - start,
            backward=r.backward,
        )
