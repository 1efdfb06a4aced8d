"""ch03.critical_point_index_vs_energy: every branch of its decide_*, its helpers' input checks, and the quick
run's verdict and control."""

import math

import numpy as np
import pytest
import torch

from terrainlab.atlas import discover, run_one
from terrainlab.atlas.chapters.ch03.critical_point_index_vs_energy import (
    NEAR_MIN,
    RHO_MIN,
    decide_critical_index,
    index_fraction_theory,
    random_landscape,
    semicircle_cdf,
)

EXP = "ch03.critical_point_index_vs_energy"


@pytest.fixture(scope="module", autouse=True)
def _registry():
    discover()


def test_decide_critical_index_every_branch():
    d = decide_critical_index
    ctrl = (0.1, 0.1)  # the control's ρ: 0.1 + 2·0.1 < 0.6 = RHO_MIN, below it as it must be
    assert d(0.9, 0.02, 0.05, 0.01, *ctrl) == "holds"
    assert d(0.9, 0.02, 0.35, 0.02, *ctrl) == "holds-with-correction"
    assert d(0.2, 0.05, 0.35, 0.02, *ctrl) == "fails"  # 0.2 + 0.1 < 0.6
    assert d(-0.3, 0.05, 0.35, 0.02, *ctrl) == "fails"
    assert d(0.55, 0.05, 0.35, 0.02, *ctrl) == "inconclusive"  # 0.6 inside 0.55 ± 0.1
    assert d(0.9, 0.02, 0.12, 0.02, *ctrl) == "inconclusive"  # 0.1 inside 0.12 ± 0.04
    # the control does not read below the threshold: nothing is decided
    assert d(0.9, 0.02, 0.05, 0.01, 0.9, 0.02) == "inconclusive"
    assert d(0.9, 0.02, 0.05, 0.01, 0.4, 0.1) == "inconclusive"  # 0.6 inside the control's interval 0.4 ± 0.2
    assert d(0.2, 0.05, 0.35, 0.02, 0.6, 0.02) == "inconclusive"
    # a NaN anywhere (e.g. a seed with too few points for a correlation)
    assert d(math.nan, 0.02, 0.05, 0.01, *ctrl) == "inconclusive"
    assert d(0.9, math.nan, 0.05, 0.01, *ctrl) == "inconclusive"
    assert d(0.9, 0.02, 0.05, 0.01, 0.1, math.nan) == "inconclusive"
    # the thresholds are parameters
    assert d(0.9, 0.02, 0.35, 0.02, *ctrl, near_min=0.5) == "holds"
    assert d(0.6, 0.02, 0.05, 0.01, *ctrl, rho_min=0.7) == "fails"
    assert 0 < NEAR_MIN < 1 and -1 < RHO_MIN < 1


def test_decide_critical_index_bad_thresholds():
    with pytest.raises(ValueError, match="near_min"):
        decide_critical_index(0.9, 0.02, 0.05, 0.01, 0.1, 0.1, near_min=1.5)
    with pytest.raises(ValueError, match="rho_min"):
        decide_critical_index(0.9, 0.02, 0.05, 0.01, 0.1, 0.1, rho_min=math.nan)
    with pytest.raises(ValueError, match="rho_min"):
        decide_critical_index(0.9, 0.02, 0.05, 0.01, 0.1, 0.1, rho_min=1.0)


def test_semicircle_and_bray_dean_law():
    x = np.linspace(-1.2, 1.2, 49)
    F = semicircle_cdf(x)
    assert np.all(np.diff(F) >= 0) and F[0] == 0.0 and F[-1] == 1.0
    assert np.allclose(F + semicircle_cdf(-x), 1.0)  # symmetric
    # the law's index fraction rises with the energy and is 1/2 at e = 0, for any d
    assert float(index_fraction_theory(0.0, 12)) == pytest.approx(0.5)
    e = np.linspace(-3, 3, 7)
    assert np.all(np.diff(index_fraction_theory(e, 12)) > 0)
    # a GOE matrix shifted by −e·I: its fraction of negative eigenvalues follows the same law
    g = torch.Generator().manual_seed(0)
    d, e0 = 200, -6.0
    A = torch.randn(d, d, generator=g, dtype=torch.float64)
    G = (A + A.T) / math.sqrt(2)  # off-diagonal variance 1, diagonal 2: the conditional Hessian
    frac = float((torch.linalg.eigvalsh(G - e0 * torch.eye(d, dtype=torch.float64)) < 0).double().mean())
    assert frac == pytest.approx(float(index_fraction_theory(e0, d)), abs=0.03)
    with pytest.raises(ValueError, match="dim"):
        index_fraction_theory(0.0, 0)


def test_random_landscape_is_the_unit_field_and_checks_its_input():
    g = torch.Generator().manual_seed(1)
    T = random_landscape(6, 2000, g)
    pts = 50.0 * torch.randn(400, 6, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    v = T(pts)
    assert abs(float(v.mean())) < 0.2 and float(v.var()) == pytest.approx(1.0, abs=0.25)
    # the tilt adds τ·u·θ to the same field when built from a generator in the same state
    Tt = random_landscape(6, 2000, torch.Generator().manual_seed(1), tilt=2.0)
    diff = (Tt(pts) - v) / 2.0
    u = torch.linalg.lstsq(pts, diff[:, None]).solution[:, 0]
    assert float(torch.linalg.vector_norm(u)) == pytest.approx(1.0, abs=1e-9)
    with pytest.raises(ValueError, match="dim"):
        random_landscape(0, 10, g)
    with pytest.raises(ValueError, match="n_features"):
        random_landscape(3, 0, g)
    with pytest.raises(ValueError, match="generator"):
        random_landscape(3, 10, 0)
    with pytest.raises(ValueError, match="tilt"):
        random_landscape(3, 10, g, tilt=math.inf)


def test_quick_verdict_and_control(tmp_path):
    res, figures = run_one(EXP, tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "holds-with-correction", res.explanation
    assert n["claim_kind"] == "empirical"
    assert len(n["seeds"]) >= 3 and min(n["n_critical_points_per_seed"]) >= 15
    # the index rises with the loss (ρ − 2 SE above the threshold) ...
    assert n["spearman_loss_index"] - 2 * n["spearman_loss_index_se"] > RHO_MIN
    # ... but the lowest-loss fifth is still a saddle with many descending directions
    assert n["low_loss_index_fraction"] - 2 * n["low_loss_index_fraction_se"] > NEAR_MIN
    assert n["high_loss_index_fraction"] > n["low_loss_index_fraction"]
    # control: the tilted field reads the other way (ρ + 2 SE below the threshold) ...
    assert n["control_side_of_threshold"] == "below"
    assert n["control_spearman_loss_index"] + 2 * n["control_spearman_loss_index_se"] < RHO_MIN
    # ... while its index still follows the field's own height
    assert n["control_spearman_field_part_index"] > RHO_MIN
    assert res.corrected and "not near minima" in res.corrected
    assert any(f.endswith("index_vs_energy.png") for f in figures)
