import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from terrainlab.belief import (
    bregman,
    bregman_project,
    burg_entropy,
    entropy,
    generalized_neg_entropy,
    half_sq_norm,
    kl,
    kl_gaussian,
    kl_quadratic_approx,
    neg_entropy,
    softmax_kl_projection,
    softmax_objective,
    three_point_residual,
)

D = torch.float64
SET = settings(max_examples=50, deadline=None)


def simplex_points(K, n):
    return st.lists(st.lists(st.floats(0.02, 1.0), min_size=K, max_size=K), min_size=n, max_size=n).map(
        lambda rows: (lambda t: t / t.sum(-1, keepdim=True))(torch.tensor(rows, dtype=D))
    )


def positive_vecs(K, n):
    return st.lists(st.lists(st.floats(0.05, 5.0), min_size=K, max_size=K), min_size=n, max_size=n).map(
        lambda rows: torch.tensor(rows, dtype=D)
    )


GENS = [half_sq_norm, neg_entropy, generalized_neg_entropy, burg_entropy]


@SET
@given(positive_vecs(4, 3), positive_vecs(4, 3), st.sampled_from(GENS))
def test_bregman_nonnegative_and_zero_on_diagonal(p, q, F):
    d = bregman(F, p, q)
    assert bool((d >= -1e-12).all())
    assert torch.allclose(bregman(F, p, p), torch.zeros(3, dtype=D), atol=1e-12)


@SET
@given(simplex_points(5, 4), simplex_points(5, 4))
def test_kl_is_bregman_of_negative_entropy(p, q):
    assert torch.allclose(bregman(neg_entropy, p, q), kl(p, q), atol=1e-12)
    # generalised entropy gives the generalised KL for unnormalised vectors
    assert torch.allclose(bregman(generalized_neg_entropy, 2 * p, q), kl(2 * p, q, generalized=True), atol=1e-12)


def test_bregman_closed_forms():
    p = torch.tensor([[0.3, 2.0, 1.0]], dtype=D)
    q = torch.tensor([[1.0, 0.5, 1.5]], dtype=D)
    assert torch.allclose(bregman(half_sq_norm, p, q), 0.5 * ((p - q) ** 2).sum(-1))
    is_ = (p / q - torch.log(p / q) - 1).sum(-1)  # Itakura–Saito
    assert torch.allclose(bregman(burg_entropy, p, q), is_)


@SET
@given(positive_vecs(3, 2), positive_vecs(3, 2), positive_vecs(3, 2), st.sampled_from(GENS))
def test_three_point_identity(p, q, r, F):
    assert float(three_point_residual(F, p, q, r).abs().max()) < 1e-9


def test_kl_edge_cases_and_numbers():
    p = torch.tensor([0.9, 0.1], dtype=D)
    q = torch.tensor([0.5, 0.5], dtype=D)
    assert abs(float(entropy(p)) / math.log(2) - 0.469) < 1e-3
    assert abs(float(kl(p, q)) / math.log(2) - 0.531) < 1e-3
    assert abs(float(kl(q, p)) / math.log(2) - 0.737) < 1e-3
    assert float(kl(torch.tensor([0.0, 1.0]), torch.tensor([0.5, 0.5]))) == pytest.approx(math.log(2))
    assert math.isinf(float(kl(torch.tensor([0.5, 0.5]), torch.tensor([1.0, 0.0]))))
    assert abs(float(kl_gaussian(0.0, 1.0, 4.345, 2.128)) - 2.45) < 0.01
    assert abs(float(kl_gaussian(4.345, 2.128, 0.0, 1.0)) - 10.45) < 0.01
    with pytest.raises(ValueError, match="s1"):
        kl_gaussian(0.0, -1.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="last dimension"):
        kl(torch.ones(3) / 3, torch.ones(2) / 2)
    with pytest.raises(ValueError, match="F must be"):
        bregman(3, p, q)


