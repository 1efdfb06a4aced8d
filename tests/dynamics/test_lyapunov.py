"""Lyapunov spectra, orbit classes and cycle detection against known answers."""

import math

import pytest
import torch

from terrainlab.dynamics import classify_orbit, detect_cycle, largest_lyapunov, lyapunov_spectrum

D64 = torch.float64


def lorenz(s, t=0.0):
    x, y, z = s[..., 0], s[..., 1], s[..., 2]
    return torch.stack([10 * (y - x), x * (28 - z) - y, x * y - 8 / 3 * z], -1)


def test_lorenz_spectrum_within_5_percent():
    g = torch.Generator().manual_seed(0)
    s0 = 5 * torch.randn(16, 3, generator=g, dtype=D64) + torch.tensor([0.0, 0.0, 25.0], dtype=D64)
    res = lyapunov_spectrum(lorenz, s0, kind="field", eta=0.01, steps=5000, transient=300)
    l1, l2, l3 = res.mean.tolist()
    assert l1 == pytest.approx(0.906, rel=0.05)
    assert abs(l2) < 0.05 * 0.906
    assert l3 == pytest.approx(-14.57, rel=0.05)
    # the sum equals the (constant) divergence of the Lorenz field, −(σ + 1 + β)
    assert l1 + l2 + l3 == pytest.approx(-(10 + 1 + 8 / 3), abs=0.02)
    assert res.status == "completed" and res.unit == "per unit time"
    assert res.n_jvp == 16 * 3 * 5300
    assert res.history.shape[1:] == (16, 3) and float(res.stderr[0]) < 0.05
    # the sequential forward-mode path agrees on a short run
    short_b = lyapunov_spectrum(lorenz, s0[:4], kind="field", eta=0.01, steps=300, transient=50)
    short_s = lyapunov_spectrum(lorenz, s0[:4], kind="field", eta=0.01, steps=300, transient=50, method="sequential")
    assert torch.allclose(short_b.exponents, short_s.exponents, atol=1e-8)


def test_logistic_r4_is_ln2_and_periodic_window_negative():
    g = torch.Generator().manual_seed(1)
    x0 = 0.05 + 0.9 * torch.rand(16, 1, generator=g, dtype=D64)
    res = largest_lyapunov(lambda x: 4 * x * (1 - x), x0, steps=5000, transient=100)
    assert float(res.mean[0]) == pytest.approx(math.log(2), abs=0.01)
    assert res.unit == "per step"
    # period-2 window r = 3.2: λ = ½ log|T'(x+)T'(x−)| = ½ log|−r² + 2r + 4| = ½ log 0.16
    r = 3.2
    res2 = largest_lyapunov(lambda x: r * x * (1 - x), x0, steps=2000, transient=500)
    assert float(res2.mean[0]) == pytest.approx(0.5 * math.log(0.16), abs=1e-3)


def test_classify_orbit_logistic_and_flows():
    x = torch.tensor([[0.3]], dtype=D64)
    labels = {r: classify_orbit(lambda s, r=r: r * s * (1 - s), x).labels[0] for r in (2.8, 3.2, 3.5, 3.83, 4.0)}
    assert labels == {2.8: "converged", 3.2: "period-2", 3.5: "period-4", 3.83: "period-3", 4.0: "chaotic"}
    div = classify_orbit(lambda s: 2 * s + 1, torch.tensor([[1.0]], dtype=D64), transient=2000)
    assert div.labels == ["divergent"]

    def hopf(s, t=0.0):  # limit cycle of radius 1: no integer period in steps, λ1 = 0
        x, y = s[..., 0], s[..., 1]
        r2 = x * x + y * y
        return torch.stack([x - 2 * y - x * r2, 2 * x + y - y * r2], -1)

    out = classify_orbit(hopf, torch.tensor([[0.1, 0.0]], dtype=D64), kind="field", eta=0.01, transient=2000,
                         lyap_steps=1500)
    assert out.labels == ["quasi-periodic"]
    assert abs(float(out.lyapunov[0])) < 0.01
    assert float(out.final_states.norm()) == pytest.approx(1.0, abs=1e-3)


def test_detect_cycle_tokens_and_states():
    assert detect_cycle([5, 1, 2, 3, 1, 2, 3, 1, 2, 3]).period == 3
    assert detect_cycle([5, 1, 2, 3, 1, 2, 3, 1, 2, 3]).start == 1
    assert detect_cycle(["a", "b", "c", "d"]).period == 0
    assert detect_cycle(torch.tensor([7, 7, 7, 7])).period == 1
    toks = "the cat sat on the mat and the cat sat on the mat and the cat sat on the mat and".split()
    c = detect_cycle(toks, max_period=10)
    assert c.period == 7 and c.start == 0
    # states: a period-2 orbit of the logistic map with rounding noise
    r = 3.2
    x = torch.tensor([0.3], dtype=D64)
    seq = []
    for _ in range(600):
        x = r * x * (1 - x)
        seq.append(x.clone())
    S = torch.stack(seq)
    res = detect_cycle(S, tol=1e-10)
    assert res.period == 2 and res.start < 200
    batched = detect_cycle(torch.stack([S, S], 1), tol=1e-10)
    assert [b.period for b in batched] == [2, 2]
    with pytest.raises(ValueError, match="max_period"):
        detect_cycle([1, 2], max_period=0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="eta"):
        lyapunov_spectrum(lorenz, torch.ones(1, 3), kind="field", steps=10)
    with pytest.raises(ValueError, match="k must be"):
        lyapunov_spectrum(lambda x: x, torch.ones(1, 2), k=3, steps=10)
    with pytest.raises(ValueError, match="method"):
        lyapunov_spectrum(lambda x: x, torch.ones(1, 2), steps=10, method="fast")
