"""``integrate``: y' = F(y, t) from t0 to t1 with a scheme and a step-size controller.

Where :func:`~terrainlab.core.rollout` takes a given number of steps of a given size, ``integrate``
covers a given time interval, in either direction:

- with :class:`~terrainlab.core.controllers.PIController` (the default) and an embedded pair
  (``Dopri5()`` default, ``Bosh3()``) the step size adapts: each trial step is accepted when its
  scaled RMS error is ≤ 1, the controller proposes the next one, and the last step is shortened to
  land exactly on t1 (Hairer, Nørsett & Wanner, *Solving ODEs I*, §II.4; the loop is diffrax's
  ``diffeqsolve`` in miniature: scheme and controller are separate objects);
- with :class:`~terrainlab.core.controllers.ConstantStepSize` it is a fixed grid, run by
  ``rollout`` with any core scheme (a backward interval is run forward in reversed time,
  τ = −t, dy/dτ = −F(y, −τ), which gives the same numbers as steps of negative size).

How a solve ends (``Solution.status``, a :class:`~terrainlab.core.status.Status`); it never raises
for these:

==============  =================================================================================
``completed``   t1 was reached
``max_steps``   ``max_steps`` trial steps (accepted + rejected) were taken before t1
``diverged``    an accepted state has max|y| > ``divergence_bound`` (default √(largest float of the
                dtype): 1.8e19 in float32, 1.3e154 in float64 — past it a field with a quadratic
                term, or the squared error norm, overflows; pass ``math.inf`` to switch it off)
``nonfinite``   y0 or F(y0) is not finite, an accepted state is not finite, or the step size fell
                to its floor while every trial step produced NaN or inf (an overflow no step
                size cures)
``stalled``     the step size fell to its floor (10⁻¹⁴·max(1, |t|)) with finite trial errors and a
                finite state within the bound: the solution changes faster than the tolerance can
                follow (e.g. at a finite-time singularity); or an implicit scheme's inner solve
                failed on the fixed grid
==============  =================================================================================

Bad arguments raise ``ValueError`` naming the argument; t0 and t1 must be finite.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from dataclasses import field as dc_field

import torch

from .controllers import AbstractController, ConstantStepSize, PIController
from .rollout import rollout
from .schemes import AbstractScheme
from .schemes.dopri5 import Dopri5
from .schemes.embedded_rk import EmbeddedRK
from .status import Status
from .validate import (
    check_callable,
    check_choice,
    check_instance,
    check_int,
    check_number,
    check_positive,
)

__all__ = ["integrate", "Solution"]


@dataclass(frozen=True)
class Solution:
    """The result of :func:`integrate`.

    ys:         states at ``ts``, stacked along a new leading dimension (``record="last"``: only the
                final state, shape (1, *y0.shape)).  ``y1`` is ``ys[-1]`` (differentiable).
    ts:         the times of ``ys``; ``ts[-1]`` is the time reached (t1 unless the run ended early).
    status:     ``completed | max_steps | diverged | nonfinite | stalled`` (see the module table).
    n_steps:    trial steps taken = ``n_accepted + n_rejected``.  n_evals: field evaluations (NFE).
    seconds:    wall time.  info: ``max_abs`` of the final state, ``inner_failures`` (fixed grid).
    """

    ys: torch.Tensor
    ts: tuple
    status: Status
    n_steps: int
    n_accepted: int
    n_rejected: int
    n_evals: int
    seconds: float
    info: dict = dc_field(default_factory=dict)

    @property
    def y1(self) -> torch.Tensor:
        return self.ys[-1]


def _time(t, name: str) -> float:
    if torch.is_tensor(t) and t.numel() == 1 and not t.is_complex():
        t = float(t)
    return float(check_number(t, name))  # finite: an interval ending at ±inf or NaN is no interval


def _check_args(field, y0, t0, t1, scheme, controller, max_steps, first_step, record, divergence_bound, n_norm):
    check_callable(field, "field")
    if not torch.is_tensor(y0) or not torch.is_floating_point(y0):
        raise ValueError(f"y0 must be a real floating-point tensor, got {getattr(y0, 'dtype', type(y0).__name__)}")
    t0, t1 = _time(t0, "t0"), _time(t1, "t1")
    check_instance(scheme, "scheme", AbstractScheme, "a core scheme object such as Dopri5() or RK4()")
    check_instance(controller, "controller", AbstractController, "PIController(...) or ConstantStepSize(...)")
    if isinstance(controller, PIController) and not isinstance(scheme, EmbeddedRK):
        raise ValueError(
            f"scheme must be an embedded pair such as Dopri5() or Bosh3() for adaptive steps, got {scheme!r} "
            "(take fixed steps with controller=ConstantStepSize(h))"
        )
    if scheme.partitioned or scheme.stochastic:
        raise ValueError(f"scheme must be a deterministic single-state scheme, got {scheme!r}")
    check_int(max_steps, "max_steps", minimum=1)
    if first_step is not None:
        check_positive(first_step, "first_step")
    check_choice(record, "record", ("last", "all"))
    if divergence_bound is None:
        divergence_bound = math.sqrt(torch.finfo(y0.dtype).max)
    check_positive(divergence_bound, "divergence_bound", finite=False)
    if n_norm is not None:
        check_int(n_norm, "n_norm", minimum=1)
    return t0, t1, float(divergence_bound)


def integrate(
    field,
    y0: torch.Tensor,
    t0: float,
    t1: float,
    *,
    scheme: AbstractScheme | None = None,
    controller: AbstractController | None = None,
    max_steps: int = 10_000,
    first_step: float | None = None,
    record: str = "last",
    divergence_bound: float | None = None,
    n_norm: int | None = None,
) -> Solution:
    """Integrate y' = F(y, t) from t0 to t1 (t1 < t0 integrates backwards).

    Args:
        field: callable F(y, t) returning y's shape. The whole state shares one step size (the
            error norm is an RMS over all entries, or over the first ``n_norm`` flattened ones —
            the adjoint's "seminorm").
        y0: initial state, a real floating-point tensor (any shape; a batch is one state).
        t0, t1: finite start and end times.
        scheme: ``Dopri5()`` (default) or ``Bosh3()`` for adaptive steps; any deterministic core
            scheme (``RK4()``, ``Heun()``, ``ImplicitEuler()``, …) with ``ConstantStepSize``.
        controller: ``PIController(rtol, atol)`` (default rtol 1e-5, atol 1e-6) or
            ``ConstantStepSize(h)``.
        max_steps: budget of trial steps (accepted + rejected); a fixed grid needing more stops
            after ``max_steps`` steps with status ``max_steps``.
        first_step: the first trial step (default: the controller's estimate, one evaluation).
        record: ``"last"`` (final state only) or ``"all"`` (every accepted state).
        divergence_bound: ``diverged`` once max|y| exceeds it (default √(finfo.max); ``math.inf``
            switches it off).

    Returns:
        :class:`Solution`; see the module docstring for how each status is decided.

    Example:
        >>> sol = integrate(lambda y, t: -y, torch.ones(3, dtype=torch.float64), 0.0, 1.0,
        ...                 controller=PIController(rtol=1e-8, atol=1e-10))
        >>> sol.status, abs(float(sol.y1[0]) - math.exp(-1)) < 1e-7
        ('completed', True)
    """
    scheme = Dopri5() if scheme is None else scheme
    controller = PIController() if controller is None else controller
    t0, t1, bound = _check_args(
        field, y0, t0, t1, scheme, controller, max_steps, first_step, record, divergence_bound, n_norm
    )
    if t1 == t0 or y0.numel() == 0:  # nothing to integrate: no evaluation
        return Solution(y0.unsqueeze(0), (t1,), Status.COMPLETED, 0, 0, 0, 0, 0.0, {})
    if isinstance(controller, ConstantStepSize):
        return _fixed_grid(field, y0, t0, t1, scheme, controller, max_steps, record, bound)
    return _adaptive(field, y0, t0, t1, scheme, controller, max_steps, first_step, record, bound, n_norm)


def _fixed_grid(field, y0, t0, t1, scheme, controller, max_steps, record, bound) -> Solution:
    """Equal steps through ``rollout``; backwards as a forward run in reversed time."""
    start = time.perf_counter()
    n = controller.n_steps(t0, t1)
    truncated = n > max_steps
    steps = max_steps if truncated else int(n)
    eta = abs(t1 - t0) / n if math.isfinite(n) else controller.step_size
    direction = 1.0 if t1 > t0 else -1.0
    if direction > 0:
        f, tau0 = field, t0
    else:
        def f(y, tau):  # dy/dτ = −F(y, −τ), τ = −t
            return -field(y, -tau)

        tau0 = -t0
    traj = rollout(f, y0, eta=eta, steps=steps, scheme=scheme, record="all" if record == "all" else "last", t0=tau0)
    ks = traj.steps.tolist()
    ts = tuple(t1 if (k == steps and not truncated) else t0 + direction * k * eta for k in ks)
    max_abs = traj.info.get("max_abs", math.inf)
    if traj.status == Status.NONFINITE:
        status = Status.NONFINITE
    elif truncated:
        status = Status.MAX_STEPS
    elif max_abs > bound:
        status = Status.DIVERGED
    elif traj.inner_failures:
        status = Status.STALLED
    else:
        status = Status.COMPLETED
    info = {"max_abs": max_abs, "inner_failures": traj.inner_failures}
    return Solution(traj.states, ts, status, traj.n_steps, traj.n_steps, 0, traj.n_evals,
                    time.perf_counter() - start, info)


def _adaptive(field, y0, t0, t1, scheme, ctrl, max_steps, first_step, record, bound, n_norm) -> Solution:
    """Accept / reject with an embedded pair and a PI controller; the last step lands on t1."""
    start = time.perf_counter()
    direction = 1.0 if t1 > t0 else -1.0
    span = abs(t1 - t0)
    y, t = y0, t0
    ts, ys = [t0], [y0]
    k1 = field(y0, t0)
    n_evals = 1
    if not torch.is_tensor(k1) or k1.shape != y0.shape or k1.dtype != y0.dtype:
        got = f"{tuple(k1.shape)} {k1.dtype}" if torch.is_tensor(k1) else type(k1).__name__
        raise ValueError(f"field must return a tensor with y0's shape and dtype {tuple(y0.shape)} {y0.dtype}, got {got}")
    n_acc = n_rej = 0
    status = None
    if not bool(torch.isfinite(y0).all() & torch.isfinite(k1).all()):
        status = Status.NONFINITE
    elif first_step is None:
        h = ctrl.initial_step(field, y0, k1, t0, direction, scheme.order, n_norm)
        n_evals += 1
    else:
        h = float(first_step)
    k = scheme.error_order + 1
    done, err_prev, after_reject, trial_nonfinite = 0.0, 1.0, False, False
    while status is None and done < span:
        if n_acc + n_rej >= max_steps:
            status = Status.MAX_STEPS
            break
        h = min(h, span - done)
        if h <= 1e-14 * max(1.0, abs(t)):
            status = Status.NONFINITE if trial_nonfinite else Status.STALLED
            break
        y1, err, k_last, n = scheme.step_with_error(field, y, t, direction * h, k1=k1)
        n_evals += n
        # one host synchronisation per trial step: the error ratio and the size of the new state
        e, big = torch.stack([ctrl.error_ratio(err, y, y1, n_norm), y1.detach().abs().amax()]).tolist()
        if e <= 1.0:  # accepted (False for NaN)
            done = done + h if span - done - h > 1e-12 * span else span
            t = t0 + direction * done
            y, k1 = y1, (k_last if scheme.fsal else None)
            n_acc += 1
            ts.append(t)
            if record == "all":
                ys.append(y)
            if not math.isfinite(big):
                status = Status.NONFINITE
                break
            if big > bound:
                status = Status.DIVERGED
                break
            if k1 is None:
                k1 = field(y, t)
                n_evals += 1
            h = h * ctrl.factor(e, err_prev, k, True, after_reject)
            err_prev, after_reject, trial_nonfinite = max(e, 1e-4), False, False
        else:
            n_rej += 1
            trial_nonfinite = not math.isfinite(e)
            h = h * ctrl.factor(e, err_prev, k, False, after_reject)
            after_reject = True
    if status is None:
        status = Status.COMPLETED
    if record == "all":
        states = torch.stack(ys)
    else:
        states = y.unsqueeze(0)
        ts = [t]
    info = {"max_abs": float(y.detach().abs().amax()) if y.numel() else 0.0}
    return Solution(states, tuple(ts), status, n_acc + n_rej, n_acc, n_rej, n_evals,
                    time.perf_counter() - start, info)
