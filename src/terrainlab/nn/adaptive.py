"""Deprecated: adaptive stepping moved to the core.

Where things are now (``terrainlab.nn`` still re-exports the names):

- ``Dopri5``, ``Bosh3``, ``EmbeddedRK`` → :mod:`terrainlab.core.schemes` (one file each);
- ``PIController`` → :mod:`terrainlab.core.controllers` (it now carries ``rtol`` and ``atol``);
- the adaptive loop → :func:`terrainlab.core.integrate`, returning a :class:`terrainlab.core.Solution`;
- ``NeuralODE``, ``ODESolution`` → :mod:`terrainlab.nn.neural_ode`; the adjoint → :mod:`terrainlab.nn.adjoint`.

``odeint_adaptive`` and ``odeint_fixed`` stay for one release as thin aliases of ``integrate`` that
emit a ``DeprecationWarning``.
"""

from __future__ import annotations

import dataclasses
import warnings

from ..core.controllers import ConstantStepSize, PIController
from ..core.integrate import Solution, integrate
from ..core.schemes import Bosh3, Dopri5, EmbeddedRK
from .adjoint import ODEBackwardStats
from .neural_ode import NeuralODE, ODESolution

__all__ = [
    "odeint_adaptive",
    "odeint_fixed",
    "Dopri5",
    "Bosh3",
    "EmbeddedRK",
    "PIController",
    "NeuralODE",
    "ODESolution",
    "ODEBackwardStats",
]


def odeint_adaptive(f, y0, t0, t1, *, solver=None, rtol=1e-5, atol=1e-6, max_steps=10_000, first_step=None,
                    controller=None, n_norm=None) -> Solution:
    """Deprecated alias: ``integrate(f, y0, t0, t1, scheme=solver, controller=PIController(rtol, atol))``.

    A ``controller`` passed here keeps its gains and takes ``rtol`` / ``atol`` from the arguments,
    as before. Statuses are the core's: ``completed`` (was ``success``), ``stalled`` (was
    ``step_too_small``), ``max_steps``, ``diverged``, ``nonfinite``.
    """
    warnings.warn(
        "terrainlab.nn.odeint_adaptive is deprecated; use terrainlab.core.integrate(field, y0, t0, t1, "
        "scheme=Dopri5(), controller=PIController(rtol, atol))",
        DeprecationWarning,
        stacklevel=2,
    )
    ctrl = PIController(rtol, atol) if controller is None else dataclasses.replace(controller, rtol=rtol, atol=atol)
    return integrate(f, y0, t0, t1, scheme=solver, controller=ctrl, max_steps=max_steps,
                     first_step=first_step, n_norm=n_norm)


def odeint_fixed(f, y0, t0, t1, *, scheme, step_size, max_steps=10_000) -> Solution:
    """Deprecated alias: ``integrate(f, y0, t0, t1, scheme=scheme, controller=ConstantStepSize(step_size))``
    (a fixed grid run by ``rollout``)."""
    warnings.warn(
        "terrainlab.nn.odeint_fixed is deprecated; use terrainlab.core.integrate(field, y0, t0, t1, "
        "scheme=scheme, controller=ConstantStepSize(step_size)) or terrainlab.core.rollout",
        DeprecationWarning,
        stacklevel=2,
    )
    return integrate(f, y0, t0, t1, scheme=scheme, controller=ConstantStepSize(step_size), max_steps=max_steps)
