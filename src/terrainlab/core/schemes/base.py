"""The scheme interface: how one step S_{t+1} = S_t + η·(…) is taken.

A scheme is an object, not a string. It declares its order of accuracy and its linear stability
function R(z): applied to the test equation x' = λx with step η it multiplies x by R(ηλ) each step,
so the region |R(z)| ≤ 1 is where the scheme is stable (Dahlquist 1963; Hairer & Wanner, *Solving
ODEs II*, §IV.2). Stability regions are computed from R, never typed in.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .._tree import State


@dataclass(frozen=True)
class StepResult:
    """What one step returns: the new state, field evaluations used, inner-solve failures."""

    state: State
    n_evals: int
    inner_failures: torch.Tensor | int = 0


class AbstractScheme:
    """Base class. Subclasses set ``order`` and implement ``R`` and ``step``."""

    order: int = 0
    #: True for schemes that work on (position, momentum) tuple states.
    partitioned: bool = False
    #: True for schemes that draw random numbers.
    stochastic: bool = False

    def R(self, z):
        """Linear stability function: the one-step amplification of x' = λx at z = ηλ.

        Accepts a Python/NumPy/torch complex or real number or array.
        """
        raise NotImplementedError

    def step(self, field, state: State, t: float, eta: float) -> StepResult:
        raise NotImplementedError

    def stability_limit(self, lam: float, n: int = 200_001, z_max: float = 50.0) -> float:
        """Largest η with |R(−η·lam)| ≤ 1 on the whole interval (0, η], for a real lam > 0.

        Found by scanning R along the negative real axis (the curvature directions of a quadratic
        loss), so it is computed from R, not assumed. Returns ``inf`` when no bound is found up to
        ``z_max``/lam (A-stable schemes).
        """
        import numpy as np

        if not lam > 0:
            raise ValueError(f"lam must be > 0, got {lam}")
        z = -np.linspace(0.0, z_max, n)[1:]
        amp = np.abs(np.asarray(self.R(z.astype(complex))))
        bad = np.nonzero(amp > 1.0 + 1e-12)[0]
        if bad.size == 0:
            return float("inf")
        return float(-z[bad[0] - 1] / lam) if bad[0] > 0 else 0.0

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
