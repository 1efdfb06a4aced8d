"""Integration schemes, one small file each. See :class:`AbstractScheme` for the contract."""

from .base import AbstractScheme, StepResult
from .bosh3 import Bosh3
from .dopri5 import Dopri5
from .embedded_rk import EmbeddedRK, EmbeddedStep
from .euler import Euler
from .euler_maruyama import EulerMaruyama
from .heun import Heun
from .implicit_euler import ImplicitEuler
from .midpoint import Midpoint
from .rk4 import RK4
from .symplectic import Leapfrog, SymplecticEuler

__all__ = [
    "AbstractScheme",
    "StepResult",
    "Euler",
    "ImplicitEuler",
    "Heun",
    "Midpoint",
    "RK4",
    "SymplecticEuler",
    "Leapfrog",
    "EulerMaruyama",
    "EmbeddedRK",
    "EmbeddedStep",
    "Dopri5",
    "Bosh3",
]
