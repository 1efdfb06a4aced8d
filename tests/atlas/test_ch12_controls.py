"""Chapter 12 under issue 17 §2: the controls of forward_diffusion (a chain with the wrong noise scale),
manifold_attractor (eight separated clusters), pf_ode_is_not_ot (Gaussian data) and sampler_noise_scale
(the correct √(β(t)η) sampler) — each decision once per branch, and each control measured directly.
The quick runs of the experiments, with their verdicts and control outcomes, are in test_diffusion_ch12.py."""

from __future__ import annotations

import torch

from terrainlab.atlas.chapters.ch12 import forward_diffusion as fd
from terrainlab.atlas.chapters.ch12 import manifold_attractor as ma
from terrainlab.atlas.chapters.ch12._common import two_clusters
from terrainlab.core import EulerMaruyama, rollout
from terrainlab.diffusion import VPSchedule, forward_chain

NAN = float("nan")


def test_forward_diffusion_control_gate():
    assert fd.decide_with_control("holds", "fails") == "holds"
    assert fd.decide_with_control("fails", "fails") == "fails"
    assert fd.decide_with_control("holds", "holds") == "inconclusive"
    assert fd.decide_with_control("holds", "inconclusive") == "inconclusive"


def test_wrong_noise_chain_fails_the_moment_test_the_right_one_passes():
    sched = VPSchedule()
    g = torch.Generator().manual_seed(3)
    x0, _ = two_clusters().sample(1500, generator=g)
    checkpoints = [0, 100, 500, 1000]
    right = forward_chain(x0, sched, generator=g, record=50)
    _, z, dev = fd._moment_checks(right, x0, sched, checkpoints, g)
    assert fd.decide_forward_diffusion(z, dev) == "holds", (z, dev)
    wrong = fd._WrongNoiseChain(sched)
    tr = rollout(wrong, x0, eta=1.0, steps=sched.T, scheme=EulerMaruyama(wrong.diffusion, g), record=50)
    _, zc, devc = fd._moment_checks(tr, x0, sched, checkpoints, g)
    assert fd.decide_forward_diffusion(zc, devc) == "fails"
    assert zc > 10 and devc > 0.5        # the variance collapses: x_T ≈ 0, not N(0, I)


def test_manifold_attractor_control_gate():
    assert ma.decide_with_control("holds-with-correction", "holds") == "holds-with-correction"
    assert ma.decide_with_control("fails", "holds") == "fails"
    assert ma.decide_with_control("holds-with-correction", "holds-with-correction") == "inconclusive"
    assert ma.decide_with_control("holds-with-correction", "inconclusive") == "inconclusive"
    # the decision rule itself reads the control's numbers as point attractors
    assert ma.decide_manifold_attractor(-80.0, -80.0, 0.3) == "holds"
    assert ma.decide_manifold_attractor(NAN, -80.0, 0.3) == "inconclusive"
