"""Adapting nn.Modules and callables to the core field contract F(h, t).

The adapter lives in :mod:`terrainlab.core.fields` (one ``as_field`` for every world); this module
re-exports it for the ``nn`` files that import it from here.
"""

from __future__ import annotations

from ..core.fields import as_field, takes_time

__all__ = ["as_field", "takes_time"]
