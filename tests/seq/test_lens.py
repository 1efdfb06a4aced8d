"""Logit lens and the answer-belief probe on models whose distributions are known in closed form."""

import math

import pytest
import torch
from torch import nn

from terrainlab.belief import kl
from terrainlab.seq.lens import answer_belief, logit_lens
from terrainlab.seq.trajectory import capture


class AddConst(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.register_buffer("c", c)

    def forward(self, h):
        return h + self.c


class IdentityLM(nn.Module):
    """d = V: one-hot embeddings, constant-add blocks, identity final norm and unembedding."""

    def __init__(self, V=5):
        super().__init__()
        self.embed = nn.Embedding(V, V)
        with torch.no_grad():
            self.embed.weight.copy_(torch.eye(V))
        self.blocks = nn.ModuleList([AddConst(torch.eye(V)[0]), AddConst(2 * torch.eye(V)[1])])
        self.ln_f = nn.Identity()
        self.lm_head = nn.Identity()

    def forward(self, ids):
        h = self.embed(ids)
        for b in self.blocks:
            h = b(h)
        return self.lm_head(self.ln_f(h))


def test_logit_lens_with_identity_unembedding_is_softmax_of_the_stream():
    model = IdentityLM()
    ids = torch.tensor([[2, 3, 4]])
    tr = capture(model, ids, ["embed", "blocks.0", "blocks.1"])
    lens = logit_lens(tr, "lm_head", "ln_f", model=model)
    assert lens.probs.shape == (3, 1, 3, 5)
    assert torch.allclose(lens.probs, torch.softmax(tr.states, -1))
    assert torch.allclose(lens.kl_next[1], kl(lens.probs[2], lens.probs[1]))
    assert torch.allclose(lens.kl_final[-1], torch.zeros(1, 3))
    assert lens.n_nonfinite_layers == 0
    # the last layer is the model's own output distribution
    assert torch.allclose(lens.probs[-1], torch.softmax(model(ids), -1))
    # layer 1 only adds e_0 to the one-hot stream: its next-token distribution is closed form
    e = math.e
    p1 = torch.tensor([e, 1, e, 1, 1]) / (2 * e + 3)          # token 2: e_2 + e_0
    assert torch.allclose(lens.probs[1, 0, 0], p1, atol=1e-6)


def test_logit_lens_reports_a_nan_layer_and_bad_names():
    states = torch.randn(4, 2, 3, 5)
    states[2, 0, 1, 0] = float("nan")
    lens = logit_lens(states, nn.Identity())
    assert lens.n_nonfinite_layers == 1
    assert bool(torch.isnan(lens.kl_next[1, 0, 1])) and bool(torch.isnan(lens.kl_next[2, 0, 1]))
    assert bool(torch.isfinite(lens.kl_next[0]).all()) and bool(torch.isfinite(lens.kl_next[1, 1]).all())
    with pytest.raises(ValueError, match="unembed.*'head'.*lm_head"):
        logit_lens(states, "head", model=IdentityLM())
    with pytest.raises(ValueError, match="model="):
        logit_lens(states, "lm_head")


class FixedLogits(nn.Module):
    """Logits at every position are n·w (n = the input length) — a belief that sharpens as tokens come."""

    def __init__(self, w, scale_with_length=True):
        super().__init__()
        self.register_buffer("w", w)
        self.vocab_size, self.context, self.grow = w.numel(), 12, scale_with_length

    def forward(self, ids):
        B, n = ids.shape
        f = float(n) if self.grow else 1.0
        return (f * self.w).expand(B, n, -1)


def test_answer_belief_of_a_fixed_logit_model_is_the_restricted_softmax():
    w = torch.tensor([0.0, 1.0, 2.0, -1.0, 0.5, 3.0])
    ans = [1, 2, 4]
    res = answer_belief(FixedLogits(w, scale_with_length=False), [0, 3], [3, 3, 3], ans, [5])
    want = torch.softmax(w[ans], -1)
    assert res.beliefs.shape == (4, 3)
    assert torch.allclose(res.beliefs, want.expand(4, 3))
    assert torch.allclose(res.kl_to_final, torch.zeros(4), atol=1e-7) and res.monotone
    assert res.final_answer == 1  # token 2 is the most likely of {1, 2, 4}


def test_answer_belief_that_sharpens_converges_monotonically_with_a_fitted_rate():
    w = torch.tensor([0.0, 0.3, 0.0, 0.0, 0.0, 0.0])
    res = answer_belief(FixedLogits(w), [0], [3, 3, 3, 3, 3, 3], [1, 2, 4], [5])
    n = torch.arange(2, 9, dtype=torch.float32)        # input length at t = 0 … 6
    p = torch.softmax(n[:, None] * w[[1, 2, 4]], -1)
    assert torch.allclose(res.beliefs, p, atol=1e-6)
    assert torch.allclose(res.kl_to_final, kl(p[-1:].expand_as(p), p), atol=1e-6)
    assert res.monotone and res.n_increases == 0
    assert 0 < res.rate < 1


def test_answer_belief_rejects_bad_arguments_naming_them():
    m = FixedLogits(torch.zeros(6))
    with pytest.raises(ValueError, match="answer_ids must not be empty"):
        answer_belief(m, [0], [1], [], [5])
    with pytest.raises(ValueError, match="answer_ids"):
        answer_belief(m, [0], [1], [1, 6], [5])
    with pytest.raises(ValueError, match="cot_ids must be token ids"):
        answer_belief(m, [0], [1, 9], [1, 2], [5])
    with pytest.raises(ValueError, match="prompt_ids must be token ids"):
        answer_belief(m, [-1], [1], [1, 2], [5])
    with pytest.raises(ValueError, match="cot_ids.*longer than the model's context 12"):
        answer_belief(m, [0, 1, 2], list(range(6)) * 2, [1, 2], [5])
    with pytest.raises(ValueError, match="answer_ids must be distinct"):
        answer_belief(m, [0], [1], [1, 1], [5])
