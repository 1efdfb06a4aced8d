"""ch05 experiments brought to issue 17 §2 (helper F): every branch of each decide function, and each
quick run's verdict together with its control's outcome."""

import pytest

from terrainlab.atlas import discover, run_one
from terrainlab.atlas.chapters.ch05.bregman_pythagorean import (
    CONTROL_MIN as BP_CONTROL_MIN,
)
from terrainlab.atlas.chapters.ch05.bregman_pythagorean import (
    TOL as BP_TOL,
)
from terrainlab.atlas.chapters.ch05.bregman_pythagorean import (
    decide_bregman_pythagorean,
)

discover()


# ---------------------------------------------------------------------------------------------------
# ch05.bregman_pythagorean


def test_decide_bregman_pythagorean_every_branch():
    assert decide_bregman_pythagorean(1e-15, 1e-3, -0.5) == "holds"
    assert decide_bregman_pythagorean(BP_TOL, -BP_TOL, -0.5) == "holds"
    assert decide_bregman_pythagorean(10 * BP_TOL, 1e-3, -0.5) == "fails"  # affine equality broken
    assert decide_bregman_pythagorean(1e-15, -10 * BP_TOL, -0.5) == "fails"  # convex slack negative
    assert decide_bregman_pythagorean(1e-15, 1e-3, -BP_CONTROL_MIN) == "inconclusive"
    assert decide_bregman_pythagorean(1e-15, 1e-3, 0.2) == "inconclusive"


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "x", True, None])
def test_decide_bregman_pythagorean_rejects_bad_input(bad):
    with pytest.raises(ValueError, match="affine_max_abs"):
        decide_bregman_pythagorean(bad, 0.0, -1.0)
    with pytest.raises(ValueError, match="convex_min_slack"):
        decide_bregman_pythagorean(0.0, bad, -1.0)
    with pytest.raises(ValueError, match="control_min_slack"):
        decide_bregman_pythagorean(0.0, 0.0, bad)
    with pytest.raises(ValueError, match="affine_max_abs"):
        decide_bregman_pythagorean(-1.0, 0.0, -1.0)


