"""Run this folder's tests with one torch thread.

Their tensors are small (2-D point clouds, toy models): a second intra-op thread only adds
synchronisation, and on a machine shared with other jobs that costs far more than the work (a DSM
training test: 45 s with two threads under load, a few seconds with one).
"""

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
