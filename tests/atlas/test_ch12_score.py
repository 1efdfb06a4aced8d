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
from terrainlab.atlas.chapters.ch12 import score_and_trajectories as st

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
