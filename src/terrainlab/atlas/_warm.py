"""Imported once by the forkserver so every experiment process starts warm.

The first ``torch.func`` transform in a process imports ``torch._dynamo`` (about a second of CPU in
torch 2.13); doing it here, before the fork, saves that second in every experiment.
"""

import torch
from torch.func import grad

import terrainlab.core  # noqa: F401

grad(lambda x: (x**2).sum())(torch.ones(2))
