"""seq.substeps: a pre-LN model's residual branches re-run as n Euler sub-steps of size 1/n."""

import math

import pytest
import torch
from torch import nn

from terrainlab.seq import TinyGPT
from terrainlab.seq.substeps import pre_ln_branches, pre_ln_substep_stream, residual_substeps


def _gpt(seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    m = TinyGPT(12, d_model=16, n_layers=2, n_heads=2, context=8, generator=g)
    if scale != 1.0:  # larger weights: branches that move the stream, so the sub-steps matter
        with torch.no_grad():
            for p in m.blocks.parameters():
                p.mul_(scale)
    return m


def _tokens(seed=1, B=3, T=6):
    return torch.randint(0, 12, (B, T), generator=torch.Generator().manual_seed(seed))


def test_linear_branch_is_compound_interest():
    # h ← h + a·h/n, n times = (1 + a/n)^n h; two branches multiply
    h = torch.ones(2, 3, dtype=torch.float64)
    for n in (1, 2, 5):
        out, st = residual_substeps(h, [lambda x: 0.5 * x, lambda x: -0.2 * x], n=n)
        want = (1 + 0.5 / n) ** n * (1 - 0.2 / n) ** n
        assert st == "completed"
        assert torch.allclose(out, torch.full_like(h, want), atol=1e-12)
    # large n approaches the flow exp(a): the half-step re-run is a step towards it
    out, _ = residual_substeps(h, [lambda x: 0.5 * x], n=2000)
    assert abs(float(out[0, 0]) - math.exp(0.5)) < 1e-3


def test_n1_is_the_model_itself():
    m, x = _gpt(), _tokens()
    with torch.no_grad():
        s = pre_ln_substep_stream(m, x, n=1)
        ref = m.hidden_states(x).transpose(0, 1)
    assert s.states.shape == (3, 3, 6, 16) and s.n == 1 and s.nonfinite_layer is None
    assert torch.allclose(s.states, ref, atol=1e-6)
    # and the half-step run differs from it, from layer 1 on (h_0 is the embedding, untouched)
    with torch.no_grad():
        s2 = pre_ln_substep_stream(_gpt(scale=2.0), x, n=2)
        s1 = pre_ln_substep_stream(_gpt(scale=2.0), x, n=1)
    assert torch.equal(s2.states[0], s1.states[0])
    assert float((s2.states[1:] - s1.states[1:]).abs().max()) > 1e-3


def test_first_order_convergence_to_the_depth_flow():
    # explicit Euler: the error against a fine run halves when n doubles
    m, x = _gpt(scale=2.0).double(), _tokens()
    with torch.no_grad():
        ref = pre_ln_substep_stream(m, x, n=512).states[-1]
        err = [float((pre_ln_substep_stream(m, x, n=n).states[-1] - ref).norm()) for n in (1, 2, 4, 8)]
    assert err[0] > 0.1  # the layer itself (n = 1) is visibly off the flow at this weight scale
    for a, b in zip(err, err[1:]):
        assert 1.8 < a / b < 2.2


def test_gpt2_style_block_names_and_tuple_attention():
    class Attn(nn.Module):
        def forward(self, h):
            return (0.1 * h, None)  # HF-style tuple output

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1, self.attn, self.ln_2, self.mlp = nn.Identity(), Attn(), nn.Identity(), nn.Identity()

    fa, fm = pre_ln_branches(Block())
    h = torch.ones(4)
    assert torch.allclose(fa(h), 0.1 * h) and torch.allclose(fm(h), h)


def test_nonfinite_is_a_status():
    out, st = residual_substeps(torch.ones(3), [lambda x: x * float("nan"), lambda x: x], n=2)
    assert st == "nonfinite" and not bool(torch.isfinite(out).all())
    m, x = _gpt(), _tokens()
    with torch.no_grad():
        m.blocks[1].mlp.fc.weight[0, 0] = float("nan")
        s = pre_ln_substep_stream(m, x, n=2)
    assert s.status == "nonfinite" and s.nonfinite_layer == 2
    assert bool(torch.isfinite(s.states[:2]).all())


def test_bad_input():
    m, x = _gpt(), _tokens()
    with pytest.raises(ValueError, match="n"):
        pre_ln_substep_stream(m, x, n=0)
    with pytest.raises(ValueError, match="tokens"):
        pre_ln_substep_stream(m, torch.full((1, 4), 99), n=2)
    with pytest.raises(ValueError, match="block"):
        pre_ln_branches(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="branches"):
        residual_substeps(torch.ones(2), [], n=2)
    with pytest.raises(ValueError, match="model"):
        pre_ln_substep_stream(nn.Linear(2, 2), x)
