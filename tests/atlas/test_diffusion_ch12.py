"""Chapter-12 atlas experiments: each decide function both ways, each experiment once (quick)."""

import json
import math
from pathlib import Path

import pytest

from terrainlab.atlas import discover, run_one
from terrainlab.atlas.chapters.ch12.forward_diffusion import decide_forward_diffusion
from terrainlab.atlas.chapters.ch12.manifold_attractor import decide_manifold_attractor
from terrainlab.atlas.chapters.ch12.pf_ode_is_not_ot import decide_pf_ode_is_not_ot
from terrainlab.atlas.chapters.ch12.sampler_noise_scale import decide_sampler_noise_scale
from terrainlab.atlas.chapters.ch12.score_and_trajectories import decide_score_and_trajectories
from terrainlab.atlas.chapters.ch12.score_far_from_data import decide_score_far_from_data

NAN = float("nan")


def test_decide_forward_diffusion():
    assert decide_forward_diffusion(2.1, 0.01) == "holds"
    assert decide_forward_diffusion(9.0, 0.01) == "fails"      # chain disagrees with the closed form
    assert decide_forward_diffusion(2.0, 0.3) == "fails"       # x_T is not N(0, I)
    assert decide_forward_diffusion(NAN, 0.0) == "inconclusive"


def test_decide_score_and_trajectories():
    # (learned landing mean, SE, exact landing, control mean, SE); every branch: test_ch12_score.py
    assert decide_score_and_trajectories(0.97, 0.01, 1.0, 0.0, 0.0) == "holds"
    assert decide_score_and_trajectories(0.50, 0.01, 1.0, 0.0, 0.0) == "fails"
    assert decide_score_and_trajectories(0.97, 0.01, 1.0, 0.95, 0.01) == "inconclusive"


def test_decide_score_far_from_data():
    assert decide_score_far_from_data([2.0, 2.1, 1.9], 0.999) == "fails"
    assert decide_score_far_from_data([0.1, 0.2], 0.999) == "holds"
    assert decide_score_far_from_data([1.0, 1.1], 0.999) == "inconclusive"
    assert decide_score_far_from_data([], 1.0) == "inconclusive"


def test_decide_sampler_noise_scale():
    # (book mean, SE, control mean, SE) of the largest cluster-weight error against 0.03
    assert decide_sampler_noise_scale(0.26, 0.01, 0.01, 0.003) == "fails"
    assert decide_sampler_noise_scale(0.01, 0.003, 0.01, 0.003) == "holds"
    assert decide_sampler_noise_scale(0.04, 0.01, 0.01, 0.003) == "inconclusive"   # 0.03 inside ± 2 SE
    assert decide_sampler_noise_scale(0.26, 0.01, 0.20, 0.01) == "inconclusive"    # control fails
    assert decide_sampler_noise_scale(NAN, 0.01, 0.01, 0.003) == "inconclusive"


def test_decide_pf_ode_is_not_ot():
    assert decide_pf_ode_is_not_ot(0.02, 0.001, 1e-16) == "fails"
    assert decide_pf_ode_is_not_ot(1e-4, 1e-4, 1e-16) == "holds"
    assert decide_pf_ode_is_not_ot(0.02, 0.01, 1e-16) == "inconclusive"     # gap not 5 SE above 0
    assert decide_pf_ode_is_not_ot(0.02, 0.001, 0.01) == "inconclusive"    # control does not read optimal
    assert decide_pf_ode_is_not_ot(0.02, 0.001, 4e-4) == "fails"            # control optimal, floor 4e-3


def test_decide_manifold_attractor():
    assert decide_manifold_attractor(-80.0, 1e-6, 1.0) == "holds-with-correction"
    assert decide_manifold_attractor(-80.0, -80.0, 0.5) == "holds"
    assert decide_manifold_attractor(5.0, 0.0, 1.0) == "fails"
    assert decide_manifold_attractor(-80.0, -10.0, 1.0) == "inconclusive"


EXPECTED = {
    "ch12.forward_diffusion": "holds",
    "ch12.score_and_trajectories": "holds",
    "ch12.score_far_from_data": "fails",
    "ch12.sampler_noise_scale": "fails",
    "ch12.pf_ode_is_not_ot": "fails",
    "ch12.manifold_attractor": "holds-with-correction",
}


@pytest.mark.parametrize("exp_id", sorted(EXPECTED))
def test_experiment_runs_quick(exp_id, tmp_path):
    errors = discover()
    assert not any("ch12" in k for k in errors), errors
    res, figs = run_one(exp_id, tmp_path, quick=True)
    assert res.verdict == EXPECTED[exp_id], (res.verdict, res.numbers)
    assert res.threshold and res.explanation
    if res.verdict in ("fails", "holds-with-correction"):
        assert res.corrected
    json.dumps(res.numbers)
    assert figs and all((Path(tmp_path) / f).exists() for f in figs)
    assert any(f.endswith(".png") for f in figs) and any(f.endswith(".svg") for f in figs)
    n = res.numbers
    if exp_id == "ch12.forward_diffusion":
        assert n["max_abs_z"] < 5 and n["prior_deviation"] < 0.1
        assert n["control_verdict"] == "fails" and n["control_max_abs_z"] > 10
    elif exp_id == "ch12.score_far_from_data":
        assert all(abs(r["loglog_slope_r_ge_10"] - 1) < 0.15 for r in n["profiles"])
    elif exp_id == "ch12.pf_ode_is_not_ot":
        assert n["two_bars"]["gap_mean"] > 0.01 and abs(n["gaussian_control"]["gap_mean"]) < 1e-6
        assert n["control_verdict"] == "optimal" and n["claim_kind"] == "theorem-check"
    elif exp_id == "ch12.manifold_attractor":
        assert n["thin_ring"]["lambda_normal_median"] < -10
        assert abs(n["thin_ring"]["tangent_separation_ratio"] - 1) < 0.1
        assert n["control_verdict"] == "holds" and n["eight_clusters_control"]["tangent_separation_ratio"] < 0.8
    elif exp_id == "ch12.sampler_noise_scale":
        assert n["control_verdict"] == "recovers the data" and n["claim_kind"] == "empirical"
        assert n["weight_error_book_mean"] - 2 * n["weight_error_book_se"] > 0.1
    elif exp_id == "ch12.score_and_trajectories":
        assert n["relative_score_error_learned_vs_exact"]["0.3"] < 0.1
        assert all(math.isfinite(v["weight_error"]) for v in n["samplers"].values())
