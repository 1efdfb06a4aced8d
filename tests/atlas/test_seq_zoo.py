"""The atlas's shared sequence models: built once, loaded after, weights-only, deterministic."""

import pytest
import torch

from terrainlab.atlas import Context
from terrainlab.atlas.chapters import _seq_zoo


def _ctx(out, seed=0):
    return Context(out_dir=out, exp_id="test.zoo", quick=True, seed=seed)


def test_zoo_builds_once_then_loads(seq_zoo_out):
    ctx = _ctx(seq_zoo_out)
    m1, meta1 = _seq_zoo.trained(ctx, "gpt_direct")
    assert ctx.shared_used and set(ctx.shared_used.values()) <= {"built", "loaded"}
    ctx2 = _ctx(seq_zoo_out)
    m2, meta2 = _seq_zoo.trained(ctx2, "gpt_direct")
    assert list(ctx2.shared_used.values()) == ["loaded"]  # the second experiment never retrains
    assert meta1 == meta2 and meta1["steps"] == 40 and meta1["forms"] == ["direct"]
    assert all(torch.equal(a, b) for a, b in zip(m1.parameters(), m2.parameters()))
    assert set(meta1["generated_accuracy"]) == {"cot", "direct"}


def test_zoo_same_init_for_one_kind():
    a, b = _seq_zoo.new_model("gpt", 3), _seq_zoo.new_model("gpt", 3)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    assert not torch.equal(_seq_zoo.new_model("gpt", 4).lm_head.weight, a.lm_head.weight)


def test_zoo_bad_name(seq_zoo_out):
    with pytest.raises(ValueError, match="name must be one of"):
        _seq_zoo.trained(_ctx(seq_zoo_out), "gpt_huge")
    with pytest.raises(ValueError, match="kind"):
        _seq_zoo.new_model("lstm", 0)
