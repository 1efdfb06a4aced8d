"""seq.answer_belief(causal=True): one right-padded forward gives the beliefs of T+1 separate forwards."""

import torch

from terrainlab.seq import TinyGPT, answer_belief


def test_causal_batching_matches_one_forward_per_prefix():
    model = TinyGPT(20, d_model=32, n_layers=2, n_heads=4, context=24, generator=torch.Generator().manual_seed(0))
    prompt, cot, answers, probe = [1, 12, 3, 14, 4], [5, 12, 3, 14, 4, 15, 5, 6], [12, 13, 14, 15, 16], [8]
    calls = {"n": 0}

    def call(m, ids):
        calls["n"] += 1
        return m(ids)

    ref = answer_belief(model, prompt, cot, answers, probe, call=call)
    n_ref, calls["n"] = calls["n"], 0
    fast = answer_belief(model, prompt, cot, answers, probe, call=call, causal=True)
    assert (n_ref, calls["n"]) == (len(cot) + 1, 1)
    assert torch.allclose(fast.logits, ref.logits, atol=1e-5)
    assert torch.allclose(fast.kl_to_final, ref.kl_to_final, atol=1e-5, rtol=1e-4)
    assert (fast.monotone, fast.n_increases, fast.final_answer) == (ref.monotone, ref.n_increases, ref.final_answer)
    # no probe and an empty chain work too
    a = answer_belief(model, prompt, [], answers, causal=True)
    b = answer_belief(model, prompt, [], answers)
    assert torch.allclose(a.logits, b.logits, atol=1e-5)


def test_causal_flag_matters_for_a_bidirectional_model():
    class MeanMixer(torch.nn.Module):  # every position sees the mean of the whole sequence
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(10, 10)

        def forward(self, ids):
            h = self.emb(ids)
            return h + h.mean(1, keepdim=True)

    m = MeanMixer()
    torch.nn.init.normal_(m.emb.weight, generator=torch.Generator().manual_seed(0))
    ref = answer_belief(m, [1, 2], [3, 4, 5], [6, 7, 8], [9])
    wrong = answer_belief(m, [1, 2], [3, 4, 5], [6, 7, 8], [9], causal=True)
    assert torch.allclose(ref.logits[-1], wrong.logits[-1], atol=1e-6)  # the longest row has no padding
    assert not torch.allclose(ref.logits[0], wrong.logits[0], atol=1e-3)  # padded rows differ: keep causal=False
