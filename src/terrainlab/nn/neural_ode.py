"""``NeuralODE``: an ODE y' = f_θ(y, t) as a layer, y(t0) = input ↦ y(t1).

The solve is the core's (:func:`terrainlab.core.integrate`): adaptive Dormand–Prince / Bogacki–Shampine
with a PI step-size controller, or a fixed grid of any core scheme, both stopping at ``max_steps``.
Gradients flow either directly through the solver's operations or by the adjoint method
(:mod:`terrainlab.nn.adjoint`; Chen et al., NeurIPS 2018).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn

from ..core.controllers import AbstractController, ConstantStepSize, PIController
from ..core.fields import as_field
from ..core.integrate import Solution, integrate
from ..core.schemes import AbstractScheme, Dopri5, EmbeddedRK
from ..core.validate import check_instance, check_int, check_number, check_tensor
from .adjoint import AdjointSolve, ODEBackwardStats


@dataclass(frozen=True)
class ODESolution(Solution):
    """A core :class:`~terrainlab.core.Solution` plus ``backward``: the adjoint pass's statistics,
    filled when (and if) the backward pass runs, after the result was returned."""

    backward: ODEBackwardStats = field(default_factory=ODEBackwardStats)


def _as_ode_solution(sol: Solution, backward: ODEBackwardStats | None = None, y1=None) -> ODESolution:
    ys = sol.ys if y1 is None else y1.unsqueeze(0)
    return ODESolution(ys, sol.ts, sol.status, sol.n_steps, sol.n_accepted, sol.n_rejected, sol.n_evals,
                       sol.seconds, sol.info, backward if backward is not None else ODEBackwardStats())


class NeuralODE(nn.Module):
    """y(t1) for y' = f_θ(y, t), y(t0) = input — an ODE as a layer, with the NFE reported.

    Args:
        field: nn.Module f(y) or f(y, t) (or a callable; then only y gets gradients by adjoint).
        t0, t1: the (finite) integration interval; t1 < t0 integrates backwards.
        solver: ``Dopri5()`` (default) or ``Bosh3()`` (adaptive, rtol/atol), or any deterministic core
            scheme such as ``RK4()`` together with ``step_size`` (fixed grid).
        rtol, atol: tolerances of the adaptive solve (default 1e-5, 1e-6), or pass ``controller``.
        step_size: a fixed grid of steps ≤ step_size (``ConstantStepSize``) instead of adaptive steps.
        adjoint: gradients by the adjoint ODE (memory independent of the number of steps) instead
            of direct backprop through the solver.  seminorm: adjoint error norm over (y, a) only.
        max_steps: budget of trial steps, on both grids; a solve that needs more ends with status
            ``max_steps`` (it never hangs).
        controller: a :class:`~terrainlab.core.PIController` with other gains (then no rtol/atol).

    ``forward(y0)`` returns y(t1); ``solve(y0)`` returns the :class:`ODESolution` (differentiable
    ``y1``, ``n_evals``, ``n_accepted`` / ``n_rejected``, ``status`` ∈ completed | max_steps | diverged
    | nonfinite | stalled; ``backward`` is filled by an adjoint pass).

    Example:
        >>> node = NeuralODE(nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2)), rtol=1e-6)
        >>> sol = node.solve(torch.randn(5, 2))
        >>> sol.status, sol.n_evals > 0
        ('completed', True)
    """

    def __init__(
        self,
        field,
        t0: float = 0.0,
        t1: float = 1.0,
        *,
        solver: AbstractScheme | None = None,
        rtol: float | None = None,
        atol: float | None = None,
        step_size: float | None = None,
        adjoint: bool = False,
        seminorm: bool = True,
        max_steps: int = 10_000,
        controller: AbstractController | None = None,
        time_arg: bool | None = None,
    ):
        super().__init__()
        solver = Dopri5() if solver is None else solver
        check_instance(solver, "solver", AbstractScheme, "Dopri5(), Bosh3() or a deterministic core scheme")
        if solver.partitioned or solver.stochastic:
            raise ValueError(f"solver must be Dopri5(), Bosh3() or a deterministic core scheme, got {solver!r}")
        self.t0, self.t1 = float(check_number(t0, "t0")), float(check_number(t1, "t1"))
        self.max_steps = check_int(max_steps, "max_steps", minimum=1)
        self.controller = self._controller(solver, rtol, atol, step_size, controller)
        self.field = field
        self._f = as_field(field, time_arg)
        self.solver, self.step_size = solver, step_size
        self.adjoint, self.seminorm = bool(adjoint), bool(seminorm)

    @staticmethod
    def _controller(solver, rtol, atol, step_size, controller) -> AbstractController:
        if controller is not None:
            check_instance(controller, "controller", AbstractController, "PIController(...) or ConstantStepSize(...)")
            if rtol is not None or atol is not None or step_size is not None:
                raise ValueError("controller: pass rtol/atol/step_size either to NeuralODE or in the controller, not both")
            if isinstance(controller, PIController) and not isinstance(solver, EmbeddedRK):
                raise ValueError(f"step_size is required for a fixed-step solver such as {solver!r}")
            return controller
        if step_size is not None:
            return ConstantStepSize(step_size)
        if not isinstance(solver, EmbeddedRK):
            raise ValueError(f"step_size is required for a fixed-step solver such as {solver!r}")
        return PIController(rtol=1e-5 if rtol is None else rtol, atol=1e-6 if atol is None else atol)

    @property
    def rtol(self) -> float | None:
        return getattr(self.controller, "rtol", None)

    @property
    def atol(self) -> float | None:
        return getattr(self.controller, "atol", None)

    def extra_repr(self) -> str:
        return f"t=({self.t0}, {self.t1}), solver={self.solver!r}, controller={self.controller!r}, adjoint={self.adjoint}"

    def _solve_between(self, f, y0, t0, t1, n_norm=None) -> Solution:
        return integrate(f, y0, t0, t1, scheme=self.solver, controller=self.controller,
                         max_steps=self.max_steps, n_norm=n_norm)

    def solve(self, y0: torch.Tensor) -> ODESolution:
        check_tensor(y0, "y0")
        if self.adjoint and torch.is_grad_enabled():
            params = (
                tuple(p for p in self.field.parameters() if p.requires_grad)
                if isinstance(self.field, nn.Module)
                else ()
            )
            holder: list = []
            stats = ODEBackwardStats()
            y1 = AdjointSolve.apply(y0, self, holder, stats, *params)
            return _as_ode_solution(holder[0], stats, y1)
        return _as_ode_solution(self._solve_between(self._f, y0, self.t0, self.t1))

    def forward(self, y0: torch.Tensor) -> torch.Tensor:
        return self.solve(y0).y1
