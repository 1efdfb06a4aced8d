"""Stability limits are computed from R(z), and R(z) is the real amplification of the update code."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from terrainlab.core import Euler, gradient_field, rollout
from terrainlab.optim import (
    AdamScheme,
    GradientDescentScheme,
    HeavyBall,
    HeavyBallScheme,
    NesterovScheme,
    ProximalPointScheme,
    one_step_eta,
    plot_stability_regions,
    quadratic_trace,
    stability_region,
    stability_threshold,
)

LIMITS = [  # scheme, textbook limit on η·λ_max (cross-check only; the code scans R)
    (GradientDescentScheme(), 2.0),
    (HeavyBallScheme(0.9), 2 * 1.9),
    (HeavyBallScheme(0.5), 2 * 1.5),
    (NesterovScheme(0.9), 2 * 1.9 / 2.8),
    (NesterovScheme(schedule="convex"), 4 / 3),
    (AdamScheme(beta1=0.9), 2 * 1.9 / 0.1),
]


@pytest.mark.parametrize("scheme,expected", LIMITS, ids=lambda x: repr(x))
def test_stability_limit_is_scanned_from_R(scheme, expected):
    assert scheme.stability_limit(1.0) == pytest.approx(expected, rel=1e-9)
    assert scheme.stability_limit(10.0) == pytest.approx(expected / 10, rel=1e-9)


@pytest.mark.parametrize("scheme", [GradientDescentScheme(), HeavyBallScheme(0.9), NesterovScheme(0.7)],
                         ids=repr)
def test_iteration_is_stable_just_below_the_limit_and_not_above(scheme):
    """Run the actual update on L = (λ/2)θ²: the limit from R must match the iteration."""
    lam = 50.0
    eta_max = scheme.stability_limit(lam)
    F = gradient_field(lambda th: 0.5 * lam * (th**2).sum(-1))
    th0 = torch.ones(1, dtype=torch.float64)
    finals = []
    for f in (0.98, 1.02):
        tr = rollout(F, scheme.init(th0), eta=f * eta_max, steps=400, scheme=scheme, record="last")
        finals.append(float(scheme.params(tr.final).abs().max()))
    assert finals[0] < 1e-3 and finals[1] > 1e3, finals


def test_adam_limit_matches_frozen_preconditioner_iteration():
    """Adam's R(z) is for the momentum recursion with P frozen: iterate it and compare."""
    sch = AdamScheme(beta1=0.9)
    zmax = sch.stability_limit(1.0)
    for f, stable in ((0.98, True), (1.02, False)):
        z = f * zmax
        x, u = 1.0, 0.0
        for _ in range(3000):
            u = 0.9 * u + 0.1 * z * x  # u = η m / P, gradient λx
            x = x - u
        assert (abs(x) < 1e-3) == stable


def test_heavy_ball_optimizer_reports_scheme_limit():
    opt = HeavyBall([torch.zeros(2, requires_grad=True)], lr=0.1, beta=0.9)
    assert opt.stability_limit(100.0) == pytest.approx(0.038, rel=1e-9)


def test_threshold_and_one_step():
    H = torch.tensor([[3.0, 1.0], [1.0, 3.0]])  # eigenvalues 2, 4
    assert stability_threshold(H) == pytest.approx(0.5)
    assert stability_threshold(np.array([-1.0, 0.0])) == float("inf")
    assert one_step_eta(4.0) == 0.25
    with pytest.raises(ValueError, match="H must"):
        stability_threshold(np.ones((2, 3)))


def test_quadratic_trace_book_figure():
    """L = 2θ² (λ = 4): η = 0.25 lands in one step, η = 0.5 = 2/λ is a period-2 orbit."""
    one = quadratic_trace(4.0, 0.25, theta0=1.0, steps=3)
    assert one.status == "one-step" and np.allclose(one.theta, [1, 0, 0, 0])
    two = quadratic_trace(4.0, 0.5, theta0=1.0, steps=3)
    assert two.status == "period-2" and np.allclose(two.theta, [1, -1, 1, -1])
    assert quadratic_trace(4.0, 0.1).status == "converges"
    assert quadratic_trace(4.0, 0.65).status == "diverges"
    assert quadratic_trace(4.0, 0.65).amplification == pytest.approx(1.6)


def test_stability_region_grid_and_plot(tmp_path):
    reg = stability_region(Euler(), re=(-3, 1), im=(-2, 2), n=81)
    i0 = np.argmin(abs(reg.im))
    inside = reg.amplification[i0, (reg.re > -2) & (reg.re < 0)]
    assert (inside <= 1 + 1e-12).all() and reg.real_left == pytest.approx(-2.0)
    hb = stability_region(HeavyBallScheme(0.9), n=61)
    assert hb.real_left == pytest.approx(-3.8)
    assert stability_region(ProximalPointScheme(), n=21).real_left == float("-inf")
    from terrainlab.plotting import figure

    _, ax = figure("single")  # a bare Figure: no pyplot backend needed
    hs = plot_stability_regions({"GD": GradientDescentScheme(), "HB": HeavyBallScheme(0.5)}, ax, n=41)
    assert len(hs) == 2 and "3" in hs[1].get_label()


def test_one_stability_limit_for_every_scheme():
    """Optimizer schemes and core schemes share core's scan-and-bisect (no second copy in optim)."""
    from terrainlab.core import RK4, AbstractScheme, Euler
    from terrainlab.optim import AdamScheme, NesterovScheme

    for cls in (GradientDescentScheme, HeavyBallScheme, NesterovScheme, AdamScheme, ProximalPointScheme, Euler, RK4):
        assert cls.stability_limit is AbstractScheme.stability_limit, cls
    # bisected to machine precision for core schemes too (the scan alone was 2.5e-4 coarse)
    assert Euler().stability_limit(1.0) == pytest.approx(2.0, rel=1e-11)
    assert RK4().stability_limit(1.0) == pytest.approx(2.785293563405282, rel=1e-9)
    for bad in (0.0, -1.0, float("nan"), True):
        with pytest.raises(ValueError, match="^lam must"):
            HeavyBallScheme(0.9).stability_limit(bad)
