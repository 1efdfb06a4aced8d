"""The one status vocabulary of terrainlab.

Every result that can end in more than one way — a :class:`~terrainlab.core.Trajectory`, a
fixed-point or root solve, an adaptive ODE solve, an eigensolve, a continuation — reports one of
these values (diffrax keeps the same idea in its ``RESULTS`` enum). A status is *data*, never an
exception: divergence, NaN and running out of budget are outcomes a caller inspects.

==============  =================================================================================
``converged``   an iteration met its stated tolerance (a stop rule fired, a residual ≤ tol)
``completed``   a run with a fixed end reached it (an ODE solve reached t1, a fixed-step run ended)
``max_steps``   the step / iteration / product budget ran out before a tolerance was met
``diverged``    the state left a stated bound or its residual blew up
``nonfinite``   NaN or ±inf appeared in the state or in a quantity the run depends on
``cycle``       the state returned to an earlier one (a periodic orbit of a map)
``stalled``     the run could not make progress (a step size below its floor, a corrector that
                failed, an inner solve that broke down) while everything stayed finite
==============  =================================================================================

``Status`` is a ``str`` enum: ``Status.CONVERGED == "converged"`` and it prints, formats, repr's and
serialises to JSON as the bare word, so results read as they always have while the vocabulary is
closed (``Status("sucess")`` raises ``ValueError``).

Example:
    >>> Status.CONVERGED == "converged", f"{Status.CYCLE}", Status("max_steps") is Status.MAX_STEPS
    (True, 'cycle', True)
"""

from __future__ import annotations

from enum import Enum


class Status(str, Enum):
    CONVERGED = "converged"
    COMPLETED = "completed"
    MAX_STEPS = "max_steps"
    DIVERGED = "diverged"
    NONFINITE = "nonfinite"
    CYCLE = "cycle"
    STALLED = "stalled"

    # Read as the bare word everywhere (str(), f-strings, repr in tuples and doctests, JSON).
    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    def __repr__(self) -> str:
        return repr(self.value)

    @property
    def ok(self) -> bool:
        """True for the two good endings, ``converged`` and ``completed``."""
        return self in (Status.CONVERGED, Status.COMPLETED)


#: The values, in the order of the table above.
STATUSES = tuple(s.value for s in Status)
