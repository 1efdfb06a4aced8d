"""The forum reply's system (../shared/aleph.md): the signed aleph address, hub (linear) attention with its
constant-size recurrent state, its softmax control, and the aleph-void autoencoder."""

from terrainlab.aleph.address import (
    AlephAddress,
    address_logits,
    signed_softmax,
    super_fibonacci,
    tiny_floor,
)
from terrainlab.aleph.attention import (
    AlephAttention,
    HubState,
    linear_attention_chunked,
    linear_attention_naive,
    linear_attention_step,
)
from terrainlab.aleph.softmax_baseline import KVCache, SoftmaxAttention

__all__ = [
    "AlephAddress",
    "AlephAttention",
    "HubState",
    "KVCache",
    "SoftmaxAttention",
    "address_logits",
    "linear_attention_chunked",
    "linear_attention_naive",
    "linear_attention_step",
    "signed_softmax",
    "super_fibonacci",
    "tiny_floor",
]
