"""ch08 belief experiments: decide functions both ways, and each experiment once in quick mode."""

from pathlib import Path

from terrainlab.atlas import discover, run_one
from terrainlab.atlas.chapters.ch08.reward_creates_minima import decide_reward_creates_minima
from terrainlab.atlas.chapters.ch08.verifier_threshold import decide_verifier_threshold
from terrainlab.atlas.chapters.ch08.wrong_attractors import decide_wrong_attractors

discover()


def _figs_exist(tmp_path, figs):
    assert figs and all((Path(tmp_path) / f).exists() for f in figs)


def test_decide_functions_both_ways():
    assert decide_wrong_attractors(1, 1.0, 3) == "fails"
    assert decide_wrong_attractors(2, 1.0, 3) == "holds"
    assert decide_wrong_attractors(1, 0.5, 3) == "inconclusive"
    assert decide_verifier_threshold(1.24, 6.25) == "fails"
    assert decide_verifier_threshold(1.24, 1.3) == "holds"
    assert decide_reward_creates_minima([2, 2, 3, 3]) == "fails"
    assert decide_reward_creates_minima([2, 2, 2]) == "holds"


def test_wrong_attractors_quick(tmp_path):
    res, figs = run_one("ch08.wrong_attractors", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "fails" and res.corrected
    assert n["n_minima_cross_entropy"] == [1, 1, 1, 1] and min(n["frac_converged_to_q"]) == 1.0
    assert min(n["min_tangent_hessian_eig"]) > 0
    assert n["feedback_n_attractors"][0] == 1 and max(n["feedback_n_attractors"]) >= 2
    _figs_exist(tmp_path, figs)


def test_verifier_threshold_quick(tmp_path):
    res, figs = run_one("ch08.verifier_threshold", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "fails"
    assert abs(n["double_well"]["eta_fold"] - 1.2396) < 1e-3
    assert abs(n["double_well"]["eta_book"] - 6.25) < 0.05
    assert n["simplex"]["ratio"] > 2 and 0 < n["simplex"]["eta_fold"] < n["simplex"]["eta_book"]
    _figs_exist(tmp_path, figs)


def test_reward_creates_minima_quick(tmp_path):
    res, figs = run_one("ch08.reward_creates_minima", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "fails"
    assert n["double_well"]["n_attractors"][0] == 2 and max(n["double_well"]["n_attractors"]) == 3
    assert n["double_well"]["types_preserved_below_lambda_c"]
    assert n["simplex"]["n_attractors"][0] == 3 and max(n["simplex"]["n_attractors"]) == 4
    _figs_exist(tmp_path, figs)
