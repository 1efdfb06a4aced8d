"""Classical fourth-order Runge–Kutta (Kutta 1901), R(z) = 1 + z + z²/2 + z³/6 + z⁴/24."""

from __future__ import annotations

from .._tree import axpy, combine
from .base import AbstractScheme, StepResult


class RK4(AbstractScheme):
    order = 4

    def R(self, z):
        return 1 + z + z**2 / 2 + z**3 / 6 + z**4 / 24

    def step(self, field, state, t, eta):
        k1 = field(state, t)
        k2 = field(axpy(eta / 2, k1, state), t + eta / 2)
        k3 = field(axpy(eta / 2, k2, state), t + eta / 2)
        k4 = field(axpy(eta, k3, state), t + eta)
        c = eta / 6
        return StepResult(combine(state, [(c, k1), (2 * c, k2), (2 * c, k3), (c, k4)]), 4)
