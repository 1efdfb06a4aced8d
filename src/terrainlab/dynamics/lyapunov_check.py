"""Deprecated module name: the Lyapunov-*function* checks live in
:mod:`terrainlab.dynamics.lyapunov_function` (``lyapunov.py`` holds Lyapunov *exponents*).

Importing this module warns; ``from terrainlab.dynamics import lyapunov_check`` (the function) does
not. Kept for one release.
"""

from __future__ import annotations

import warnings

from .lyapunov_function import LyapunovCheck, lyapunov_check

warnings.warn(
    "terrainlab.dynamics.lyapunov_check is deprecated; import from terrainlab.dynamics.lyapunov_function "
    "(or terrainlab.dynamics)",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = ["LyapunovCheck", "lyapunov_check"]
