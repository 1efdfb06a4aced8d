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

    def stability_limit(self, lam: float, n: int = 20_001, z_max: float = 50.0) -> float:
        """Largest η with |R(−η·lam)| ≤ 1 on the whole interval (0, η], for a real curvature lam > 0.

        Scans |R| on ``n`` points of the negative real axis (the curvature directions of a
        quadratic loss) down to −``z_max``, then bisects the first crossing of |R| = 1 to machine
        precision — so the limit is computed from R, not assumed, and every scheme (core's and the
        optimizers of :mod:`terrainlab.optim`) gets it the same way. Returns ``inf`` when |R| ≤ 1 up
        to ``z_max``/lam (A-stable schemes), 0.0 when even the smallest step is unstable.

        Example:
            >>> from terrainlab.core import Euler
            >>> round(Euler().stability_limit(4.0), 9)   # R(z) = 1 + z: η < 2/λ
            0.5
        """
        import numpy as np

        from ..validate import check_int, check_positive

        check_positive(lam, "lam")
        check_int(n, "n", minimum=2)
        check_positive(z_max, "z_max")

        def unstable(z: np.ndarray) -> np.ndarray:
            return np.abs(np.asarray(self.R(z.astype(complex)))) > 1.0 + 1e-12

        z = -np.linspace(0.0, z_max, n)[1:]
        bad = np.nonzero(unstable(z))[0]
        if bad.size == 0:
            return float("inf")
        if bad[0] == 0:
            return 0.0
        lo, hi = -z[bad[0] - 1], -z[bad[0]]  # |R(−lo)| ≤ 1 < |R(−hi)|
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            if unstable(np.array([-mid]))[0]:
                hi = mid
            else:
                lo = mid
        return float(lo / lam)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
