"""Chapter 12, score experiments under issue 17 §2: score_and_trajectories (a learned score against the exact
one, untrained control), reverse_diffusion_is_gradient_descent (new) and score_far_from_data (its control):
each decide_* once per branch, each quick run's verdict and control outcome."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from terrainlab.atlas import discover, run_one
from terrainlab.atlas.chapters.ch12 import reverse_diffusion_is_gradient_descent as rd
from terrainlab.atlas.chapters.ch12 import score_and_trajectories as st
from terrainlab.atlas.chapters.ch12 import score_far_from_data as sf

NAN = float("nan")


@pytest.fixture(scope="module", autouse=True)
def _registry():
    errors = discover()
    assert not any("ch12" in k for k in errors), errors


def _run(exp_id, tmp_path):
    res, figs = run_one(exp_id, tmp_path, quick=True)
    json.dumps(res.numbers)
    assert res.threshold and res.explanation
    assert any(f.endswith(".png") for f in figs) and any(f.endswith(".svg") for f in figs)
    assert all((Path(tmp_path) / f).exists() for f in figs)
    return res


# ---------------------------------------------------------------- ch12.score_and_trajectories
def test_decide_score_and_trajectories_every_branch():
    d = st.decide_score_and_trajectories
    assert d(0.97, 0.01, 1.0, 0.0, 0.0) == "holds"            # 0.95 > 0.9
    assert d(0.50, 0.01, 1.0, 0.0, 0.0) == "fails"            # learned score does not land
    assert d(0.91, 0.01, 1.0, 0.0, 0.0) == "inconclusive"     # threshold 0.9 inside 0.91 ± 0.02
    assert d(0.97, 0.01, 0.90, 0.0, 0.0) == "fails"           # the exact score itself does not land
    assert d(0.97, 0.01, 1.0, 0.95, 0.01) == "inconclusive"   # the untrained control lands too
    assert d(0.97, 0.01, 1.0, 0.88, 0.02) == "inconclusive"   # control not clearly below
    assert d(NAN, 0.01, 1.0, 0.0, 0.0) == "inconclusive"
    assert d(0.97, NAN, 1.0, 0.0, 0.0) == "inconclusive"


def test_landing_share_and_bad_input():
    c = torch.tensor([[0.0, 0.0], [3.0, 0.0]])
    x = torch.tensor([[0.1, 0.0], [3.0, 1.0], [1.5, 0.0], [float("nan"), 0.0]])
    assert st.landing_share(x, c, radius=1.2) == 0.5
    with pytest.raises(ValueError, match="samples"):
        st.landing_share(torch.zeros(3), c)
    with pytest.raises(ValueError, match="centres"):
        st.landing_share(x, torch.zeros(2, 3))
    with pytest.raises(ValueError, match="radius"):
        st.landing_share(x, c, radius=0.0)


def test_score_and_trajectories_quick(tmp_path):
    res = _run("ch12.score_and_trajectories", tmp_path)
    n = res.numbers
    assert res.verdict == "holds", n
    assert n["claim_kind"] == "empirical" and len(n["seeds"]) == 3
    assert n["landing_share_learned"] - 2 * n["landing_share_learned_se"] > n["landing_share_threshold"]
    assert n["landing_share_exact"] > 0.99
    # the control (the same net untrained) does not land: the measurement separates the two
    assert n["control_verdict"] == "fails"
    assert n["control_landing_share"] + 2 * n["control_landing_share_se"] < n["landing_share_threshold"]
    assert n["relative_score_error_learned_vs_exact"]["0.3"] < 0.1 < n["control_relative_score_error"]["0.3"]
    assert n["field_cos_learned_vs_exact"] > 0.9 > n["control_field_cos_vs_exact"]
    assert all(math.isfinite(v["weight_error"]) for v in n["samplers"].values())


# ---------------------------------------------------------------- ch12.reverse_diffusion_is_gradient_descent
def test_decide_reverse_is_gd_every_branch():
    d = rd.decide_reverse_is_gd
    assert d(1.0, 0.0, 1.0, 0.0, 0.0, 0.0) == "holds"                          # an exact gradient flow
    assert d(0.77, 0.56, 0.98, 0.001, 0.49, 0.001) == "holds-with-correction"  # descent, not GD
    assert d(1.0, 0.0, 1.0, 0.0, 0.49, 0.001) == "holds-with-correction"       # parallel, but noise
    assert d(-0.1, 1.1, 0.69, 0.002, 0.40, 0.01) == "fails"                     # not even descent
    assert d(0.77, 0.56, 0.91, 0.01, 0.49, 0.001) == "inconclusive"            # 0.9 inside 0.91 ± 0.02
    assert d(1.0, 0.0, 1.0, 0.0, 0.04, 0.01) == "inconclusive"                 # 0.05 inside 0.04 ± 0.02
    assert d(NAN, 0.0, 1.0, 0.0, 0.0, 0.0) == "inconclusive"
    # the control (VE PF-ODE) must read holds, else nothing is decided
    assert d(0.77, 0.56, 0.98, 0.001, 0.49, 0.001, control_verdict="holds") == "holds-with-correction"
    assert d(0.77, 0.56, 0.98, 0.001, 0.49, 0.001, control_verdict="holds-with-correction") == "inconclusive"
    with pytest.raises(ValueError, match="control_verdict"):
        d(1.0, 0.0, 1.0, 0.0, 0.0, 0.0, control_verdict="maybe")


def test_count_minima_and_bad_input():
    count_minima = rd.count_minima
    x = torch.linspace(-2, 2, 41)
    X, Y = torch.meshgrid(x, x, indexing="xy")
    assert count_minima(((X**2 - 1) ** 2 + Y**2).numpy()) == 2     # double well
    assert count_minima((X**2 + Y**2).numpy()) == 1
    with pytest.raises(ValueError, match="values"):
        count_minima(torch.zeros(5).numpy())


def test_reverse_diffusion_is_gradient_descent_quick(tmp_path):
    res = _run("ch12.reverse_diffusion_is_gradient_descent", tmp_path)
    n = res.numbers
    assert res.verdict == "holds-with-correction", n
    assert res.corrected and n["claim_kind"] == "theorem-check" and len(n["seeds"]) == 3
    # the book's VP reverse SDE: a descent direction at most points, not parallel, about half the steps go up
    assert n["descent_share"] > 0.95 and n["cos_min"] < 0.9 and n["f_ratio_max"] > 0.3
    assert 0.3 < n["increase_share"] < 0.7
    assert n["vp_sde"]["decomposition_residual"] < 1e-9
    # its deterministic VP PF-ODE is not even a descent at large t; the objective changes shape
    assert n["vp_pf_ode"]["verdict"] == "fails" and n["pf_ode_descent_share"] < 0.8
    assert n["energy_minima_per_t"]["1.0"] == 1 and n["energy_minima_per_t"]["0.01"] == 2
    # control: the VE probability-flow ODE is exactly a gradient flow on E_t
    assert n["control_verdict"] == "holds"
    assert n["control_cos_min"] > 0.9999 and n["control_f_ratio_max"] == 0.0 and n["control_increase_share"] == 0.0


# ---------------------------------------------------------------- ch12.score_far_from_data
def test_decide_score_far_from_data_every_branch():
    d = sf.decide_score_far_from_data
    assert d([2.1, 2.0], 0.999) == "fails"                          # grows and points home
    assert d([2.1, 2.0], 0.5) == "inconclusive"                     # grows, but not home
    assert d([0.5, 0.49], 0.999) == "holds"                         # a 1/r decay
    assert d([1.0, 1.1], 0.999) == "inconclusive"
    assert d([], 1.0) == "inconclusive" and d([NAN, 2.0], 1.0) == "inconclusive"
    # with the control: it must read holds (decays), else inconclusive
    assert d([2.1, 2.0], 0.999, control_ratios=[0.5, 0.49]) == "fails"
    assert d([2.1, 2.0], 0.999, control_ratios=[2.0, 2.0]) == "inconclusive"
    assert d([2.1, 2.0], 0.999, control_ratios=[0.9, 0.5]) == "inconclusive"


def test_heavy_tailed_control_density_and_bad_input():
    from terrainlab.diffusion import VPSchedule

    gm = sf.heavy_tailed()
    u = torch.tensor([[1.0, 0.0], [0.6, 0.8]], dtype=torch.float64)
    s10 = gm.score_fn(VPSchedule())(10 * u, 0.3)
    assert torch.allclose(s10.norm(dim=1), torch.full((2,), 0.3, dtype=torch.float64), rtol=0.03)  # (ν+2)/r
    with pytest.raises(ValueError, match="nu"):
        sf.heavy_tailed(nu=0.0)
    with pytest.raises(ValueError, match="s_min"):
        sf.heavy_tailed(s_min=5.0, s_max=1.0)


def test_score_far_from_data_quick(tmp_path):
    res = _run("ch12.score_far_from_data", tmp_path)
    n = res.numbers
    assert res.verdict == "fails" and res.corrected, n
    assert n["claim_kind"] == "theorem-check"
    assert n["ratio_20_over_10_min"] >= sf.GROWTH and n["min_cos_to_home_r20"] >= sf.ALIGN
    # control: Cauchy data, the score decays like (ν + 2)/r — the same rule reads holds
    assert n["control_verdict"] == "holds" and n["control_ratio_20_over_10_max"] <= sf.DECAY
    assert all(abs(r["loglog_slope_r_ge_10"] + 1) < 0.1 for r in n["control_profiles"])
