"""terrainlab.aleph.softmax_baseline: the softmax control — step loop = forward, a KV cache that grows, bad input."""

import math

import pytest
import torch

from terrainlab.aleph.attention import AlephAttention
from terrainlab.aleph.softmax_baseline import KVCache, SoftmaxAttention

f64 = torch.float64


def _att(dtype=f64, seed=0, **kw):
    return SoftmaxAttention(16, 2, generator=torch.Generator().manual_seed(seed), dtype=dtype, **kw)


def _x(*shape, seed=1, dtype=f64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@pytest.mark.parametrize("kw", [{}, {"d_qk": 3}, {"d_head": 5, "bias": True}])
def test_step_loop_equals_forward(kw):
    att = _att(**kw)
    x = _x(3, 9, 16)
    cache, outs = att.init_cache(3), []
    for t in range(9):
        y_t, cache = att.step(x[:, t], cache)
        outs.append(y_t)
    assert torch.allclose(torch.stack(outs, 1), att(x), atol=1e-12, rtol=0)
    assert cache.n_tokens == 9


def test_forward_is_causal_softmax_attention_by_hand():
    att = _att()
    x = _x(1, 6, 16)
    q = att.q_proj(x).reshape(1, 6, 2, 8).transpose(1, 2)
    k = att.k_proj(x).reshape(1, 6, 2, 8).transpose(1, 2)
    v = att.v_proj(x).reshape(1, 6, 2, 8).transpose(1, 2)
    s = q @ k.transpose(-1, -2) / math.sqrt(8)
    s = s.masked_fill(~torch.ones(6, 6, dtype=torch.bool).tril(), float("-inf"))
    out = (torch.softmax(s, -1) @ v).transpose(1, 2).reshape(1, 6, 16)
    assert torch.allclose(att(x), att.o_proj(out), atol=1e-12)
    # causal: changing a later token leaves earlier outputs alone
    x2 = x.clone()
    x2[0, 4] += 1
    assert torch.allclose(att(x2)[0, :4], att(x)[0, :4], atol=1e-14)


def test_kv_cache_grows_linearly_and_the_hub_state_does_not():
    # the control for the hub's constant decoding memory
    att = _att(dtype=torch.float32)
    hub = AlephAttention(16, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    x = _x(2, 16, dtype=torch.float32)
    cache, state, sizes = att.init_cache(2), hub.init_state(2), {}
    assert cache.nbytes == 0
    with torch.no_grad():
        for t in range(1, 101):
            _, cache = att.step(x, cache)
            _, state = hub.step(x, state)
            if t in (10, 50, 100):
                sizes[t] = (cache.nbytes, state.nbytes)
    per_token = 2 * 2 * (att.d_qk + att.d_head) * 4  # B · H · (key + value) float32
    assert [sizes[t][0] for t in (10, 50, 100)] == [10 * per_token, 50 * per_token, 100 * per_token]
    assert sizes[10][1] == sizes[100][1]
    assert cache.k.shape == (2, 2, 100, 8) and cache.n_tokens == 100


def test_dtypes_and_bf16_autocast():
    for dt in (torch.float32, f64):
        att = _att(dtype=dt)
        x = _x(2, 4, 16, dtype=dt)
        assert att(x).dtype == dt and att.init_cache(2).k.dtype == dt
        y, c = att.step(x[:, 0], att.init_cache(2))
        assert y.dtype == dt and c.v.dtype == dt
    att = _att(dtype=torch.float32)
    x = _x(2, 4, 16, dtype=torch.float32)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        y = att(x)
        y_t, cache = att.step(x[:, 0], att.init_cache(2))
    assert y.dtype == torch.bfloat16 and cache.k.dtype == torch.float32
    with torch.no_grad():
        assert torch.allclose(y.float(), att(x), atol=0.05)


def test_cache_bytes():
    c = KVCache(k=torch.zeros(1, 2, 3, 4), v=torch.zeros(1, 2, 3, 5, dtype=f64))
    assert c.nbytes == 24 * 4 + 30 * 8 and c.n_tokens == 3


def test_bad_input():
    with pytest.raises(ValueError, match="d_head"):
        SoftmaxAttention(15, 2)
    with pytest.raises(ValueError, match="n_heads"):
        SoftmaxAttention(16, 0)
    with pytest.raises(ValueError, match="d_qk"):
        SoftmaxAttention(16, 2, d_qk=0)
    att = SoftmaxAttention(16, 2)
    with pytest.raises(ValueError, match="x"):
        att(torch.randn(2, 5, 15))
    with pytest.raises(ValueError, match="x"):
        att(torch.randn(5, 16))
    with pytest.raises(ValueError, match="x_t"):
        att.step(torch.randn(2, 15), att.init_cache(2))
    with pytest.raises(ValueError, match="cache"):
        att.step(torch.randn(2, 16), att.init_cache(3))
    with pytest.raises(ValueError, match="cache"):
        att.step(torch.randn(2, 16), None)
    with pytest.raises(ValueError, match="batch_size"):
        att.init_cache(0)
