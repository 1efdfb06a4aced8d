"""ch08.reasoning_field and ch08.metric_and_stability (issue 17 §1): decide functions one case per
verdict, the small helpers, and one quick end-to-end run each with its verdict and key numbers."""

from pathlib import Path

import pytest
import torch

from terrainlab.atlas import discover, run_one
from terrainlab.atlas.chapters.ch08.reasoning_field import (
    HOLD,
    attractor_roundness,
    decide_reasoning_field,
    eigen_cv,
    random_energy,
    wilson_interval,
)

discover()


def test_decide_reasoning_field_each_verdict():
    assert decide_reasoning_field(0.85, 0.95, 0.9) == "holds"
    assert decide_reasoning_field(0.35, 0.5, 0.9) == "fails"
    assert decide_reasoning_field(0.7, 0.9, 0.9) == "inconclusive"
    assert decide_reasoning_field(0.85, 0.95, HOLD - 0.01) == "inconclusive"  # control did not come out


def test_wilson_and_cv_helpers():
    lo, hi = wilson_interval(8, 10)
    assert abs(lo - 0.490) < 1e-3 and abs(hi - 0.943) < 1e-3
    assert wilson_interval(0, 0) == (0.0, 1.0) and wilson_interval(5, 5)[1] == 1.0
    with pytest.raises(ValueError, match="k"):
        wilson_interval(3, 2)
    with pytest.raises(ValueError, match="n"):
        wilson_interval(0, -1)
    assert torch.allclose(eigen_cv(torch.tensor([[-2.0, -2.0], [-3.0, -1.0]])), torch.tensor([0.0, 0.5]))
    with pytest.raises(ValueError, match="eigs"):
        eigen_cv([1.0])


def test_control_draw_is_round_at_the_correct_attractor():
    r = attractor_roundness(random_energy(torch.Generator().manual_seed(3), control=True))
    assert r is not None and r["holds_euclid"]
    assert r["cv_euclid"][r["correct"]] < 0.2 < min(c for j, c in enumerate(r["cv_euclid"]) if j != r["correct"])
    with pytest.raises(ValueError, match="K"):
        random_energy(torch.Generator().manual_seed(0), control=True, K=4)


def test_reasoning_field_quick(tmp_path):
    res, figs = run_one("ch08.reasoning_field", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "fails" and res.corrected
    assert n["claim_kind"] == "empirical" and n["n_usable"] >= 30
    assert n["fraction_holds_ci95"][1] < HOLD and n["fraction_holds_ci95"][0] < n["chance_rate"]
    assert n["control_fraction_holds_ci95"][0] >= HOLD and n["control_fraction_holds"] == 1.0
    assert n["median_eigen_cv_fisher"] < 0.05 < n["median_eigen_cv_euclid"]
    toy = n["toy"]
    assert toy["n_attractors"] == 3 and toy["n_saddles"] == 3 and toy["n_repellers"] == 1
    assert toy["coverage"][0] > max(toy["coverage"][1:]) and abs(sum(toy["coverage"]) - 1) < 0.02
    assert figs and all((Path(tmp_path) / f).exists() for f in figs)
