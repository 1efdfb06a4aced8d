import math

import numpy as np
import pytest

from terrainlab.atlas.stats import mean_se, side_of


def test_mean_se_matches_numpy():
    x = np.random.default_rng(0).normal(size=7)
    m, se = mean_se(x.tolist())
    assert m == pytest.approx(x.mean())
    assert se == pytest.approx(x.std(ddof=1) / math.sqrt(7))


def test_mean_se_edge_cases():
    assert mean_se([2.5]) == (2.5, 0.0)
    assert math.isnan(mean_se([1.0, float("nan")])[1])
    with pytest.raises(ValueError, match="values"):
        mean_se([])


def test_side_of():
    assert side_of(1.0, 0.2, 0.5) == "above"  # 1 - 0.4 > 0.5
    assert side_of(1.0, 0.26, 0.5) == "inside"
    assert side_of(0.0, 0.2, 0.5) == "below"
    assert side_of(1.0, 0.2, 0.5, k=3) == "inside"
    assert side_of(float("nan"), 0.1, 0.0) == "inside"
    with pytest.raises(ValueError, match="k must"):
        side_of(1.0, 0.1, 0.0, k=-1)


def test_gate_on_control():
    from terrainlab.atlas.stats import gate_on_control

    assert gate_on_control("fails", "holds", "holds") == "fails"
    assert gate_on_control("fails", "fails", "holds") == "inconclusive"
    assert gate_on_control("holds", "fails", {"fails", "inconclusive"}) == "holds"
    assert gate_on_control("holds", "holds", {"fails", "inconclusive"}) == "inconclusive"
    with pytest.raises(ValueError, match="expected"):
        gate_on_control("holds", "holds", set())
