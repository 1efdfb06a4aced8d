"""ch07.cot_training_and_curvature (Theorem 1): decide functions both ways, the algebra check, a quick run."""

import math

import pytest
import torch

from terrainlab.atlas import VERDICTS, discover, run_one
from terrainlab.atlas.chapters.ch07.cot_training_and_curvature import (
    MIN_ACC_COMPARE,
    SIGMAS,
    algebra_check,
    compare,
    decide_theorem1,
    direct_prompts,
    paired_direction,
)
from terrainlab.seq import Vocab


def test_paired_direction():
    assert paired_direction([0.5, 0.6, 0.4], [0.05, -0.1], 0.1) == "up"
    assert paired_direction([-0.5, -0.6, -0.4], [0.05], 0.1) == "down"
    assert paired_direction([0.86, -0.82, 0.22], [0.8], 0.1) == "none"  # signs disagree
    assert paired_direction([0.3, 0.4, 0.35], [0.82, 0.1], 0.1) == "none"  # the same-recipe control is larger
    assert paired_direction([0.05, 0.06, 0.07], [], 0.1) == "none"  # below the minimum size
    assert paired_direction([0.5, 0.6], [], 0.1) == "undetermined"  # too few seeds
    assert paired_direction([0.5, float("nan"), 0.6], [], 0.1) == "undetermined"  # NaN (not comparable) dropped
    assert paired_direction([0.5, 0.6, 0.7], [float("nan")], 0.1) == "up"


def test_decide_theorem1_every_verdict():
    assert decide_theorem1("down", "up", "down", True) == "fails"
    assert decide_theorem1("up", "none", "down", True) == "fails"
    assert decide_theorem1("up", "down", "up", True) == "fails"
    assert decide_theorem1("none", "up", "down", True) == "inconclusive"
    assert decide_theorem1("undetermined", "undetermined", "undetermined", True) == "inconclusive"
    assert decide_theorem1("up", "undetermined", "down", True) == "inconclusive"
    assert decide_theorem1("up", "up", "down", True) == "holds-with-correction"
    assert decide_theorem1("up", "up", "up", True) == "holds-with-correction"
    assert decide_theorem1("up", "up", "down", False) == "holds"
    assert decide_theorem1("up", "up", "up", False) == "holds-with-correction"


def test_algebra_check_curvature_rises_by_at_least_the_smallest_eigenvalue_of_dH():
    a = algebra_check(torch.Generator().manual_seed(0))
    assert a["raises"] and a["control_max_change"] < 1e-12
    # Weyl: λ_i(H + ΔH) ≥ λ_i(H) + λ_min(ΔH)
    for h0, h1 in zip(a["eig_E"], a["eig_E_plus_dH"]):
        assert h1 >= h0 + min(a["eig_dH"]) - 1e-9
    # the tangent Hessian of KL(p*‖p) at p* is B^T diag(1/p*) B: its trace is known in closed form
    p = torch.tensor([0.6, 0.25, 0.1, 0.05], dtype=torch.float64)
    K = len(p)
    want = float((1 / p).sum() - (1 / p).sum() / K)  # tr(diag(1/p)(I − 11ᵀ/K))
    assert math.isclose(sum(a["eig_E"]), want, rel_tol=1e-9)


def test_direct_prompts_enumerate_the_task():
    P, A = direct_prompts()
    v = Vocab(7)
    assert P.shape == (343, 8) and A.shape == (343,)
    assert len({tuple(r) for r in P.tolist()}) == 343
    assert v.decode(P[5 * 49 + 3 * 7 + 6].tolist()).split() == ["<bos>", "5", "+", "3", "+", "6", "=", "answer"]
    assert v.to_digit(int(A[5 * 49 + 3 * 7 + 6])) == (5 + 3 + 6) % 7


def _readout(right, basin_level, p_conf):
    n = len(right)
    z = torch.full((n, 7), 0.0, dtype=torch.float64)
    z[:, 0] = math.log(p_conf / (1 - p_conf) * 6)
    from terrainlab.seq import answer_hessian

    eig = answer_hessian(z, 0).eigenvalues
    return {"right": torch.tensor(right), "answer_entropy_bits": 1.0, "n_distinct_answers": 3,
            "p_answer": torch.full((n,), p_conf, dtype=torch.float64), "eig": eig,
            "eig_simplex": torch.ones(n, dtype=torch.float64),
            "basin": torch.full((n, len(SIGMAS)), basin_level, dtype=torch.float64)}


def test_compare_only_when_both_models_solve_the_task():
    good = _readout([True] * 9 + [False], 0.9, 0.99)
    better = _readout([True] * 10, 0.95, 0.999)
    lucky = _readout([True] + [False] * 9, 1.0, 0.99)  # at chance, a constant answer: noise cannot move it
    c = compare(good, better)
    assert c["comparable"] and c["n_both"] == 9 and math.isclose(c["acc_effect"], 0.1)
    assert math.isclose(c["basin_effect"], 0.05, abs_tol=1e-12)
    assert c["log10_curv_effect"] < 0  # the more confident belief has the smaller trace 1 − Σp²
    c2 = compare(lucky, better)
    assert MIN_ACC_COMPARE > 0.1 and not c2["comparable"]
    assert math.isnan(c2["basin_effect"]) and c2["basin_effect_raw"] < 0  # raw says "CoT narrows the basin"


@pytest.fixture(scope="module")
def registered():
    errors = discover()
    bad = {k: v for k, v in errors.items() if "cot_training_and_curvature" in k}
    assert not bad, bad


def test_cot_training_and_curvature_quick(registered, seq_zoo_out):
    res, figs = run_one("ch07.cot_training_and_curvature", seq_zoo_out, quick=True)
    assert res.verdict in VERDICTS
    assert figs and all((seq_zoo_out / f).exists() for f in figs)
    n = res.numbers
    assert n["seeds"] == 1 and n["n_prompts"] == 343 and len(n["sigmas"]) == len(SIGMAS)
    assert len(n["acc_direct_only"]) == 1 and 0 <= n["acc_cot_plus_direct"][0] <= 1
    assert n["premise"] == "undetermined" and res.verdict == "inconclusive"  # one seed cannot call a direction
    assert n["algebra"]["raises"] and res.corrected and "rises" in res.corrected
    pair = n["pairs"][0]
    assert pair["n_both"] >= 0 and len(pair["basin_a"]) == len(SIGMAS)
    assert all(0 <= v <= 1 for v in pair["basin_a"] + pair["basin_b"] if not math.isnan(v))
