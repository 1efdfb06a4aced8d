"""Dormand–Prince 5(4): 7 stages, FSAL, so 6 field evaluations per accepted step.

The order-5 solution propagates and the embedded order-4 one estimates the error (Dormand & Prince,
"A family of embedded Runge–Kutta formulae", J. Comput. Appl. Math. 6, 1980). Its real stability
interval reaches ηλ ≈ −3.31. The default pair of :func:`terrainlab.core.integrate`.
"""

from __future__ import annotations

from .embedded_rk import EmbeddedRK


class Dopri5(EmbeddedRK):
    order = 5
    error_order = 4
    c = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0)
    A = (
        (1 / 5,),
        (3 / 40, 9 / 40),
        (44 / 45, -56 / 15, 32 / 9),
        (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
        (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
        (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
    )
    b = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0)
    b_hat = (5179 / 57600, 0.0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40)
