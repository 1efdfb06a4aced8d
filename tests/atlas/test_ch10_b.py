"""ch10 (b): kmeans_is_not_gd and pca_svd_geometry — every decide function once per branch, every
experiment once (quick) with its verdict and its control's outcome asserted."""

from __future__ import annotations

import json

import pytest

from terrainlab.atlas import discover, run_one
from terrainlab.atlas.chapters.ch10.kmeans_is_not_gd import decide_kmeans, distinct_minima

NAN = float("nan")


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    errors = discover()
    bad = {k: v for k, v in errors.items() if ".ch10." in k}
    assert not bad, bad
    return tmp_path_factory.mktemp("ch10b")


def _check(res, figs, out, verdict, kind):
    assert res.verdict == verdict, (res.verdict, res.numbers)
    assert res.threshold and res.explanation
    assert (res.corrected is not None) == (verdict in ("fails", "holds-with-correction"))
    json.dumps(res.numbers)
    assert res.numbers["claim_kind"] == kind
    assert any("control" in k for k in res.numbers)
    assert figs and all((out / f).exists() for f in figs)
    assert any(f.endswith(".png") for f in figs) and any(f.endswith(".svg") for f in figs)


# ---------------------------------------------------------------- ch10.kmeans_is_not_gd
def test_decide_kmeans_branches():
    assert decide_kmeans(9.7, 2.4, 1e-15, 3.7, 1) == "holds-with-correction"
    assert decide_kmeans(9.7, 2.4, 1e-15, 1.0, 1) == "holds"
    assert decide_kmeans(1.0, 0.0, 1e-15, 3.7, 1) == "fails"  # one minimum
    assert decide_kmeans(9.7, 2.4, 1e-3, 3.7, 1) == "fails"  # Lloyd is not the per-cluster gradient step
    assert decide_kmeans(2.0, 0.5, 1e-15, 3.7, 1) == "inconclusive"  # 1.5 inside 2 ± 1
    assert decide_kmeans(9.7, 2.4, 1e-15, 3.7, 2) == "inconclusive"  # control had two minima
    assert decide_kmeans(NAN, NAN, 1e-15, 3.7, 1) == "inconclusive"
    with pytest.raises(ValueError, match="control_distinct_max"):
        decide_kmeans(9.7, 2.4, 1e-15, 3.7, 0)
    with pytest.raises(ValueError, match="distinct_mean"):
        decide_kmeans("9", 2.4, 1e-15, 3.7, 1)


def test_distinct_minima():
    assert distinct_minima([1.0, 1.0 + 1e-9, 1.5, 1.5, 2.0]) == [1.0, 1.5, 2.0]


def test_kmeans_is_not_gd_quick(out):
    res, figs = run_one("ch10.kmeans_is_not_gd", out, quick=True)
    _check(res, figs, out, "holds-with-correction", "empirical")
    n = res.numbers
    assert n["n_distinct_minima_mean"] - 2 * n["n_distinct_minima_se"] > 1.5
    assert n["control_n_distinct_minima_max"] == 1 and n["control_verdict"] == "fails"
    assert n["lloyd_inertia_increases"] == 0 and n["lloyd_all_converged"]
    assert n["lloyd_equals_gd_with_eta_k_1_over_2n_k_max_err"] < 1e-10
    assert n["gd_steps_to_1e-8_mean"] > n["lloyd_moving_steps_mean"]


# ---------------------------------------------------------------- ch10.pca_svd_geometry
def test_decide_pca_svd_branches():
    from terrainlab.atlas.chapters.ch10.pca_svd_geometry import decide_pca_svd

    assert decide_pca_svd(1e-15, 0.62, 0.003, 0.10, 0.001, 0.99, 0.001) == "holds-with-correction"
    assert decide_pca_svd(1e-15, 0.30, 0.01, 0.10, 0.001, 0.99, 0.001) == "holds"
    assert decide_pca_svd(1e-15, 0.90, 0.01, 0.60, 0.01, 0.99, 0.001) == "fails"  # neither low
    assert decide_pca_svd(1e-6, 0.30, 0.01, 0.10, 0.001, 0.99, 0.001) == "fails"  # a theorem check broke
    assert decide_pca_svd(1e-15, 0.50, 0.05, 0.10, 0.001, 0.99, 0.001) == "inconclusive"  # 0.5 inside
    assert decide_pca_svd(1e-15, 0.30, 0.01, 0.10, 0.001, 0.70, 0.01) == "inconclusive"  # control not full
    assert decide_pca_svd(1e-15, NAN, NAN, 0.10, 0.001, 0.99, 0.001) == "inconclusive"
    with pytest.raises(ValueError, match="theorem_err"):
        decide_pca_svd(None, 0.3, 0.01, 0.1, 0.001, 0.99, 0.001)


def test_pca_svd_geometry_quick(out):
    res, figs = run_one("ch10.pca_svd_geometry", out, quick=True)
    _check(res, figs, out, "holds-with-correction", "empirical")
    n = res.numbers
    assert n["theorem_pca_variance_equals_eigenvalue_rel_err"] < 1e-10
    assert n["theorem_svd_stages_equal_A_err"] < 1e-10
    assert n["digits_stable_rank_fraction_mean"] < 0.5 < n["digits_entropy_rank_fraction_mean"]
    assert n["control_gaussian_entropy_rank_fraction_mean"] > 0.8 and n["control_verdict"] == "fails"
