"""aleph.bf16_needs_no_special_rotary: the decision rule in every branch, its helpers, and a quick run whose
verdict and control outcomes are asserted."""

import math

import numpy as np
import pytest

from terrainlab.atlas import discover, run_one
from terrainlab.atlas.chapters.aleph.bf16_needs_no_special_rotary import (
    ERR_MAX,
    decide_bf16,
    loglog_slope,
    measure_seed,
    octave_errors,
)

# disciplined: flat, at rounding level; control: grows and overflows
GOOD = dict(err_mean=0.005, err_se=0.0002, slope_mean=0.0, slope_se=0.005, control_err_mean=0.5,
            control_err_se=0.02, control_slope_mean=1.4, control_slope_se=0.07, control_nonfinite_fraction=1.0)


def _d(**kw):
    return decide_bf16(**{**GOOD, **kw})


def test_decide_bf16_fails_the_claim_when_stable_without_rotary():
    assert _d() == "fails"
    # any one sign of degradation in the control is enough for it to read the other way
    assert _d(control_err_mean=0.005, control_err_se=0.0, control_slope_mean=0.0, control_slope_se=0.0) == "fails"
    assert _d(control_nonfinite_fraction=0.0, control_slope_mean=0.0, control_slope_se=0.0) == "fails"
    assert _d(control_nonfinite_fraction=0.0, control_err_mean=0.005, control_err_se=0.0) == "fails"


@pytest.mark.parametrize("kw", [
    {"err_mean": 0.05},                          # the disciplined hub's error is far above 2 ε
    {"slope_mean": 0.5},                         # it grows with position
    {"err_mean": 0.015, "err_se": 0.001},        # ERR_MAX = 0.0156 inside mean ± 2 SE
    {"slope_mean": 0.09, "slope_se": 0.01},      # SLOPE_MAX = 0.1 inside mean ± 2 SE
    {"slope_mean": math.nan},                    # an overflowed disciplined path has no slope
])
def test_decide_bf16_inconclusive_when_the_disciplined_hub_is_not_clearly_stable(kw):
    assert _d(**kw) == "inconclusive"


def test_decide_bf16_inconclusive_when_the_control_does_not_degrade():
    calm = dict(control_err_mean=0.008, control_err_se=0.0003, control_slope_mean=-0.02, control_slope_se=0.004,
                control_nonfinite_fraction=0.0)
    assert _d(**calm) == "inconclusive"
    assert _d(control_err_mean=0.015, control_err_se=0.001, control_slope_mean=0.0, control_slope_se=0.0,
              control_nonfinite_fraction=0.0) == "inconclusive"   # control's error not clearly above


def test_decide_bf16_rejects_bad_input():
    with pytest.raises(ValueError, match="err_mean"):
        _d(err_mean="0.005")
    with pytest.raises(ValueError, match="err_max"):
        _d(err_max=0.0)
    with pytest.raises(ValueError, match="control_nonfinite_fraction"):
        _d(control_nonfinite_fraction=1.5)
    with pytest.raises(ValueError, match="T_rec"):
        measure_seed(0, 64, 128, 32)
    with pytest.raises(ValueError, match="err"):
        octave_errors(np.float64(1.0))
    with pytest.raises(ValueError, match="t and y"):
        loglog_slope([1.0], [1.0])


def test_octave_errors_and_slope():
    err = np.arange(1, 255, dtype=float)                       # err at position t is t, t = 1 … 254
    starts, means = octave_errors(err, j_min=2)
    assert starts == [4, 8, 16, 32, 64]                        # [128, 256) is incomplete: t stops at 254
    assert octave_errors(np.arange(1, 256, dtype=float), j_min=2)[0][-1] == 128
    assert means[0] == pytest.approx(np.mean([4, 5, 6, 7]))
    assert loglog_slope(starts, means) == pytest.approx(1.0, abs=0.05)  # octave mean ≈ 1.5·start − 0.5
    assert math.isnan(loglog_slope([1, 2], [1.0, math.nan]))
    assert ERR_MAX == pytest.approx(2 * 2 ** -7)


@pytest.fixture(scope="module", autouse=True)
def _discover():
    discover()


def test_bf16_quick(tmp_path):
    res, figs = run_one("aleph.bf16_needs_no_special_rotary", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "fails" and res.corrected and "rotary" in res.corrected
    assert n["claim_kind"] == "empirical" and n["compute_dtype"] == "torch.bfloat16"
    assert n["oracle_chunked_vs_naive_max_rel_err"] < 1e-10
    # disciplined, no rotary: at bf16 rounding level, not growing
    assert n["disciplined_err_last_octave"] + 2 * n["disciplined_err_last_octave_se"] < n["err_max"]
    assert n["disciplined_slope"] + 2 * n["disciplined_slope_se"] < 0.1
    assert n["recurrent_on_state_dtype"] == "torch.float32"
    assert n["small_tau_on_nonfinite_fraction"] == 0.0
    # the control reads the other way: the bf16 state stagnates, the raw exp overflows at small τ
    c = n["control_recurrent_off"]
    assert n["control_recurrent_off_state_dtype"] == "torch.bfloat16"
    assert c["err_last_octave"] > n["err_max"] and c["slope"] - 2 * c["slope_se"] > 0.1
    assert n["control_small_tau_off_nonfinite_fraction"] > 0.9
    assert n["control_degrades"] is True
    # honest finding: the undisciplined *scan* does not degrade (torch accumulates bf16 sums in fp32)
    assert n["control_scan_off"]["err_last_octave"] < n["err_max"]
    assert n["bf16_sum_of_4096_ones"] == {"cumsum": 4096.0, "matmul": 4096.0, "sequential": 256.0}
    assert len(figs) == 2 and all((tmp_path / f).stat().st_size > 1000 for f in figs)


def test_measure_recurrent_needs_measure_seed_results():
    from terrainlab.atlas.chapters.aleph.bf16_needs_no_special_rotary import measure_recurrent

    with pytest.raises(ValueError, match="runs"):
        measure_recurrent([])
    with pytest.raises(ValueError, match="runs"):
        measure_recurrent([{"scan_on": np.ones(3)}])


def test_bf16_accumulation_probe():
    from terrainlab.atlas.chapters.aleph.bf16_needs_no_special_rotary import bf16_accumulation_probe

    assert bf16_accumulation_probe(300) == {"cumsum": 300.0, "matmul": 300.0, "sequential": 256.0}
    with pytest.raises(ValueError, match="n"):
        bf16_accumulation_probe(0)
