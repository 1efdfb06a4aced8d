"""core.geometry: one implementation per simplex landing rule, the validated projection, and the
fast simplex check it relies on."""

import math
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from terrainlab.core import Simplex, project_simplex, rollout
from terrainlab.core.geometry import simplex_rule
from terrainlab.core.validate import check_simplex

D = torch.float64


def _pg(n=5, K=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    p = torch.softmax(torch.randn(n, K, generator=g, dtype=D), -1)
    return p, torch.randn(n, K, generator=g, dtype=D)


def test_land_and_descend_are_one_rule():
    """descend(p, g, η) is land(p, Δ) for the increment the rule's coordinates imply."""
    p, g = _pg()
    eta = 0.3
    assert torch.equal(Simplex("euclid").descend(p, g, eta), Simplex("euclid").land(p, -eta * g))
    # mirror: Δ = −η p⊙g lands as p·exp(−ηg)/Z (the metric diag(1/p) maps Δ to −ηg)
    assert torch.allclose(Simplex("mirror").descend(p, g, eta), Simplex("mirror").land(p, -eta * p * g), atol=1e-15)
    eg = p * torch.exp(-eta * g)
    assert torch.allclose(Simplex("mirror").descend(p, g, eta), eg / eg.sum(-1, keepdim=True), atol=1e-15)
    # logit: the logit increment of a gradient step is −η p⊙(g − ⟨p, g⟩)
    gz = p * (g - (p * g).sum(-1, keepdim=True))
    assert torch.equal(Simplex("logit").descend(p, g, eta), Simplex("logit").land(p, -eta * gz))
    # one step size per row
    etas = torch.tensor([[0.1], [0.2], [0.3], [0.4], [0.5]], dtype=D)
    for rule in ("euclid", "mirror", "logit"):
        rows = torch.cat([Simplex(rule).descend(p[i : i + 1], g[i : i + 1], float(etas[i])) for i in range(5)])
        assert torch.allclose(Simplex(rule).descend(p, g, etas), rows, atol=1e-15)


@pytest.mark.parametrize("rule", ["mirror", "logit"])
def test_multiplicative_rules_keep_zeros_saturate_overflow_and_propagate_nan(rule):
    S = Simplex(rule)
    p = torch.tensor([0.5, 0.5, 0.0], dtype=D)
    assert float(S.land(p, torch.tensor([0.1, -0.2, 5.0], dtype=D))[2]) == 0.0
    assert float(S.descend(p, torch.tensor([1.0, 0.0, -50.0], dtype=D), 1.0)[2]) == 0.0
    # an increment that overflows in dual coordinates lands on the vertex, not on NaN
    tiny = torch.tensor([1 - 1e-310, 1e-310, 0.0], dtype=D)
    q = S.land(tiny, torch.tensor([-1.0, 1.0, 0.0], dtype=D) * (1e10 if rule == "logit" else 1.0))
    assert torch.isfinite(q).all() and float(q[1]) == pytest.approx(1.0)
    assert torch.isnan(S.land(p, torch.tensor([math.nan, 0.0, 0.0], dtype=D))).all()


def test_rule_names_one_each_old_spellings_warn():
    for old, new in (("euclidean_projected", "euclid"), ("softmax_logits", "logit")):
        with pytest.warns(DeprecationWarning, match=repr(new)):
            assert simplex_rule(old) == new
    with pytest.raises(ValueError, match="projection"):
        Simplex("sphere")
    with pytest.raises(ValueError, match="proj must"):
        simplex_rule("kl", "proj")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert [Simplex(r).projection for r in ("euclid", "mirror", "logit")] == ["euclid", "mirror", "logit"]


def test_validate_names_the_argument_and_allows_an_empty_batch():
    with pytest.raises(ValueError, match=r"^p0 must"):
        Simplex().validate(torch.tensor([0.5, 0.6, 0.2]), "p0")
    with pytest.raises(ValueError, match=r"^s0 must"):
        Simplex().validate(torch.tensor([1, 0]), "s0")
    Simplex().validate(torch.empty(0, 3), "s0")
    Simplex().validate(torch.tensor([0.5, 0.5 + 5e-6]), "s0")  # float32 tolerance 1e-5
    tr = rollout(lambda p, t: -p, torch.empty(0, 3, dtype=D), eta=0.1, steps=2, geometry=Simplex("mirror"))
    assert tr.final.shape == (0, 3)


@pytest.mark.parametrize("v", [torch.tensor([0.2, math.nan, 0.5]), torch.tensor([1.0, math.inf, 0.0]),
                               torch.tensor([-math.inf, -math.inf]), torch.tensor([3, 1, 0]), torch.tensor(0.5),
                               torch.tensor([1j, 0j]), torch.empty(2, 0)])
def test_project_simplex_rejects_what_is_not_a_real_float_vector(v):
    with pytest.raises(ValueError, match=r"^v must"):
        project_simplex(v)


def test_project_simplex_values_and_empty_rows():
    assert torch.allclose(project_simplex(torch.tensor([3.0, 1.0, 0.0])), torch.tensor([1.0, 0.0, 0.0]))
    assert project_simplex(torch.empty(0, 4)).shape == (0, 4)
    # −inf rules a coordinate out: it projects to 0 and the rest is projected as usual
    assert torch.allclose(project_simplex(torch.tensor([-math.inf, 0.5, 0.2])), torch.tensor([0.0, 0.65, 0.35]))


entries = st.one_of(st.floats(-0.5, 1.5), st.sampled_from([math.nan, math.inf, -math.inf, 0.0, 1.0]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(entries, min_size=3, max_size=3), min_size=1, max_size=4), st.booleans())
def test_check_simplex_fast_path_accepts_exactly_what_the_full_checks_accept(rows, normalise):
    p = torch.tensor(rows, dtype=D)
    if normalise:
        p = p / p.sum(-1, keepdim=True)
    atol = 1e3 * torch.finfo(D).eps
    full_ok = bool(torch.isfinite(p).all()) and bool((p >= -atol).all()) and \
        float((p.sum(-1) - 1).abs().max()) <= atol * 3
    try:
        check_simplex(p, "p")
        ok = True
    except ValueError:
        ok = False
    assert ok == full_ok
