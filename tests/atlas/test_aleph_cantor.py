"""aleph.cantor_precision: the decision rule branch by branch, and the quick run's verdict and control."""

import math

import pytest

from terrainlab.aleph.cantor import LOG3_2
from terrainlab.atlas import discover, run_one
from terrainlab.atlas.chapters.aleph.cantor_precision import FORMATS, decide_cantor_precision


@pytest.fixture(scope="module", autouse=True)
def _registry():
    discover()


def test_decide_cantor_precision_branches():
    assert decide_cantor_precision(0.630, 0.002, 1.0, 1.0, 0.0) == "holds-with-correction"
    assert decide_cantor_precision(0.630, 0.002, 1.0, 1.0, 0.01) == "inconclusive"  # the control went wrong
    assert decide_cantor_precision(0.630, 0.002, 0.2, 1.0, 0.0) == "fails"  # fp64 would suffice
    assert decide_cantor_precision(0.630, 0.002, 1.0, 0.1, 0.0) == "holds"  # a wider float would suffice
    assert decide_cantor_precision(0.675, 0.01, 1.0, 1.0, 0.0) == "inconclusive"  # 0.681 inside ± 2 SE
    assert decide_cantor_precision(0.585, 0.01, 1.0, 1.0, 0.0) == "inconclusive"  # 0.581 inside ± 2 SE
    assert decide_cantor_precision(0.30, 0.001, 1.0, 1.0, 0.0) == "inconclusive"  # not ∝ bits at log₃2
    assert decide_cantor_precision(math.nan, math.nan, 1.0, 1.0, 0.0) == "inconclusive"
    assert decide_cantor_precision(0.9, 0.001, 1.0, 1.0, 0.0, slope_target=0.9) == "holds-with-correction"
    assert decide_cantor_precision(0.63, 0.002, 0.5, 0.5, 0.0, fail_share=0.6) == "fails"
    for kw, name in (({"slope_tol": 0.0}, "slope_tol"), ({"fail_share": 0.0}, "fail_share")):
        with pytest.raises(ValueError, match=name):
            decide_cantor_precision(0.63, 0.002, 1.0, 1.0, 0.0, **kw)
    with pytest.raises(ValueError, match="slope_se"):
        decide_cantor_precision(0.63, -1.0, 1.0, 1.0, 0.0)
    with pytest.raises(ValueError, match="fp64_fraction_failed"):
        decide_cantor_precision(0.63, 0.002, 1.5, 1.0, 0.0)
    with pytest.raises(ValueError, match="control_fraction_failed"):
        decide_cantor_precision(0.63, 0.002, 1.0, 1.0, -0.1)


def test_cantor_precision_quick(tmp_path):
    res, figs = run_one("aleph.cantor_precision", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "holds-with-correction" and res.corrected and "exact" in res.corrected
    assert n["claim_kind"] == "theorem-check"
    # control: exact integer arithmetic never goes wrong (to level 200), every float format does
    assert n["control_fraction_failed"] == 0 and n["control_cantor_points_fraction_failed"] == 0
    assert n["control_outcome"] == "never wrong" and n["control_levels_checked"] == 200
    for key, _, _ in FORMATS:
        assert n[f"{key}_fraction_failed"] == 1.0
        assert abs(n[f"{key}_first_wrong_level_mean"] - n[f"{key}_predicted_p_log3_2"]) < 2.5
    assert abs(n["slope_levels_per_bit_mean"] - LOG3_2) < 0.02
    assert 33 <= n["float64_first_wrong_level_mean"] <= 37
    assert n["float64_first_wrong_level_mean"] < n["ext64_first_wrong_level_mean"] < n["binary128_first_wrong_level_mean"]
    # the staircase value at Cantor-set points in float64: good to ≈ 2^-33…2^-40 (conditioning), not 2^-52
    assert -40 < n["float64_staircase_log2_error_median"] < -33 and n["float64_log2_eps"] == -52
    assert abs(n["float64_staircase_log2_error_exact_at_rounded_x_median"] - n["float64_staircase_log2_error_median"]) < 2
    assert any(f.endswith(".png") for f in figs) and any(f.endswith(".svg") for f in figs)
