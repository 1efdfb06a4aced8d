"""The repaired verdicts of issue 17 (R4): ch06.deq_fixed_point and ch06.deq_solve_length (split from it) —
each decide function once per verdict it can give, each experiment once (quick) with its verdict and key
numbers asserted."""

import json

import pytest

from terrainlab.atlas import discover, run_one
from terrainlab.atlas.chapters.ch06.deq_fixed_point import DEQClassifier, decide_deq_fixed_point
from terrainlab.atlas.chapters.ch06.deq_solve_length import decide_solve_length

NAN = float("nan")


def test_decide_deq_fixed_point():
    # control: spectral norm 0.9, converges everywhere
    ok = dict(control_lip_max=0.9, control_conv_min=1.0)
    assert decide_deq_fixed_point(1.0, 0.9, 1.77, 0.10, **ok) == "holds-with-correction"  # Lip ≥ 1, converges
    assert decide_deq_fixed_point(1.0, 0.8, 0.85, 0.02, **ok) == "holds"  # stayed a global contraction
    assert decide_deq_fixed_point(0.95, 0.9, 1.77, 0.10, **ok) == "fails"  # the solve fails on 5 %
    assert decide_deq_fixed_point(1.0, 1.02, 0.85, 0.02, **ok) == "fails"  # ρ ≥ 1 at z*
    assert decide_deq_fixed_point(1.0, 0.9, 1.05, 0.04, **ok) == "inconclusive"  # 1 inside 2 SE
    assert decide_deq_fixed_point(1.0, 0.9, 0.97, 0.02, **ok) == "inconclusive"
    # a control that does not read Lip < 1 (or does not converge): no decision
    assert decide_deq_fixed_point(1.0, 0.9, 1.77, 0.10, 1.2, 1.0) == "inconclusive"
    assert decide_deq_fixed_point(1.0, 0.9, 1.77, 0.10, 0.9, 0.5) == "inconclusive"
    assert decide_deq_fixed_point(1.0, 0.9, NAN, 0.10, **ok) == "inconclusive"


def test_decide_solve_length():
    assert decide_solve_length(1.53, 0.07, 0.59, 0.02) == "fails"  # longer
    assert decide_solve_length(0.70, 0.05, 0.59, 0.02) == "holds"  # shorter
    assert decide_solve_length(1.01, 0.01, 0.59, 0.02) == "fails"  # no change: inside 1 ± 0.05
    assert decide_solve_length(1.02, 0.05, 0.59, 0.02) == "inconclusive"  # 1 inside 2 SE, not resolved
    assert decide_solve_length(1.53, 0.07, 0.98, 0.02) == "inconclusive"  # control not shorter
    assert decide_solve_length(NAN, 0.07, 0.59, 0.02) == "inconclusive"


def test_deq_classifier_needs_a_generator():
    with pytest.raises(ValueError, match="generator"):
        DEQClassifier(0)


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    errors = discover()
    bad = {k: v for k, v in errors.items() if ".ch06." in k or ".ch12." in k}
    assert not bad, bad
    return tmp_path_factory.mktemp("r4")  # shared by the two DEQ runs: the trained models are built once


def _check(res, figs, out, verdict):
    assert res.verdict == verdict, (res.verdict, res.numbers)
    assert res.threshold and res.explanation
    assert (res.corrected is not None) == (verdict in ("fails", "holds-with-correction"))
    json.dumps(res.numbers)
    assert res.numbers["claim_kind"] == "empirical"
    assert any("control" in k for k in res.numbers)
    assert figs and all((out / f).exists() for f in figs)
    assert any(f.endswith(".png") for f in figs) and any(f.endswith(".svg") for f in figs)


def test_deq_fixed_point_quick(out):
    res, figs = run_one("ch06.deq_fixed_point", out, quick=True)
    _check(res, figs, out, "holds-with-correction")
    n = res.numbers
    assert len(n["seeds"]) >= 3
    assert n["lip_bound_end"] - 2 * n["lip_bound_end_se"] > 1  # not a global contraction after training
    assert n["picard_converged_fraction_min"] >= 0.99 and n["rho_at_zstar_max"] < 1  # yet it converges
    assert n["control_lip_bound_end_max"] <= 0.9 + 1e-4 and n["control_converged_fraction_min"] == 1.0
    assert n["spearman_iterations_vs_rho"] > 0.5  # emergent depth follows the local contraction


def test_deq_solve_length_quick(out):
    res, figs = run_one("ch06.deq_solve_length", out, quick=True)
    _check(res, figs, out, "fails")
    n = res.numbers
    assert n["iterations_ratio"] - 2 * n["iterations_ratio_se"] > 1  # plain training lengthens the solve
    assert n["control_iterations_ratio"] + 2 * n["control_iterations_ratio_se"] < 1  # the penalty shortens it
    assert len(n["iterations_ratio_per_seed"]) >= 3
