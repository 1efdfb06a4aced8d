"""Basin maps: coverage fractions, cycles, divergence, samplers, plotting."""

import math

import matplotlib
import matplotlib.pyplot as plt
import pytest
import torch

from terrainlab.core import Simplex, gradient_field
from terrainlab.dynamics import (
    CYCLE,
    DIVERGED,
    NONE,
    basin_map,
    dirichlet_starts,
    find_fixed_points,
    gaussian_ball_starts,
    grid_starts,
    plot_basins,
)

matplotlib.use("Agg")
D64 = torch.float64
F2 = gradient_field(lambda s: (s[..., 0] ** 2 - 1) ** 2 + s[..., 1] ** 2)
MINIMA = torch.tensor([[-1.0, 0.0], [1.0, 0.0]], dtype=D64)


def test_double_well_basins_are_half_planes():
    n = 20
    starts = torch.cat([grid_starts([(-2, 2), (-1.5, 1.5)], n), torch.tensor([[0.0, 0.7]], dtype=D64)])
    res = basin_map(F2, starts, MINIMA, eta=0.05, steps=1500)
    # x < 0 → left minimum, x > 0 → right, x = 0 (the stable manifold of the saddle) → none
    x = starts[:, 0]
    assert bool((res.labels[x < 0] == 0).all()) and bool((res.labels[x > 0] == 1).all())
    assert res.labels[-1] == NONE
    N = n * n + 1
    assert res.fractions.tolist() == pytest.approx([n * n / 2 / N] * 2)
    f = n * n / 2 / N
    assert float(res.stderr[0]) == pytest.approx(math.sqrt(f * (1 - f) / N))
    assert res.fraction_none == pytest.approx(1 / N)
    assert res.status == "converged"


def test_large_step_gives_period_two_cycles_and_divergence():
    # η = 0.3 > 2/8: the minima are unstable for GD (x-direction multiplier 1 − 8η = −1.4)
    res = basin_map(F2, grid_starts([(-2, 2), (-1.5, 1.5)], 21), MINIMA, eta=0.3, steps=600)
    assert res.fraction_cycle > 0.5
    assert float(res.fractions.sum()) < 0.1
    # a field that blows up: labels say diverged, nothing raises
    blow = lambda s: s ** 3
    res2 = basin_map(blow, torch.tensor([[0.0], [2.0], [-3.0]], dtype=D64), torch.zeros(1, 1, dtype=D64), eta=0.1, steps=500)
    assert res2.labels.tolist() == [0, DIVERGED, DIVERGED]
    assert res2.fraction_diverged == pytest.approx(2 / 3)
    assert CYCLE == -3


def test_book_double_well_eta_03_basins_not_nearest_minimum():
    # book ch04: at η = 0.3 GD from θ0 = −3 ends in the *right* minimum; starts at −1, 0 wander
    L = lambda th: 0.25 * th[..., 0] ** 4 - 2 * th[..., 0] ** 2 + th[..., 0] + 6
    F = gradient_field(L)
    fp = find_fixed_points(F, torch.linspace(-4, 4, 30, dtype=D64)[:, None], eta=0.3)
    att = fp.of_kind("attractor")
    starts = torch.tensor([[-3.0], [0.5], [2.5], [-1.0], [0.0], [3.0]], dtype=D64)
    res = basin_map(F, starts, att, eta=0.3, steps=800)
    right = int(torch.argmax(att[:, 0]))
    assert res.labels[:3].tolist() == [right] * 3
    assert bool((res.labels[3:] == NONE).all())  # chaotic wandering: no attractor, no cycle


def test_simplex_basins_and_samplers():
    gen = torch.Generator().manual_seed(0)
    P = dirichlet_starts(3, 4000, gen)
    assert bool((P >= 0).all()) and torch.allclose(P.sum(-1), torch.ones(4000, dtype=D64))
    assert torch.allclose(P.mean(0), torch.full((3,), 1 / 3, dtype=D64), atol=0.02)
    assert torch.equal(dirichlet_starts(3, 5, torch.Generator().manual_seed(3)),
                       dirichlet_starts(3, 5, torch.Generator().manual_seed(3)))
    Q = dirichlet_starts(4, 2000, gen, alpha=5.0)
    assert float(Q.var(0).mean()) < float(dirichlet_starts(4, 2000, gen).var(0).mean())
    a = torch.tensor([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]], dtype=D64)

    def E(p):
        kl = (a * (a.log() - p[..., None, :].clamp_min(1e-300).log())).sum(-1)
        return -0.1 * torch.logsumexp(-kl / 0.1, -1)

    F = gradient_field(E)
    fp = find_fixed_points(F, dirichlet_starts(3, 100, gen), geometry=Simplex())
    att = fp.of_kind("attractor")
    res = basin_map(F, dirichlet_starts(3, 1500, gen), att, eta=0.02, steps=3000, geometry=Simplex())
    # symmetric wells: each basin covers a third of the simplex, within Monte-Carlo error
    assert torch.allclose(res.fractions, torch.full((3,), 1 / 3, dtype=D64), atol=4 * float(res.stderr.max()) + 0.01)
    assert float(res.fractions.sum()) > 0.95
    fig, ax = plt.subplots()
    plot_basins(res, ax, title="three wells")
    assert len(ax.collections) >= 2
    plt.close(fig)
    B = gaussian_ball_starts(torch.zeros(5, dtype=D64), 0.5, 3000, gen)
    assert B.shape == (3000, 5) and float(B.std()) == pytest.approx(0.5, rel=0.05)


def test_map_kind_and_bad_arguments():
    T = lambda x: 0.5 * x + 1.0  # fixed point 2
    res = basin_map(T, torch.tensor([[0.0], [10.0]], dtype=D64), torch.tensor([[2.0]], dtype=D64), kind="map", steps=200)
    assert res.labels.tolist() == [0, 0]
    with pytest.raises(ValueError, match="eta"):
        basin_map(F2, torch.zeros(2, 2, dtype=D64), MINIMA, steps=10)
    with pytest.raises(ValueError, match="attractors"):
        basin_map(F2, torch.zeros(2, 2, dtype=D64), torch.zeros(2, 3, dtype=D64), eta=0.1)
    with pytest.raises(ValueError, match="box"):
        grid_starts([(1, 0)], 3)
    with pytest.raises(ValueError, match="K"):
        dirichlet_starts(1, 3)
