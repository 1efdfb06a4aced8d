"""seq.loops: the finite-window decoding map and the census of its loops."""

import pytest
import torch
from torch import nn

from terrainlab.seq import TinyGPT, canonical_loop, loop_census, window_orbit


class NextIsPlusOne(nn.Module):
    """A 'model' whose greedy next token is (last token + 1) mod V: a loop of period V from anywhere."""

    vocab_size, context = 5, 8

    def forward(self, tokens):
        return 10.0 * nn.functional.one_hot((tokens + 1) % self.vocab_size, self.vocab_size).double()


def test_window_orbit_is_the_map_and_census_finds_the_loop():
    start = torch.tensor([[0, 0, 0, 1], [3, 3, 3, 3]])
    orb = window_orbit(NextIsPlusOne(), start, steps=20)
    assert orb.tokens.shape == (2, 24) and orb.windows.shape == (21, 2, 4)
    assert orb.tokens[0, 4:9].tolist() == [2, 3, 4, 0, 1]
    assert torch.equal(orb.windows[5], orb.tokens[:, 5:9])  # window k = tokens[k : k + W]
    c = loop_census(orb.tokens, max_period=8)
    assert c.period.tolist() == [5, 5] and bool(c.cycled.all())
    assert c.loops == ((0, 1, 2, 3, 4),) and c.basin == (1.0,) and c.loop_id.tolist() == [0, 0]
    assert c.transient[1] <= 4  # row 1 is periodic from its first written token on


def test_census_groups_rows_by_loop_and_reports_no_cycle():
    rows = torch.tensor([
        [9, 1, 2, 1, 2, 1, 2, 1, 2],
        [2, 1, 2, 1, 2, 1, 2, 1, 2],  # the same loop, another rotation
        [4, 4, 4, 4, 4, 4, 4, 4, 4],
        [0, 1, 2, 3, 4, 5, 6, 7, 8],  # no cycle
    ])
    c = loop_census(rows, max_period=3, min_repeats=3)
    assert c.loops == ((1, 2), (4,))
    assert c.basin == (0.5, 0.25) and c.cycle_fraction == 0.75
    assert c.loop_id.tolist() == [0, 0, 1, -1] and c.period.tolist() == [2, 2, 1, 0]
    assert canonical_loop([2, 1]) == (1, 2)


def test_sampling_is_seeded_and_needs_a_generator():
    g = torch.Generator().manual_seed(0)
    gpt = TinyGPT(vocab_size=6, d_model=16, n_layers=1, n_heads=2, context=8, generator=g)
    start = torch.randint(0, 6, (3, 8), generator=g)
    a = window_orbit(gpt, start, 30, temperature=1.0, generator=torch.Generator().manual_seed(1))
    b = window_orbit(gpt, start, 30, temperature=1.0, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a.tokens, b.tokens)
    # a near-uniform random model sampled at T = 1 does not settle into a loop
    assert loop_census(a.tokens, max_period=8).cycle_fraction < 1.0
    with pytest.raises(ValueError, match="generator"):
        window_orbit(gpt, start, 5, temperature=1.0)
    with pytest.raises(ValueError, match="start"):
        window_orbit(gpt, torch.zeros(2, 9, dtype=torch.long), 5)  # longer than the context
    with pytest.raises(ValueError, match="tokens"):
        loop_census(torch.zeros(2, 3))


def test_window_census_needs_the_window_to_return():
    # the tokens end in "1 2 1 2 1 2" (three periods of 2) but a window of 6 has not come back yet
    row = torch.tensor([[5, 6, 7, 8, 9, 3, 4, 1, 2, 1, 2, 1, 2]])
    assert loop_census(row, max_period=4).period.tolist() == [2]
    assert loop_census(row, max_period=4, min_repeats=2, window=6).period.tolist() == [0]
    # a long enough tail: every window of the loop returns
    row = torch.tensor([[5, 6, 7] + [1, 2] * 8])
    c = loop_census(row, max_period=4, min_repeats=2, window=6)
    assert c.period.tolist() == [2] and c.transient.tolist() == [3] and c.window == 6
    with pytest.raises(ValueError, match="window"):
        loop_census(row, window=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_window_orbit_on_cuda():
    start = torch.tensor([[0, 0, 0, 1], [3, 3, 3, 3]])
    model = NextIsPlusOne()
    cpu = window_orbit(model, start, steps=12)
    gpu = window_orbit(model, start.cuda(), steps=12)
    assert torch.equal(gpu.tokens.cpu(), cpu.tokens)
    s = window_orbit(model, start.cuda(), steps=5, temperature=1.0, generator=torch.Generator().manual_seed(0))
    assert s.tokens.device.type == "cuda"