def test_kl_gaussian_matches_monte_carlo():
    g = torch.Generator().manual_seed(0)
    x = 0.5 + 1.3 * torch.randn(400000, generator=g, dtype=D)
    n1 = torch.distributions.Normal(0.5, 1.3)
    n2 = torch.distributions.Normal(-0.2, 0.8)
    mc = (n1.log_prob(x) - n2.log_prob(x)).mean()
    assert abs(float(mc) - float(kl_gaussian(0.5, 1.3, -0.2, 0.8))) < 0.02


def test_quadratic_approx_error_is_third_order():
    q = torch.tensor([0.5, 0.3, 0.2], dtype=D)
    v = torch.tensor([1.0, -0.4, -0.6], dtype=D)
    errs = []
    for h in (1e-2, 1e-3):
        p = q + h * v
        errs.append(abs(float(kl(p, q) - kl_quadratic_approx(p, q))))
    assert 500 < errs[0] / errs[1] < 2000  # ~ h³


@SET
@given(positive_vecs(4, 3), st.integers(0, 2**31 - 1))
def test_bregman_projection_optimality_idempotence_pythagoras(r, seed):
    g = torch.Generator().manual_seed(seed)
    A = torch.cat([torch.ones(1, 4, dtype=D), torch.randn(1, 4, generator=g, dtype=D)])
    # right-hand side realised by an interior point, so the family meets the positive orthant
    x = torch.rand(4, generator=g, dtype=D) + 0.2
    x = x / x.sum()
    b = A @ x
    res = bregman_project(neg_entropy, r, A, b)
    assert res.converged and res.residual < 1e-9 and res.kkt < 1e-7
    q = res.p
    # KL projection form: q ∝ r·exp(Aᵀλ)  ⇔  log q − log r lies in the row space of A
    d = torch.log(q) - torch.log(r)
    lam = torch.linalg.lstsq(A.T, d.T).solution
    assert float((A.T @ lam - d.T).abs().max()) < 1e-7
    # idempotent
    again = bregman_project(neg_entropy, q, A, b)
    assert float((again.p - q).abs().max()) < 1e-9
    # Pythagoras with equality for any feasible p' (here: x), and optimality against it
    lhs = bregman(neg_entropy, x, r)
    rhs = bregman(neg_entropy, x, q) + bregman(neg_entropy, q, r)
    assert torch.allclose(lhs, rhs, atol=1e-8)
    assert bool((bregman(neg_entropy, q, r) <= bregman(neg_entropy, x, r) + 1e-10).all())


def test_bregman_projection_euclidean_case_is_orthogonal_projection():
    A = torch.tensor([[1.0, 1.0, 1.0]], dtype=D)
    r = torch.tensor([0.2, 0.9, -0.3], dtype=D)
    res = bregman_project(half_sq_norm, r, A, torch.tensor([1.0], dtype=D))
    assert torch.allclose(res.p, r - (r.sum() - 1) / 3)
    with pytest.raises(ValueError, match="A must be"):
        bregman_project(half_sq_norm, r, torch.ones(3, 2), torch.ones(3))


@SET
@given(st.lists(st.floats(-6, 6), min_size=2, max_size=6), st.integers(0, 1000))
def test_softmax_is_the_kl_projection(zs, seed):
    z = torch.tensor(zs, dtype=D)
    res = softmax_kl_projection(z)
    assert torch.allclose(res.p, torch.softmax(z, -1), atol=1e-10)
    # and the maximiser of <z,p> + H(p): beats random points, attains logsumexp
    g = torch.Generator().manual_seed(seed)
    e = -torch.log(torch.rand(64, len(zs), generator=g, dtype=D))
    others = e / e.sum(-1, keepdim=True)
    best = softmax_objective(z, res.p)
    assert abs(float(best) - float(torch.logsumexp(z, -1))) < 1e-9
    assert bool((softmax_objective(z, others) <= best + 1e-12).all())