def test_bregman_pythagorean_quick(tmp_path):
    res, figs = run_one("ch05.bregman_pythagorean", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "holds"
    assert n["claim_kind"] == "theorem-check"
    assert len(n["seeds"]) >= 3
    assert n["affine_I_max_abs_slack"] < 1e-12 and n["affine_M_max_abs_residual"] < 1e-12
    assert n["halfspace_min_slack"] >= 0 and n["halfspace_frac_strict_mean"] > 0.99
    # the controls: a non-convex set and the Euclidean projection both violate the inequality
    assert n["control_verdict"] == "fails" and n["control_min_slack"] < -0.1
    assert n["control_frac_violated_mean"] > 0.2
    assert n["control_euclid_verdict"] == "fails" and n["control_euclid_frac_violated_mean"] > 0.2
    assert any(f.endswith(".png") for f in figs)


# ---------------------------------------------------------------------------------------------------
# ch05.yonglin_limit_audit


def test_decide_yonglin_audit_every_branch():
    from terrainlab.atlas.chapters.ch05.yonglin_limit_audit import FRAC_TOL, decide_yonglin_audit

    ok = (0.0, 0.0, 0)
    assert decide_yonglin_audit(0.0, 0.0, 0, control=ok) == "holds"
    assert decide_yonglin_audit(FRAC_TOL, FRAC_TOL, 0, control=ok) == "holds"
    assert decide_yonglin_audit(0.16, 0.0, 0, control=ok) == "fails"
    assert decide_yonglin_audit(0.0, 0.07, 0, control=ok) == "fails"
    assert decide_yonglin_audit(0.0, 0.0, 1, control=ok) == "fails"
    assert decide_yonglin_audit(0.16, 0.07, 10, control=(0.0, 0.0, 3)) == "inconclusive"
    assert decide_yonglin_audit(0.0, 0.0, 0, control=(0.2, 0.0, 0)) == "inconclusive"
    for bad, name in (((-0.1, 0.0, 0), "frac_pair_gt1"), ((0.0, 1.5, 0), "frac_energy_gt1"),
                      ((0.0, 0.0, -1), "n_cycles"), ((0.0, 0.0, 1.0), "n_cycles")):
        with pytest.raises(ValueError, match=name):
            decide_yonglin_audit(*bad, control=ok)
    with pytest.raises(ValueError, match="control"):
        decide_yonglin_audit(0.0, 0.0, 0, control=(0.0, 0.0))


def test_yonglin_limit_audit_quick_verdict_and_control(tmp_path):
    res, _ = run_one("ch05.yonglin_limit_audit", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "fails" and n["claim_kind"] == "theorem-check"
    assert n["pair_ratio_frac_gt1"] > 0.05 and n["n_cycles"] > 0
    # the control, a true KL contraction, passes the same audit
    assert n["control_verdict"] == "holds"
    assert n["control_pair_ratio_frac_gt1"] == 0 and n["control_n_cycles"] == 0
    assert n["control_pair_ratio_sup"] <= 1 - n["control_eta"] + 1e-12


# ---------------------------------------------------------------------------------------------------
# ch05.eta_max_values


def test_decide_eta_max_values_every_branch():
    from terrainlab.atlas.chapters.ch05.eta_max_values import INVARIANCE_TOL, decide_eta_max_values

    assert decide_eta_max_values(2 / 9, 0.5, 1.2, 1.0) == "holds"
    assert decide_eta_max_values(2 / 9, 0.5, 1 / 1.2, 1.0) == "holds"
    assert decide_eta_max_values(2 / 3, 0.5, 1.2, 1.0) == "fails"  # the value
    assert decide_eta_max_values(2 / 9, -0.7, 1.2, 1.0) == "fails"  # confidence
    assert decide_eta_max_values(2 / 9, 0.5, 24.0, 1.0) == "fails"  # coordinates
    assert decide_eta_max_values(2 / 9, 0.5, 0.04, 1.0) == "fails"
    assert decide_eta_max_values(2 / 9, 0.5, 1.2, 2 * INVARIANCE_TOL) == "inconclusive"
    assert decide_eta_max_values(2 / 3, -0.7, 24.0, float("nan")) == "inconclusive"
    for args, name in (((None, 0.5, 1.2, 1.0), "eta_uniform"), ((2 / 9, "x", 1.2, 1.0), "corr_confidence"),
                       ((2 / 9, 0.5, True, 1.0), "coord_ratio"), ((2 / 9, 0.5, -1.0, 1.0), "coord_ratio"),
                       ((2 / 9, 0.5, 1.2, None), "control_ratio")):
        with pytest.raises(ValueError, match=name):
            decide_eta_max_values(*args)


def test_eta_max_values_quick_verdict_and_control(tmp_path):
    res, _ = run_one("ch05.eta_max_values", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "fails" and res.corrected and n["claim_kind"] == "theorem-check"
    assert n["coordinate_verdict"] == "not invariant" and n["logit_over_p_ratio"] > 10
    # the control: the natural gradient's threshold is the same in both coordinates
    assert n["control_verdict"] == "invariant"
    assert abs(n["control_ratio_natural_logit_over_p"] - 1) < 0.1


# ---------------------------------------------------------------------------------------------------
# ch05.mirror_vs_projected


def test_decide_mirror_vs_projected_every_branch():
    from terrainlab.atlas.chapters.ch05.mirror_vs_projected import decide_mirror_vs_projected as d

    assert d(True, True, 0.99, 0.0, 0.0, 20.0) == "holds"
    assert d(True, True, 0.99, 0.13, 0.02, 20.0) == "holds-with-correction"
    assert d(True, True, 0.99, 0.01, 0.01, 20.0) == "inconclusive"  # 0 inside mean ± 2 SE
    assert d(True, False, 0.99, 0.0, 0.0, 20.0) == "fails"
    assert d(False, True, 0.99, 0.0, 0.0, 20.0) == "fails"
    assert d(True, True, 1.5, 0.0, 0.0, 20.0) == "fails"
    assert d(True, True, 0.99, 0.0, 0.0, 1.0) == "inconclusive"  # the control stays within the bound
    for args, name in (((1, True, 0.99, 0.0, 0.0, 20.0), "eg_converged"),
                       ((True, None, 0.99, 0.0, 0.0, 20.0), "eg_interior"),
                       ((True, True, -1.0, 0.0, 0.0, 20.0), "rel_move_ratio"),
                       ((True, True, 0.99, float("nan"), 0.0, 20.0), "eg_edge_fail_frac"),
                       ((True, True, 0.99, 0.0, -0.1, 20.0), "eg_edge_fail_se"),
                       ((True, True, 0.99, 0.0, 0.0, "x"), "control_rel_move_ratio")):
        with pytest.raises(ValueError, match=name):
            d(*args)


def test_mirror_vs_projected_quick_verdict_and_control(tmp_path):
    res, _ = run_one("ch05.mirror_vs_projected", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "holds-with-correction" and res.corrected and n["claim_kind"] == "empirical"
    assert len(n["seeds"]) == 3 and n["eg_kl_fail_fraction_mean"] - 2 * n["eg_kl_fail_fraction_se"] > 0
    # the control: projected GD breaks the relative-move bound that EG keeps
    assert n["control_verdict"] == "fails" and n["control_pg_rel_move_ratio"] > 10
    assert n["eg_rel_move_max"] <= n["eg_rel_move_bound"] * (1 + 1e-9)


# ---------------------------------------------------------------------------------------------------
# ch05.bregman_identities


def test_decide_bregman_identities_every_branch():
    from terrainlab.atlas.chapters.ch05.bregman_identities import CONTROL_MIN, IDENTITY_TOL
    from terrainlab.atlas.chapters.ch05.bregman_identities import decide_bregman_identities as d

    ok = {"H_bits": 0.0, "D_pq_bits": 0.0}
    assert d(1e-15, 1e-14, ok, 3.0, 1e-16, 4.0) == "holds"
    assert d(10 * IDENTITY_TOL, 1e-14, ok, 3.0, 1e-16, 4.0) == "fails"
    assert d(1e-15, 10 * IDENTITY_TOL, ok, 3.0, 1e-16, 4.0) == "fails"
    assert d(1e-15, 1e-14, {"H_bits": 0.2}, 3.0, 1e-16, 4.0) == "fails"
    assert d(1e-15, 1e-14, ok, 2.0, 1e-16, 4.0) == "fails"
    assert d(1e-15, 1e-14, ok, 3.0, 1e-3, 4.0) == "fails"
    assert d(1e-15, 1e-14, ok, 3.0, 1e-16, CONTROL_MIN) == "inconclusive"
    for args, name in (((None, 1e-14, ok, 3.0, 1e-16, 4.0), "identity_err"),
                       ((1e-15, float("nan"), ok, 3.0, 1e-16, 4.0), "three_point_err"),
                       ((1e-15, 1e-14, [0.1], 3.0, 1e-16, 4.0), "number_errs"),
                       ((1e-15, 1e-14, ok, "3", 1e-16, 4.0), "quad_slope"),
                       ((1e-15, 1e-14, ok, 3.0, True, 4.0), "softmax_err"),
                       ((1e-15, 1e-14, ok, 3.0, 1e-16, None), "control_err")):
        with pytest.raises(ValueError, match=name):
            d(*args)


def test_bregman_identities_quick_verdict_and_control(tmp_path):
    res, _ = run_one("ch05.bregman_identities", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "holds" and n["claim_kind"] == "theorem-check"
    assert n["identity_max_err"] < 1e-12
    # the control: the reverse KL is not the negative entropy's Bregman divergence
    assert n["control_verdict"] == "fails"
    assert n["control_identity_max_err"] > 0.1 and n["control_three_point_max_err"] > 0.1


# ---------------------------------------------------------------------------------------------------
# ch05.energy_terrain


def test_decide_energy_terrain_every_branch():
    from terrainlab.atlas.chapters.ch05.energy_terrain import HESS_TOL, MEDIAN_ERR_MAX, R2_MIN
    from terrainlab.atlas.chapters.ch05.energy_terrain import decide_energy_terrain as d

    ctrl = (-16.0, 3.9)
    se = {"r2_se": 0.001, "median_err_se": 0.004}
    assert d(1e-6, 0.997, 0.023, 1.0, **se, control=ctrl) == "holds"
    assert d(1e-6, 0.997, 0.023, 0.9, **se, control=ctrl) == "holds-with-correction"
    assert d(10 * HESS_TOL, 0.997, 0.023, 1.0, **se, control=ctrl) == "fails"
    assert d(1e-6, 0.90, 0.023, 1.0, **se, control=ctrl) == "fails"
    assert d(1e-6, 0.997, 0.20, 1.0, **se, control=ctrl) == "fails"
    assert d(1e-6, R2_MIN + 0.001, 0.023, 1.0, **se, control=ctrl) == "inconclusive"  # R2_MIN inside ± 2 SE
    assert d(1e-6, 0.997, MEDIAN_ERR_MAX - 0.004, 1.0, **se, control=ctrl) == "inconclusive"
    assert d(1e-6, 0.997, 0.023, 1.0, **se, control=(0.999, 0.01)) == "inconclusive"  # control passes
    for args, name in (((None, 0.997, 0.023, 1.0), "hess_rel_err"), ((1e-6, "x", 0.023, 1.0), "r2"),
                       ((1e-6, 0.997, float("nan"), 1.0), "median_err"), ((1e-6, 0.997, 0.023, True), "frac_global_ge")):
        with pytest.raises(ValueError, match=name):
            d(*args, control=ctrl)
    with pytest.raises(ValueError, match="r2_se"):
        d(1e-6, 0.997, 0.023, 1.0, r2_se=None, control=ctrl)
    with pytest.raises(ValueError, match="control"):
        d(1e-6, 0.997, 0.023, 1.0, control=(1.0,))


def test_energy_terrain_quick_verdict_and_control(tmp_path):
    res, _ = run_one("ch05.energy_terrain", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "holds" and n["claim_kind"] == "empirical"
    assert len(n["seeds"]) == 3
    assert n["local_R2_mean"] - 2 * n["local_R2_se"] > 0.99
    assert n["local_median_rel_err_mean"] + 2 * n["local_median_rel_err_se"] < 0.05
    # the control: the book's η_max as the predictor of the same thresholds fails the law
    assert n["control_verdict"] == "fails" and n["control_median_rel_err_eta_max_predictor"] > 1.0
