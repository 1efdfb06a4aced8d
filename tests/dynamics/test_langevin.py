"""Langevin escape: Kramers rate, Arrhenius barrier, exact MFPT; Lyapunov-function checks."""

import math

import pytest
import torch

from terrainlab.core import gradient_field
from terrainlab.dynamics import (
    arrhenius_fit,
    escape_times,
    eyring_kramers_rate,
    langevin_rollout,
    lyapunov_check,
    mfpt_1d,
)

D64 = torch.float64
E = lambda x: (x[..., 0] ** 2 - 1) ** 2 + 0.3 * x[..., 0]
F = lambda x: -(4 * x ** 3 - 4 * x + 0.3)
# critical points of E (roots of 4x³ − 4x + 0.3)
_roots = sorted(complex(r).real for r in __import__("numpy").roots([4, 0, -4, 0.3]))
X_LEFT, X_SADDLE, X_RIGHT = _roots
BARRIER = float(E(torch.tensor([[X_SADDLE]], dtype=D64)) - E(torch.tensor([[X_RIGHT]], dtype=D64)))


def _rate(T, n, steps, gen, eta=0.01):
    start = torch.full((n, 1), X_RIGHT, dtype=D64)
    return escape_times(F, start, lambda s: s[..., 0] < X_LEFT / 2, temperature=T, eta=eta, max_steps=steps,
                        generator=gen)


def test_kramers_rate_and_arrhenius_barrier():
    gen = torch.Generator().manual_seed(0)
    # one temperature: simulated rate vs Eyring–Kramers within 15%, vs the exact MFPT within 8%
    r = _rate(0.15, 1000, 30000, gen)
    kr = eyring_kramers_rate(E, [X_RIGHT], [X_SADDLE], 0.15)
    assert kr.barrier == pytest.approx(BARRIER, rel=1e-9)
    assert kr.prefactor == pytest.approx(
        math.sqrt((12 * X_RIGHT ** 2 - 4) * abs(12 * X_SADDLE ** 2 - 4)) / (2 * math.pi), rel=1e-9)
    assert r.rate == pytest.approx(kr.rate, rel=0.15)
    exact = 1 / mfpt_1d(E, X_RIGHT, X_LEFT / 2, 0.15)
    assert r.rate == pytest.approx(exact, rel=0.08)
    assert r.n_escaped > 700
    # Arrhenius: barrier from the slope of log k against 1/T, within 5%
    Ts = [0.18, 0.22, 0.26, 0.3]
    runs = [_rate(T, 600, 16000, gen) for T in Ts]
    fit = arrhenius_fit(Ts, [x.rate for x in runs], [x.rate_stderr for x in runs])
    assert fit.barrier == pytest.approx(BARRIER, rel=0.05)
    assert fit.r2 > 0.98


def test_langevin_stationary_variance_and_arrhenius_exact():
    Fq = gradient_field(lambda x: 0.5 * 2.0 * (x ** 2).sum(-1))  # E = x², Gibbs variance T/2
    tr = langevin_rollout(Fq, torch.zeros(4000, 1, dtype=D64), temperature=0.3, eta=0.005, steps=800,
                          generator=torch.Generator().manual_seed(2), record="last")
    assert float(tr.final.var()) == pytest.approx(0.15, rel=0.08)
    Ts = torch.tensor([0.2, 0.25, 0.3], dtype=D64)
    fit = arrhenius_fit(Ts, 3.0 * torch.exp(-0.7 / Ts))
    assert fit.barrier == pytest.approx(0.7, abs=1e-10) and fit.prefactor == pytest.approx(3.0)
    with pytest.raises(ValueError, match="saddle"):
        eyring_kramers_rate(E, [X_RIGHT], [X_LEFT], 0.2)
    with pytest.raises(ValueError, match="rates"):
        arrhenius_fit([0.1, 0.2], [1.0, -1.0])


def test_lyapunov_check_flow_and_gd_threshold():
    torch.manual_seed(0)
    H = torch.diag(torch.tensor([4.0, 1.0], dtype=D64))
    L = lambda th: 0.5 * ((th @ H) * th).sum(-1)  # L_smooth = 4
    G = gradient_field(L)
    S = torch.randn(2000, 2, dtype=D64)
    assert lyapunov_check(L, G, S).violating_fraction == 0.0
    assert lyapunov_check(L, G, S, eta=0.45).violating_fraction == 0.0  # η·L = 1.8 < 2
    above = lyapunov_check(L, G, S, eta=0.6)  # η·L = 2.4: violated where the gradient leans on λ = 4
    # exact for a quadratic: ΔL = −η‖g‖² + ½η² gᵀHg > 0 iff gᵀHg/‖g‖² > 2/η
    g = S @ H
    ratio = ((g @ H) * g).sum(-1) / (g * g).sum(-1)
    assert above.violating_fraction == pytest.approx(float((ratio > 2 / 0.6).double().mean()))
    assert 0.2 < above.violating_fraction < 1.0
    assert above.worst_values[0] == torch.nan_to_num(above.values, nan=-math.inf).max()
    # map form, and equilibria are excluded
    chk = lyapunov_check(L, lambda th: th - 0.6 * (th @ H), torch.zeros(3, 2, dtype=D64), kind="map")
    assert chk.n_excluded == 3 and math.isnan(chk.violating_fraction)
