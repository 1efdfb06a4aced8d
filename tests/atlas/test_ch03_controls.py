"""Issue 17 §2 for chapter 3: each experiment's control, claim kind and verdict, and every branch of its decide_*."""

import math

import pytest

from terrainlab.atlas import discover, run_one
from terrainlab.atlas.chapters.ch03.bumpy_bowl_critical_points import (
    decide_bumpy_bowl_critical_points,
)


@pytest.fixture(scope="module", autouse=True)
def _registry():
    discover()


# ---------------------------------------------------------------- ch03.bumpy_bowl_critical_points
def test_decide_bumpy_bowl_every_branch():
    d = decide_bumpy_bowl_critical_points
    assert d(2, 1, 0, 0, 1e-12, False) == "holds"
    assert d(1, 0, 0, 0, 1e-12, True) == "fails"
    assert d(1, 0, 0, 0, 1e-12, False) == "inconclusive"  # no certificate
    assert d(2, 0, 0, 0, 1e-12, True) == "inconclusive"  # Morse sum ≠ 1
    assert d(1, 0, 0, 0, math.nan, True) == "inconclusive"  # residual not trustworthy
    # the control (a bowl past A*) must read holds, else nothing is decided
    assert d(1, 0, 0, 0, 1e-12, True, control_verdict="fails") == "inconclusive"
    assert d(2, 1, 0, 0, 1e-12, True, control_verdict="inconclusive") == "inconclusive"
    with pytest.raises(ValueError, match="control_verdict"):
        d(1, 0, 0, 0, 1e-12, True, control_verdict="maybe")


def test_bumpy_bowl_quick_verdict_and_control(tmp_path):
    res, _ = run_one("ch03.bumpy_bowl_critical_points", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "fails" and n["claim_kind"] == "theorem-check"
    assert n["control_verdict"] == "holds"
    assert n["control_counts"] == {"min": 2, "saddle": 1, "max": 0, "degenerate": 0}
    assert n["control_amplitude"] > n["saddle_node_amplitude"] > n["amplitude"]
