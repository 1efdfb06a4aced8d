"""Imported once by the forkserver so every experiment process starts warm.

The first ``torch.func`` transform in a process imports ``torch._dynamo`` (about a second of CPU in
torch 2.13); doing it here, before the fork, saves that second in every experiment. The fork server
is the atlas's own process, so it is also where the matplotlib backend is chosen (Agg: workers only
write files) — :mod:`terrainlab.plotting` itself changes no global state.
"""

import matplotlib

matplotlib.use("Agg")

import matplotlib.backends.backend_agg  # noqa: E402,F401 - PNG writer, loaded once before the fork
import matplotlib.backends.backend_svg  # noqa: E402,F401 - SVG writer
import torch  # noqa: E402
from torch.func import grad  # noqa: E402

import terrainlab.core  # noqa: E402,F401

grad(lambda x: (x**2).sum())(torch.ones(2))
