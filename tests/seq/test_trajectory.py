"""Hook-based capture of hidden trajectories on hand-built modules whose states are known."""

import pytest
import torch
from torch import nn

from terrainlab.seq.trajectory import (
    HiddenTrajectory,
    capture,
    first_tensor,
    resolve_layers,
    token_trajectory,
)


class AddConst(nn.Module):
    """A residual block h + c: every step is exactly c."""

    def __init__(self, c: torch.Tensor):
        super().__init__()
        self.register_buffer("c", c)

    def forward(self, h):
        return h + self.c


class TupleBlock(nn.Module):
    """A Hugging Face-style block: returns (hidden, attention weights)."""

    def __init__(self, c):
        super().__init__()
        self.inner = AddConst(c)

    def forward(self, h):
        return self.inner(h), torch.zeros(1)


class Stack(nn.Module):
    def __init__(self, blocks, V=7, d=4):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.embed = nn.Embedding(V, d)
        with torch.no_grad():
            self.embed.weight.copy_(torch.randn(V, d, generator=g))
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Linear(d, V, bias=False)

    def forward(self, ids, scale=1.0):
        h = self.embed(ids) * scale
        for b in self.blocks:
            h = first_tensor(b(h))
        return self.head(h)


def _ids():
    return torch.tensor([[1, 2, 3, 4, 5], [6, 5, 4, 3, 2]])


def test_constant_steps_are_recorded_exactly_with_embeddings_as_layer_zero():
    cs = [torch.full((4,), float(k + 1)) for k in range(3)]
    model = Stack([AddConst(c) for c in cs])
    tr = capture(model, _ids(), ["embed", "blocks.0", "blocks.1", "blocks.2"])
    assert isinstance(tr, HiddenTrajectory) and tr.states.shape == (4, 2, 5, 4)
    assert torch.equal(tr.states[0], model.embed(_ids()).detach())
    for k, c in enumerate(cs):
        assert torch.allclose(tr.states[k + 1] - tr.states[k], c.expand(2, 5, 4))
    assert tr.n_nonfinite == (0, 0, 0, 0) and not tr.has_nonfinite
    assert tr.across_depth(2).shape == (4, 2, 4) and torch.equal(tr.across_tokens("blocks.1"), tr.states[2])
    assert tr.output.shape == (2, 5, 7)  # the forward's own output is kept untouched


def test_pattern_selects_blocks_in_module_order_and_missing_layer_lists_modules():
    model = Stack([AddConst(torch.ones(4)) for _ in range(3)])
    assert resolve_layers(model, r"blocks\.\d+") == ["blocks.0", "blocks.1", "blocks.2"]
    with pytest.raises(ValueError, match=r"'blocks\.9'.*blocks\.0, blocks\.1"):
        capture(model, _ids(), ["embed", "blocks.9"])
    with pytest.raises(ValueError, match="matches no module.*embed"):
        capture(model, _ids(), r"layer\.\d+")
    with pytest.raises(ValueError, match="layers"):
        capture(model, _ids(), [])


def _hook_count(model):
    return sum(len(m._forward_hooks) for m in model.modules())


def test_hooks_are_removed_after_success_and_after_an_exception():
    class Boom(nn.Module):
        def forward(self, h):
            raise RuntimeError("boom")

    model = Stack([AddConst(torch.ones(4)), Boom()])
    with pytest.raises(RuntimeError, match="boom"):
        capture(model, _ids(), ["embed", "blocks.0", "blocks.1"])
    assert _hook_count(model) == 0
    ok = Stack([AddConst(torch.ones(4))])
    capture(ok, _ids(), ["embed", "blocks.0"])
    assert _hook_count(ok) == 0


def test_tuple_outputs_contribute_their_first_tensor():
    model = Stack([TupleBlock(torch.ones(4)), TupleBlock(2 * torch.ones(4))])
    tr = capture(model, _ids(), ["embed", "blocks.0", "blocks.1"])
    assert torch.allclose(tr.states[2] - tr.states[0], torch.full((2, 5, 4), 3.0))


