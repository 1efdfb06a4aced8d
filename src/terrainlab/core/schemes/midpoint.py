"""Explicit midpoint rule, order 2, R(z) = 1 + z + z²/2.

S' = S + η·F(S + (η/2)·F(S, t), t + η/2) (Runge 1895).
"""

from __future__ import annotations

from .._tree import axpy
from .base import AbstractScheme, StepResult


class Midpoint(AbstractScheme):
    order = 2

    def R(self, z):
        return 1 + z + z**2 / 2

    def step(self, field, state, t, eta):
        k1 = field(state, t)
        k2 = field(axpy(eta / 2, k1, state), t + eta / 2)
        return StepResult(axpy(eta, k2, state), 2)
