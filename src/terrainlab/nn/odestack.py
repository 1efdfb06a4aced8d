"""ODEStack: a residual network as an integrator of h' = f_θ(h, t) ("depth as time").

A residual block h_{l+1} = h_l + f_l(h_l) is one explicit Euler step of size 1 of h' = f(h, t)
(E, "A proposal on machine learning via dynamical systems", 2017; Haber & Ruthotto, "Stable
architectures for deep neural networks", 2017; Chen et al., "Neural ordinary differential
equations", 2018). ``ODEStack(f, Euler(), steps=L, T=L)`` is therefore exactly an L-block ResNet, and
the same trained weights can be run with another scheme or a finer grid: with untied blocks the field
is piecewise constant in time, block l acting on t ∈ [l·T/L, (l+1)·T/L).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.utils.checkpoint import checkpoint as _checkpoint

from ..core.schemes import AbstractScheme, Euler, ImplicitEuler
from ._field import as_field
from .implicit import ImplicitEulerStep


@dataclass(frozen=True)
class StackResult:
    """Output of :meth:`ODEStack.integrate`.

    state: h(T).  states: (steps+1, *h.shape) trajectory when ``record=True`` else None.
    n_steps, n_evals (field evaluations, batched), inner_iterations (implicit schemes, summed over
    steps of the per-step max), inner_failures (samples × steps that missed the implicit tolerance),
    status: ``ok`` | ``inner_failures`` | ``nonfinite``;  seconds.
    """

    state: torch.Tensor
    states: torch.Tensor | None
    n_steps: int
    n_evals: int
    inner_iterations: int
    inner_failures: int
    status: str
    seconds: float


def _reset(module: nn.Module) -> None:
    for m in module.modules():
        if hasattr(m, "reset_parameters") and callable(m.reset_parameters):
            m.reset_parameters()


class ODEStack(nn.Module):
    """Residual stack h ↦ h(T) for h' = f(h, t), integrated by a core scheme.

    Args:
        field: an nn.Module (or callable) f(h) or f(h, t) returning h's shape — MLP, conv block,
            transformer block — or a list of modules, one block per time slice (untied).
        scheme: a ``terrainlab.core`` scheme: ``Euler()`` (default), ``Heun()``, ``Midpoint()``,
            ``RK4()``, ``ImplicitEuler(solver, tol, max_iter)`` (solved by Newton–Krylov or fixed
            point with implicit-differentiation gradients).
        steps: number of steps; η = T/steps.  T: final time (default ``steps``, so η = 1: a ResNet).
        tied: one shared block (True) or ``steps`` independent copies re-initialised (False).
        checkpoint: recompute each step in the backward pass instead of storing its activations.

    Example:
        >>> f = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 8))
        >>> net = ODEStack(f, steps=4, tied=False)            # a 4-block ResNet
        >>> h = net(torch.randn(2, 8))
        >>> from terrainlab.core import RK4
        >>> fine = net.integrate(torch.randn(2, 8), scheme=RK4(), steps=32)   # same weights
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
        if isinstance(steps, bool) or not (isinstance(steps, int) and steps >= 1):
            raise ValueError(f"steps must be an int >= 1, got {steps!r}")
        T = float(steps) if T is None else T
        if isinstance(T, bool) or not (isinstance(T, (int, float)) and T > 0 and math.isfinite(T)):
            raise ValueError(f"T must be a finite number > 0, got {T!r}")
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
        mods = [b for b in blocks if isinstance(b, nn.Module)]
        self.blocks = nn.ModuleList(mods)
        self._callables = blocks
        self._fields = [as_field(b, time_arg) for b in blocks]
        self.scheme, self.steps, self.T = scheme, steps, float(T)
        self.tied, self.checkpoint = tied, bool(checkpoint)

    @staticmethod
    def _check_scheme(scheme):
        if not isinstance(scheme, AbstractScheme):
            raise ValueError(f"scheme must be a core scheme object such as Euler() or RK4(), got {scheme!r}")
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
        if not torch.is_tensor(h) or not torch.is_floating_point(h):
            raise ValueError("h must be a floating-point tensor")
        scheme = self.scheme if scheme is None else scheme
        self._check_scheme(scheme)
        steps = self.steps if steps is None else steps
        if isinstance(steps, bool) or not (isinstance(steps, int) and steps >= 1):
            raise ValueError(f"steps must be an int >= 1, got {steps!r}")
        T = self.T if T is None else float(T)
        if not (T > 0 and math.isfinite(T)):
            raise ValueError(f"T must be a finite number > 0, got {T!r}")
        eta = T / steps
        start = time.perf_counter()
        implicit = isinstance(scheme, ImplicitEuler)
        states = [h] if record else None
        n_evals = inner_it = 0
        failures = 0
        for k in range(steps):
            t = k * eta
            fk = self._fields[self.block_index(t + eta / 2, T)]
            if implicit:
                step = ImplicitEulerStep(
                    self._callables[self.block_index(t + eta / 2, T)],
                    eta,
                    solver="newton_krylov" if scheme.solver == "newton" else "fixed_point",
                    tol=scheme.tol,
                    max_iter=scheme.max_iter,
                )
                step._f = fk
                res = step.solve(h, t)
                h = res.state
                n_evals += res.n_evals
                inner_it += int(res.iterations.max())
                failures += res.failures
            else:
                counter = [0]

                def one(x, fk=fk, t=t, counter=counter):
                    r = scheme.step(fk, x, t, eta)
                    counter[0] = r.n_evals
                    return r.state

                if self.checkpoint and torch.is_grad_enabled():
                    h = _checkpoint(one, h, use_reentrant=False)
                else:
                    h = one(h)
                n_evals += counter[0]
            if record:
                states.append(h)
        finite = bool(torch.isfinite(h).all())
        status = "nonfinite" if not finite else ("inner_failures" if failures else "ok")
        return StackResult(
            state=h,
            states=torch.stack(states) if record else None,
            n_steps=steps,
            n_evals=n_evals,
            inner_iterations=inner_it,
            inner_failures=failures,
            status=status,
            seconds=time.perf_counter() - start,
        )
