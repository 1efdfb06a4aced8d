"""Heun's method (explicit trapezoid), order 2, R(z) = 1 + z + z²/2.

k1 = F(S, t), k2 = F(S + ηk1, t + η), S' = S + η(k1 + k2)/2 (Heun 1900).
"""

from __future__ import annotations

from .._tree import axpy, combine
from .base import AbstractScheme, StepResult


class Heun(AbstractScheme):
    order = 2

    def R(self, z):
        return 1 + z + z**2 / 2

    def step(self, field, state, t, eta):
        k1 = field(state, t)
        k2 = field(axpy(eta, k1, state), t + eta)
        return StepResult(combine(state, [(eta / 2, k1), (eta / 2, k2)]), 2)
