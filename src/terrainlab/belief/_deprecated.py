"""Old public names kept for one release: each warns (``DeprecationWarning``) and calls the new one."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable


def deprecated_alias(new: Callable, old_name: str, why: str = "") -> Callable:
    """A wrapper named ``old_name`` that warns once per call site and forwards to ``new``."""
    message = f"terrainlab.belief.{old_name} is deprecated; use {new.__name__}" + (f" ({why})" if why else "")

    @functools.wraps(new)
    def alias(*args, **kwargs):
        warnings.warn(message, DeprecationWarning, stacklevel=2)
        return new(*args, **kwargs)

    alias.__name__ = alias.__qualname__ = old_name
    alias.__doc__ = f"Deprecated: {message}."
    return alias
