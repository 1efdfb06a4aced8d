"""Schedules as functions and as lr_scheduler objects, checked against PyTorch's own schedulers."""

from __future__ import annotations

import io

import pytest
import torch
from torch.optim import lr_scheduler as ls

from terrainlab.optim import (
    CosineLR,
    StepDecayLR,
    TriangularLR,
    WarmupCosineLR,
    cosine,
    cyclical_triangular,
    step_decay,
    warmup_cosine,
)

N = 150


def _opt(lr=0.1):
    return torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)


def _lrs(sched, n=N):
    out = []
    for _ in range(n):
        out.append(sched.optimizer.param_groups[0]["lr"])
        sched.optimizer.step()
        sched.step()
    return out


CASES = {
    "step": (
        lambda o: ls.StepLR(o, step_size=30, gamma=0.5),
        lambda o: StepDecayLR(o, gamma=0.5, step_size=30),
        lambda t: step_decay(t, lr0=0.1, gamma=0.5, step_size=30),
    ),
    "cosine": (
        lambda o: ls.CosineAnnealingLR(o, T_max=100, eta_min=0.001),
        lambda o: CosineLR(o, T=100, lr_min=0.001),
        lambda t: cosine(t, lr0=0.1, T=100, lr_min=0.001),
    ),
    "warmup_cosine": (
        lambda o: ls.SequentialLR(
            o, [ls.LinearLR(o, start_factor=0.01, total_iters=20), ls.CosineAnnealingLR(o, T_max=100)], milestones=[20]
        ),
        lambda o: WarmupCosineLR(o, warmup=20, T=120),
        lambda t: warmup_cosine(t, lr0=0.1, warmup=20, T=120),
    ),
    "triangular": (
        lambda o: ls.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=20, mode="triangular", cycle_momentum=False),
        lambda o: TriangularLR(o, lr_lo=0.01, lr_hi=0.1, step_size_up=20),
        lambda t: cyclical_triangular(t, lr_lo=0.01, lr_hi=0.1, step_size_up=20),
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_schedule_matches_pytorch(name):
    theirs, ours, fn = CASES[name]
    ref = _lrs(theirs(_opt()))
    got = _lrs(ours(_opt()))
    plain = [fn(t) for t in range(N)]
    assert max(abs(a - b) for a, b in zip(ref, got)) < 1e-12
    assert max(abs(a - b) for a, b in zip(ref, plain)) < 1e-12
    assert max(ref) - min(ref) > 0.05  # the schedule actually moves


def test_scheduler_state_dict_resumes():
    o1 = _opt()
    s1 = WarmupCosineLR(o1, warmup=20, T=120)
    _lrs(s1, 37)
    buf = io.BytesIO()
    torch.save(s1.state_dict(), buf)
    buf.seek(0)
    o2 = _opt()
    s2 = WarmupCosineLR(o2, warmup=20, T=120)
    s2.load_state_dict(torch.load(buf, weights_only=True))
    o2.param_groups[0]["lr"] = o1.param_groups[0]["lr"]
    assert _lrs(s1, 20) == _lrs(s2, 20)


def test_book_formulas():
    assert cosine(0, lr0=0.1, T=100) == pytest.approx(0.1)
    assert cosine(50, lr0=0.1, T=100) == pytest.approx(0.05)
    assert cosine(100, lr0=0.1, T=100) == pytest.approx(0.0)
    assert step_decay(59, lr0=1.0, gamma=0.5, step_size=30) == 0.5
    assert warmup_cosine(10, lr0=1.0, warmup=20, T=100, start_factor=0.0 + 1e-9) == pytest.approx(0.5)
    assert cyclical_triangular(20, lr_lo=0.0, lr_hi=1.0, step_size_up=20) == 1.0
    assert cyclical_triangular(40, lr_lo=0.0, lr_hi=1.0, step_size_up=20) == 0.0


def test_bad_schedule_arguments():
    with pytest.raises(ValueError, match="T must"):
        warmup_cosine(0, lr0=1.0, warmup=20, T=10)
    with pytest.raises(ValueError, match="t must"):
        cosine(-1, lr0=1.0, T=10)
    with pytest.raises(ValueError, match="gamma"):
        StepDecayLR(_opt(), gamma=2.0)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: step_decay(0, lr0=-0.1), "lr0"),
        (lambda: step_decay(0, lr0=float("nan")), "lr0"),
        (lambda: step_decay(0, lr0=0.1, step_size=0), "step_size"),
        (lambda: cosine(0, lr0=0.0, T=10), "lr0"),
        (lambda: cosine(0, lr0=0.1, T=10, lr_min=-1e-3), "lr_min"),
        (lambda: cosine(0, lr0=0.1, T=10, lr_min=0.2), "lr_min"),
        (lambda: cosine(0.5, lr0=0.1, T=10), "t"),
        (lambda: warmup_cosine(0, lr0=-1.0, warmup=2, T=10), "lr0"),
        (lambda: warmup_cosine(0, lr0=1.0, warmup=2, T=10, start_factor=0.0), "start_factor"),
        (lambda: warmup_cosine(0, lr0=1.0, warmup=2, T=10.0), "T"),
        (lambda: cyclical_triangular(0, lr_lo=-0.1, lr_hi=1.0), "lr_lo"),
        (lambda: cyclical_triangular(0, lr_lo=0.5, lr_hi=0.1), "lr_hi"),
        (lambda: StepDecayLR(_opt(), step_size=True), "step_size"),
    ],
)
def test_every_schedule_argument_is_checked_and_named(call, name):
    with pytest.raises(ValueError, match=rf"^{name} must"):
        call()
