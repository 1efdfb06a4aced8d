"""ch09.training_shortens_reasoning and ch09.scale_smoothness: the decide functions both ways, the
per-run summary, and one quick end-to-end run of each experiment."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from terrainlab.atlas import discover, run_one
from terrainlab.atlas.chapters.ch09.scale_smoothness import decide_scale_smoothness
from terrainlab.atlas.chapters.ch09.training_shortens_reasoning import (
    decide_training_shortens,
    summarise,
)


@pytest.mark.parametrize(
    ("iters", "control", "trace", "kappa", "verdict"),
    [
        (3.0, 0.9, 0.1, 10.0, "fails"),  # plain solve grows, the Jacobian-regularised control does not
        (3.0, 2.0, 0.1, 10.0, "inconclusive"),  # both grow: the measurement does not separate them
        (0.5, 0.5, 0.5, 0.5, "holds"),  # shorter solves, smaller Hessian, smoother
        (0.5, 1.0, 0.5, 2.0, "holds-with-correction"),  # shorter and smaller, but κ rises
        (1.0, 1.0, 0.5, 0.5, "inconclusive"),  # iterations flat
        (0.5, 0.5, 1.0, 0.5, "inconclusive"),  # iterations fall but the Hessian does not shrink
    ],
)
def test_decide_training_shortens(iters, control, trace, kappa, verdict):
    assert decide_training_shortens(iters, control, trace, kappa) == verdict


def test_summarise_ratios():
    E = 8
    it = [8.0] + [8.0 + 2 * e for e in range(1, E + 1)]  # 8, 10, …, 24
    log = {"iters_mean": it, "trace": [1.0] * (E + 1), "kappa": [0.5] + [1.0] * E,
           "accuracy": [0.1] + [0.9] * E, "converged": [1.0] * (E + 1)}
    s = summarise(log)
    assert s["iters_late"] == pytest.approx(23.0)  # mean of the last two epochs (22, 24)
    assert s["iters_ratio"] == pytest.approx(23.0 / 8.0)
    assert s["iters_spearman_vs_epoch"] == pytest.approx(1.0)
    assert s["iters_fraction_of_epochs_falling"] == 0.0
    assert s["kappa_ratio"] == pytest.approx(2.0) and s["trace_ratio"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("lo", "hi", "c_alpha", "c_lo", "verdict"),
    [
        (0.1, 0.3, 0.5, 0.4, "holds"),
        (-0.1, -0.05, 0.5, 0.4, "fails"),  # κ grows with N
        (-0.02, 0.03, 0.45, 0.3, "fails"),  # no trend, tightly
        (-0.2, 0.3, 0.5, 0.4, "inconclusive"),  # wide interval around 0
        (0.1, 0.3, 0.2, 0.1, "inconclusive"),  # control misses its built-in exponent
        (0.1, 0.3, 0.5, -0.1, "inconclusive"),  # control's interval reaches 0
    ],
)
def test_decide_scale_smoothness(lo, hi, c_alpha, c_lo, verdict):
    assert decide_scale_smoothness(lo, hi, c_alpha, c_lo) == verdict


def _figures_exist(out: Path, figs):
    assert figs and all((out / f).exists() for f in figs)


def test_training_shortens_reasoning_quick(tmp_path):
    assert not {k: v for k, v in discover().items() if "ch09" in k}
    res, figs = run_one("ch09.training_shortens_reasoning", tmp_path, quick=True)
    _figures_exist(tmp_path, figs)
    assert res.verdict in ("holds", "holds-with-correction", "fails", "inconclusive")
    n = res.numbers
    assert n["claim_kind"] == "empirical"
    E = n["epochs"]
    for run in (n["plain"], n["control_jacobian_regularised"]):
        log = run["log"]
        assert len(log["iters_mean"]) == len(log["trace"]) == len(log["kappa"]) == E + 1
        assert all(1 <= v <= 200 for v in log["iters_mean"])
        assert all(0 <= v <= 1 for v in log["accuracy"] + log["converged"])
        assert all(0 < v <= 0.9 for v in log["trace"])  # 1 − Σp² ≤ 1 − 1/K
        assert run["iters_ratio"] > 0 and math.isfinite(run["kappa_ratio"])
        assert log["accuracy"][-1] > 0.5  # it learns the task even in quick mode
    # same init: the two runs agree at epoch 0
    assert n["plain"]["log"]["iters_mean"][0] == n["control_jacobian_regularised"]["log"]["iters_mean"][0]


def test_scale_smoothness_quick(tmp_path):
    res, figs = run_one("ch09.scale_smoothness", tmp_path, quick=True)
    _figures_exist(tmp_path, figs)
    assert res.verdict in ("holds", "holds-with-correction", "fails", "inconclusive")
    n = res.numbers
    assert len(n["widths"]) >= 5 and n["widths"][0] == 8 and n["widths"][-1] == 512
    assert set(n["per_width"]) == {str(w) for w in n["widths"]}
    for v in n["per_width"].values():
        assert len(v["kappa"]) == n["seeds_per_width"] >= 2
        assert all(k > 0 for k in v["kappa"] + v["kappa_init"])
    lo, hi = n["alpha_ci95"]
    assert lo <= n["alpha"] <= hi
    # the control has κ ∝ N^(−1/2) built in: the same fitting code must find it
    assert abs(n["control_alpha"] - 0.5) < 0.1 and n["control_alpha_ci95"][0] > 0
    assert np.isfinite(n["alpha_at_loss_early"])
