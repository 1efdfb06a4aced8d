"""Stop rules for :func:`terrainlab.core.rollout`.

A rule sees the previous and the new state after every step and returns a status string when the
run should stop (``"converged"``, ``"diverged"``, ``"cycle"``), else ``None``. A rule forces one
host synchronisation per check; ``check_every`` on the rule spaces the checks out.
"""

from __future__ import annotations

from collections import deque

import torch

from ._tree import leaves, sub_norm


class StopRule:
    check_every: int = 1

    def reset(self) -> None:  # called at the start of every rollout
        pass

    def __call__(self, prev, new, step: int) -> str | None:
        raise NotImplementedError


class StepTolerance(StopRule):
    """Converged once max|S_{t+1} − S_t| ≤ tol for ``m`` consecutive checks (all states of a batch)."""

    def __init__(self, tol: float, m: int = 1, check_every: int = 1):
        if not tol > 0:
            raise ValueError(f"tol must be > 0, got {tol}")
        if not (isinstance(m, int) and m >= 1):
            raise ValueError(f"m must be an int >= 1, got {m!r}")
        self.tol, self.m, self.check_every = tol, m, check_every
        self._run = 0

    def reset(self):
        self._run = 0

    def __call__(self, prev, new, step):
        self._run = self._run + 1 if float(sub_norm(new, prev)) <= self.tol else 0
        return "converged" if self._run >= self.m else None


class DivergenceBound(StopRule):
    """Diverged once any |S| exceeds ``bound``."""

    def __init__(self, bound: float = 1e6, check_every: int = 1):
        if not bound > 0:
            raise ValueError(f"bound must be > 0, got {bound}")
        self.bound, self.check_every = bound, check_every

    def __call__(self, prev, new, step):
        m = max(float(x.detach().abs().amax()) for x in leaves(new))
        return "diverged" if m > self.bound else None


def _kl_rows(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    tiny = torch.finfo(p.dtype).tiny
    return torch.where(p > 0, p * (torch.log(p.clamp(min=tiny)) - torch.log(q.clamp(min=tiny))), 0).sum(-1)


class KLFreeze(StopRule):
    """The belief freeze: Δ_t = KL(p_t ‖ p_{t−1}) < ε for ``m`` consecutive steps (every row)."""

    def __init__(self, eps: float, m: int = 1):
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        if not (isinstance(m, int) and m >= 1):
            raise ValueError(f"m must be an int >= 1, got {m!r}")
        self.eps, self.m = eps, m
        self._run = 0

    def reset(self):
        self._run = 0

    def __call__(self, prev, new, step):
        delta = float(_kl_rows(new, prev).amax())
        self._run = self._run + 1 if delta < self.eps else 0
        return "converged" if self._run >= self.m else None


class CycleDetect(StopRule):
    """Cycle once the new state returns within ``tol`` of one of the last ``max_period`` states
    (period ≥ 2) while still moving (so a fixed point is not mistaken for a cycle)."""

    def __init__(self, max_period: int = 8, tol: float = 1e-9, move_tol: float | None = None):
        if not (isinstance(max_period, int) and max_period >= 2):
            raise ValueError(f"max_period must be an int >= 2, got {max_period!r}")
        self.max_period, self.tol = max_period, tol
        self.move_tol = tol if move_tol is None else move_tol
        self._hist: deque = deque(maxlen=max_period)

    def reset(self):
        self._hist.clear()

    def __call__(self, prev, new, step):
        found = None
        if float(sub_norm(new, prev)) > self.move_tol:
            for back, old in enumerate(reversed(self._hist), start=2):
                if back >= 2 and float(sub_norm(new, old)) <= self.tol:
                    found = "cycle"
                    break
        self._hist.append(tuple(x.detach().clone() for x in leaves(prev)) if isinstance(prev, tuple) else prev.detach().clone())
        return found
