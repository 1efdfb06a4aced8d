"""The forum reply's system (../shared/aleph.md): the signed aleph address, hub (linear) attention with its
constant-size recurrent state, its softmax control, the aleph-void autoencoder, the byte-level language
model that compares hub and softmax attention, and the Cantor-staircase precision probe.

The whole package is explained in docs/aleph.md.
"""

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
    hub_decoding_field,
    linear_attention_chunked,
    linear_attention_naive,
    linear_attention_rollout,
    linear_attention_step,
)
from terrainlab.aleph.cantor import (
    FailureLevels,
    cantor_staircase,
    first_wrong_level,
    first_wrong_levels,
    ternary_digits,
)
from terrainlab.aleph.lm import (
    ByteCorpus,
    ByteLM,
    ByteLMTrainResult,
    bits_per_byte,
    generate,
    stdlib_corpus,
    train_byte_lm,
)
from terrainlab.aleph.softmax_baseline import KVCache, SoftmaxAttention
from terrainlab.aleph.void import (
    AlephVoid,
    VoidTrainResult,
    digit_images,
    photo_crops,
    reconstruction_cosine,
    train_void,
)

__all__ = [
    "AlephAddress",
    "AlephAttention",
    "AlephVoid",
    "ByteCorpus",
    "ByteLM",
    "ByteLMTrainResult",
    "FailureLevels",
    "HubState",
    "KVCache",
    "SoftmaxAttention",
    "VoidTrainResult",
    "address_logits",
    "bits_per_byte",
    "cantor_staircase",
    "digit_images",
    "first_wrong_level",
    "first_wrong_levels",
    "generate",
    "hub_decoding_field",
    "linear_attention_chunked",
    "linear_attention_naive",
    "linear_attention_rollout",
    "linear_attention_step",
    "photo_crops",
    "reconstruction_cosine",
    "signed_softmax",
    "stdlib_corpus",
    "super_fibonacci",
    "ternary_digits",
    "tiny_floor",
    "train_byte_lm",
    "train_void",
]
