"""seq.evaluation: AUROC against the pairwise definition, Cohen's kappa on known tables, contraction fits."""

import math

import pytest
import torch

from terrainlab.belief import steps_to_eps
from terrainlab.seq.evaluation import cohen_kappa, contraction_fit, roc_auc


def _pairwise_auc(s, y):
    pos, neg = s[y], s[~y]
    return float((pos[:, None] > neg[None]).double().mean() + 0.5 * (pos[:, None] == neg[None]).double().mean())


def test_auroc_matches_the_pairwise_definition_with_ties():
    g = torch.Generator().manual_seed(0)
    s = torch.randint(0, 5, (300,), generator=g).double()  # many ties
    y = torch.rand(300, generator=g) < 0.3 + 0.1 * s
    r = roc_auc(s, y)
    assert r.auroc == pytest.approx(_pairwise_auc(s, y), abs=1e-12)
    assert r.n_pos == int(y.sum()) and r.n_neg == 300 - int(y.sum())
    # the trapezoid area under the returned curve is the AUROC too
    assert float(torch.trapezoid(r.tpr, r.fpr)) == pytest.approx(r.auroc, abs=1e-12)
    assert float(r.fpr[-1]) == 1.0 and float(r.tpr[-1]) == 1.0


def test_auroc_extremes_and_direction():
    y = torch.tensor([False, False, True, True])
    assert roc_auc(torch.tensor([0.0, 1, 2, 3]), y).auroc == 1.0
    assert roc_auc(torch.tensor([3.0, 2, 1, 0]), y).auroc == 0.0
    assert roc_auc(torch.ones(4), y).auroc == 0.5  # a constant score carries no information
    assert roc_auc(torch.tensor([0, 1, 2, 3]), y).auroc == 1.0  # integer scores are accepted


def test_bootstrap_interval_is_seeded_and_brackets_the_estimate():
    g = torch.Generator().manual_seed(1)
    s = torch.randn(400, generator=g)
    y = (s + torch.randn(400, generator=g)) > 0
    a = roc_auc(s, y, generator=torch.Generator().manual_seed(5), n_boot=500)
    b = roc_auc(s, y, generator=torch.Generator().manual_seed(5), n_boot=500)
    assert (a.low, a.high) == (b.low, b.high)
    assert a.low < a.auroc < a.high and a.low > 0.5  # an informative score: interval above chance
    noise = roc_auc(torch.randn(400, generator=g), y, generator=torch.Generator().manual_seed(5), n_boot=500)
    assert noise.low < 0.5 < noise.high  # an uninformative one: interval covers 0.5
    assert math.isnan(roc_auc(s, y).low)  # no generator, no interval


def test_auroc_nonfinite_scores_are_dropped_and_single_class_is_nan():
    s = torch.tensor([0.0, float("nan"), 1.0, 2.0])
    r = roc_auc(s, torch.tensor([False, True, True, True]))
    assert r.n_nonfinite == 1 and r.auroc == 1.0
    r = roc_auc(torch.tensor([0.0, 1.0]), torch.tensor([True, True]), generator=torch.Generator())
    assert math.isnan(r.auroc) and math.isnan(r.low) and r.n_neg == 0


def test_auroc_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="labels"):
        roc_auc(torch.zeros(3), torch.zeros(4, dtype=torch.bool))
    with pytest.raises(ValueError, match="labels"):
        roc_auc(torch.zeros(3), torch.tensor([0, 2, 1]))
    with pytest.raises(ValueError, match="scores"):
        roc_auc(torch.zeros(3, 2), torch.zeros(3, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="level"):
        roc_auc(torch.zeros(3), torch.zeros(3, dtype=torch.bool), level=1.0)


def test_cohen_kappa_known_values():
    a = torch.tensor([0, 0, 1, 1])
    assert cohen_kappa(a, a) == 1.0
    assert cohen_kappa(a, 1 - a) == -1.0
    # 2x2 table [[20, 5], [10, 15]]: po = 0.7, pe = 0.5·0.6 + 0.5·0.4 = 0.5 → κ = 0.4
    a = torch.tensor([0] * 25 + [1] * 25)
    b = torch.tensor([0] * 20 + [1] * 5 + [0] * 10 + [1] * 15)
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    # high raw agreement from one dominant class is not agreement beyond chance
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(20000, generator=g) < 0.1).long()
    z = (torch.rand(20000, generator=g) < 0.1).long()
    assert float((x == z).double().mean()) > 0.8 and abs(cohen_kappa(x, z)) < 0.03
    # negative labels (nonfinite steps) are left out
    assert cohen_kappa(torch.tensor([0, 1, -1]), torch.tensor([0, 1, 0])) == 1.0
    with pytest.raises(ValueError, match="b must"):
        cohen_kappa(torch.zeros(2, dtype=torch.long), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="a must"):
        cohen_kappa(torch.zeros(2), torch.zeros(2, dtype=torch.long))


def test_contraction_fit_of_a_geometric_sequence():
    D = 2.0 * 0.6 ** torch.arange(16.0)
    f = contraction_fit(D, eps=1e-2)
    assert f.monotone and f.n_increases == 0 and f.monotone_fraction == 1.0
    assert f.rate == pytest.approx(0.6) and f.r2 == pytest.approx(1.0)
    assert f.median_ratio == pytest.approx(0.6) and f.max_ratio == pytest.approx(0.6)
    assert f.envelope_rate == pytest.approx(0.6)
    first = int((D <= 1e-2).nonzero()[0, 0])
    assert f.first_below == f.settle == first
    # the book's count is the sufficient count of belief.steps_to_eps, and the real steps do not exceed it
    assert math.ceil(f.book_steps) == steps_to_eps(2.0, 1e-2, 0.6)
    assert f.first_below <= math.ceil(f.book_steps)


def test_contraction_fit_of_a_non_monotone_sequence():
    D = torch.tensor([1e-3, 5.0, 0.5, 8.0, 1e-3, 2e-3, 0.0])
    f = contraction_fit(D, eps=1e-2)
    assert not f.monotone and f.n_increases == 3 and f.monotone_fraction == pytest.approx(3 / 6)
    assert f.first_below == 0 and f.settle == 4  # below eps at the start, away, settled from t = 4 on
    assert f.max_ratio == pytest.approx(5.0 / 1e-3)
    assert f.r2 < 0.5
    assert f.envelope_rate > 1 and math.isnan(f.book_steps)  # no k < 1 bounds it: the book's count is undefined
    # contracting, but not geometrically: the envelope k is the slowest stretch, and its count is sufficient
    g = contraction_fit(torch.tensor([1.0, 0.9, 0.2, 0.1, 0.05, 0.0]), eps=1e-2)
    assert g.envelope_rate == pytest.approx(0.9) and g.max_ratio == pytest.approx(0.9) and g.median_ratio == pytest.approx(0.5)
    assert g.first_below == 5 <= math.ceil(g.book_steps) == math.ceil(math.log(1e-2) / math.log(0.9))
    nan = contraction_fit(torch.tensor([1.0, float("nan"), 0.1, 0.0]))
    assert not nan.monotone  # a NaN is reported, never averaged over
    assert contraction_fit(torch.tensor([1.0, 2.0, 0.0])).settle == 2
    with pytest.raises(ValueError, match="D must"):
        contraction_fit(torch.tensor([1.0]))
    with pytest.raises(ValueError, match="D must"):
        contraction_fit(torch.tensor([1.0, -1.0]))
    with pytest.raises(ValueError, match="eps"):
        contraction_fit(torch.tensor([1.0, 0.5]), eps=0)
