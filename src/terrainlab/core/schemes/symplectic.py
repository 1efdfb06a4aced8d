"""Symplectic schemes for (position, momentum) states: symplectic Euler and leapfrog.

The state is a tuple ``(q, p)`` and the field returns ``(q', p')``. For a separable Hamiltonian
H = T(p) + V(q) these preserve the symplectic form, so the energy error stays bounded for
exponentially long times instead of drifting (Hairer, Lubich & Wanner, *Geometric Numerical
Integration*, 2006, ch. VI and IX).

Applied to the harmonic oscillator q' = p, p' = −ω²q they act linearly with an amplification
*matrix*; ``R(z)`` with z = iηω returns its spectral radius (1 inside the stability interval ηω < 2).
"""

from __future__ import annotations

import numpy as np

from .base import AbstractScheme, StepResult


def _check_pair(state):
    if not (isinstance(state, tuple) and len(state) == 2):
        raise ValueError("state must be a (position, momentum) tuple for a symplectic scheme")


class _Partitioned(AbstractScheme):
    partitioned = True

    def amplification_matrix(self, h: float) -> np.ndarray:
        """One-step matrix on (q, p) for q' = p, p' = −q with step h (ω = 1, h = ηω)."""
        raise NotImplementedError

    def R(self, z):
        z = np.asarray(z, dtype=complex)
        out = np.empty(z.shape, dtype=float)
        for idx, zi in np.ndenumerate(z):
            M = self.amplification_matrix(abs(zi))
            out[idx] = np.abs(np.linalg.eigvals(M)).max()
        return out if out.shape else float(out)


class SymplecticEuler(_Partitioned):
    """p' = p + η·F_p(q, p);  q' = q + η·F_q(q, p'). Order 1, symplectic."""

    order = 1

    def amplification_matrix(self, h):
        return np.array([[1 - h * h, h], [-h, 1.0]])

    def step(self, field, state, t, eta):
        _check_pair(state)
        q, p = state
        _, dp = field((q, p), t)
        p1 = p + eta * dp
        dq, _ = field((q, p1), t)
        return StepResult((q + eta * dq, p1), 2)


class Leapfrog(_Partitioned):
    """Störmer–Verlet / leapfrog (velocity form). Order 2, symplectic, time-reversible.

    p_{1/2} = p + (η/2)·F_p(q, p);  q' = q + η·F_q(q, p_{1/2});  p' = p_{1/2} + (η/2)·F_p(q', p_{1/2}).
    """

    order = 2

    def amplification_matrix(self, h):
        kick = np.array([[1.0, 0.0], [-h / 2, 1.0]])
        drift = np.array([[1.0, h], [0.0, 1.0]])
        return kick @ drift @ kick

    def step(self, field, state, t, eta):
        _check_pair(state)
        q, p = state
        _, dp = field((q, p), t)
        ph = p + (eta / 2) * dp
        dq, _ = field((q, ph), t + eta / 2)
        q1 = q + eta * dq
        _, dp1 = field((q1, ph), t + eta)
        return StepResult((q1, ph + (eta / 2) * dp1), 3)
