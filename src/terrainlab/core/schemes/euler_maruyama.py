"""Euler–Maruyama for dS = F(S, t) dt + g(S, t) dW (Maruyama 1955).

S' = S + η·F(S, t) + √η·g(S, t)·ξ with ξ ~ N(0, I). Strong order 1/2, weak order 1; its mean obeys
Euler's R(z) = 1 + z. ``diffusion`` is a number (additive noise g = σ) or a callable g(S, t) that
returns something broadcastable to the state. Pass a ``torch.Generator`` for reproducible paths.

Overdamped Langevin dynamics at temperature T is F = −∇E, g = √(2T).
"""

from __future__ import annotations

import math

import torch

from .base import AbstractScheme, StepResult


class EulerMaruyama(AbstractScheme):
    order = 1
    stochastic = True

    def __init__(self, diffusion=1.0, generator: torch.Generator | None = None):
        if not callable(diffusion):
            if not (isinstance(diffusion, (int, float)) and diffusion >= 0 and math.isfinite(diffusion)):
                raise ValueError(f"diffusion must be a number >= 0 or a callable, got {diffusion!r}")
        self.diffusion = diffusion
        self.generator = generator

    def R(self, z):
        return 1 + z

    def step(self, field, state, t, eta):
        drift = field(state, t)
        g = self.diffusion(state, t) if callable(self.diffusion) else self.diffusion
        gen_device = self.generator.device if self.generator is not None else state.device
        noise = torch.randn(state.shape, generator=self.generator, dtype=state.dtype, device=gen_device)
        noise = noise.to(state.device)
        return StepResult(state + eta * drift + math.sqrt(eta) * g * noise, 1)

    def __repr__(self) -> str:
        return f"EulerMaruyama(diffusion={self.diffusion!r})"
