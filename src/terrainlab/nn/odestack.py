"""ODEStack: a residual network as an integrator of h' = f_θ(h, t) ("depth as time").

A residual block h_{l+1} = h_l + f_l(h_l) is one explicit Euler step of size 1 of h' = f(h, t)
(E, "A proposal on machine learning via dynamical systems", 2017; Haber & Ruthotto, "Stable
architectures for deep neural networks", 2017; Chen et al., "Neural ordinary differential
equations", 2018). ``ODEStack(f, Euler(), steps=L, T=L)`` is therefore exactly an L-block ResNet, and
the same trained weights can be run with another scheme or a finer grid: with untied blocks the field
is piecewise constant in time, block l acting on t ∈ [l·T/L, (l+1)·T/L).

The stepping is :func:`terrainlab.core.rollout`'s, with any deterministic core scheme — ``Euler``,
``Heun``, ``Midpoint``, ``RK4``, ``Dopri5``/``Bosh3`` (fixed steps), ``ImplicitEuler(root_finder)``.
With untied blocks every stage of a step uses the block of the step's midpoint: a field that only saw
the stage time could not tell, at a block boundary, whether the stage t + η ends this step (block l)
or starts the next one (block l + 1), so the scheme is wrapped to pick the block once per step.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.utils.checkpoint import checkpoint as _checkpoint

from ..core.fields import as_field
from ..core.rollout import Trajectory, rollout
from ..core.schemes import AbstractScheme, Euler, StepResult
from ..core.status import Status
from ..core.validate import check_instance, check_int, check_positive, check_tensor


@dataclass(frozen=True)
class StackResult(Trajectory):
    """A core :class:`~terrainlab.core.Trajectory` of the stack, plus what a layer user reads.

    state:  h(T) (``final``).  states: (steps+1, *h.shape) with ``record=True``, else h(T) alone
    (shape (1, *h.shape)).  n_steps, n_evals (batched field evaluations), inner_failures (rows ×
    steps whose implicit solve missed its tolerance), inner_iterations (implicit schemes: per-step
    maximum over rows of the root finder's evaluations, summed over steps), seconds.
    status: ``completed`` | ``nonfinite`` | ``stalled`` (an implicit inner solve failed somewhere).
    """

    inner_iterations: int = 0

    @property
    def state(self) -> torch.Tensor:
        return self.final


class _PiecewiseInTime(AbstractScheme):
    """Steps a piecewise-constant-in-time field: selects the piece of the step's midpoint, then
    takes the wrapped scheme's step; ``field`` (:class:`_Pieces`) evaluates the selected piece."""

    def __init__(self, scheme: AbstractScheme, pieces: _Pieces, select):
        self.scheme, self.order, self.pieces, self.select = scheme, scheme.order, pieces, select

    def R(self, z):
        return self.scheme.R(z)

    def step(self, field, state, t, eta):
        self.pieces.current = self.select(t + eta / 2)
        return self.scheme.step(field, state, t, eta)


class _Pieces:
    """F(h, t) = f_current(h, t): the block fields of an untied stack, one of them current."""

    def __init__(self, fields: list):
        self.fields, self.current = fields, 0

    def __call__(self, h, t):
        return self.fields[self.current](h, t)


class _Checkpointed(AbstractScheme):
    """A scheme whose steps are recomputed in the backward pass instead of storing activations."""

    def __init__(self, scheme: AbstractScheme):
        self.scheme, self.order = scheme, scheme.order

    def R(self, z):
        return self.scheme.R(z)

    def step(self, field, state, t, eta):
        if not torch.is_grad_enabled():
            return self.scheme.step(field, state, t, eta)
        box = {}

        def one(x):
            r = self.scheme.step(field, x, t, eta)
            box["n"], box["f"] = r.n_evals, r.inner_failures
            return r.state

        out = _checkpoint(one, state, use_reentrant=False)
        return StepResult(out, box["n"], box["f"])


class _CountingImplicit(AbstractScheme):
    """An implicit scheme whose steps also add up the root finder's per-step iterations."""

    def __init__(self, scheme: AbstractScheme):
        self.scheme, self.order, self.iterations = scheme, scheme.order, 0

    def R(self, z):
        return self.scheme.R(z)

    def step(self, field, state, t, eta):
        r = self.scheme.implicit_step(field, state, t, eta)
        self.iterations += int(r.root.iterations.max()) if r.root.iterations.numel() else 0
        return StepResult(r.state, r.n_evals, (~r.root.converged).sum())


def _reset(module: nn.Module) -> None:
    for m in module.modules():
        if hasattr(m, "reset_parameters") and callable(m.reset_parameters):
            m.reset_parameters()


def _check_steps_T(steps, T):
    check_int(steps, "steps", minimum=1)
    return float(check_positive(T, "T"))


class ODEStack(nn.Module):
    """Residual stack h ↦ h(T) for h' = f(h, t), integrated by a core scheme through ``rollout``.

    Args:
        field: an nn.Module (or callable) f(h) or f(h, t) returning h's shape — MLP, conv block,
            transformer block — or a list of modules, one block per time slice (untied).
        scheme: a deterministic ``terrainlab.core`` scheme: ``Euler()`` (default), ``Heun()``,
            ``Midpoint()``, ``RK4()``, ``ImplicitEuler(NewtonKrylov(tol=...))`` (implicit-function
            gradients; ``NewtonKrylov`` suits wide layers, the default dense ``Newton`` small ones).
        steps: number of steps; η = T/steps.  T: final time (default ``steps``, so η = 1: a ResNet).
        tied: one shared block (True) or ``steps`` independent copies re-initialised (False).
        checkpoint: recompute each step in the backward pass instead of storing its activations
            (explicit schemes; an implicit step already stores one layer).

    Example:
        >>> f = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 8))
        >>> net = ODEStack(f, steps=4, tied=False)            # a 4-block ResNet
        >>> h = net(torch.randn(2, 8))
        >>> from terrainlab.core import RK4
        >>> fine = net.integrate(torch.randn(2, 8), scheme=RK4(), steps=32)   # same weights
        >>> fine.status, fine.n_evals
        ('completed', 128)
    """

    def __init__(
        self,
        field,
        scheme: AbstractScheme | None = None,
        steps: int = 1,
        T: float | None = None,
        *,
        tied: bool = True,
        checkpoint: bool = False,
        time_arg: bool | None = None,
    ):
        super().__init__()
        check_int(steps, "steps", minimum=1)
        T = _check_steps_T(steps, float(steps) if T is None else T)
        scheme = Euler() if scheme is None else scheme
        self._check_scheme(scheme)
        if isinstance(field, (list, tuple, nn.ModuleList)):
            if len(field) == 0 or not all(isinstance(b, nn.Module) for b in field):
                raise ValueError("field: a list of blocks must be a non-empty list of nn.Modules")
            blocks = list(field)
            tied = len(blocks) == 1
        elif callable(field):
            if tied or not isinstance(field, nn.Module):
                if not tied:
                    raise ValueError("field must be an nn.Module to make untied copies (tied=False)")
                blocks = [field]
            else:
                blocks = [field]
                for _ in range(steps - 1):
                    b = copy.deepcopy(field)
                    _reset(b)
                    blocks.append(b)
        else:
            raise ValueError(f"field must be an nn.Module, a callable or a list of modules, got {type(field).__name__}")
        self.blocks = nn.ModuleList([b for b in blocks if isinstance(b, nn.Module)])
        self._fields = [as_field(b, time_arg) for b in blocks]
        self.scheme, self.steps, self.T = scheme, steps, T
        self.tied, self.checkpoint = tied, bool(checkpoint)

    @staticmethod
    def _check_scheme(scheme):
        check_instance(scheme, "scheme", AbstractScheme, "a core scheme object such as Euler() or RK4()")
        if scheme.partitioned or scheme.stochastic:
            raise ValueError(f"scheme must be a deterministic single-state scheme, got {scheme!r}")

    @property
    def n_blocks(self) -> int:
        return len(self._fields)

    def extra_repr(self) -> str:
        return f"scheme={self.scheme!r}, steps={self.steps}, T={self.T}, n_blocks={self.n_blocks}"

    def block_index(self, t: float, T: float | None = None) -> int:
        """The block acting at time t: block l owns [l·T/L, (l+1)·T/L)."""
        T = self.T if T is None else T
        k = int(math.floor(t * self.n_blocks / T + 1e-9))
        return min(max(k, 0), self.n_blocks - 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.integrate(h).state

    def integrate(
        self,
        h: torch.Tensor,
        *,
        scheme: AbstractScheme | None = None,
        steps: int | None = None,
        T: float | None = None,
        record: bool = False,
    ) -> StackResult:
        """Integrate from h(0) = ``h`` to T, optionally with another scheme / step count / T."""
        check_tensor(h, "h")
        scheme = self.scheme if scheme is None else scheme
        self._check_scheme(scheme)
        steps = self.steps if steps is None else steps
        T = _check_steps_T(steps, self.T if T is None else T)
        eta = T / steps
        start = time.perf_counter()
        # wrappers, innermost first: count implicit iterations, pick the block of each step, and
        # recompute each step in the backward pass (outermost, so a recomputation re-picks its block)
        stepper = _CountingImplicit(scheme) if hasattr(scheme, "implicit_step") else scheme
        counter = stepper
        field = self._fields[0]
        if self.n_blocks > 1:
            field = _Pieces(self._fields)
            stepper = _PiecewiseInTime(stepper, field, lambda t: self.block_index(t, T))
        if self.checkpoint and torch.is_grad_enabled() and counter is scheme:
            stepper = _Checkpointed(stepper)
        tr = rollout(field, h, eta=eta, steps=steps, scheme=stepper, record="all" if record else "last")
        status = tr.status
        if status != Status.NONFINITE:  # a fixed number of steps, all taken
            status = Status.STALLED if tr.inner_failures else Status.COMPLETED
        return StackResult(
            states=tr.states,
            steps=tr.steps,
            status=status,
            n_steps=tr.n_steps,
            n_evals=tr.n_evals,
            seconds=time.perf_counter() - start,
            inner_failures=tr.inner_failures,
            info=tr.info,
            inner_iterations=getattr(counter, "iterations", 0),
        )
