"""ch08 controls (issue 17 §2): ch08.metric_and_stability — every branch of its decide function and one quick
run asserting the verdict, the control's outcome and the theorem check."""

from pathlib import Path

import pytest

from terrainlab.atlas import discover, run_one
from terrainlab.atlas.chapters.ch08.metric_and_stability import (
    SHARE_MIN,
    decide_metric_and_stability,
)

discover()


def test_decide_metric_and_stability_each_branch():
    assert decide_metric_and_stability(0.0, 0.0, 0.05, 0.01, 0.0, 1e-12) == "fails"
    assert decide_metric_and_stability(0.05, 0.01, 0.0, 0.0, 0.0, 1e-12) == "holds"
    assert decide_metric_and_stability(0.0, 0.0, SHARE_MIN, 0.01, 0.0, 1e-12) == "inconclusive"  # inside ±2 SE
    assert decide_metric_and_stability(0.0, 0.0, 0.05, 0.01, 0.02, 1e-12) == "inconclusive"  # control disagreed
    assert decide_metric_and_stability(0.0, 0.0, 0.05, 0.01, 0.0, 1e-3) == "inconclusive"  # theorem check off
    with pytest.raises(ValueError, match="numbers"):
        decide_metric_and_stability("a", 0.0, 0.05, 0.01, 0.0, 1e-12)


def test_metric_and_stability_quick(tmp_path):
    res, figs = run_one("ch08.metric_and_stability", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "fails" and res.corrected
    assert n["claim_kind"] == "theorem-check"
    assert n["bregman_wrong_share_mean"] - 2 * n["bregman_wrong_share_se"] > SHARE_MIN
    assert n["euclid_wrong_share_mean"] + 2 * n["euclid_wrong_share_se"] < SHARE_MIN
    assert n["control_disagree_share_max"] == 0.0 and n["control_euclid_wrong_share_mean"] == 0.0
    assert n["control_verdict"] != "fails"
    assert n["theorem_check_eig_simplex_vs_logit_rel_diff"] < 1e-8
    assert figs and all((Path(tmp_path) / f).exists() for f in figs)
