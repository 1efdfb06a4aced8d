"""Chapter 9 under issue 17 §2: the controls of arrhenius_escape (high temperature), freeze_bound (a true
metric), step_count_bound (exactly geometric decay) and temperature_escape (T = 0) — the decisions once per
branch and the controls' measurements directly. The quick runs with verdicts and control outcomes are in
test_belief_ch09.py and test_dynamics_experiments.py."""

from __future__ import annotations

import torch

from terrainlab.atlas.chapters.ch09 import arrhenius_escape as ae
from terrainlab.atlas.chapters.ch09 import freeze_bound as fb
from terrainlab.atlas.chapters.ch09 import step_count_bound as sc
from terrainlab.atlas.chapters.ch09 import temperature_escape as te

NAN = float("nan")


def test_arrhenius_decision_and_gate():
    # a barrier off by more than tolerance + 2 SE fails even when the fit is imprecise (the high-T control)
    assert ae.decide_arrhenius(0.38, 0.09, 0.08, 0.146) == "fails"
    assert ae.decide_arrhenius(0.2, 0.05, 0.02, 0.2) == "inconclusive"
    assert ae.decide_arrhenius(0.03, 0.07, 0.03, 0.02) == "holds"
    assert ae.decide_with_control("holds", "fails") == "holds"
    assert ae.decide_with_control("holds", "inconclusive") == "holds"
    assert ae.decide_with_control("holds", "holds") == "inconclusive"


def test_freeze_bound_gate_and_nan():
    assert fb.decide_freeze_bound(NAN, 1.0) == "inconclusive"
    assert fb.decide_with_control("fails", "holds") == "fails"
    assert fb.decide_with_control("fails", "fails") == "inconclusive"


def test_step_count_geometric_control_is_tight():
    ge, le, n = sc._geometric_control(20, torch.Generator().manual_seed(4))
    assert n == 20 and ge == 1.0 and le == 1.0
    assert sc.decide_step_count_bound(ge, le) == "holds"
    assert sc.decide_step_count_bound(NAN, 1.0) == "inconclusive"
    assert sc.decide_with_control("holds-with-correction", "holds") == "holds-with-correction"
    assert sc.decide_with_control("holds-with-correction", "fails") == "inconclusive"


def test_temperature_escape_branches():
    assert te.decide_temperature_escape(0.6, 0.98, 0.15, 0.03) == "holds-with-correction"
    assert te.decide_temperature_escape(0.6, 0.98, 0.01, 0.01) == "holds"
    assert te.decide_temperature_escape(0.6, 0.98, 0.06, 0.03) == "inconclusive"   # 5 % inside ± 2 SE
    assert te.decide_temperature_escape(1.0, 1.0, 0.0, 0.0) == "fails"             # T = 0: no filtering
    assert te.decide_with_control("holds-with-correction", "fails") == "holds-with-correction"
    assert te.decide_with_control("holds-with-correction", "holds") == "inconclusive"
