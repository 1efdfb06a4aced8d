"""ch08 controls, part b (issue 17 §2): ch08.def1_is_zero, ch08.label_flip_calibrated_mixture and the retrofitted
ch08.reward_creates_minima, ch08.verifier_threshold, ch08.wrong_attractors — every branch of each decide
function and one quick run per experiment asserting its verdict and its control's outcome."""

from pathlib import Path

import pytest

from terrainlab.atlas import discover, run_one
from terrainlab.atlas.chapters.ch08.def1_is_zero import NONZERO_MIN, ZERO_TOL, decide_def1_is_zero

discover()


def _figs_exist(tmp_path, figs):
    assert figs and all((Path(tmp_path) / f).exists() for f in figs)


# --- ch08.def1_is_zero

def test_decide_def1_is_zero_each_branch():
    assert decide_def1_is_zero(1e-15, 0.3, 3) == "fails"
    assert decide_def1_is_zero(0.5, 0.3, 3) == "holds"
    assert decide_def1_is_zero(1e-6, 0.3, 3) == "inconclusive"  # neither zero nor a field
    assert decide_def1_is_zero(1e-15, NONZERO_MIN / 2, 3) == "inconclusive"  # the control is not a field
    assert decide_def1_is_zero(1e-15, 0.3, 0) == "inconclusive"  # the control has no attractor
    assert decide_def1_is_zero(ZERO_TOL, 0.3, 1) == "fails"  # boundary: ≤ tol
    with pytest.raises(ValueError, match="literal_rel_max"):
        decide_def1_is_zero(float("nan"), 0.3, 3)
    with pytest.raises(ValueError, match="control_n_attractors"):
        decide_def1_is_zero(0.0, 0.3, -1)


def test_def1_is_zero_quick(tmp_path):
    res, figs = run_one("ch08.def1_is_zero", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "fails" and res.corrected
    assert n["claim_kind"] == "theorem-check"
    assert n["literal_rel_max"] < ZERO_TOL
    assert set(n["literal_kinds_at_control_attractors"]) == {"non-hyperbolic"}
    assert n["control_verdict"] == "holds" and n["control_rel_median_min"] >= NONZERO_MIN
    assert n["control_n_attractors"] == 3 and set(n["control_kinds"]) == {"attractor"}
    assert sorted(n["control_attractor_labels"]) == ["correct", "plausible error", "rare error"]
    _figs_exist(tmp_path, figs)
