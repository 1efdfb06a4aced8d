"""ch09 belief experiments: decide functions both ways, and each experiment once in quick mode."""

from pathlib import Path

from terrainlab.atlas import discover, run_one
from terrainlab.atlas.chapters.ch09.freeze_bound import decide_freeze_bound
from terrainlab.atlas.chapters.ch09.step_count_bound import decide_step_count_bound
from terrainlab.atlas.chapters.ch09.temperature_escape import decide_temperature_escape

discover()


def _figs_exist(tmp_path, figs):
    assert figs and all((Path(tmp_path) / f).exists() for f in figs)


def test_decide_functions_both_ways():
    assert decide_step_count_bound(1.0, 1.0) == "holds"
    assert decide_step_count_bound(0.1, 1.0) == "holds-with-correction"
    assert decide_step_count_bound(0.1, 0.8) == "fails"
    assert decide_freeze_bound(16.0, 1.02) == "fails"
    assert decide_freeze_bound(0.9, 1.02) == "holds"
    assert decide_freeze_bound(16.0, 3.0) == "inconclusive"
    assert decide_temperature_escape(0.4, 0.95, 0.0) == "holds"
    assert decide_temperature_escape(0.4, 0.95, 0.2) == "holds-with-correction"
    assert decide_temperature_escape(0.9, 0.95, 0.2) == "fails"


def test_step_count_bound_quick(tmp_path):
    res, figs = run_one("ch09.step_count_bound", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "holds-with-correction" and res.corrected
    assert n["book_case_actual"] == 93 and abs(n["book_case_formula"] - 100.7) < 0.5
    assert n["frac_actual_le_ceil_formula"] == 1.0 and n["frac_actual_ge_formula"] < 0.5
    assert n["logD0_R2"] > 0.98
    assert n["control_verdict"] == "holds" and n["control_frac_actual_ge_formula"] == 1.0
    assert n["claim_kind"] == "theorem-check"
    _figs_exist(tmp_path, figs)


def test_freeze_bound_quick(tmp_path):
    res, figs = run_one("ch09.freeze_bound", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "fails"
    assert n["max_measured_over_book"] > 10 and 0.95 < n["min_measured_over_corrected"]
    assert n["max_measured_over_corrected"] < 1.1
    assert n["control_verdict"] == "holds" and n["control_max_measured_over_book_metric"] < 1.0
    _figs_exist(tmp_path, figs)


def test_temperature_escape_quick(tmp_path):
    res, figs = run_one("ch09.temperature_escape", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "holds-with-correction"
    b = n["barriers"]
    assert b[0] > 2 * max(b[1:])  # the correct basin is the deep one
    assert n["stay_deep_at_T_mid"] >= 0.9 and n["deep_left_at_hottest"] > 0.05
    assert n["control_verdict"] == "fails" and min(n["control_stay"]) == 1.0   # T = 0: nobody leaves
    assert n["deep_left_at_hottest"] - 2 * n["deep_left_at_hottest_se"] > 0.05
    _figs_exist(tmp_path, figs)
