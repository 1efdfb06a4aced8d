"""Chapter 2 experiments: each decide_* function shown on every branch, and one quick run each asserting
the verdict and the control's outcome."""

import math

import pytest

from terrainlab.atlas import discover, run_one
from terrainlab.atlas.chapters.ch02.linear_mode_connectivity import (
    LARGE,
    SMALL,
    decide_linear_mode_connectivity,
)


@pytest.fixture(scope="module", autouse=True)
def _registry():
    discover()


# ---------------------------------------------------------------- ch02.linear_mode_connectivity

def test_decide_linear_mode_connectivity_branches():
    ok = dict(control_shared_mean=0.0, control_shared_se=0.0, control_perm_raw=0.9, control_perm_aligned=0.0)
    assert decide_linear_mode_connectivity(0.8, 0.02, 0.05, 0.01, **ok) == "holds-with-correction"
    assert decide_linear_mode_connectivity(0.8, 0.02, 0.5, 0.01, **ok) == "fails"
    assert decide_linear_mode_connectivity(0.01, 0.001, 0.0, 0.0, **ok) == "holds"
    # the aligned barrier straddles SMALL, or the raw one straddles LARGE: inconclusive
    assert decide_linear_mode_connectivity(0.8, 0.02, SMALL, 0.01, **ok) == "inconclusive"
    assert decide_linear_mode_connectivity(LARGE, 0.05, 0.01, 0.001, **ok) == "inconclusive"
    assert decide_linear_mode_connectivity(math.nan, 0.0, 0.01, 0.001, **ok) == "inconclusive"
    # a control that does not come out makes the measurement unable to tell: inconclusive
    for bad in (dict(ok, control_shared_mean=0.5), dict(ok, control_perm_raw=0.05),
                dict(ok, control_perm_aligned=1e-3)):
        assert decide_linear_mode_connectivity(0.8, 0.02, 0.05, 0.01, **bad) == "inconclusive"
    with pytest.raises(ValueError, match="^raw_se must"):
        decide_linear_mode_connectivity(0.8, -1.0, 0.05, 0.01, **ok)
    with pytest.raises(ValueError, match="^raw_mean must be a number"):
        decide_linear_mode_connectivity("0.8", 0.1, 0.05, 0.01, **ok)


def test_linear_mode_connectivity_quick(tmp_path):
    res, figs = run_one("ch02.linear_mode_connectivity", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "holds-with-correction"
    assert n["claim_kind"] == "empirical" and len(n["seeds"]) == 3
    assert n["barrier_raw_mean"] - 2 * n["barrier_raw_se"] > LARGE
    assert n["barrier_aligned_mean"] + 2 * n["barrier_aligned_se"] < SMALL
    assert n["aligned_function_change_max"] < 1e-4
    assert n["control_outcome"] == "as expected"
    assert n["control_shared_init_barrier_mean"] < SMALL
    assert n["control_permuted_barrier_raw_mean"] > LARGE and n["control_permuted_barrier_aligned_max"] == 0.0
    assert res.corrected and figs
