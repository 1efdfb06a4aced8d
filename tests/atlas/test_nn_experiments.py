"""Atlas experiments of the hidden-state world (ch06/ch07): decide functions both ways, quick runs."""

import pytest

from terrainlab.atlas import discover, run_one
from terrainlab.atlas.chapters.ch06.resnet_is_euler import decide_resnet
from terrainlab.atlas.chapters.ch06.stiff_field import decide_stiff


def test_decide_stiff():
    assert decide_stiff(0.04, 0.0401, 0.5, False) == "holds"
    assert decide_stiff(0.04, 0.0401, 0.5, True) == "holds-with-correction"
    assert decide_stiff(0.04, 0.0401, 1.5, True) == "fails"
    assert decide_stiff(0.04, 0.06, 0.5, True) == "inconclusive"


def test_decide_resnet():
    assert decide_resnet(0.05, 0.5, 0.05, 0.0) == "holds"
    assert decide_resnet(0.3, 1.0, 0.05, 0.0) == "holds-with-correction"
    assert decide_resnet(0.05, 5.0, 0.05, 0.0) == "holds-with-correction"  # accuracy drop alone
    assert decide_resnet(0.3, 1.0, 0.3, 0.0) == "inconclusive"  # the control (small steps) not faithful
    assert decide_resnet(0.3, 1.0, 0.05, 0.0, exact_gap=1e-3) == "fails"  # the Euler stack is not the ResNet
    # the threshold inside two standard errors of the mean: no decision either way
    assert decide_resnet(0.3, 1.0, 0.10, 0.0, se_dist_small=0.005) == "inconclusive"
    assert decide_resnet(0.09, 0.0, 0.05, 0.0, se_dist_eta1=0.01) == "inconclusive"
    assert decide_resnet(0.3, 1.0, 0.075, 0.3, se_dist_small=0.004, se_acc_small=0.2) == "holds-with-correction"
    assert decide_resnet(0.3, 1.0, 0.2, 0.0, se_dist_small=0.02) == "inconclusive"


@pytest.fixture(scope="module")
def registered():
    errors = discover()
    bad = {k: v for k, v in errors.items() if ".ch06." in k or ".ch07." in k}
    assert not bad, bad


def _check(res, figs, tmp_path, verdict):
    assert res.verdict == verdict, (res.verdict, res.numbers)
    assert res.threshold and res.explanation
    if verdict in ("fails", "holds-with-correction"):
        assert res.corrected
    assert figs and all((tmp_path / f).exists() for f in figs)
    assert any(f.endswith(".png") for f in figs) and any(f.endswith(".svg") for f in figs)


def test_stiff_field_quick(registered, tmp_path):
    res, figs = run_one("ch06.stiff_field", tmp_path, quick=True)
    _check(res, figs, tmp_path, "holds-with-correction")
    n = res.numbers
    assert abs(n["predicted_explicit_limit_eta"] - 2 / abs(n["jacobian_eig_real_min"])) < 2e-3
    assert n["relative_mismatch"] < 0.05
    assert n["implicit_max_growth_over_grid"] < 1.0
    assert n["unstable_mode_implicit_factor"] == pytest.approx(-0.5, abs=1e-8)


def test_resnet_is_euler_quick(registered, tmp_path):
    res, figs = run_one("ch06.resnet_is_euler", tmp_path, quick=True)
    _check(res, figs, tmp_path, "holds-with-correction")
    n = res.numbers
    assert n["euler_stack_vs_handwritten_resnet_max_abs_gap"] == 0.0
    assert n["eta1"]["Euler ×1 (trained)"]["accuracy"] > 85.0
    assert 0 < n["eta1_flow_limit_rel_distance"] < 5
    # RK4 ×4 and ×16 agree: the refinement has converged to a flow limit
    assert abs(n["eta1"]["RK4 ×4"]["rel_change"] - n["eta1"]["RK4 ×16 (flow limit)"]["rel_change"]) < 0.02
