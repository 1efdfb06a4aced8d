"""Continuation, saddle-nodes, scans and orbit diagrams against closed forms."""

import math

import pytest
import torch

from terrainlab.dynamics import (
    bifurcation_scan,
    continuation,
    orbit_diagram,
    period_doubling_points,
)

D64 = torch.float64


def test_saddle_node_normal_form_by_continuation():
    F = lambda x, mu: mu - x ** 2
    res = continuation(F, torch.tensor([1.0], dtype=D64), 1.0, direction=-1.0, ds=0.05, steps=80)
    assert res.status == "completed" and len(res.folds) == 1
    f = res.folds[0]
    assert abs(f.mu) < 1e-4 and abs(float(f.x[0])) < 1e-4 and f.converged
    # the branch x = √μ is stable (F' = −2x < 0), x = −√μ unstable
    up = res.branch_x[:, 0] > 0.05
    dn = res.branch_x[:, 0] < -0.05
    assert bool(res.stable[up].all()) and not bool(res.stable[dn].any())
    assert torch.allclose(res.branch_mu, res.branch_x[:, 0] ** 2, atol=1e-10)


def test_tilted_double_well_push_fold_closed_form():
    # E = (x² − 1)² + 0.3x with a constant push μ: F = −E'(x) − μ. The right well disappears at
    # E'' = 0, x = 1/√3, μ* = 8/(3√3) − 0.3 ≈ 1.2396 (a saddle-node).
    F = lambda x, mu: -(4 * x ** 3 - 4 * x + 0.3) - mu
    res = continuation(F, torch.tensor([0.96], dtype=D64), 0.0, direction=1.0, ds=0.03, steps=300, mu_bounds=(-3, 3))
    mus = sorted(f.mu for f in res.folds)
    assert mus[-1] == pytest.approx(8 / (3 * math.sqrt(3)) - 0.3, abs=1e-4)
    right = [f for f in res.folds if f.mu > 0][0]
    assert float(right.x[0]) == pytest.approx(1 / math.sqrt(3), abs=1e-4)
    # and the mirror fold where the left well disappears
    assert mus[0] == pytest.approx(-8 / (3 * math.sqrt(3)) - 0.3, abs=1e-4)


def test_bifurcation_scan_counts():
    fam = lambda mu: (lambda x: mu - x ** 2)
    scan = bifurcation_scan(fam, [-1.0, -0.5, 0.5, 1.0], torch.linspace(-2, 2, 9, dtype=D64)[:, None])
    assert scan.n_points.tolist() == [0, 0, 2, 2]
    assert scan.counts["attractor"].tolist() == [0, 0, 1, 1]
    assert scan.counts["repeller"].tolist() == [0, 0, 1, 1]
    assert len(scan.changes) == 1 and scan.changes[0][:2] == (-0.5, 0.5)


def test_orbit_diagram_logistic_and_gd_double_well():
    T = lambda x, r: r * x * (1 - x)
    rs = torch.tensor([2.8, 3.2, 3.5, 3.55, 3.83, 4.0])
    od = orbit_diagram(T, rs, torch.tensor([[0.3]], dtype=D64), burn_in=3000, keep=256)
    assert od.periods[:, 0].tolist() == [1, 2, 4, 8, 3, 0]
    assert od.labels[-1][0] == "chaotic"
    assert float(od.lyapunov[-1, 0]) == pytest.approx(math.log(2), abs=0.08)
    assert float(od.lyapunov[1, 0]) == pytest.approx(0.5 * math.log(0.16), abs=1e-6)
    # GD on the book's double well L = θ⁴/4 − 2θ² + θ + 6 from the right well: stable below
    # η = 2/L''(θ*) ≈ 0.313, period 2 just above it (the first period doubling)
    gd = lambda x, eta: x - eta * (x ** 3 - 4 * x + 1)
    etas = torch.linspace(0.25, 0.36, 12)
    od2 = orbit_diagram(gd, etas, torch.tensor([[1.8]], dtype=D64), burn_in=4000, keep=128)
    pdp = period_doubling_points(etas, od2.periods[:, 0])
    assert pdp and pdp[0][2:] == (1, 2)
    theta = 1.8608058531117035
    assert pdp[0][0] <= 2 / (3 * theta ** 2 - 4) <= pdp[0][1]
