"""terrainlab.nn.attention: attention weights, the per-head bilinear form, its metric report, entropy, saturation."""

import math

import pytest
import torch
import torch.nn.functional as F

from terrainlab.nn.attention import (
    attention,
    attention_entropy,
    bilinear_form,
    metric_report,
    saturation_curve,
)


def _g(seed=0):
    return torch.Generator().manual_seed(seed)


def test_attention_equals_torch_sdpa():
    g = _g()
    q, k, v = (torch.randn(2, 3, 5, 8, generator=g, dtype=torch.float64) for _ in range(3))
    res = attention(q, k, v)
    assert torch.allclose(res.output, F.scaled_dot_product_attention(q, k, v), atol=1e-12)
    assert torch.allclose(res.weights.sum(-1), torch.ones(2, 3, 5, dtype=torch.float64))
    causal = torch.ones(5, 5, dtype=torch.bool).tril()
    res = attention(q, k, v, mask=causal, scale=0.3)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=causal, scale=0.3)
    assert torch.allclose(res.output, ref, atol=1e-12)
    assert float(res.weights.triu(1).abs().max()) == 0.0


def test_attention_bad_input():
    q = torch.randn(4, 8)
    with pytest.raises(ValueError, match="d_k"):
        attention(q, torch.randn(4, 7), torch.randn(4, 3))
    with pytest.raises(ValueError, match="k and v"):
        attention(q, torch.randn(4, 8), torch.randn(5, 3))
    with pytest.raises(ValueError, match="mask"):
        attention(q, q, q, mask=torch.zeros(4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask"):
        attention(q, q, q, mask=torch.ones(3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="scale"):
        attention(q, q, q, scale="big")
    with pytest.raises(ValueError, match="q"):
        attention([1.0], q, q)


def test_bilinear_form_layouts_and_rank():
    g = _g(1)
    d_model, H, d_k = 12, 3, 2
    lin_q, lin_k = torch.nn.Linear(d_model, H * d_k), torch.nn.Linear(d_model, H * d_k)
    M = bilinear_form(lin_q.weight.detach().double(), lin_k.weight.detach().double(), n_heads=H, layout="linear")
    assert M.shape == (H, d_model, d_model)
    x, y = torch.randn(d_model, generator=g, dtype=torch.float64), torch.randn(d_model, generator=g, dtype=torch.float64)
    q = (x @ lin_q.weight.detach().double().T).view(H, d_k)
    k = (y @ lin_k.weight.detach().double().T).view(H, d_k)
    for h in range(H):  # the score without biases is x M_h yᵀ
        assert math.isclose(float(x @ M[h] @ y), float(q[h] @ k[h]), rel_tol=1e-10, abs_tol=1e-12)
        rep = metric_report(M[h])
        assert rep.rank <= d_k
        assert not rep.is_psd and rep.neg_eig_frac == 0.5  # Sylvester: signature (d_k, d_k)
    Wq, Wk = torch.randn(d_model, d_k, generator=g), torch.randn(d_model, d_k, generator=g)
    assert torch.allclose(bilinear_form(Wq, Wk), Wq @ Wk.T)
    assert torch.allclose(bilinear_form(Wq.T, Wk.T, layout="linear"), Wq @ Wk.T)


def test_bilinear_form_bad_input():
    W = torch.randn(6, 4)
    with pytest.raises(ValueError, match="same shape"):
        bilinear_form(W, torch.randn(6, 3))
    with pytest.raises(ValueError, match="n_heads"):
        bilinear_form(W, W, n_heads=3)
    with pytest.raises(ValueError, match="layout"):
        bilinear_form(W, W, layout="column")
    with pytest.raises(ValueError, match="W_Q"):
        bilinear_form(torch.randn(6), W)


def test_metric_report_symmetric_psd_and_antisymmetric():
    g = _g(2)
    W = torch.randn(10, 3, generator=g, dtype=torch.float64)
    B = torch.randn(3, 3, generator=g, dtype=torch.float64)
    rep = metric_report(bilinear_form(W, W @ (B @ B.T + 0.1 * torch.eye(3, dtype=torch.float64))))
    assert rep.is_psd and rep.is_symmetric and rep.is_metric and rep.rank == 3
    assert rep.sym_ratio == pytest.approx(1.0) and rep.neg_eig_frac == 0.0 and rep.neg_eig_mass == 0.0
    S = torch.randn(5, 5, generator=g, dtype=torch.float64)
    anti = metric_report(S - S.T)
    assert anti.sym_ratio == pytest.approx(0.0, abs=1e-12) and not anti.is_symmetric
    with pytest.raises(ValueError, match="square"):
        metric_report(torch.randn(3, 4))
    with pytest.raises(ValueError, match="zero"):
        metric_report(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="rtol"):
        metric_report(torch.eye(3), rtol=2.0)


def test_attention_entropy_bounds_and_bad_input():
    A = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]], dtype=torch.float64)
    h = attention_entropy(A)
    assert float(h[0]) == 0.0 and math.isclose(float(h[1]), math.log(4))
    with pytest.raises(ValueError, match="A"):
        attention_entropy(torch.tensor([[0.5, 0.6]]))


def test_saturation_curve_unscaled_saturates_scaled_flat():
    dims = [4, 64, 512]
    un = saturation_curve(dims, False, n_queries=64, n_keys=32, generator=_g(3))
    sc = saturation_curve(dims, True, n_queries=64, n_keys=32, generator=_g(3))
    assert un.entropy_normalised[-1] < 0.1 < un.entropy_normalised[0]
    assert max(sc.entropy_normalised) - min(sc.entropy_normalised) < 0.05
    for v, d in zip(un.logit_var, dims):
        assert v / d == pytest.approx(1.0, rel=0.15)
    with pytest.raises(ValueError, match="d_k_list"):
        saturation_curve([], True)
    with pytest.raises(ValueError, match="d_k_list"):
        saturation_curve([0, 4], True)
    with pytest.raises(ValueError, match="scaled"):
        saturation_curve([4], "yes")
