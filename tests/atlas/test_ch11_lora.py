"""ch11 LoRA experiments: the decision rules branch by branch, and each experiment's quick verdict and control."""

import math

import pytest

from terrainlab.atlas import discover, run_one
from terrainlab.atlas.chapters._lora_digits import shift_right, task_inputs
from terrainlab.atlas.chapters.ch11.full_finetune_delta_is_low_rank import decide_delta_low_rank
from terrainlab.atlas.chapters.ch11.lora_rank_sweep import decide_lora_rank_sweep


@pytest.fixture(scope="module", autouse=True)
def _registry():
    discover()


def test_decide_lora_rank_sweep_branches():
    ctrl = (0.2, 0.01)
    assert decide_lora_rank_sweep(0.0, 0.001, 0.0, 0.001, *ctrl) == "holds"
    assert decide_lora_rank_sweep(0.03, 0.002, 0.0, 0.001, *ctrl) == "holds-with-correction"
    assert decide_lora_rank_sweep(0.03, 0.002, 0.02, 0.001, *ctrl) == "fails"
    assert decide_lora_rank_sweep(0.03, 0.002, 0.004, 0.002, *ctrl) == "fails"  # r = 16 not shown below tol
    assert decide_lora_rank_sweep(0.006, 0.002, 0.0, 0.001, *ctrl) == "inconclusive"  # tol inside
    assert decide_lora_rank_sweep(0.03, 0.002, 0.0, 0.001, 0.004, 0.001) == "inconclusive"  # control blind
    assert decide_lora_rank_sweep(0.03, 0.002, 0.0, 0.001, 0.2, math.nan) == "inconclusive"
    with pytest.raises(ValueError, match="tol"):
        decide_lora_rank_sweep(0.0, 0.001, 0.0, 0.001, *ctrl, tol=0.0)
    with pytest.raises(ValueError, match="gap_se"):
        decide_lora_rank_sweep(0.0, -1.0, 0.0, 0.001, *ctrl)


def test_decide_delta_low_rank_branches():
    ctrl = (0.4, 0.01)
    assert decide_delta_low_rank(0.9, 0.01, 0.3, 0.01, *ctrl) == "holds"
    assert decide_delta_low_rank(0.9, 0.01, 0.7, 0.01, *ctrl) == "holds-with-correction"
    assert decide_delta_low_rank(0.5, 0.01, 0.3, 0.01, *ctrl) == "fails"
    assert decide_delta_low_rank(0.81, 0.01, 0.3, 0.01, *ctrl) == "inconclusive"  # 0.8 inside
    assert decide_delta_low_rank(0.9, 0.01, 0.3, 0.01, 0.85, 0.01) == "inconclusive"  # control reads low-rank
    with pytest.raises(ValueError, match="energy_min"):
        decide_delta_low_rank(0.9, 0.01, 0.3, 0.01, *ctrl, energy_min=1.5)
    with pytest.raises(ValueError, match="rho_mean"):
        decide_delta_low_rank(0.9, 0.01, -0.3, 0.01, *ctrl)


def test_tasks():
    import torch

    x = torch.arange(128.0, dtype=torch.float64).reshape(2, 64)
    assert shift_right(x).reshape(2, 8, 8)[:, :, 0].abs().sum() == 0
    far = task_inputs("far", x, 0)
    assert sorted(far[0].tolist()) == x[0].tolist() and not torch.equal(far, x)
    with pytest.raises(ValueError, match="task"):
        task_inputs("middle", x, 0)


def test_lora_rank_sweep_quick(tmp_path):
    res, figs = run_one("ch11.lora_rank_sweep", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "fails" and res.corrected
    assert n["claim_kind"] == "empirical" and n["n_seeds"] == 3
    assert n["far_gap_r8_side_of_tol"] == "above"
    assert n["control_side_of_tol"] == "above" and n["control_verdict"] == "shortfall seen"
    assert n["far_gap_r1_mean"] > n["far_gap_r8_mean"] > n["far_gap_r16_mean"]
    assert n["far_forgetting_r8_mean"] > n["far_forgetting_full_mean"]
    assert any(f.endswith(".png") for f in figs)


def test_full_finetune_delta_is_low_rank_quick(tmp_path):
    res, figs = run_one("ch11.full_finetune_delta_is_low_rank", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "holds-with-correction" and res.corrected
    assert n["claim_kind"] == "empirical" and len(n["seeds"]) == 3
    assert n["energy_top8_mean"] > 0.8 > n["control_energy_top8_mean"]
    assert n["control_verdict"] == "fails" and n["control_side_of_min"] == "below"
    assert 0.5 < n["rho_mean"] < 0.9 and abs(n["control_rho_mean"] - 1) < 0.05
    assert any(f.endswith(".png") for f in figs)
