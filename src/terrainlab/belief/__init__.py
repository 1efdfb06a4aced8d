"""terrainlab.belief — beliefs on the simplex: Bregman/KL geometry, step bounds, reasoning fields."""
from .diagnostics import *  # noqa: F401,F403
from .divergences import *  # noqa: F401,F403
from .energy import *  # noqa: F401,F403
from .fields import *  # noqa: F401,F403
from .simplex import *  # noqa: F401,F403
