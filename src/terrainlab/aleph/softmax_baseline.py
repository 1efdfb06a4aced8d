"""The control for hub attention: causal softmax attention with a growing KV cache.

Scaled dot-product attention (Vaswani et al. 2017, eq. 1), causal, computed with
``torch.nn.functional.scaled_dot_product_attention``; decoding appends one key and one value per token to
a :class:`KVCache`, so its memory grows linearly with the context and the time per token with it — the
opposite of :class:`~terrainlab.aleph.attention.HubState`. Same projections layout as
:class:`~terrainlab.aleph.attention.AlephAttention` (q, k, v, o; ``d_qk`` per head for queries and keys).

Example:
    >>> g = torch.Generator().manual_seed(0)
    >>> att = SoftmaxAttention(d_model=16, n_heads=2, generator=g).double()
    >>> x = torch.randn(2, 6, 16, generator=g, dtype=torch.float64)
    >>> cache, outs = att.init_cache(2, dtype=torch.float64), []
    >>> for t in range(6):
    ...     y_t, cache = att.step(x[:, t], cache)
    ...     outs.append(y_t)
    >>> bool(torch.allclose(torch.stack(outs, 1), att(x), atol=1e-12)), cache.n_tokens
    (True, 6)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from terrainlab.core.validate import check_int, check_tensor


@dataclass(frozen=True)
class KVCache:
    """Keys (B, H, t, d_qk) and values (B, H, t, d_head) of the t tokens seen: grows by one row per token."""

    k: Tensor
    v: Tensor

    @property
    def n_tokens(self) -> int:
        return self.k.shape[-2]

    @property
    def nbytes(self) -> int:
        return self.k.numel() * self.k.element_size() + self.v.numel() * self.v.element_size()


class SoftmaxAttention(nn.Module):
    """Causal multi-head softmax attention with an explicit KV cache for decoding."""

    def __init__(self, d_model: int, n_heads: int, *, d_head: int | None = None, d_qk: int | None = None,
                 bias: bool = False, generator: torch.Generator | None = None, dtype: torch.dtype | None = None,
                 device=None):
        super().__init__()
        self.d_model = check_int(d_model, "d_model", minimum=1)
        self.n_heads = check_int(n_heads, "n_heads", minimum=1)
        if d_head is None:
            if d_model % n_heads:
                raise ValueError(f"d_head must be given when n_heads={n_heads} does not divide d_model={d_model}")
            d_head = d_model // n_heads
        self.d_head = check_int(d_head, "d_head", minimum=1)
        self.d_qk = check_int(d_qk if d_qk is not None else d_head, "d_qk", minimum=1)
        dtype = dtype or torch.get_default_dtype()
        H = n_heads
        self.q_proj = nn.Linear(d_model, H * self.d_qk, bias=bias, dtype=dtype, device=device)
        self.k_proj = nn.Linear(d_model, H * self.d_qk, bias=bias, dtype=dtype, device=device)
        self.v_proj = nn.Linear(d_model, H * d_head, bias=bias, dtype=dtype, device=device)
        self.o_proj = nn.Linear(H * d_head, d_model, bias=bias, dtype=dtype, device=device)
        for lin in (self.q_proj, self.k_proj, self.v_proj, self.o_proj):
            with torch.no_grad():
                w = torch.rand(lin.weight.shape, generator=generator, dtype=torch.float64) * 2 - 1
                lin.weight.copy_(w / math.sqrt(lin.in_features))
                if lin.bias is not None:
                    lin.bias.zero_()

    def _split(self, a: Tensor, d: int) -> Tensor:
        B, T = a.shape[0], a.shape[1]
        return a.reshape(B, T, self.n_heads, d).transpose(1, 2)

    def forward(self, x: Tensor) -> Tensor:
        """Causal attention over x (B, T, d_model)."""
        check_tensor(x, "x", ndim=3)
        if x.shape[-1] != self.d_model:
            raise ValueError(f"x must have shape (B, T, d_model={self.d_model}), got {tuple(x.shape)}")
        B, T, _ = x.shape
        q, k = self._split(self.q_proj(x), self.d_qk), self._split(self.k_proj(x), self.d_qk)
        v = self._split(self.v_proj(x), self.d_head)
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.o_proj(out.transpose(1, 2).reshape(B, T, self.n_heads * self.d_head))

    def init_cache(self, batch_size: int, *, dtype: torch.dtype | None = None, device=None) -> KVCache:
        check_int(batch_size, "batch_size", minimum=1)
        dt = dtype or self.q_proj.weight.dtype
        device = device if device is not None else self.q_proj.weight.device
        return KVCache(k=torch.zeros(batch_size, self.n_heads, 0, self.d_qk, dtype=dt, device=device),
                       v=torch.zeros(batch_size, self.n_heads, 0, self.d_head, dtype=dt, device=device))

    def step(self, x_t: Tensor, cache: KVCache) -> tuple[Tensor, KVCache]:
        """Decode one token x_t (B, d_model): append its key and value, attend over the whole cache."""
        check_tensor(x_t, "x_t", ndim=2)
        if x_t.shape[-1] != self.d_model:
            raise ValueError(f"x_t must have shape (B, d_model={self.d_model}), got {tuple(x_t.shape)}")
        if not isinstance(cache, KVCache):
            raise ValueError(f"cache must be a KVCache (from init_cache), got {type(cache).__name__}")
        if cache.k.shape[0] != x_t.shape[0]:
            raise ValueError(f"cache must come from a batch of size {x_t.shape[0]} (x_t), got {cache.k.shape[0]}")
        x = x_t[:, None, :]
        q, k = self._split(self.q_proj(x), self.d_qk), self._split(self.k_proj(x), self.d_qk)
        v = self._split(self.v_proj(x), self.d_head)
        cache = KVCache(k=torch.cat([cache.k, k.to(cache.k.dtype)], dim=-2), v=torch.cat([cache.v, v.to(cache.v.dtype)], dim=-2))
        out = torch.nn.functional.scaled_dot_product_attention(q, cache.k.to(q.dtype), cache.v.to(v.dtype))
        return self.o_proj(out.reshape(x_t.shape[0], self.n_heads * self.d_head)), cache
