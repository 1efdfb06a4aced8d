import math

import pytest

from terrainlab.atlas import discover, run_one
from terrainlab.atlas.chapters.ch03.landscape_slices import decide_landscape
from terrainlab.atlas.chapters.ch03.sharp_vs_flat import decide_sharp_vs_flat
from terrainlab.atlas.chapters.ch04.edge_of_stability import (
    claim_holds_at,
    decide_eos,
    sharpened_to_edge,
    summarise,
)


def test_decide_sharp_vs_flat_each_way():
    assert decide_sharp_vs_flat(1.6, 0.0, math.sqrt(10), 4.0) == "holds-with-correction"  # degenerate
    assert decide_sharp_vs_flat(1.6, 0.2, 10.0, 4.0) == "holds"  # non-degenerate, no crossing
    assert decide_sharp_vs_flat(1.6, 0.2, 2.0, 4.0) == "holds-with-correction"  # crossing in range
    assert decide_sharp_vs_flat(1.6, 2.0, 10.0, 4.0) == "fails"


def _s(l0, early, peak, final, eta):
    return {"eta": eta, "two_over_eta": 2 / eta, "lam_init": l0, "lam_early_min": early,
            "lam_peak": peak, "lam_final": final}


def test_decide_eos_each_way():
    drop = _s(10.0, 5.0, 10.0, 4.5, 0.1)  # drops sharply, then decays slowly: the book's picture
    sharpen = _s(2.3, 2.5, 7.4, 6.8, 0.3)  # progressive sharpening to 2/η = 6.67
    assert claim_holds_at(drop) and not claim_holds_at(sharpen)
    assert sharpened_to_edge(sharpen) and not sharpened_to_edge(drop)
    assert decide_eos(0.3, 0.01, 0.2, True) == "holds"
    assert decide_eos(1.0, 0.01, 0.2, False) == "fails"
    assert decide_eos(0.3, 0.01, 0.2, False) == "holds-with-correction"
    assert decide_eos(0.8, 0.05, 0.2, False) == "inconclusive"  # the edge inside mean ± 2 SE
    assert decide_eos(1.0, 0.01, 0.9, False) == "inconclusive"  # the control at the edge too
    s = summarise([0, 10, 20, 90, 100], [3.0, 2.0, 2.5, 2.4, 2.2], 0.5, 100)
    assert s["lam_init"] == 3.0 and s["lam_early_min"] == 2.0 and s["lam_final"] == pytest.approx(2.3)


def test_decide_landscape_each_way():
    assert decide_landscape(2.0, 0.95, 0.02) == "holds"
    assert decide_landscape(90.0, 0.95, 0.02) == "holds-with-correction"
    assert decide_landscape(2.0, 0.4, 0.02) == "fails"
    assert decide_landscape(2.0, 0.95, 0.5) == "fails"


@pytest.fixture(scope="module", autouse=True)
def _discover():
    discover()


def test_sharp_vs_flat_quick(tmp_path):
    res, figs = run_one("ch03.sharp_vs_flat", tmp_path, quick=True)
    assert res.verdict == "holds-with-correction"
    n = res.numbers
    assert n["hessian_sharp"] == pytest.approx(1.6, rel=1e-12) and n["hessian_flat"] == 0.0
    assert n["hessian_flat_away_from_min"]["1.0"] == pytest.approx(0.96, rel=1e-9)
    assert n["crossover_delta"] == pytest.approx(math.sqrt(10), rel=1e-3)
    assert n["gd_flat_loglog_slope"] == pytest.approx(-0.5, abs=0.05)
    assert all((tmp_path / f).stat().st_size > 1000 for f in figs) and len(figs) == 2


def test_edge_of_stability_quick(tmp_path):
    res, figs = run_one("ch04.edge_of_stability", tmp_path, quick=True)
    assert res.verdict == "fails" and res.corrected
    runs = res.numbers["per_seed"]
    assert len(runs) >= 3 and all(r["lam_peak"] > 1.25 * r["lam_init"] for r in runs)  # sharpening
    assert res.numbers["control_edge_ratio"] < 0.8 < res.numbers["edge_ratio_mean"]
    assert all(r["converged_readings"] >= 0.5 for r in runs)
    assert all(r["hvp_per_reading"] <= 16 for r in runs)
    assert all((tmp_path / f).exists() for f in figs) and len(figs) == 2


def test_landscape_slices_quick(tmp_path):
    res, figs = run_one("ch03.landscape_slices", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict in ("holds-with-correction", "holds")
    assert n["lambda_max"] >= n["lambda_2"] > 0
    assert max(n["eig_residuals"]) <= 1e-4 * n["lambda_max"]
    assert n["curvature_ratio"] > 1
    assert 0 < n["pca_explained_variance"] <= 1
    assert abs(n["origin_loss"] - n["final_loss"]) < 1e-5
    assert len(figs) == 4 and all((tmp_path / f).stat().st_size > 1000 for f in figs)
