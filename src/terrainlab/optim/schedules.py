"""Learning-rate schedules η_t: plain functions of the step t and ``torch.optim.lr_scheduler`` objects.

Each function is closed-form in t (no recursion), so a schedule can be plotted, tested and resumed
anywhere. The scheduler classes set ``lr = f(t, base_lr)`` on every param group and keep PyTorch's
scheduler protocol (``step()``, ``get_last_lr()``, ``state_dict()``).

- step decay:      η_t = η0 · γ^⌊t/N⌋
- cosine:          η_t = η_min + (η0 − η_min)(1 + cos(πt/T))/2     (Loshchilov & Hutter 2017, SGDR)
- warmup + cosine: linear from s·η0 to η0 over W steps, then cosine over the remaining T − W
                   (Goyal et al. 2017)
- triangular:      η_t = η_lo + (η_hi − η_lo)·max(0, 1 − |t/S − 2c + 1|), c = ⌊1 + t/(2S)⌋
                   (Smith 2017, cyclical learning rates)

Example:
    >>> cosine(50, lr0=0.1, T=100)
    0.05...
    >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    >>> sched = WarmupCosineLR(opt, warmup=20, T=200)

Every argument is checked (:mod:`terrainlab.core.validate`): a learning rate is a finite number
> 0, a floor such as ``lr_min`` lies in [0, lr0], step counts are ints; a bad one raises
``ValueError`` naming it.
"""

from __future__ import annotations

import math

import torch

from ..core.validate import (
    check_callable,
    check_int,
    check_nonnegative,
    check_number,
    check_positive,
)


def _check_t(t) -> int:
    return check_int(t, "t", minimum=0)


def _pos_int(name, x) -> int:
    return check_int(x, name, minimum=1)


def _lr(x, name: str) -> float:
    """A learning rate: a finite number > 0."""
    return check_positive(x, name)


def _floor(x, name: str, lr0: float) -> float:
    """A floor such as η_min: finite, ≥ 0 and not above η0."""
    return check_number(x, name, minimum=0, maximum=lr0)


def step_decay(t: int, *, lr0: float, gamma: float = 0.5, step_size: int = 30) -> float:
    """η0·γ^⌊t/N⌋ ("halve every 30 epochs" is γ = 0.5, N = 30). Twin: ``StepLR``."""
    _check_t(t)
    _lr(lr0, "lr0")
    _pos_int("step_size", step_size)
    check_number(gamma, "gamma", minimum=0, maximum=1, strict_min=True)
    return lr0 * gamma ** (t // step_size)


def cosine(t: int, *, lr0: float, T: int, lr_min: float = 0.0) -> float:
    """η_min + (η0 − η_min)(1 + cos(πt/T))/2 for 0 ≤ t ≤ T (periodic continuation beyond T, as
    ``CosineAnnealingLR``)."""
    _check_t(t)
    _lr(lr0, "lr0")
    _pos_int("T", T)
    _floor(lr_min, "lr_min", lr0)
    return lr_min + (lr0 - lr_min) * (1 + math.cos(math.pi * t / T)) / 2


def warmup_cosine(t: int, *, lr0: float, warmup: int, T: int, lr_min: float = 0.0,
                  start_factor: float = 0.01) -> float:
    """Linear warmup from ``start_factor``·η0 to η0 over ``warmup`` steps, then cosine to η_min at T.
    Twin: ``SequentialLR([LinearLR, CosineAnnealingLR], milestones=[warmup])``."""
    _check_t(t)
    _lr(lr0, "lr0")
    _pos_int("warmup", warmup)
    check_int(T, "T", minimum=warmup + 1)
    _floor(lr_min, "lr_min", lr0)
    check_number(start_factor, "start_factor", minimum=0, maximum=1, strict_min=True)
    if t < warmup:
        return lr0 * (start_factor + (1 - start_factor) * t / warmup)
    return cosine(t - warmup, lr0=lr0, T=T - warmup, lr_min=lr_min)


def cyclical_triangular(t: int, *, lr_lo: float, lr_hi: float, step_size_up: int = 20) -> float:
    """Triangular cycle between η_lo and η_hi with half-period S (Smith 2017). Twin: ``CyclicLR``."""
    _check_t(t)
    check_nonnegative(lr_lo, "lr_lo")
    check_number(lr_hi, "lr_hi", minimum=lr_lo)
    _pos_int("step_size_up", step_size_up)
    c = math.floor(1 + t / (2 * step_size_up))
    x = abs(t / step_size_up - 2 * c + 1)
    return lr_lo + (lr_hi - lr_lo) * max(0.0, 1 - x)


class FunctionLR(torch.optim.lr_scheduler.LRScheduler):
    """Sets each group's lr to ``fn(t, base_lr)`` at step t (closed form; resumable)."""

    def __init__(self, optimizer, fn, last_epoch: int = -1):
        self.fn = check_callable(fn, "fn")  # (t, base_lr) -> lr
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [self.fn(self.last_epoch, base) for base in self.base_lrs]

    _get_closed_form_lr = get_lr

    def state_dict(self):
        return {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "fn")}


class StepDecayLR(FunctionLR):
    def __init__(self, optimizer, gamma: float = 0.5, step_size: int = 30, last_epoch: int = -1):
        step_decay(0, lr0=1.0, gamma=gamma, step_size=step_size)  # validate
        self.gamma, self.step_size = gamma, step_size
        super().__init__(optimizer, lambda t, b: step_decay(t, lr0=b, gamma=gamma, step_size=step_size), last_epoch)


class CosineLR(FunctionLR):
    def __init__(self, optimizer, T: int, lr_min: float = 0.0, last_epoch: int = -1):
        cosine(0, lr0=1.0, T=T)
        self.T, self.lr_min = T, lr_min
        super().__init__(optimizer, lambda t, b: cosine(t, lr0=b, T=T, lr_min=lr_min), last_epoch)


class WarmupCosineLR(FunctionLR):
    def __init__(self, optimizer, warmup: int, T: int, lr_min: float = 0.0, start_factor: float = 0.01,
                 last_epoch: int = -1):
        warmup_cosine(0, lr0=1.0, warmup=warmup, T=T, start_factor=start_factor)
        self.warmup, self.T, self.lr_min, self.start_factor = warmup, T, lr_min, start_factor
        super().__init__(optimizer, lambda t, b: warmup_cosine(t, lr0=b, warmup=warmup, T=T, lr_min=lr_min,
                                                               start_factor=start_factor), last_epoch)


class TriangularLR(FunctionLR):
    """Cycles between ``lr_lo`` and ``lr_hi`` (the optimizer's base lr is not used), as
    ``CyclicLR(mode="triangular")``."""

    def __init__(self, optimizer, lr_lo: float, lr_hi: float, step_size_up: int = 20, last_epoch: int = -1):
        cyclical_triangular(0, lr_lo=lr_lo, lr_hi=lr_hi, step_size_up=step_size_up)
        self.lr_lo, self.lr_hi, self.step_size_up = lr_lo, lr_hi, step_size_up
        super().__init__(optimizer, lambda t, b: cyclical_triangular(t, lr_lo=lr_lo, lr_hi=lr_hi,
                                                                     step_size_up=step_size_up), last_epoch)
