"""Stop rules and rollout on bad or edge-case input: clear errors naming the argument, or a status."""

import pytest
import torch

from terrainlab.core import (
    CycleDetect,
    DivergenceBound,
    KLFreeze,
    StepTolerance,
    detect_cycle,
    rollout,
)


@pytest.mark.parametrize("make", [
    lambda ce: StepTolerance(1e-6, check_every=ce),
    lambda ce: DivergenceBound(1e6, check_every=ce),
    lambda ce: KLFreeze(1e-6, check_every=ce),
    lambda ce: CycleDetect(check_every=ce),
])
@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_check_every_must_be_a_positive_int(make, bad):
    with pytest.raises(ValueError, match="check_every"):
        make(bad)


def test_check_every_spaces_the_checks():
    tr = rollout(lambda x, t: -x, torch.ones(2), eta=0.5, steps=100, stop=StepTolerance(1e-3, check_every=7))
    assert tr.status == "converged" and tr.n_steps % 7 == 0


@pytest.mark.parametrize("kw,name", [({"tol": -1.0}, "tol"), ({"tol": float("nan")}, "tol"),
                                     ({"move_tol": -1.0}, "move_tol"), ({"max_period": 1}, "max_period")])
def test_cycle_detect_rejects_bad_tolerances(kw, name):
    with pytest.raises(ValueError, match=name):
        CycleDetect(**kw)


def test_cycle_detect_tol_zero_is_an_exact_return():
    tr = rollout(lambda x, t: -2 * x, torch.tensor([1.0]), eta=1.0, steps=50, stop=CycleDetect(max_period=4, tol=0.0))
    assert tr.status == "cycle"


@pytest.mark.parametrize("rule", [StepTolerance(1e-6), KLFreeze(1e-6)])
def test_empty_batch_converges_vacuously(rule):
    s0 = torch.empty(0, 3)
    tr = rollout(lambda x, t: -x, s0, eta=0.1, steps=10, stop=rule)
    assert tr.status == "converged" and tr.n_steps == 1 and tr.final.shape == (0, 3)


def test_empty_batch_other_rules_run_to_max_steps():
    tr = rollout(lambda x, t: -x, torch.empty(0, 2), eta=0.1, steps=5, stop=[DivergenceBound(1.0), CycleDetect()])
    assert tr.status == "max_steps" and tr.n_steps == 5
    assert rollout(lambda x, t: -x, torch.empty(0, 2), eta=0.1, steps=5).status == "max_steps"


def test_field_dtype_must_match_the_state():
    f64 = torch.ones(2, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"dtype of s0 \(torch.float32\).*float64"):
        rollout(lambda x, t: -x.double(), torch.ones(3, 2), eta=0.1, steps=3)
    with pytest.raises(ValueError, match="dtype"):
        rollout(lambda x, t: -x * f64, torch.ones(2), eta=0.1, steps=3)
    # same dtype: fine, and the state stays float32
    assert rollout(lambda x, t: -x, torch.ones(2), eta=0.1, steps=3).final.dtype == torch.float32


def test_core_detect_cycle():
    assert detect_cycle([5, 1, 2, 3, 1, 2, 3, 1, 2, 3]).period == 3
    with pytest.raises(ValueError, match="tol"):
        detect_cycle([1, 2], tol=-1.0)


def test_returns_rows_flags_cycles_not_slow_convergence():
    from terrainlab.core.cycles import returns_rows

    T = 9
    k = torch.arange(T, dtype=torch.float64)
    period2 = ((-1.0) ** k)[:, None]                 # ±1: returns exactly after 2 steps
    slow = (1.0 + 1e-12 * 0.5 ** k)[:, None]          # creeping to 1: "returns" within tol, barely moving
    states = torch.stack([period2, slow], dim=1)      # (T, 2, 1)
    assert returns_rows(states, 4, 1e-9).tolist() == [True, True]
    assert returns_rows(states, 4, 1e-9, move_ratio=1e-3).tolist() == [True, False]
    with pytest.raises(ValueError, match="states"):
        returns_rows(torch.zeros(3, 2), 4, 1e-9)
