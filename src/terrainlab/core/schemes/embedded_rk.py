"""Embedded explicit Runge–Kutta pairs: one set of stages, two solutions, an error estimate.

A pair is a Butcher tableau (c, A, b, b̂) with s stages

    k_i = F(y + h Σ_{j<i} a_ij k_j, t + c_i h),   y₁ = y + h Σ b_i k_i,   ŷ₁ = y + h Σ b̂_i k_i,

where y₁ has order p (``order``) and ŷ₁ order p − 1 (``error_order``); err = y₁ − ŷ₁ =
h Σ (b_i − b̂_i) k_i estimates the local error of the lower-order solution at no extra evaluation
(Hairer, Nørsett & Wanner, *Solving ODEs I*, §II.4). With "first same as last" (FSAL) the last stage
is F(y₁, t + h), the first stage of the next step, so an accepted step costs s − 1 evaluations.

A pair is an ordinary :class:`AbstractScheme`: ``step`` takes a fixed step with the order-p solution
(so ``rollout`` runs it on a fixed grid); :func:`terrainlab.core.integrate` uses ``step_with_error``
with a step-size controller.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from .base import AbstractScheme, StepResult


class EmbeddedStep(NamedTuple):
    """One step of a pair: the order-p solution, the error estimate (detached), the last stage
    (F(y₁, t + h) for an FSAL pair, to be reused), and the field evaluations it cost."""

    y1: torch.Tensor
    err: torch.Tensor
    k_last: torch.Tensor
    n_evals: int


class EmbeddedRK(AbstractScheme):
    """An explicit Runge–Kutta pair given by its tableau; subclasses set the class attributes.

    ``A`` holds the strictly lower rows 2…s (row i has i − 1 entries), ``c`` all s nodes, ``b`` and
    ``b_hat`` the two weight vectors. Single-tensor states only.
    """

    c: tuple = ()
    A: tuple = ()
    b: tuple = ()
    b_hat: tuple = ()
    error_order: int = 0
    fsal: bool = True

    @property
    def n_stages(self) -> int:
        return len(self.b)

    def R(self, z):
        """Stability function of the order-p solution: R(z) = 1 + z bᵀ(I − zA)⁻¹1."""
        z = np.asarray(z, dtype=complex)
        s = self.n_stages
        A = np.zeros((s, s))
        for i, row in enumerate(self.A):
            A[i + 1, : len(row)] = row
        b = np.asarray(self.b)
        out = np.empty(z.shape, dtype=complex)
        for idx, zi in np.ndenumerate(z):
            out[idx] = 1 + zi * b @ np.linalg.solve(np.eye(s) - zi * A, np.ones(s))
        return out if out.shape else complex(out)

    def step(self, field, state, t, eta):
        if isinstance(state, tuple):
            raise ValueError(f"{type(self).__name__} needs a single-tensor state")
        r = self.step_with_error(field, state, t, eta)
        return StepResult(r.y1, r.n_evals)

    def step_with_error(self, field, y, t, h, k1=None) -> EmbeddedStep:
        """One step of size h (negative: backwards in time); ``k1`` = F(y, t) when already known."""
        n = 0
        if k1 is None:
            k1 = field(y, t)
            n += 1
        ks = [k1]
        y1 = None
        for i, row in enumerate(self.A):
            acc = None
            for a, k in zip(row, ks):
                if a == 0:
                    continue
                acc = k * a if acc is None else acc.add_(k, alpha=a)  # in place on a fresh tensor
            yi = y if acc is None else torch.add(y, acc, alpha=h)
            if self.fsal and i == len(self.A) - 1:
                y1 = yi  # the last stage is evaluated at the solution (FSAL)
            ks.append(field(yi, t + self.c[i + 1] * h))
            n += 1
        if not self.fsal:
            acc = None
            for bi, k in zip(self.b, ks):
                if bi != 0:
                    acc = k * bi if acc is None else acc.add_(k, alpha=bi)
            y1 = torch.add(y, acc, alpha=h)
        with torch.no_grad():  # the estimate steers the step size; it is not part of the solution
            err = None
            for bi, bh, k in zip(self.b, self.b_hat, ks):
                e = bi - bh
                if e != 0:
                    kd = k.detach()
                    err = kd * e if err is None else err.add_(kd, alpha=e)
            err = err * h
        return EmbeddedStep(y1, err, ks[-1], n)
