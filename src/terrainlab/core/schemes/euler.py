"""Explicit Euler: S_{t+1} = S_t + η·F(S_t, t). Order 1, R(z) = 1 + z.

Gradient descent is explicit Euler on the gradient flow; a ResNet block h + f(h) is explicit Euler
with η = 1 (E 2017, "A proposal on machine learning via dynamical systems").
"""

from __future__ import annotations

from .._tree import axpy
from .base import AbstractScheme, StepResult


class Euler(AbstractScheme):
    order = 1

    def R(self, z):
        return 1 + z

    def step(self, field, state, t, eta):
        return StepResult(axpy(eta, field(state, t), state), 1)
