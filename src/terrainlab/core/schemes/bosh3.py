"""Bogacki–Shampine 3(2): 4 stages, FSAL, so 3 field evaluations per accepted step.

The order-3 solution propagates and the embedded order-2 one estimates the error (Bogacki &
Shampine, "A 3(2) pair of Runge–Kutta formulas", Appl. Math. Lett. 2, 1989; MATLAB's ``ode23``).
Cheaper than :class:`Dopri5` per step; better at loose tolerances.
"""

from __future__ import annotations

from .embedded_rk import EmbeddedRK


class Bosh3(EmbeddedRK):
    order = 3
    error_order = 2
    c = (0.0, 1 / 2, 3 / 4, 1.0)
    A = ((1 / 2,), (0.0, 3 / 4), (2 / 9, 1 / 3, 4 / 9))
    b = (2 / 9, 1 / 3, 4 / 9, 0.0)
    b_hat = (7 / 24, 1 / 4, 1 / 3, 1 / 8)
