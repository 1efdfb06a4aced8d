"""ch05 experiments added for issue 17 §2: decide functions in every branch, and the quick run's verdict
and control outcome."""

import pytest

from terrainlab.atlas import discover, run_one
from terrainlab.atlas.chapters.ch05.fisher_is_kl_hessian import (
    CONTROL_MIN,
    TOL,
    decide_fisher_is_kl_hessian,
)

discover()


def test_decide_fisher_is_kl_hessian_every_branch():
    assert decide_fisher_is_kl_hessian(1e-15, 0.4) == "holds"
    assert decide_fisher_is_kl_hessian(TOL, 0.4) == "holds"
    assert decide_fisher_is_kl_hessian(10 * TOL, 0.4) == "fails"
    assert decide_fisher_is_kl_hessian(1e-15, CONTROL_MIN) == "inconclusive"
    assert decide_fisher_is_kl_hessian(1e-2, 0.0) == "inconclusive"


@pytest.mark.parametrize("bad", [-1.0, float("nan"), "x", True])
def test_decide_fisher_is_kl_hessian_rejects_bad_input(bad):
    with pytest.raises(ValueError, match="max_rel_err"):
        decide_fisher_is_kl_hessian(bad, 0.4)
    with pytest.raises(ValueError, match="control_rel_err"):
        decide_fisher_is_kl_hessian(1e-15, bad)


def test_fisher_is_kl_hessian_quick(tmp_path):
    res, figs = run_one("ch05.fisher_is_kl_hessian", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "holds"
    assert n["claim_kind"] == "theorem-check"
    assert n["rel_err_max"] < 1e-12
    assert len(n["seeds"]) >= 3
    # the control: away from θ₀ the KL Hessian is not the Fisher, and the empirical Fisher is not either
    assert n["control_verdict"] == "fails"
    assert n["control_rel_err_largest_r"] > 0.1
    assert n["empirical_fisher_rel_err_mean"] > 0.1
    assert any(f.endswith(".png") for f in figs)
