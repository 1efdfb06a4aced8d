"""Deprecated location: the model ↔ flat-parameter code now lives in :mod:`terrainlab.params`.

``from terrainlab.curvature.params import ParamSpec`` keeps working for one release and warns;
import from :mod:`terrainlab.params` (or ``terrainlab.curvature.ParamSpec``) instead.
"""

from __future__ import annotations

import warnings

from terrainlab.params import (  # noqa: F401  (re-exported)
    MODES,
    FunctionalModel,
    ParamFilter,
    ParamSpec,
    batch_size,
    cast_batch,
    check_data,
    module_state,
    temporary_mode,
)

warnings.warn(
    "terrainlab.curvature.params moved to terrainlab.params; the old module path will be removed",
    DeprecationWarning,
    stacklevel=2,
)
