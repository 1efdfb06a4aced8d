"""Stop rules for :func:`terrainlab.core.rollout`.

A rule sees the previous and the new state after every step and returns a status string when the
run should stop (``"converged"``, ``"diverged"``, ``"cycle"``), else ``None``. A rule forces one
host synchronisation per check; ``check_every`` (an int ≥ 1, on every rule) spaces the checks out.

An empty batch (a state with no entries) takes zero-length steps: :class:`StepTolerance` and
:class:`KLFreeze` report it ``converged`` at their first check (every state of the batch — there are
none — has met the tolerance), :class:`DivergenceBound` and :class:`CycleDetect` never fire.
"""

from __future__ import annotations

from collections import deque

import torch

from ._tree import leaves, max_abs, sub_norm
from .validate import check_int, check_nonnegative, check_positive


class StopRule:
    """Base class: ``__call__(prev, new, step)`` returns a status string to stop, else ``None``."""

    check_every: int = 1

    def _set_check_every(self, check_every: int) -> None:
        self.check_every = check_int(check_every, "check_every", minimum=1)

    def reset(self) -> None:  # called at the start of every rollout
        pass

    def __call__(self, prev, new, step: int) -> str | None:
        raise NotImplementedError


class _Consecutive(StopRule):
    """``converged`` once a subclass's test ``_met(prev, new)`` has held for ``m`` consecutive checks."""

    def __init__(self, m: int, check_every: int):
        self.m = check_int(m, "m", minimum=1)
        self._set_check_every(check_every)
        self._run = 0

    def reset(self):
        self._run = 0

    def _met(self, prev, new) -> bool:
        raise NotImplementedError

    def __call__(self, prev, new, step):
        self._run = self._run + 1 if self._met(prev, new) else 0
        return "converged" if self._run >= self.m else None


class StepTolerance(_Consecutive):
    """Converged once max|S_{t+1} − S_t| ≤ tol for ``m`` consecutive checks (all states of a batch)."""

    def __init__(self, tol: float, m: int = 1, check_every: int = 1):
        self.tol = check_positive(tol, "tol")
        super().__init__(m, check_every)

    def _met(self, prev, new) -> bool:
        return float(sub_norm(new, prev)) <= self.tol


class DivergenceBound(StopRule):
    """Diverged once any |S| exceeds ``bound``."""

    def __init__(self, bound: float = 1e6, check_every: int = 1):
        self.bound = check_positive(bound, "bound")
        self._set_check_every(check_every)

    def __call__(self, prev, new, step):
        return "diverged" if float(max_abs(new)) > self.bound else None


def _kl_rows(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    tiny = torch.finfo(p.dtype).tiny
    return torch.where(p > 0, p * (torch.log(p.clamp(min=tiny)) - torch.log(q.clamp(min=tiny))), 0).sum(-1)


class KLFreeze(_Consecutive):
    """The belief freeze: Δ_t = KL(p_t ‖ p_{t−1}) < ε for ``m`` consecutive steps (every row)."""

    def __init__(self, eps: float, m: int = 1, check_every: int = 1):
        self.eps = check_positive(eps, "eps")
        super().__init__(m, check_every)

    def _met(self, prev, new) -> bool:
        kl = _kl_rows(new, prev)
        return (float(kl.amax()) if kl.numel() else 0.0) < self.eps


class CycleDetect(StopRule):
    """Cycle once the new state returns within ``tol`` of one of the last ``max_period`` states
    (period ≥ 2) while still moving (so a fixed point is not mistaken for a cycle).

    This is the online test (it stops a rollout); :func:`terrainlab.core.cycles.detect_cycle` is
    its after-the-fact counterpart on a recorded sequence (smallest period, where it began).
    ``tol = 0`` asks for an exact return (states on a lattice, tokens).
    """

    def __init__(self, max_period: int = 8, tol: float = 1e-9, move_tol: float | None = None,
                 check_every: int = 1):
        self.max_period = check_int(max_period, "max_period", minimum=2)
        self.tol = check_nonnegative(tol, "tol")
        self.move_tol = self.tol if move_tol is None else check_nonnegative(move_tol, "move_tol")
        self._set_check_every(check_every)
        self._hist: deque = deque(maxlen=max_period)

    def reset(self):
        self._hist.clear()

    def __call__(self, prev, new, step):
        found = None
        if float(sub_norm(new, prev)) > self.move_tol:
            for old in reversed(self._hist):  # lag 2, 3, …: prev itself is lag 1
                if float(sub_norm(new, old)) <= self.tol:
                    found = "cycle"
                    break
        self._hist.append(tuple(x.detach().clone() for x in leaves(prev)) if isinstance(prev, tuple) else prev.detach().clone())
        return found
