"""ch05 belief experiments: decide functions both ways, and each experiment once in quick mode."""

import math
from pathlib import Path

import pytest

from terrainlab.atlas import discover, run_one
from terrainlab.atlas.chapters.ch05.bregman_identities import decide_bregman_identities
from terrainlab.atlas.chapters.ch05.energy_terrain import decide_energy_terrain
from terrainlab.atlas.chapters.ch05.eta_max_values import decide_eta_max_values
from terrainlab.atlas.chapters.ch05.mirror_vs_projected import decide_mirror_vs_projected
from terrainlab.atlas.chapters.ch05.yonglin_limit_audit import decide_yonglin_audit

discover()


def _figs_exist(tmp_path, figs):
    assert figs and all((Path(tmp_path) / f).exists() for f in figs)
    assert any(f.endswith(".png") for f in figs) and any(f.endswith(".svg") for f in figs)


def test_decide_bregman_identities_both_ways():
    ok = {"H_bits": 0.0, "D_pq_bits": 0.0}
    assert decide_bregman_identities(1e-15, 1e-14, ok, 3.0, 1e-16) == "holds"
    assert decide_bregman_identities(1e-3, 1e-14, ok, 3.0, 1e-16) == "fails"
    assert decide_bregman_identities(1e-15, 1e-14, {"H_bits": 0.2}, 3.0, 1e-16) == "fails"
    assert decide_bregman_identities(1e-15, 1e-14, ok, 2.0, 1e-16) == "fails"


def test_decide_energy_terrain_both_ways():
    assert decide_energy_terrain(1e-6, 0.998, 0.02, 1.0) == "holds"
    assert decide_energy_terrain(1e-6, 0.998, 0.02, 0.9) == "holds-with-correction"
    assert decide_energy_terrain(1e-6, 0.90, 0.02, 1.0) == "fails"
    assert decide_energy_terrain(1e-2, 0.998, 0.02, 1.0) == "fails"


def test_decide_yonglin_audit_both_ways():
    assert decide_yonglin_audit(0.16, 0.07, 10) == "fails"
    assert decide_yonglin_audit(0.0, 0.0, 1) == "fails"
    assert decide_yonglin_audit(0.0, 0.0, 0) == "holds"


def test_decide_eta_max_values_both_ways():
    assert decide_eta_max_values(2 / 3, -0.7, 200.0) == "fails"
    assert decide_eta_max_values(2 / 9, 0.5, 1.2) == "holds"
    assert decide_eta_max_values(2 / 9, 0.5, 24.0) == "fails"


def test_decide_mirror_vs_projected_both_ways():
    assert decide_mirror_vs_projected(True, True, 0.99, 0.0) == "holds"
    assert decide_mirror_vs_projected(True, True, 0.99, 0.1) == "holds-with-correction"
    assert decide_mirror_vs_projected(True, False, 0.99, 0.0) == "fails"
    assert decide_mirror_vs_projected(True, True, 1.5, 0.0) == "fails"


def test_bregman_identities_quick(tmp_path):
    res, figs = run_one("ch05.bregman_identities", tmp_path, quick=True)
    assert res.verdict == "holds"
    assert abs(res.numbers["D_qp_bits"] - 0.737) < 1e-3 and abs(res.numbers["gauss_qp"] - 10.45) < 0.01
    assert abs(res.numbers["quadratic_error_slope"] - 3) < 0.1
    _figs_exist(tmp_path, figs)


def test_energy_terrain_quick(tmp_path):
    res, figs = run_one("ch05.energy_terrain", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "holds"
    assert n["steps_to_1e-6"][0] == 93  # the script's own trajectory from uniform
    assert abs(n["eta_max_pstar"] - 0.028571) < 1e-5 and abs(n["eta_crit_pstar"] - 0.2512) < 1e-3
    assert n["local_R2"] > 0.99 and n["local_median_rel_err"] < 0.05 and n["global_frac_ge_eta_max"] == 1.0
    _figs_exist(tmp_path, figs)


def test_yonglin_limit_audit_quick(tmp_path):
    res, figs = run_one("ch05.yonglin_limit_audit", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "fails" and res.corrected
    assert 0.05 < n["pair_ratio_frac_gt1"] < 0.4 and n["n_cycles"] > 0 and n["vertex_cycle"]
    assert n["local_euclid_ratio_sup"] <= n["local_euclid_bound"]
    assert abs(n["measured_local_threshold_over_2_theta"] - 1) < 0.02
    _figs_exist(tmp_path, figs)


def test_eta_max_values_quick(tmp_path):
    res, figs = run_one("ch05.eta_max_values", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "fails"
    assert math.isclose(n["eta_max_uniform"], 2 / 3)
    assert 5.5 < n["threshold_logit_measured"] < 6.5 and abs(n["threshold_natural_logit"] - 2) < 0.1
    assert abs(n["threshold_p_measured"] / n["eta_crit_pstar"] - 1) < 0.1
    _figs_exist(tmp_path, figs)


def test_mirror_vs_projected_quick(tmp_path):
    res, figs = run_one("ch05.mirror_vs_projected", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict in ("holds", "holds-with-correction")
    assert n["eg_interior"] and n["eg_rel_move_max"] <= n["eg_rel_move_bound"] * (1 + 1e-9)
    assert n["steps_to_1e-6"]["projected, 0.8·η_max"] == 93
    _figs_exist(tmp_path, figs)


@pytest.mark.parametrize("exp_id", ["ch05.bregman_identities", "ch05.energy_terrain"])
def test_experiments_registered(exp_id):
    from terrainlab.atlas import registry

    assert exp_id in registry()
