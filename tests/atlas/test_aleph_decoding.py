"""aleph.decoding_is_a_state_iteration: the decision rule in every branch, its helpers, and a quick run whose
verdict and controls are asserted."""

import math

import numpy as np
import pytest
import torch

from terrainlab.atlas import discover, run_one
from terrainlab.atlas.chapters.aleph.decoding_is_a_state_iteration import (
    decide_decoding,
    loglog_slope,
    rel_state_error,
)

# a passing measurement: exact equivalence, constant memory, flat time, converging; controls the other way
GOOD = dict(step_vs_chunked_err=1e-15, hub_mem_ratio=1.0, hub_slope_mean=0.0, hub_slope_se=0.01,
            conv_slope_mean=-0.5, conv_slope_se=0.02, control_kv_ratio=64.0, control_kv_expected=64.0,
            control_slope_mean=0.8, control_slope_se=0.05, control_turning_slope_mean=0.0,
            control_turning_slope_se=0.02)


def _d(**kw):
    return decide_decoding(**{**GOOD, **kw})


def test_decide_decoding_holds():
    assert _d() == "holds"


@pytest.mark.parametrize("kw", [
    {"step_vs_chunked_err": 1e-6},          # step is not the chunked function
    {"step_vs_chunked_err": math.nan},
    {"hub_mem_ratio": 2.0},                 # the state grew
    {"hub_slope_mean": 0.6},                # time per token grows
    {"conv_slope_mean": 0.1},               # the normalised state does not approach its limit
])
def test_decide_decoding_fails(kw):
    assert _d(**kw) == "fails"


@pytest.mark.parametrize("kw", [
    {"hub_slope_mean": 0.18, "hub_slope_se": 0.05},       # threshold 0.2 inside mean ± 2 SE
    {"conv_slope_mean": -0.3, "conv_slope_se": 0.05},     # threshold −0.25 inside mean ± 2 SE
    {"hub_slope_se": math.nan},
])
def test_decide_decoding_inconclusive_on_the_interval(kw):
    assert _d(**kw) == "inconclusive"


@pytest.mark.parametrize("kw", [
    {"control_kv_ratio": 1.0},                                  # the KV cache did not grow
    {"control_slope_mean": 0.1},                                # softmax time per token flat too
    {"control_slope_mean": 0.25, "control_slope_se": 0.05},     # softmax slope not clearly above 0.2
    {"control_turning_slope_mean": -0.5},                       # the turning source converged too
])
def test_decide_decoding_inconclusive_when_a_control_does_not_read_the_other_way(kw):
    assert _d(**kw) == "inconclusive"
    assert _d(hub_mem_ratio=2.0, **kw) == "inconclusive"      # even a broken claim cannot be read then


def test_decide_decoding_rejects_bad_input():
    with pytest.raises(ValueError, match="hub_mem_ratio"):
        _d(hub_mem_ratio="1")
    with pytest.raises(ValueError, match="eq_tol"):
        _d(eq_tol=0.0)
    with pytest.raises(ValueError, match="control_kv_expected"):
        _d(control_kv_expected=1.0)


def test_loglog_slope_and_rel_state_error():
    t = np.array([16, 64, 256, 1024])
    assert loglog_slope(t, 3.0 * t ** -0.5) == pytest.approx(-0.5, abs=1e-12)
    assert loglog_slope(t, np.ones(4)) == pytest.approx(0.0, abs=1e-12)
    assert math.isnan(loglog_slope([1, 2], [0.0, -1.0]))
    with pytest.raises(ValueError, match="t and y"):
        loglog_slope([1, 2, 3], [1, 2])
    L = torch.ones(2, 3, 4, dtype=torch.float64)
    w = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]], dtype=torch.float64)
    noisy = L.clone()
    noisy[:, 1:] += 100.0                                      # rows without mass do not count
    assert rel_state_error(noisy, L, w) == pytest.approx(0.0, abs=1e-15)
    assert rel_state_error(1.5 * L, L, w) == pytest.approx(0.5, abs=1e-15)


@pytest.fixture(scope="module", autouse=True)
def _discover():
    discover()


def test_decoding_quick(tmp_path):
    res, figs = run_one("aleph.decoding_is_a_state_iteration", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "holds"
    assert n["claim_kind"] == "empirical"
    assert n["hub_memory_ratio"] == 1.0 and len(set(n["hub_state_bytes"])) == 1
    assert n["hub_state_tokens_held"] == n["context_lengths"]
    assert n["step_vs_chunked_max_rel_err"] < 1e-12
    assert n["hub_time_slope"] + 2 * n["hub_time_slope_se"] < 0.2
    assert n["stationary_convergence_slope"] + 2 * n["stationary_convergence_slope_se"] < -0.25
    assert -1.2 < n["increment_slope"] < -0.8                 # ∝ 1/t
    # the controls read the other way
    assert n["control_kv_memory_ratio"] == n["control_kv_memory_ratio_expected"] == 16.0
    assert n["control_kv_tokens_held"] == n["context_lengths"]
    assert n["control_softmax_time_slope"] - 2 * n["control_softmax_time_slope_se"] > 0.2
    assert n["control_verdict"] == "fails"
    assert n["control_turning_converges"] is False
    assert n["control_turning_convergence_slope"] - 2 * n["control_turning_convergence_slope_se"] > -0.25
    assert len(figs) == 2 and all((tmp_path / f).stat().st_size > 1000 for f in figs)


def test_measurements_reject_bad_input():
    from terrainlab.atlas.chapters.aleph.decoding_is_a_state_iteration import (
        measure_memory_and_time,
        measure_trajectory,
    )

    with pytest.raises(ValueError, match="ts"):
        measure_memory_and_time(0, [], 3, 3)
    with pytest.raises(ValueError, match="window"):
        measure_memory_and_time(0, [8, 16], 0, 3)
    with pytest.raises(ValueError, match="checkpoints"):
        measure_trajectory(0, [1], 16, [32])
    with pytest.raises(ValueError, match="source_seeds"):
        measure_trajectory(0, [], 16, [8])
    with pytest.raises(ValueError, match="mass"):
        rel_state_error(torch.ones(1, 2, 3), torch.ones(1, 2, 3), torch.ones(2))
