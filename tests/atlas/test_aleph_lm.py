"""aleph.hub_vs_softmax_lm: the decision rule branch by branch, and the quick run's verdict and control."""

import math

import pytest

from terrainlab.atlas import discover, run_one
from terrainlab.atlas.chapters.aleph.hub_vs_softmax_lm import (
    TOL,
    decide_hub_vs_softmax,
    decide_match,
)


@pytest.fixture(scope="module", autouse=True)
def _registry():
    discover()


def test_decide_match_branches():
    assert decide_match(0.01, 0.01) == "holds"  # [−0.01, 0.03] inside ±0.05
    assert decide_match(-0.02, 0.01) == "holds"
    assert decide_match(0.12, 0.02) == "fails"  # 0.08 > 0.05: worse by more than the tolerance
    assert decide_match(-0.12, 0.02) == "holds-with-correction"  # better by more than the tolerance
    assert decide_match(0.06, 0.01) == "inconclusive"  # straddles +0.05
    assert decide_match(0.03, 0.02) == "inconclusive"  # [−0.01, 0.07] straddles +0.05
    assert decide_match(-0.06, 0.01) == "inconclusive"
    assert decide_match(0.0, 0.1) == "inconclusive"  # too noisy to say
    assert decide_match(math.nan, 0.01) == "inconclusive" and decide_match(0.01, math.nan) == "inconclusive"
    assert decide_match(0.12, 0.02, tol=0.2) == "holds"
    for bad in (0.0, -0.1, math.nan, "0.05"):
        with pytest.raises(ValueError, match="tol"):
            decide_match(0.0, 0.01, tol=bad)


def test_decide_hub_vs_softmax_branches_and_control_gate():
    sep = (0.3, 0.05)  # the control: 0.3 ± 0.05 worse than softmax, reads "fails"
    assert decide_hub_vs_softmax(0.01, 0.01, *sep) == "holds"
    assert decide_hub_vs_softmax(0.12, 0.02, *sep) == "fails"
    assert decide_hub_vs_softmax(-0.12, 0.02, *sep) == "holds-with-correction"
    assert decide_hub_vs_softmax(0.06, 0.01, *sep) == "inconclusive"
    # the control does not separate (no attention ≈ softmax, or better): nothing can be concluded
    for control in ((0.01, 0.01), (0.06, 0.01), (-0.3, 0.05), (math.nan, 0.1)):
        for delta in ((0.01, 0.01), (0.12, 0.02), (-0.12, 0.02)):
            assert decide_hub_vs_softmax(*delta, *control) == "inconclusive"
    assert decide_hub_vs_softmax(0.12, 0.02, 0.5, 0.05, tol=0.2) == "holds"
    assert decide_hub_vs_softmax(0.12, 0.02, 0.5, 0.05, tol=0.2) != decide_hub_vs_softmax(0.12, 0.02, *sep)
    assert TOL == 0.05


def test_hub_vs_softmax_lm_quick(tmp_path):
    res, figs = run_one("aleph.hub_vs_softmax_lm", tmp_path, quick=True)
    n = res.numbers
    assert n["claim_kind"] == "empirical" and n["seeds"] == [0, 1, 2]
    # 40 steps are too few for the model to use its attention: the control (no attention) is not worse than
    # softmax by more than the tolerance, so the verdict is gated to inconclusive
    assert n["control_verdict"] != "fails" and n["control_gap_bpb"] < TOL
    assert res.verdict == "inconclusive" and res.corrected is None
    assert abs(n["param_ratio_hub_softmax"] - 1) < 0.01 and n["params_hub"] > n["control_params"]
    assert n["train_statuses"] == ["completed"]
    for k in ("bpb_hub", "bpb_softmax", "control_bpb"):
        assert 3.0 < n[k] < 8.0  # trained (uniform is 8) but far from converged
    assert math.isclose(n["delta_bpb"], n["bpb_hub"] - n["bpb_softmax"], abs_tol=1e-12)
    assert n["ms_per_step_hub"] > 0 and n["ms_per_step_softmax"] > 0
    assert any(f.endswith(".png") for f in figs) and any(f.endswith(".svg") for f in figs)
