"""The schedules of the book's figure (ch04.lr_schedules' PANELS), as functions and as lr_scheduler
objects, step by step against PyTorch's own schedulers — a test of the library, moved out of the atlas."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as ls

from terrainlab.atlas.chapters.ch04.lr_schedules import (
    PANELS,
    START_FACTOR,
    T,
    library_schedule,
    library_scheduler,
)


def _pytorch_twin(p: dict, opt):
    k = p["kind"]
    if k == "step":
        return ls.StepLR(opt, step_size=p["step_size"], gamma=p["gamma"])
    if k == "cosine":
        return ls.CosineAnnealingLR(opt, T_max=p["T"])
    if k == "warmup_cosine":
        return ls.SequentialLR(opt, [ls.LinearLR(opt, start_factor=START_FACTOR, total_iters=p["warmup"]),
                                     ls.CosineAnnealingLR(opt, T_max=p["T"] - p["warmup"])],
                               milestones=[p["warmup"]])
    return ls.CyclicLR(opt, base_lr=p["lr_lo"], max_lr=p["lr_hi"], step_size_up=p["step_size_up"],
                       cycle_momentum=False)


def _trace(make, lr0):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr0)
    sched = make(opt)
    out = []
    for _ in range(T):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return np.array(out)


@pytest.mark.parametrize("name", list(PANELS))
def test_figure_schedules_match_pytorch(name):
    p = PANELS[name]
    lr0 = p.get("lr0", p.get("lr_hi"))
    theirs = _trace(lambda o: _pytorch_twin(p, o), lr0)
    ours = _trace(lambda o: library_scheduler(p, o), lr0)
    plain = np.array([library_schedule(p)(t) for t in range(T)])
    assert np.abs(theirs - ours).max() < 1e-12
    assert np.abs(theirs - plain).max() < 1e-12
    assert theirs.max() - theirs.min() > 0.05  # the schedule moves


def test_bad_panel_kind():
    with pytest.raises(ValueError, match="kind"):
        library_schedule({"kind": "constant"})
