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


# --- ch08.label_flip_calibrated_mixture

def test_decide_label_flip_each_branch():
    from terrainlab.atlas.chapters.ch08.label_flip_calibrated_mixture import (
        CAPTURE,
        TOL,
        decide_label_flip,
    )

    good, ctl = [(0.004, 0.0001), (0.003, 0.0001)], (0.003, 0.0001)
    none = [(0.0, 0.0), (0.0, 0.0)]
    assert decide_label_flip(good, none, ctl) == "fails"
    assert decide_label_flip(good, [(0.0, 0.0), (0.4, 0.02)], ctl) == "holds"  # the flipped class captures
    assert decide_label_flip(good, none, (TOL, 0.001)) == "inconclusive"  # control inside ±2 SE
    assert decide_label_flip(good, none, (0.3, 0.01)) == "inconclusive"  # control not one-hot
    assert decide_label_flip([(0.004, 0.0001), (0.1, 0.01)], none, ctl) == "inconclusive"  # neither
    assert decide_label_flip(good, [(0.0, 0.0), (CAPTURE, 0.01)], ctl) == "inconclusive"  # capture inside ±2 SE
    with pytest.raises(ValueError, match="devs"):
        decide_label_flip([], [], ctl)
    with pytest.raises(ValueError, match="control_dev"):
        decide_label_flip(good, none, (0.1,))


def test_flipped_labels_rate_is_exact_per_input():
    import torch

    from terrainlab.atlas.chapters.ch08.label_flip_calibrated_mixture import flipped_labels

    y = torch.arange(10).repeat(3)
    lab = flipped_labels(y, 0.3, torch.Generator().manual_seed(1))
    assert lab.shape == (30, 10)
    assert (lab == ((y + 1) % 10)[:, None]).sum(1).tolist() == [3] * 30
    assert (lab == y[:, None]).sum(1).tolist() == [7] * 30
    with pytest.raises(ValueError, match="r must"):
        flipped_labels(y, 1.5, torch.Generator())


