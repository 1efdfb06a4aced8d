"""``rollout``: the one equation S_{t+1} = S_t + η·F(S_t, t), run.

Every world uses this loop (training on a terrain, a residual stack, a belief update, a sampler),
with a scheme (how the step is taken), a geometry (how it lands) and stop rules (when to stop).
A run that diverges or produces NaN returns a status; it never raises. Bad arguments raise
``ValueError`` naming the argument.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from dataclasses import field as dc_field

import torch

from ._tree import State, all_finite, leaves, max_abs
from .geometry import Euclidean, Simplex
from .schemes import AbstractScheme, Euler
from .status import STATUSES, Status
from .stop import StopRule
from .validate import check_callable, check_instance, check_int, check_positive

__all__ = ["rollout", "Trajectory", "STATUSES", "Status"]


@dataclass(frozen=True)
class Trajectory:
    """The result of a rollout.

    states:    recorded states stacked along a new leading dimension (a tuple of such stacks for
               tuple states); with ``record="last"`` only the final state.
    steps:     the step index of each recorded state (0 = the initial state).
    status:    a :class:`~terrainlab.core.status.Status`: ``converged | max_steps | diverged |
               nonfinite | cycle`` (it compares equal to the bare word).
    n_steps:   steps taken;  n_evals: field evaluations;  seconds: wall time.
    inner_failures: implicit-scheme inner solves that missed their tolerance (summed over states).
    """

    states: State
    steps: torch.Tensor
    status: Status
    n_steps: int
    n_evals: int
    seconds: float
    inner_failures: int = 0
    info: dict = dc_field(default_factory=dict)

    @property
    def final(self) -> State:
        if isinstance(self.states, tuple):
            return tuple(s[-1] for s in self.states)
        return self.states[-1]


def _stack(states: list) -> State:
    if isinstance(states[0], tuple):
        return tuple(torch.stack(parts) for parts in zip(*states))
    return torch.stack(states)


def _check_args(field, s0, eta, steps, scheme, geometry, record):
    check_callable(field, "field")
    if not all(torch.is_tensor(x) for x in leaves(s0)):
        raise ValueError("s0 must be a tensor or a tuple of tensors")
    if not all(torch.is_floating_point(x) or torch.is_complex(x) for x in leaves(s0)):
        raise ValueError("s0 must be floating point")
    check_positive(eta, "eta")
    check_int(steps, "steps", minimum=0)
    check_instance(scheme, "scheme", AbstractScheme, "a scheme object such as Euler() or RK4()")
    if not hasattr(geometry, "land"):
        raise ValueError(f"geometry must be Euclidean() or Simplex(...), got {geometry!r}")
    if scheme.partitioned != isinstance(s0, tuple):
        raise ValueError(
            "s0 must be a (position, momentum) tuple for a symplectic scheme and a tensor otherwise"
        )
    if isinstance(geometry, Simplex) and scheme.partitioned:
        raise ValueError("geometry Simplex needs a single-tensor state")
    if record not in ("all", "last") and not (isinstance(record, int) and not isinstance(record, bool) and record >= 1):
        raise ValueError(f"record must be 'all', 'last' or an int k >= 1 (every k-th step), got {record!r}")


class _ShapeGuard:
    """Wraps a field once to check its first output has the state's structure, shape and dtype.

    Checked on the first call only (no per-step cost). A dtype mismatch is an error, not a silent
    promotion: a float64 field on a float32 s0 would turn the whole trajectory float64 after one
    step, so the run would no longer be in the precision the caller chose.
    """

    def __init__(self, field):
        self.field = field
        self.checked = False

    def __call__(self, state, t):
        out = self.field(state, t)
        if not self.checked:
            a, b = leaves(state), leaves(out) if isinstance(out, tuple) or torch.is_tensor(out) else None
            if b is None or len(a) != len(b) or any(x.shape != y.shape for x, y in zip(a, b)):
                got = [tuple(y.shape) for y in b] if b else type(out).__name__
                raise ValueError(
                    f"field must return a tangent with the state's shape {[tuple(x.shape) for x in a]}, got {got}"
                )
            for x, y in zip(a, b):
                if y.dtype != x.dtype:
                    raise ValueError(
                        f"field must return a tangent with the dtype of s0 ({x.dtype}), got output dtype "
                        f"{y.dtype}; cast the field's output (or s0) so the state is not silently promoted"
                    )
            self.checked = True
        return out


def rollout(
    field,
    s0: State,
    *,
    eta: float,
    steps: int,
    scheme: AbstractScheme | None = None,
    geometry=None,
    stop: StopRule | list[StopRule] | None = None,
    record: str | int = "all",
    t0: float = 0.0,
) -> Trajectory:
    """Iterate S_{t+1} = land(S_t, scheme-increment of η·F) for ``steps`` steps.

    Args:
        field: callable F(state, t) returning a tangent of the state's shape (batched states: any
            leading dimensions; the field decides what they mean).
        s0: initial state, a tensor or a (q, p) tuple for symplectic schemes.
        eta: step size η > 0.  steps: maximum number of steps.
        scheme: ``Euler()`` (default), ``Heun()``, ``RK4()``, ``ImplicitEuler()``, …
        geometry: ``Euclidean()`` (default) or ``Simplex(projection=...)``.
        stop: a stop rule or a list of them (``StepTolerance``, ``DivergenceBound``, ``KLFreeze``,
            ``CycleDetect``). Without rules there is no per-step host synchronisation; finiteness is
            checked once at the end.
        record: ``"all"`` states, ``"last"`` only, or an int k for every k-th step (plus the last),
            so memory stays bounded on long runs.
        t0: time of the initial state; step k is at t0 + k·η.

    Returns:
        :class:`Trajectory`. NaN/inf gives status ``nonfinite`` and divergence ``diverged``; neither
        raises. An empty batch (s0 with no entries) is allowed: its steps have length 0, so
        ``StepTolerance``/``KLFreeze`` report ``converged`` at their first check and a run without
        rules ends ``max_steps``.

    Raises:
        ValueError: a bad argument, or a field whose first output does not have s0's structure,
            shape and dtype (no silent float32 → float64 promotion).

    Example:
        >>> from terrainlab.core import rollout, gradient_field, StepTolerance
        >>> F = gradient_field(lambda th: (th ** 2).sum(-1))
        >>> tr = rollout(F, torch.ones(1, 2), eta=0.5, steps=100, stop=StepTolerance(1e-12))
        >>> tr.status, tr.n_steps
        ('converged', 2)
    """
    scheme = Euler() if scheme is None else scheme
    geometry = Euclidean() if geometry is None else geometry
    _check_args(field, s0, eta, steps, scheme, geometry, record)
    geometry.validate(s0, "s0")
    rules = [] if stop is None else ([stop] if isinstance(stop, StopRule) else list(stop))
    for r in rules:
        check_instance(r, "stop", StopRule, "a StopRule or a list of them")
        r.reset()

    guarded = _ShapeGuard(field)
    zero = leaves(s0)[0].new_zeros(())
    state = s0
    recorded, rec_steps = ([s0], [0]) if record != "last" else ([], [])
    n_evals, failures, status, k = 0, zero.to(torch.int64), Status.MAX_STEPS, 0
    start = time.perf_counter()
    euclidean = isinstance(geometry, Euclidean)
    for k in range(1, steps + 1):
        res = scheme.step(guarded, state, t0 + (k - 1) * eta, eta)
        new = res.state if euclidean else geometry.land(state, _sub(res.state, state))
        n_evals += res.n_evals
        failures = failures + res.inner_failures
        if record == "all" or (isinstance(record, int) and k % record == 0):
            recorded.append(new)
            rec_steps.append(k)
        prev, state = state, new
        if rules:
            if not bool(all_finite(state)):
                status = Status.NONFINITE
                break
            hit = None
            for r in rules:
                if k % r.check_every == 0:
                    hit = r(prev, state, k)
                    if hit:
                        break
            if hit:
                status = Status(hit)
                break
    seconds = time.perf_counter() - start
    if status == Status.MAX_STEPS and not bool(all_finite(state)):
        status = Status.NONFINITE
    if not rec_steps or rec_steps[-1] != k:
        recorded.append(state)
        rec_steps.append(k)
    info = {"max_abs": float(max_abs(state))} if status != "nonfinite" else {}
    return Trajectory(
        states=_stack(recorded),
        steps=torch.tensor(rec_steps),
        status=status,
        n_steps=k,
        n_evals=n_evals,
        seconds=seconds,
        inner_failures=int(failures),
        info=info,
    )


def _sub(a, b):
    if isinstance(a, tuple):
        return tuple(x - y for x, y in zip(a, b))
    return a - b

