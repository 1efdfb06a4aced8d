"""Implicit (backward) Euler: S' = S + η·F(S', t + η). Order 1, R(z) = 1/(1 − z).

A-stable: |R(z)| ≤ 1 on the whole left half-plane, so it never blows up on a stable linear problem
whatever η (Hairer & Wanner, *Solving ODEs II*, §IV.3). On a gradient field it is the proximal point
step S' = argmin L(x) + ‖x − S‖²/(2η) (Rockafellar 1976).

Each step solves the fixed-point form y = T(y) = S + η·F(y, t + η) with a **root finder object**
(diffrax style; :mod:`terrainlab.core.root_finders`): ``Newton()`` (dense per-row Jacobian, the
default, for small rows), ``NewtonKrylov()`` (Jacobian-free, for large rows and ``nn.Module``
fields), ``Picard()`` (converges only when η·Lip(F) < 1), ``Anderson()`` or ``Broyden()``. The
solve starts from the explicit-Euler predictor S + η·F(S, t); ``tol`` is the finder's per-row
relative residual ‖T(y) − y‖/‖T(y)‖, raised to 16 ulps of the state's dtype when set below it
(unreachable otherwise). The step returns T(y*) = S + η·F(y*, t + η), whose gradient (when autograd
needs one) is the implicit-function-theorem gradient (I − ηJ)⁻ᵀ, solved by GMRES — the inner
iterations are never differentiated. Rows (leading dimension of a ≥ 2-D state) are independent
states; a 0-D or 1-D state is one state. Rows that miss ``tol`` are counted in the step's
``inner_failures``; the rollout reports the total and never raises.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import torch

from ..root_finders import (
    AbstractRootFinder,
    BackwardStats,
    Newton,
    Picard,
    RootResult,
    attach_implicit_grad,
    make_adjoint_solver,
)
from ..validate import check_instance, check_int, check_positive
from .base import AbstractScheme, StepResult

_LEGACY = {"newton": Newton, "fixed_point": Picard}


@dataclass(frozen=True)
class ImplicitStep:
    """One implicit step in full: the new ``state`` T(y*) (implicit gradient attached when
    autograd needs it), the ``root`` solve (per-row iterations, residuals, statuses), field
    evaluations ``n_evals`` (predictor, solve and the final application), ``seconds`` and the
    ``backward`` record (filled when the gradient is taken)."""

    state: torch.Tensor
    root: RootResult
    n_evals: int
    seconds: float
    backward: BackwardStats = field(default_factory=BackwardStats)

    @property
    def failures(self) -> int:
        """Rows whose inner solve missed its tolerance."""
        return int((~self.root.converged).sum())


class ImplicitEuler(AbstractScheme):
    """Backward Euler with a root finder: ``ImplicitEuler(Newton(tol=1e-10))``.

    Args:
        root_finder: a root finder object (default ``Newton()``). The strings ``"newton"`` and
            ``"fixed_point"`` (and the keyword ``solver=``) are deprecated aliases of ``Newton()``
            and ``Picard()`` built with ``tol=1e-10``, ``max_iter=50`` as before.
        tol, max_iter: shorthand that overrides the finder's own.
        adjoint_tol, adjoint_max_iter: the GMRES solve of the implicit gradient.

    Example:
        >>> from terrainlab.core import rollout
        >>> from terrainlab.core.root_finders import NewtonKrylov
        >>> tr = rollout(lambda x, t: -50.0 * x, torch.ones(4, 2, dtype=torch.float64), eta=0.1, steps=3,
        ...              scheme=ImplicitEuler(NewtonKrylov(tol=1e-12)))
        >>> round(float(tr.final[0, 0]), 8), tr.inner_failures
        (0.00462963, 0)
    """

    order = 1

    def __init__(self, root_finder: AbstractRootFinder | str | None = None, tol: float | None = None,
                 max_iter: int | None = None, *, solver: str | None = None, adjoint_tol: float = 1e-8,
                 adjoint_max_iter: int = 30):
        if solver is not None:
            if root_finder is not None:
                raise ValueError("pass root_finder or the deprecated solver, not both")
            root_finder = solver
        if isinstance(root_finder, str):
            if root_finder not in _LEGACY:
                raise ValueError(f"solver must be one of {tuple(_LEGACY)} (deprecated) or a root finder object "
                                 f"such as Newton(), got {root_finder!r}")
            warnings.warn(f"ImplicitEuler(solver={root_finder!r}) is deprecated; pass "
                          f"root_finder={_LEGACY[root_finder].__name__}(tol=..., max_iter=...)",
                          DeprecationWarning, stacklevel=2)
            root_finder = _LEGACY[root_finder](tol=1e-10 if tol is None else tol,
                                               max_iter=50 if max_iter is None else max_iter)
        elif root_finder is None:
            root_finder = Newton()
        check_instance(root_finder, "root_finder", AbstractRootFinder, "a root finder object such as Newton()")
        over = {k: v for k, v in (("tol", tol), ("max_iter", max_iter)) if v is not None}
        self.root_finder = root_finder.replace(**over) if over else root_finder
        self.adjoint_tol = float(check_positive(adjoint_tol, "adjoint_tol"))
        self.adjoint_max_iter = check_int(adjoint_max_iter, "adjoint_max_iter", minimum=1)

    @property
    def tol(self) -> float:
        return self.root_finder.tol

    @property
    def max_iter(self) -> int:
        return self.root_finder.max_iter

    @property
    def solver(self):
        """Deprecated: the legacy name ("newton" / "fixed_point") when the finder is one of those two
        with its defaults' kind, else the finder object. Use :attr:`root_finder`."""
        for name, cls in _LEGACY.items():
            if type(self.root_finder) is cls and getattr(self.root_finder, "beta", 1.0) == 1.0:
                return name
        return self.root_finder

    def R(self, z):
        return 1 / (1 - z)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.root_finder!r})"

    def step(self, field, state, t, eta):
        r = self.implicit_step(field, state, t, eta)
        return StepResult(r.state, r.n_evals, (~r.root.converged).sum())

    def implicit_step(self, field, state, t, eta, *, finder: AbstractRootFinder | None = None) -> ImplicitStep:
        """Solve y = S + η·F(y, t + η) and return the full record (used by ``nn.ImplicitEulerStep``);
        ``finder`` overrides this scheme's root finder for one call."""
        if isinstance(state, tuple):
            raise ValueError("ImplicitEuler needs a single-tensor state")
        start = time.perf_counter()
        finder = self.root_finder if finder is None else finder
        floor = 16 * torch.finfo(state.dtype).eps  # a relative residual below ~16 ulps is unreachable
        if finder.tol < floor:
            finder = finder.replace(tol=floor)
        shape = state.shape
        t1 = t + eta
        s = state.detach()
        # rows: a ≥ 2-D state's leading dimension; a 0-D / 1-D state is one row
        rows = s.reshape(1, -1) if s.ndim <= 1 else s

        def T(y):  # the implicit equation's fixed-point map, on rows
            y_state = y.reshape(shape) if s.ndim <= 1 else y
            return rows + eta * field(y_state, t1).reshape(y.shape)

        with torch.no_grad():
            y0 = rows + eta * field(s, t).reshape(rows.shape)  # explicit Euler predictor
            root = finder.solve(T, y0)
        record = BackwardStats(forward_status=root.status)
        out, extra = self._land(field, state, s, shape, root.z, t1, eta, record)
        return ImplicitStep(out, root, 1 + root.n_evals + extra, time.perf_counter() - start, record)

    def _land(self, field, state, s, shape, y_rows, t1, eta, record):
        """T(y*) in the state's shape, with the implicit gradient when autograd needs one."""
        y = y_rows.reshape(shape)

        def T_state(v, base=state):
            return base + eta * field(v, t1)

        if not torch.is_grad_enabled():
            return T_state(y), 1
        out = T_state(y, s)  # no graph through the input: does anything else (θ, S) need a gradient?
        if not out.requires_grad and not state.requires_grad:
            return out, 1
        adjoint = make_adjoint_solver("gmres", tol=self.adjoint_tol, max_iter=self.adjoint_max_iter,
                                      tol_name="adjoint_tol", max_iter_name="adjoint_max_iter")
        return attach_implicit_grad(T_state, y, adjoint, record), 2