def test_label_flip_calibrated_mixture_quick(tmp_path):
    from terrainlab.atlas.chapters.ch08.label_flip_calibrated_mixture import TOL

    res, figs = run_one("ch08.label_flip_calibrated_mixture", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "fails" and res.corrected
    assert n["claim_kind"] == "empirical"
    for key, r in (("r10", 0.1), ("r30", 0.3)):
        assert abs(n[key]["p_true_mean"] - (1 - r)) < TOL and abs(n[key]["p_flip_mean"] - r) < TOL
        assert n[key]["captured_mean"] == 0.0 and len(n[key]["dev_per_seed"]) == 3
    # the control: r = 0 reaches the one-hot label
    assert n["control_outcome"] == "one-hot reached"
    assert n["control_p_true_mean"] > 1 - TOL and n["control_p_flip_mean"] < TOL
    _figs_exist(tmp_path, figs)


# --- ch08.wrong_attractors (retrofit)

def test_decide_wrong_attractors_each_branch():
    from terrainlab.atlas.chapters.ch08.wrong_attractors import decide_wrong_attractors

    assert decide_wrong_attractors(1, 1.0, 3, control_n_minima=3) == "fails"
    assert decide_wrong_attractors(2, 1.0, 3, control_n_minima=3) == "holds"
    assert decide_wrong_attractors(1, 0.5, 3, control_n_minima=3) == "inconclusive"  # starts lost elsewhere
    assert decide_wrong_attractors(1, 1.0, 3, control_n_minima=1) == "inconclusive"  # control sees no 2nd minimum
    assert decide_wrong_attractors(1, 1.0, 3) == "fails"  # without a control (old call)
    with pytest.raises(ValueError, match="frac_converged_min"):
        decide_wrong_attractors(1, 1.5, 3)
    with pytest.raises(ValueError, match="control_n_minima"):
        decide_wrong_attractors(1, 1.0, 3, control_n_minima=-1)


def test_wrong_attractors_quick_with_control(tmp_path):
    res, figs = run_one("ch08.wrong_attractors", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "fails" and res.corrected
    assert n["claim_kind"] == "theorem-check"
    assert n["n_minima_cross_entropy"] == [1, 1, 1, 1] and n["n_minima_cross_entropy_orbit_endpoints"] == [1, 1, 1, 1]
    assert min(n["frac_converged_to_q"]) == 1.0
    # the control: the three-well energy has wrong attractors and the same measurement sees them
    assert n["control_verdict"] == "holds" and n["control_n_minima"] == 3
    assert n["control_frac_converged_to_deepest"] < 0.99
    _figs_exist(tmp_path, figs)


# --- ch08.reward_creates_minima (retrofit)

def test_decide_reward_creates_minima_each_branch():
    from terrainlab.atlas.chapters.ch08.reward_creates_minima import decide_reward_creates_minima

    assert decide_reward_creates_minima([2, 2, 3, 3], control_counts=[2, 2, 2]) == "fails"
    assert decide_reward_creates_minima([2, 2, 2], control_counts=[2, 2]) == "holds"
    assert decide_reward_creates_minima([2, 2, 3], control_counts=[2, 3]) == "inconclusive"  # control changed
    assert decide_reward_creates_minima([2, 3]) == "fails"  # without a control (old call)
    with pytest.raises(ValueError, match="counts"):
        decide_reward_creates_minima([])
    with pytest.raises(ValueError, match="control_counts"):
        decide_reward_creates_minima([2], control_counts=[-1])


def test_reward_creates_minima_quick_with_control(tmp_path):
    res, figs = run_one("ch08.reward_creates_minima", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "fails" and res.corrected
    assert n["claim_kind"] == "theorem-check"
    assert n["double_well"]["n_attractors"][0] == 2 and max(n["double_well"]["n_attractors"]) == 3
    assert n["simplex"]["n_attractors"][0] == 3 and max(n["simplex"]["n_attractors"]) == 4
    # the control: below the critical λ the count is preserved, and the rule says so
    assert n["control_verdict"] == "holds" and set(n["control_n_attractors"]) == {2}
    assert n["control_types_preserved"]
    assert max(n["control_lambdas"]) < n["double_well"]["lambda_c_predicted"]
    _figs_exist(tmp_path, figs)


# --- ch08.verifier_threshold (retrofit)

def test_decide_verifier_threshold_each_branch():
    from terrainlab.atlas.chapters.ch08.verifier_threshold import decide_verifier_threshold

    assert decide_verifier_threshold(1.24, 6.25, control_ratio=1.12) == "fails"
    assert decide_verifier_threshold(1.24, 1.3, control_ratio=1.12) == "holds"
    assert decide_verifier_threshold(1.24, 6.25, control_ratio=5.0) == "inconclusive"  # control off
    assert decide_verifier_threshold(1.24, 6.25, control_ratio=float("nan")) == "inconclusive"  # no control fold
    assert decide_verifier_threshold(float("nan"), 6.25, control_ratio=1.0) == "fails"  # no fold, book predicts one
    assert decide_verifier_threshold(float("nan"), float("inf")) == "inconclusive"
    assert decide_verifier_threshold(1.24, 6.25) == "fails"  # without a control (old call)
    with pytest.raises(ValueError, match="eta_book"):
        decide_verifier_threshold(1.24, "6")
    with pytest.raises(ValueError, match="control_ratio"):
        decide_verifier_threshold(1.24, 6.25, control_ratio="1")


def test_verifier_threshold_quick_with_control(tmp_path):
    from terrainlab.atlas.chapters.ch08.verifier_threshold import RATIO_TOL

    res, figs = run_one("ch08.verifier_threshold", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "fails" and res.corrected
    assert n["claim_kind"] == "theorem-check"
    assert abs(n["double_well"]["eta_fold"] - 1.2396) < 1e-3 and n["double_well"]["ratio"] > 4
    assert n["simplex"]["ratio"] > 2
    # the control: linear to the basin edge, the book's threshold is right and the rule says so
    assert n["control_verdict"] == "holds" and abs(n["control_ratio"] - 1) < RATIO_TOL
    assert abs(n["control_eta_fold"] - 1.778) < 1e-2 and n["control_eta_book"] == 2.0
    _figs_exist(tmp_path, figs)
