"""aleph.void_reconstruction: decide_void once per branch (with the 2-SE inconclusive band), the control gate,
and the quick run with its verdict and its control's outcome asserted."""

from __future__ import annotations

import json
import math

import pytest

from terrainlab.atlas import discover, run_one
from terrainlab.atlas.chapters.aleph.void_reconstruction import (
    AXES_FRACTION,
    GAP_MAX,
    decide_void,
    decide_void_reconstruction,
)

NAN = float("nan")


def test_decide_void_branches():
    # holds: gap + 2 SE below 0.01 and axes − 2 SE above 0.9·128 = 115.2
    assert decide_void(0.007, 0.001, 128.0, 0.0, 128) == "holds"
    # fails: the gap lies above 0.01 by 2 SE
    assert decide_void(0.03, 0.005, 128.0, 0.0, 128) == "fails"
    # fails: too few axes in use, even with a small gap
    assert decide_void(0.001, 0.0001, 40.0, 3.0, 128) == "fails"
    # inconclusive: the threshold lies inside gap ± 2 SE
    assert decide_void(0.0095, 0.0005, 128.0, 0.0, 128) == "inconclusive"
    # inconclusive: the axes threshold lies inside axes ± 2 SE
    assert decide_void(0.005, 0.0005, 117.0, 1.0, 128) == "inconclusive"
    # inconclusive: a NaN (a diverged seed) decides nothing
    assert decide_void(NAN, NAN, 128.0, 0.0, 128) == "inconclusive"
    # the thresholds are the module's constants
    assert GAP_MAX == 0.01 and AXES_FRACTION == 0.9
    assert decide_void(0.015, 0.001, 128.0, 0.0, 128, gap_max=0.02) == "holds"


def test_decide_void_bad_input():
    with pytest.raises(ValueError, match="two_k"):
        decide_void(0.0, 0.0, 1.0, 0.0, 1)
    with pytest.raises(ValueError, match="gap_max"):
        decide_void(0.0, 0.0, 1.0, 0.0, 8, gap_max=0)
    with pytest.raises(ValueError, match="axes_fraction"):
        decide_void(0.0, 0.0, 1.0, 0.0, 8, axes_fraction=1.5)


def test_decide_void_reconstruction_gates_on_the_control():
    assert decide_void_reconstruction("holds", "fails") == "holds"
    assert decide_void_reconstruction("fails", "fails") == "fails"
    assert decide_void_reconstruction("holds", "holds") == "inconclusive"
    assert decide_void_reconstruction("holds", "inconclusive") == "inconclusive"


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    errors = discover()
    bad = {k: v for k, v in errors.items() if "aleph.void" in k}
    assert not bad, bad
    return tmp_path_factory.mktemp("aleph_void")


def test_void_reconstruction_quick(out):
    res, figs = run_one("aleph.void_reconstruction", out, quick=True)
    n = res.numbers
    assert res.verdict == "inconclusive"  # quick (40 steps): the gap 0.0098 ± 0.0005 straddles 0.01
    assert n["verdict_before_control"] == "inconclusive"
    assert n["claim_kind"] == "empirical"
    assert n["control_verdict"] == "fails"  # the control (hard, V = 1) reads the other way
    assert n["control_gap"] - 2 * n["control_gap_se"] > GAP_MAX
    assert n["control_axes_in_use"] < AXES_FRACTION * n["two_k"]
    assert len(n["seeds"]) >= 3 and n["n_parameters"] == 26795 and n["two_k"] == 128
    assert n["train_status"] == ["completed"]
    assert n["axes_in_use_hard"] == 128
    for m in ("soft", "hard", "none"):
        assert len(n[f"cosine_{m}_per_seed"]) == 3 and math.isfinite(n[f"cosine_{m}_se"])
    # every cosine beats the flat-colour floor; the hard address sits below none
    assert n["cosine_hard"] > n["flat_colour_cosine"] and n["cosine_none"] > n["cosine_hard"]
    # the digits arm (reported beside the verdict): every mode trains and reconstructs held-out digits
    for m in ("soft", "hard", "none"):
        assert 0.5 < n[f"digits_cosine_{m}"] < 1 and n[f"digits_axes_in_use_{m}"] <= 128
    assert math.isclose(n["digits_gap_none_minus_hard"], n["digits_cosine_none"] - n["digits_cosine_hard"])
    assert "digits" in res.explanation
    assert res.corrected is None
    assert figs and all((out / f).exists() for f in figs)
    json.dumps(n)
