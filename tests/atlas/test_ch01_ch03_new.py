"""New chapter 1 and 3 experiments: each decide_* branch, bad input, and a quick run asserting the verdict
and the control's outcome."""

import math

import pytest
import torch

from terrainlab.atlas import discover, run_one
from terrainlab.atlas.chapters.ch01.gd_path_bends import decide_gd_path_bends, path_geometry


@pytest.fixture(scope="module", autouse=True)
def _discover():
    discover()


# ---------------------------------------------------------------- ch01.gd_path_bends


def test_decide_gd_path_bends_branches():
    assert decide_gd_path_bends(0.07, 1e-16, 1e-16) == "holds"
    assert decide_gd_path_bends(0.01, 1e-16, 1e-16) == "fails"  # no bend
    assert decide_gd_path_bends(0.07, 1e-3, 1e-16) == "fails"  # contraction factors wrong
    assert decide_gd_path_bends(0.07, 1e-16, 1e-3) == "inconclusive"  # control not straight
    assert decide_gd_path_bends(math.nan, 1e-16, 1e-16) == "inconclusive"
    with pytest.raises(ValueError, match="min_deviation"):
        decide_gd_path_bends(-1.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="control_deviation"):
        decide_gd_path_bends(0.1, 0.0, "x")


def test_path_geometry():
    dev, ratio = path_geometry(torch.tensor([[1.0, 1.0], [1.0, 0.0], [0.0, 0.0]]))
    assert dev == pytest.approx(1 / 2)  # (1, 0) is 1/√2 from the diagonal chord of length √2
    assert ratio == pytest.approx(2 / math.sqrt(2))
    with pytest.raises(ValueError, match="path"):
        path_geometry(torch.zeros(3))
    with pytest.raises(ValueError, match="path"):
        path_geometry(torch.zeros(3, 2))


def test_gd_path_bends_quick(tmp_path):
    res, figs = run_one("ch01.gd_path_bends", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "holds"
    assert n["claim_kind"] == "theorem-check"
    assert n["control_verdict"] == "fails"  # the isotropic bowl's paths are straight
    assert n["control_max_deviation_over_chord"] < 1e-12
    assert n["min_deviation_over_starts"] > 0.05
    assert n["gd_factor_theta2_measured"] == pytest.approx(0.4, abs=1e-12)
    assert figs
