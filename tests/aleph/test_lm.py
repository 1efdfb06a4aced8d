"""terrainlab.aleph.lm: the byte-level LM (hub / softmax / control mixers), its stdlib data and bits per byte."""

import math

import pytest
import torch
from torch import nn

from terrainlab.aleph.lm import (
    ATTENTIONS,
    ByteLM,
    bits_per_byte,
    fixed_windows,
    generate,
    n_params,
    sample_windows,
    stdlib_corpus,
    train_byte_lm,
)


def small(attention, seed=0, **kw):
    kw = dict(d_model=32, n_layers=2, n_heads=2, context=24, K=4, D_addr=4) | kw
    return ByteLM(attention, generator=torch.Generator().manual_seed(seed), **kw).double()


def randomise_(model, seed=1):
    """The residual branches start at 0; give every weight a random value so causality is tested for real."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return model


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_shapes_and_dtype(attention):
    m = small(attention)
    x = torch.randint(0, 256, (3, 17), generator=torch.Generator().manual_seed(0))
    out = m(x)
    assert out.shape == (3, 17, 256) and out.dtype == torch.float64 and torch.isfinite(out).all()


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_causal_changing_byte_t_leaves_earlier_logits(attention):
    m = randomise_(small(attention))
    g = torch.Generator().manual_seed(3)
    x = torch.randint(0, 256, (2, 24), generator=g)
    base = m(x)
    for t in (0, 5, 11, 23):
        y = x.clone()
        y[:, t] = (y[:, t] + 1 + torch.randint(0, 254, (2,), generator=g)) % 256
        out = m(y)
        assert torch.equal(out[:, :t], base[:, :t]), (attention, t)
        assert not torch.allclose(out[:, t], base[:, t])  # the byte itself is seen at t


@pytest.mark.parametrize("attention", ["hub", "softmax", "mean"])
def test_mixer_reads_the_past(attention):
    """With the attention on, logits at t depend on bytes before t − 2 (beyond the trigram); without it not."""
    m = randomise_(small(attention))
    x = torch.randint(0, 256, (2, 24), generator=torch.Generator().manual_seed(4))
    y = x.clone()
    y[:, 2] = (y[:, 2] + 7) % 256
    assert not torch.allclose(m(y)[:, 10], m(x)[:, 10])
    none = randomise_(small("none"))
    assert torch.equal(none(y)[:, 10], none(x)[:, 10])


@pytest.mark.parametrize("ngram", [1, 2, 3])
def test_input_embedding_sees_exactly_ngram_bytes(ngram):
    """Without a mixer the logits at t depend on x_t … x_{t−ngram+1} and on nothing earlier."""
    m = randomise_(small("none", ngram=ngram))
    x = torch.randint(0, 256, (2, 24), generator=torch.Generator().manual_seed(5))
    t = 12
    for back in range(5):
        y = x.clone()
        y[:, t - back] = (y[:, t - back] + 11) % 256
        same = torch.equal(m(y)[:, t], m(x)[:, t])
        assert same == (back >= ngram), (ngram, back)
    assert len(m.E) == ngram


def test_equal_parameter_counts_hub_softmax():
    for kw in ({}, dict(d_model=64, n_layers=2, n_heads=4, context=64, K=8, D_addr=4)):
        hub, soft = n_params(small("hub", **kw)), n_params(small("softmax", **kw))
        assert hub != soft  # the hub has its codebooks on top of the same projections
        assert abs(hub - soft) / soft < 0.01, (hub, soft)
    default_hub = n_params(ByteLM("hub"))
    default_soft = n_params(ByteLM("softmax"))
    assert default_hub - default_soft == 2 * 4 * 8 * 4  # n_layers · H · K · D_addr codebook entries


def test_init_is_seeded_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a, b = small("hub", seed=5), small("hub", seed=5)
    assert torch.equal(torch.get_rng_state(), before)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    c = small("hub", seed=6)
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))


def test_stdlib_split_disjoint_files_and_deterministic():
    c1, c2 = stdlib_corpus(), stdlib_corpus()
    assert set(c1.train_files).isdisjoint(c1.held_out_files)
    assert len(c1.held_out_files) >= 5 and len(c1.train_files) >= 9 * len(c1.held_out_files) - 9
    assert c1.train_files == tuple(sorted(c1.train_files))
    assert torch.equal(c1.train, c2.train) and torch.equal(c1.held_out, c2.held_out)
    assert c1.train.dtype == torch.uint8 and c1.train.numel() > 10 * c1.held_out.numel() > 0
    assert c1.train.data_ptr() != c2.train.data_ptr()  # each call hands out its own tensors
    ten = stdlib_corpus(max_files=10)
    assert len(ten.held_out_files) == 1 and ten.held_out_files[0] not in ten.train_files


def test_windows_seeded_and_fixed():
    data = torch.arange(200, dtype=torch.uint8)
    a = sample_windows(data, 5, 9, torch.Generator().manual_seed(0))
    b = sample_windows(data, 5, 9, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.shape == (5, 9) and a.dtype == torch.int64
    assert torch.equal(a[:, 1:] - a[:, :-1], torch.ones(5, 8, dtype=torch.int64))  # consecutive bytes
    f = fixed_windows(data, 4, 10)
    assert f[0, 0] == 0 and f[-1, -1] == 199 and torch.equal(f, fixed_windows(data, 4, 10))


def test_bits_per_byte_of_uniform_model_is_8_exactly():
    class Uniform(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.c = c

        def forward(self, x):
            return torch.full((*x.shape, 256), self.c)

    w = fixed_windows(stdlib_corpus(max_files=10).held_out, 7, 13)
    assert bits_per_byte(Uniform(0.0), w, batch_size=3) == 8.0
    assert abs(bits_per_byte(Uniform(3.7), w) - 8.0) < 1e-13


def test_bits_per_byte_matches_cross_entropy():
    m = randomise_(small("softmax"))
    w = torch.randint(0, 256, (5, 20), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        logits = m(w[:, :-1])
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, 256), w[:, 1:].reshape(-1))
    assert math.isclose(bits_per_byte(m, w, batch_size=2), float(ce) / math.log(2), rel_tol=1e-10)


@pytest.mark.parametrize("attention", ["hub", "softmax"])
def test_a_few_steps_lower_the_loss(attention):
    corpus = stdlib_corpus(max_files=20)
    m = ByteLM(attention, d_model=32, n_layers=1, n_heads=2, context=32, K=4, D_addr=4,
               generator=torch.Generator().manual_seed(0))
    ev = fixed_windows(corpus.held_out, 16, 33)
    res = train_byte_lm(m, corpus.train, steps=30, batch_size=16, length=33, lr=1e-2,
                        generator=torch.Generator().manual_seed(1), eval_windows=ev, eval_every=10)
    assert res.status == "completed" and res.n_steps == 30 and res.step_seconds.shape == (30,)
    assert res.eval_steps == (0, 10, 20, 30) and len(res.eval_bpb) == 4
    assert res.losses[-5:].mean() < res.losses[:5].mean() - 0.5
    assert res.eval_bpb[-1] < res.eval_bpb[0] - 0.5


def test_training_is_deterministic():
    corpus = stdlib_corpus(max_files=10)

    def run():
        m = ByteLM("hub", d_model=16, n_layers=1, n_heads=2, context=16, K=4, D_addr=4,
                   generator=torch.Generator().manual_seed(0))
        return train_byte_lm(m, corpus.train, steps=4, batch_size=4, length=17, generator=torch.Generator().manual_seed(2))

    assert torch.equal(run().losses, run().losses)


def test_nonfinite_loss_is_a_status_not_an_exception():
    corpus = stdlib_corpus(max_files=10)
    m = ByteLM("softmax", d_model=16, n_layers=1, n_heads=2, context=16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        m.head.bias.fill_(float("nan"))
    res = train_byte_lm(m, corpus.train, steps=3, batch_size=4, length=17, generator=torch.Generator().manual_seed(0))
    assert res.status == "nonfinite" and res.n_steps == 1


def test_generate_greedy_appends_bytes():
    m = small("hub").float()
    out = generate(m, b"def ", 5)
    assert out[:4] == b"def " and len(out) == 9 and out == generate(m, b"def ", 5)


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda: ByteLM("rnn"), "attention"),
        (lambda: ByteLM("hub", d_model=30, n_heads=4), "n_heads"),
        (lambda: ByteLM("hub", context=0), "context"),
        (lambda: ByteLM("hub", tau=0.0), "tau"),
        (lambda: ByteLM("hub", ngram=4), "ngram"),
        (lambda: ByteLM("hub", generator=3), "generator"),
        (lambda: small("hub")(torch.randint(0, 256, (2, 25))), "x"),
        (lambda: small("hub")(torch.full((2, 5), 256)), "x"),
        (lambda: small("hub")(torch.rand(2, 5)), "x"),
        (lambda: stdlib_corpus(held_out_every=1), "held_out_every"),
        (lambda: sample_windows(torch.arange(5, dtype=torch.uint8), 2, 9, torch.Generator()), "data"),
        (lambda: sample_windows(torch.arange(50), 2, 9, torch.Generator()), "data"),
        (lambda: sample_windows(torch.arange(50, dtype=torch.uint8), 0, 9, torch.Generator()), "n"),
        (lambda: fixed_windows(torch.arange(50, dtype=torch.uint8), 2, 1), "length"),
        (lambda: bits_per_byte(small("hub"), torch.zeros(3, 1, dtype=torch.long)), "windows"),
        (lambda: train_byte_lm(small("hub"), torch.arange(50, dtype=torch.uint8), steps=0,
                               generator=torch.Generator()), "steps"),
        (lambda: train_byte_lm(small("hub"), torch.arange(50, dtype=torch.uint8), steps=2, lr=-1.0,
                               length=9, generator=torch.Generator()), "lr"),
        (lambda: generate(small("hub"), b"", 3), "prompt"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(make, name):
    with pytest.raises(ValueError, match=name):
        make()
