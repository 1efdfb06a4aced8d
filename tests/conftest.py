"""Test-suite settings shared by every folder.

Hypothesis: CI (``CI`` set in the environment, as ``.ci/run`` has it) uses the ``ci`` profile —
derandomized, so every run tries the same examples, and no deadline, since machines of this kind
differ several-fold in speed. Local runs keep the ``dev`` profile's random exploration; pick one
explicitly with ``HYPOTHESIS_PROFILE=ci|dev``.
"""

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

# terrainlab.plotting selects no matplotlib backend (no global state on import); a test that opens
# pyplot figures draws into files only, so the suite picks the non-interactive backend where it starts.
os.environ.setdefault("MPLBACKEND", "Agg")
