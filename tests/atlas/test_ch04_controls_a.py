"""Chapter 4 controls, part 1 (helper E1): decision branches and quick verdicts with their controls.

The quick run of ch04.edge_of_stability is asserted in tests/atlas/test_curvature_experiments.py
(verdict, control ratio); here are its decision branches.
"""

import math

import pytest

from terrainlab.atlas import discover
from terrainlab.atlas.chapters.ch04.edge_of_stability import decide_eos


@pytest.fixture(scope="module", autouse=True)
def _discovered():
    discover()


def test_decide_eos_branches():
    assert decide_eos(1.05, 0.01, 0.2, False) == "fails"  # sharpened to the edge
    assert decide_eos(0.3, 0.01, 0.2, True) == "holds"  # below the edge, dropped in every seed
    assert decide_eos(0.3, 0.01, 0.2, False) == "holds-with-correction"
    assert decide_eos(0.82, 0.02, 0.2, False) == "inconclusive"  # 0.8 inside mean ± 2 SE
    assert decide_eos(1.05, 0.01, 0.85, False) == "inconclusive"  # control at the edge as well
    assert decide_eos(1.05, 0.01, math.nan, False) == "inconclusive"
