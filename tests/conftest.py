"""Test-suite settings shared by every folder.

One torch thread for the whole suite, as each `terrainlab atlas --jobs 2` worker has on two cores:
the tensors here are small, so a second intra-op thread only adds synchronisation — the same
time on an idle 2-core machine (measured), and on a loaded one far less (a DSM training test took
45 s with two threads under load, a few seconds with one).

Hypothesis: CI (``CI`` set in the environment, as ``.ci/run`` has it) uses the ``ci`` profile —
derandomized, so every run tries the same examples, and no deadline, since machines of this kind
differ several-fold in speed. Local runs keep the ``dev`` profile's random exploration; pick one
explicitly with ``HYPOTHESIS_PROFILE=ci|dev``.
"""

import os

import pytest
import torch
from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

# terrainlab.plotting selects no matplotlib backend (no global state on import); a test that opens
# pyplot figures draws into files only, so the suite picks the non-interactive backend where it starts.
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
