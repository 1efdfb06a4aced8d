"""Run each optimizer-chapter experiment once in quick mode; verdicts and numbers must be sensible.

(ch03.optimizer_comparison and ch04.lr_schedules: tests/atlas/test_repair_r3.py.)"""

from __future__ import annotations

import pytest

from terrainlab.atlas import discover, run_one

EXPECTED = {
    "ch03.nearest_minimum": ("fails",),
    "ch03.momentum_as_physics": ("holds",),
    "ch04.l1_vs_l2": ("holds-with-correction",),
    "ch04.elastic_net_kink": ("fails",),
    "ch04.adam_is_not_curvature": ("fails",),
    "ch04.augmentation_is_ridge": ("fails",),
    "ch04.flatness_bias": ("holds",),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    discover()
    out = tmp_path_factory.mktemp("atlas")
    return out, {eid: run_one(eid, out, quick=True) for eid in EXPECTED}


@pytest.mark.parametrize("eid", list(EXPECTED))
def test_quick_run(runs, eid):
    out, results = runs
    res, figs = results[eid]
    assert res.verdict in EXPECTED[eid], (eid, res.verdict, res.explanation)
    assert figs and all((out / f).exists() and (out / f).stat().st_size > 1000 for f in figs)
    assert res.threshold and res.explanation
    if res.verdict in ("fails", "holds-with-correction"):
        assert res.corrected


def test_measured_numbers(runs):
    _, r = runs
    n = r["ch04.l1_vs_l2"][0].numbers
    assert n["exact_zeros"]["ista"] > 10 and n["exact_zeros"]["subgradient"] == 0 and n["exact_zeros"]["ridge"] == 0
    assert n["ista_support_matches_sklearn"]
    n = r["ch04.augmentation_is_ridge"][0].numbers
    assert abs(n["minimizer_jitter_closed_form"][0] - n["minimizer_jitter_monte_carlo"][0]) < 0.01
    assert n["hessian_eigs_jitter"][0] > n["hessian_eigs_plain"][0] > 0
    n = r["ch04.adam_is_not_curvature"][0].numbers
    assert n["max_coordinate_gap_whole_run"] < 1e-6 and 8 < n["sqrt_vhat_scale_ratio_10x_start"] < 12
    n = r["ch03.momentum_as_physics"][0].numbers
    assert 0.8 < n["measured_order"] < 1.2
    n = r["ch03.nearest_minimum"][0].numbers
    assert n["gd_eta0.3_from_-3_ends_at"] > 1.8 and n["gd_eta0.01_from_0_ends_at"] < -2
    n = r["ch04.flatness_bias"][0].numbers
    assert n["max_sharp_fraction_eta_above_limit"] == 0 and n["max_sharp_fraction_eta_below_limit"] > 0.1
    n = r["ch04.elastic_net_kink"][0].numbers
    assert n["solution_spread_between_starts"]["elastic net"] < 1e-8 < n["solution_spread_between_starts"]["lasso"]
