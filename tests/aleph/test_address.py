"""terrainlab.aleph.address: the closed form, the 2K-softmax mixture, hard mode, gradients, super-Fibonacci,
numerics at small τ, bad input."""

import math
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from terrainlab.aleph.address import (
    AlephAddress,
    address_logits,
    compute_dtype,
    signed_softmax,
    super_fibonacci,
    tiny_floor,
)

f64 = torch.float64


def _addr(K=8, D=4, tau=0.1, seed=0, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # K > 2·D is allowed, it only warns
        return AlephAddress(K, D, tau, generator=torch.Generator().manual_seed(seed), dtype=f64, **kw)


def _x(*shape, seed=1, dtype=f64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@pytest.mark.parametrize("K,D,tau", [(8, 4, 0.1), (64, 4, 0.1), (5, 3, 1.0), (16, 8, 0.02)])
def test_closed_form_is_the_2k_softmax_mixture(K, D, tau):
    a = _addr(K, D, tau)
    x = _x(200, D)
    a_hat = a.codebook / a.codebook.norm(dim=1, keepdim=True)
    u = (x / x.norm(dim=1, keepdim=True)) @ a_hat.T / tau
    # the softmax over the 2K oriented axes [Â; −Â], mixed: softmax([u; −u]) @ [Â; −Â]
    p = torch.softmax(torch.cat([u, -u], dim=1), dim=1)
    mixture = p @ torch.cat([a_hat, -a_hat], dim=0)
    assert torch.allclose(a(x), mixture, atol=1e-12, rtol=0)
    # w = p₊ − p₋ = sinh(u)/Σcosh(u) (|u| ≤ 1/τ ≤ 50 here, so the raw form is still finite in float64)
    w = torch.sinh(u) / torch.cosh(u).sum(1, keepdim=True)
    assert torch.allclose(a.weights(x), w, atol=1e-12, rtol=0)
    assert torch.allclose(a.logits(x), u, atol=1e-10 / tau, rtol=0)
    assert torch.allclose(a.features(x), p, atol=1e-12, rtol=0)


def test_mean_address_norm_at_reference_size():
    # aleph.md §1: on random unit rows with K=64, D=4, τ=0.1 the address norm averages ≈ 0.855.
    # Measured mean over 8 random codebooks × 2000 rows, with its standard error over the codebooks.
    means = []
    for s in range(8):
        a = _addr(64, 4, 0.1, seed=100 + s)
        with torch.no_grad():
            means.append(float(a(_x(2000, 4, seed=200 + s)).norm(dim=1).mean()))
    m = sum(means) / len(means)
    se = math.sqrt(sum((v - m) ** 2 for v in means) / (len(means) - 1) / len(means))
    assert se < 2e-3
    assert abs(m - 0.855) < max(4 * se, 1e-3)
    # it is < 1 (a mixture of axes shrinks) and far from the τ → ∞ limit 0
    assert 0.8 < m < 0.9


def test_hard_mode_value_and_straight_through_gradient():
    soft, hard = _addr(8, 4, 0.2, seed=3), _addr(8, 4, 0.2, seed=3, mode="hard")
    x = _x(50, 4)
    y = hard(x)
    a_hat = hard.unit_codebook()
    u = hard.logits(x)
    k = u.abs().argmax(1)
    expected = torch.sign(u[torch.arange(50), k])[:, None] * a_hat[k]
    assert torch.allclose(y, expected, atol=1e-12)
    # the hard value is exactly one oriented axis: unit norm
    assert torch.allclose(y.norm(dim=1), torch.ones(50, dtype=f64), atol=1e-12)
    xs, xh = x.clone().requires_grad_(), x.clone().requires_grad_()
    r = _x(50, 4, seed=9)
    (soft(xs) * r).sum().backward()
    (hard(xh) * r).sum().backward()
    assert torch.equal(xs.grad, xh.grad)
    assert xs.grad.abs().max() > 1e-3  # a real gradient, not zeros
    assert hard.codebook.grad is not None and torch.isfinite(hard.codebook.grad).all()
    assert torch.allclose(hard.codebook.grad, soft.codebook.grad, atol=1e-14)


def test_axes_in_use_and_none_mode():
    a = _addr(4, 4, 0.1, seed=2)
    a_hat = a.unit_codebook()
    x = torch.cat([a_hat, -a_hat])  # each oriented axis picks itself
    assert a.axes_in_use(x).tolist() == list(range(8))
    assert a.axes_in_use(a_hat[:2]).tolist() == [0, 1]
    assert a.axes_in_use(-a_hat[3:]).tolist() == [7]
    none = _addr(4, 4, 0.1, mode="none")
    x = _x(3, 4)
    assert none(x) is x


def test_gradcheck_soft_address():
    # gradient with respect to the input rows and to the codebook, through the module (float64)
    a = _addr(5, 3, 0.5, seed=4)
    x = _x(4, 3).requires_grad_()
    c = a.codebook.detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda x, c: torch.func.functional_call(a, {"codebook": c}, (x,)), (x, c))


def test_gradcheck_features_and_weights():
    a = _addr(4, 4, 0.3, seed=5)
    x = _x(3, 4).requires_grad_()
    assert torch.autograd.gradcheck(a.features, (x,))
    assert torch.autograd.gradcheck(a.weights, (x,))


@settings(max_examples=40)
@given(tau_exp=st.floats(-3, 1), scale_exp=st.floats(-30, 30), seed=st.integers(0, 10_000),
       dtype=st.sampled_from([torch.float32, torch.float64, torch.bfloat16]))
def test_no_overflow_small_tau_any_scale(tau_exp, scale_exp, seed, dtype):
    # max-subtraction: p± finite, ≥ 0, summing to 1 at τ down to 1e-3 and inputs from 1e-30 to 1e30
    tau = 10.0**tau_exp
    a = AlephAddress(6, 4, tau, generator=torch.Generator().manual_seed(seed), dtype=torch.float32)
    x = (_x(7, 4, seed=seed, dtype=torch.float32) * 10.0**scale_exp).to(dtype)
    a.requires_grad_(False)
    p_plus, p_minus = a.probs(x)
    assert p_plus.dtype == compute_dtype(dtype)
    assert torch.isfinite(p_plus).all() and torch.isfinite(p_minus).all()
    assert (p_plus >= 0).all() and (p_minus >= 0).all()
    assert torch.allclose((p_plus + p_minus).sum(-1), torch.ones(7, dtype=p_plus.dtype), atol=1e-6)
    # the largest weight is never lost: the winning oriented axis has p ≥ 1/2K
    assert float(torch.maximum(p_plus, p_minus).amax(-1).min()) >= 1 / 12 - 1e-6
    y = a(x)
    assert y.dtype == dtype and torch.isfinite(y).all()


def test_raw_sinh_cosh_overflows_where_max_subtraction_does_not():
    # the control for the max-subtraction: at τ = 1e-3, u reaches ±1000 and exp(±u) is inf in float32/float64,
    # so the raw sinh/cosh form gives inf/inf = NaN; signed_softmax stays exact.
    a = AlephAddress(4, 4, 1e-3, generator=torch.Generator().manual_seed(0), dtype=torch.float32)
    x = a.codebook.detach()[:2] + 0.01
    u = a.logits(x)
    raw = torch.sinh(u) / torch.cosh(u).sum(-1, keepdim=True)
    assert torch.isnan(raw).any()
    p, m = signed_softmax(u)
    assert torch.isfinite(p - m).all()


def test_logits_are_float32_for_low_precision_input_and_under_autocast():
    a = AlephAddress(4, 4, 0.1, generator=torch.Generator().manual_seed(0), dtype=torch.float32)
    x = _x(5, 4, dtype=torch.float32)
    for dt in (torch.bfloat16, torch.float16):
        assert a.logits(x.to(dt)).dtype == torch.float32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        u = a.logits(x)
        y = a(x.to(torch.bfloat16))
    assert u.dtype == torch.float32 and y.dtype == torch.bfloat16
    assert torch.equal(u, a.logits(x))  # autocast does not touch the address
    assert a.logits(x.double()).dtype == f64
    assert torch.equal(address_logits(x, a.codebook, a.tau), a.logits(x))


def test_tiny_floor_is_not_zero_in_half_precision():
    for dt in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        f = tiny_floor(dt)
        assert torch.tensor(f, dtype=dt) > 0
        assert f > torch.finfo(dt).tiny
    assert torch.tensor(1e-12, dtype=torch.float16) == 0  # the reason it exists


def test_nan_input_gives_nan_not_zero():
    for mode in ("soft", "hard"):
        a = _addr(4, 4, 0.1, mode=mode)
        x = _x(3, 4)
        x[1, 2] = float("nan")
        y = a(x)
        assert torch.isnan(y[1]).all()
        assert torch.isfinite(y[[0, 2]]).all()
        p, m = a.probs(x)
        assert torch.isnan(p[1]).all() and torch.isnan(m[1]).all()


def test_dtypes_kept():
    for dt in (torch.float32, torch.float64):
        a = AlephAddress(4, 4, 0.1, generator=torch.Generator().manual_seed(0), dtype=dt)
        assert a.codebook.dtype == dt
        x = _x(2, 3, 4, dtype=dt)
        assert a(x).dtype == dt and a(x).shape == (2, 3, 4)
        assert a.features(x).shape == (2, 3, 8) and a.weights(x).shape == (2, 3, 4)


def test_super_fibonacci_unit_and_well_spread():
    q = super_fibonacci(64, dtype=f64)
    assert q.shape == (64, 4)
    assert torch.allclose(q.norm(dim=1), torch.ones(64, dtype=f64), atol=1e-14)

    def min_dist(p):
        d = torch.cdist(p, p) + torch.eye(len(p), dtype=p.dtype) * 10
        return float(d.min())

    # 64 random points on S³: min pairwise (chord) distance measured over 200 draws: median 0.12, max 0.24.
    # The spiral's is 0.327, above the best of 20 random draws. Packing bound: caps of angular radius θ/2
    # around the points are disjoint and a cap of radius r has volume π(2r − sin 2r) of |S³| = 2π², so
    # 64·π(θ − sin θ) ≤ 2π², θ ≤ 0.848 rad, chord ≤ 2 sin(θ/2) = 0.823.
    spiral = min_dist(q)
    random_best = max(min_dist(torch.nn.functional.normalize(_x(64, 4, seed=s), dim=1)) for s in range(20))
    assert spiral > random_best
    assert 0.3 < spiral < 0.823
    assert super_fibonacci(3).dtype == torch.float32


def test_fibonacci_init_uses_the_spiral():
    a = AlephAddress(8, 4, 0.1, init="fibonacci", dtype=f64)
    assert torch.allclose(a.codebook, super_fibonacci(8, dtype=f64))


def test_bad_input():
    with pytest.warns(UserWarning, match="K=9"):
        AlephAddress(9, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        AlephAddress(8, 4)  # K = 2·D: no warning
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="tau"):
            AlephAddress(4, 4, bad)
    with pytest.raises(ValueError, match="mode"):
        AlephAddress(4, 4, mode="sharp")
    with pytest.raises(ValueError, match="init"):
        AlephAddress(4, 4, init="grid")
    with pytest.raises(ValueError, match="fibonacci"):
        AlephAddress(4, 3, init="fibonacci")
    with pytest.raises(ValueError, match="K"):
        AlephAddress(0, 4)
    with pytest.raises(ValueError, match="D"):
        AlephAddress(4, 0)
    a = AlephAddress(4, 4)
    with pytest.raises(ValueError, match="x"):
        a(torch.randn(3, 5))
    with pytest.raises(ValueError, match="x"):
        a(torch.ones(3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="x"):
        a.features([1.0, 2.0, 3.0, 4.0])
    with pytest.raises(ValueError, match="n"):
        super_fibonacci(0)