def test_nan_at_layer_two_is_reported_not_hidden():
    class NaNBlock(nn.Module):
        def forward(self, h):
            h = h.clone()
            h[0, 1, 2] = float("nan")
            return h

    model = Stack([AddConst(torch.ones(4)), NaNBlock(), AddConst(torch.ones(4))])
    tr = capture(model, _ids(), ["embed", "blocks.0", "blocks.1", "blocks.2"])
    assert tr.n_nonfinite == (0, 0, 1, 1)
    assert tr.nonfinite_layers == ("blocks.1", "blocks.2") and tr.has_nonfinite


def test_keyword_forward_through_call_and_keep_grad():
    model = Stack([AddConst(torch.ones(4))])
    inputs = {"ids": _ids(), "scale": 2.0}
    tr = capture(model, inputs, ["embed", "blocks.0"], call=lambda m, x: m(**x), keep_grad=True)
    assert torch.allclose(tr.states[1], 2 * model.embed(_ids()) + 1)  # scale=2.0 reached the forward
    assert tr.states.requires_grad
    tr2 = capture(model, _ids(), ["embed"])
    assert not tr2.states.requires_grad


def test_gru_token_trajectory_is_its_output_sequence_batch_first_either_way():
    torch.manual_seed(0)
    for batch_first in (True, False):
        gru = nn.GRU(3, 5, batch_first=batch_first)
        model = nn.Sequential(gru)
        x = torch.randn(2, 6, 3) if batch_first else torch.randn(6, 2, 3)
        h = token_trajectory(model, x, "0")
        out = gru(x)[0]
        assert h.shape == (2, 6, 5)
        assert torch.allclose(h, out if batch_first else out.transpose(0, 1))


def test_on_the_seq_models_capture_matches_their_own_hidden_states():
    from terrainlab.seq import GRULM, TinyGPT, gru_cell_map, logit_lens

    g = torch.Generator().manual_seed(0)
    gpt = TinyGPT(vocab_size=13, d_model=16, n_layers=2, n_heads=2, context=8, generator=g)
    ids = torch.randint(0, 13, (3, 8), generator=g)
    tr = capture(gpt, ids, ["embed", r"blocks.0", "blocks.1"])
    assert torch.allclose(tr.states, gpt.hidden_states(ids).movedim(1, 0))
    assert capture(gpt, ids, r"embed|blocks\.\d+").layers == ("embed", "blocks.0", "blocks.1")
    lens = logit_lens(tr, "lm_head", "ln_f", model=gpt)
    assert torch.allclose(lens.probs[-1], torch.softmax(gpt(ids), -1), atol=1e-6)
    gru = GRULM(vocab_size=13, d_hidden=8, generator=g)
    h = token_trajectory(gru, ids, "rnn")
    assert torch.allclose(h, gru.hidden_states(ids))
    e = gru.embed(torch.tensor(4))
    assert torch.allclose(gru_cell_map(gru.rnn, e)(h), gru.token_map(4)(h), atol=1e-6)


def test_on_a_hugging_face_gpt2_built_from_a_tiny_config():
    transformers = pytest.importorskip("transformers", reason="transformers (the 'lm' extra) not installed")
    from terrainlab.seq import logit_lens

    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=50, n_positions=16, n_embd=32, n_layer=2, n_head=2,
                                  bos_token_id=0, eos_token_id=0)
    model = transformers.GPT2LMHeadModel(cfg).eval()  # eval: dropout off, so `drop` outputs h_0
    ids = torch.randint(0, 50, (2, 7), generator=torch.Generator().manual_seed(1))
    x = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    model(**x, output_hidden_states=True)
    own_hooks = _hook_count(model)  # transformers installs hooks of its own on the first forward
    tr = capture(model, x, r"transformer\.(drop|h\.\d+)", call=lambda m, v: m(**v, output_hidden_states=True))
    assert tr.layers == ("transformer.drop", "transformer.h.0", "transformer.h.1")
    hs = tr.output.hidden_states  # HF's own: h_0, h_1, and ln_f(h_2) — its last entry is normalised
    assert torch.allclose(tr.states[0], hs[0]) and torch.allclose(tr.states[1], hs[1])
    assert torch.allclose(model.transformer.ln_f(tr.states[2]), hs[2], atol=1e-5)
    lens = logit_lens(tr, "lm_head", "transformer.ln_f", model=model)
    assert torch.allclose(lens.probs[-1], torch.softmax(tr.output.logits, -1), atol=1e-6)
    assert _hook_count(model) == own_hooks
