"""Chapter 2 experiments: each decide_* function shown on every branch, and one quick run each asserting
the verdict and the control's outcome."""

import math

import pytest

from terrainlab.atlas import discover, run_one
from terrainlab.atlas.chapters.ch02.flat_minima_generalise import (
    CORR_MIN,
    FN_TOL,
    SPREAD_MIN,
    decide_flat_minima,
    rescaled,
    spearman,
)
from terrainlab.atlas.chapters.ch02.linear_mode_connectivity import (
    LARGE,
    SMALL,
    decide_linear_mode_connectivity,
)
from terrainlab.atlas.chapters.ch02.linear_probes import (
    CHANCE_MAX,
    F_MOST,
    F_NONE,
    decide_linear_probes,
    probe_accuracy,
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


# ---------------------------------------------------------------- ch02.linear_probes

def test_decide_linear_probes_branches():
    assert decide_linear_probes(0.9, 0.01, 0.1, 0.01) == "fails"
    assert decide_linear_probes(0.02, 0.01, 0.1, 0.01) == "holds"
    assert decide_linear_probes(0.3, 0.02, 0.1, 0.01) == "holds-with-correction"
    assert decide_linear_probes(F_MOST, 0.05, 0.1, 0.01) == "inconclusive"  # interval straddles F_MOST
    assert decide_linear_probes(F_NONE, 0.05, 0.1, 0.01) == "inconclusive"  # straddles F_NONE
    assert decide_linear_probes(0.9, 0.01, 0.5, 0.01) == "inconclusive"  # control above chance
    assert decide_linear_probes(0.9, 0.01, CHANCE_MAX, 0.01) == "inconclusive"
    assert decide_linear_probes(math.nan, 0.01, 0.1, 0.01) == "inconclusive"
    with pytest.raises(ValueError, match="^f_se must"):
        decide_linear_probes(0.9, -0.1, 0.1, 0.01)
    with pytest.raises(ValueError, match="^control_mean must be a number"):
        decide_linear_probes(0.9, 0.1, None, 0.01)


def test_probe_accuracy_reads_separable_and_shuffled_labels():
    import torch

    g = torch.Generator().manual_seed(0)
    y = torch.arange(200) % 10
    X = torch.nn.functional.one_hot(y, 10).double() * 3 + 0.1 * torch.randn(200, 10, generator=g, dtype=torch.float64)
    assert probe_accuracy(X[:100], y[:100], X[100:], y[100:]) == 1.0
    assert probe_accuracy(X[:100], y[:100][torch.randperm(100, generator=g)], X[100:], y[100:]) < 0.5
    with pytest.raises(ValueError, match="^ridge must"):
        probe_accuracy(X, y, X, y, ridge=0.0)


def test_linear_probes_quick(tmp_path):
    res, figs = run_one("ch02.linear_probes", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "fails"
    assert n["claim_kind"] == "empirical" and len(n["seeds"]) == 3
    assert n["structure_fraction_mean"] - 2 * n["structure_fraction_se"] > F_MOST
    assert n["acc_init_mean"] > 0.5 and n["acc_trained_mean"] > n["acc_init_mean"]
    assert n["control_shuffled_acc_mean"] + 2 * n["control_shuffled_acc_se"] < CHANCE_MAX
    assert n["control_outcome"].startswith("at chance")
    assert res.corrected and figs


# ---------------------------------------------------------------- ch02.flat_minima_generalise

def test_decide_flat_minima_branches():
    assert decide_flat_minima(0.8, 0.1, 100.0, 0.0) == "holds-with-correction"
    assert decide_flat_minima(-0.4, 0.2, 100.0, 0.0) == "fails"
    assert decide_flat_minima(CORR_MIN, 0.2, 100.0, 0.0) == "inconclusive"  # straddles CORR_MIN
    assert decide_flat_minima(math.nan, 0.2, 100.0, 0.0) == "inconclusive"
    assert decide_flat_minima(0.8, 0.1, SPREAD_MIN / 2, 0.0) == "inconclusive"  # rescaling did not spread λ_max
    assert decide_flat_minima(0.8, 0.1, 100.0, 1e-3) == "inconclusive"  # rescaling changed the function
    with pytest.raises(ValueError, match="^rho_se must"):
        decide_flat_minima(0.8, -0.1, 100.0, 0.0)
    with pytest.raises(ValueError, match="^control_spread must be a number"):
        decide_flat_minima(0.8, 0.1, "big", 0.0)


def test_spearman_and_rescaling():
    import torch

    from terrainlab.atlas.chapters.ch02._mlp import mlp

    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="^x and y must"):
        spearman([1, 2], [1, 2])
    net = mlp((64, 8, 10), 0)
    x = torch.randn(20, 64, dtype=torch.float64)
    a, b = rescaled(net, 1.0), rescaled(net, 7.0)
    assert torch.allclose(a(x), b(x), rtol=0, atol=1e-12)  # same function
    assert torch.allclose(b[0].weight, 7.0 * a[0].weight)  # different parameters


def test_flat_minima_generalise_quick(tmp_path):
    res, figs = run_one("ch02.flat_minima_generalise", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "fails"
    assert n["claim_kind"] == "empirical" and len(n["seeds"]) == 3 and n["all_reached_target"]
    assert n["spearman_lam_gap"] + 2 * n["spearman_lam_gap_se"] < CORR_MIN
    assert n["control_lam_spread_min"] >= SPREAD_MIN and n["control_fn_change_max"] <= FN_TOL
    assert n["control_gap_change_max"] == 0.0
    assert n["control_outcome"].startswith("same function")
    assert res.corrected and figs


def test_helpers_name_bad_arguments():
    from terrainlab.atlas.chapters.ch02._mlp import digits_split, mlp, train
    from terrainlab.atlas.chapters.ch02.flat_minima_generalise import bootstrap_se

    with pytest.raises(ValueError, match="^n_train"):
        digits_split(1500, 500)
    with pytest.raises(ValueError, match="^widths must"):
        mlp((64,), 0)
    net = mlp((64, 4, 10), 0)
    X, y = digits_split(20, 10)[:2]
    with pytest.raises(ValueError, match="^steps must"):
        train(net, X, y, steps=0)
    with pytest.raises(ValueError, match="^batch_size must"):
        train(net, X, y, steps=1, batch_size=50)
    with pytest.raises(ValueError, match="^alpha must"):
        rescaled(net, 0.0)
    with pytest.raises(ValueError, match="^n_boot must"):
        bootstrap_se([1, 2, 3], [1, 2, 3], 1, 0)
