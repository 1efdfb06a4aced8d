"""TinyGPT and GRULM: shapes, causality, the explicit residual stream, the GRU step map, bad input."""

import pytest
import torch

from terrainlab.seq import GRULM, TinyGPT


def g(seed=0):
    return torch.Generator().manual_seed(seed)


def gpt(**kw):
    args = dict(vocab_size=15, d_model=32, n_layers=2, n_heads=4, context=12, generator=g())
    args.update(kw)
    return TinyGPT(**args)


def test_gpt_shapes_and_module_names():
    m = gpt()
    x = torch.randint(0, 15, (3, 12), generator=g(1))
    assert m(x).shape == (3, 12, 15)
    hs = m.hidden_states(x)
    assert hs.shape == (3, 3, 12, 32)
    names = dict(m.named_modules())
    for name in ("embed", "blocks.0", "blocks.1", "blocks.0.attn", "blocks.1.mlp", "ln_f", "lm_head"):
        assert name in names
    assert m.config == dict(vocab_size=15, d_model=32, n_layers=2, n_heads=4, context=12, d_mlp=128)


def test_gpt_blocks_are_the_residual_stream_and_hooks_read_it():
    m = gpt()
    x = torch.randint(0, 15, (2, 9), generator=g(2))
    seen = {}
    hooks = [m.get_submodule(n).register_forward_hook(lambda mod, i, o, n=n: seen.__setitem__(n, o))
             for n in ("embed", "blocks.0", "blocks.1", "blocks.0.attn", "blocks.0.mlp")]
    logits = m(x)
    for h in hooks:
        h.remove()
    hs = m.hidden_states(x)
    assert torch.equal(seen["embed"], hs[:, 0]) and torch.equal(seen["blocks.0"], hs[:, 1])
    assert torch.equal(seen["blocks.1"], hs[:, 2])
    # h_1 = h_0 + attn + mlp: the block output is the sum of its two recorded updates
    torch.testing.assert_close(seen["blocks.0"], seen["embed"] + seen["blocks.0.attn"] + seen["blocks.0.mlp"])
    torch.testing.assert_close(logits, m.unembed(hs[:, -1]))


def test_gpt_is_causal():
    m = gpt()
    x = torch.randint(0, 15, (4, 12), generator=g(3))
    y = x.clone()
    y[:, 7:] = (y[:, 7:] + 1) % 15
    a, b = m(x), m(y)
    assert torch.equal(a[:, :7], b[:, :7])
    assert not torch.allclose(a[:, 7:], b[:, 7:])


def test_gpt_generator_gives_reproducible_weights_and_leaves_global_rng_alone():
    state = torch.random.get_rng_state()
    a, b, c = gpt(generator=g(5)), gpt(generator=g(5)), gpt(generator=g(6))
    assert torch.equal(torch.random.get_rng_state(), state)
    pa, pb, pc = (torch.nn.utils.parameters_to_vector(x.parameters()) for x in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)


def test_gpt_float64_and_shorter_sequences():
    m = gpt().double()
    x = torch.randint(0, 15, (2, 5), generator=g(4))
    assert m(x).dtype == torch.float64 and m(x).shape == (2, 5, 15)


def test_gru_step_reproduces_forward_and_is_causal():
    m = GRULM(15, d_hidden=24, generator=g())
    x = torch.randint(0, 15, (3, 10), generator=g(1))
    hs = m.hidden_states(x)
    assert hs.shape == (3, 10, 24) and m(x).shape == (3, 10, 15)
    h = m.initial_state(3)
    for t in range(10):
        h = m.step(h, x[:, t])
        torch.testing.assert_close(h, hs[:, t], atol=1e-6, rtol=1e-5)
    phi = m.token_map(4)
    h0 = torch.randn(7, 24, generator=g(2))
    torch.testing.assert_close(phi(h0), m.step(h0, 4))
    # the map is differentiable for the dynamics toolkit (Jacobian by torch.func)
    J = torch.func.jacrev(phi)(h0[0])
    assert J.shape == (24, 24) and bool(torch.isfinite(J).all())
    y = x.clone()
    y[:, 6:] = (y[:, 6:] + 1) % 15
    assert torch.equal(m(x)[:, :6], m(y)[:, :6])


def test_gru_h0_and_context():
    m = GRULM(15, d_hidden=8, context=6, generator=g())
    x = torch.randint(0, 15, (2, 6), generator=g(1))
    h0 = torch.randn(2, 8, generator=g(2))
    torch.testing.assert_close(m.hidden_states(x, h0)[:, 0], m.step(h0, x[:, 0]), atol=1e-6, rtol=1e-5)
    with pytest.raises(ValueError, match="^h0"):
        m(x, torch.zeros(3, 8))


@pytest.mark.parametrize("call,name", [
    (lambda: gpt()(torch.zeros(1, 13, dtype=torch.long)), "tokens"),          # longer than context
    (lambda: gpt()(torch.full((1, 4), 15)), "tokens"),                        # id out of range
    (lambda: gpt()(torch.full((1, 4), -1)), "tokens"),
    (lambda: gpt()(torch.zeros(1, 4)), "tokens"),                             # floats
    (lambda: gpt()(torch.zeros(4, dtype=torch.long)), "tokens"),              # no batch dimension
    (lambda: gpt(n_heads=5), "n_heads"),
    (lambda: gpt(context=0), "context"),
    (lambda: gpt(vocab_size=1), "vocab_size"),
    (lambda: GRULM(15, 8, context=4)(torch.zeros(1, 5, dtype=torch.long)), "tokens"),
    (lambda: GRULM(15, 8)(torch.full((1, 3), 20)), "tokens"),
    (lambda: GRULM(15, 8).step(torch.zeros(2, 8), 15), "token"),
    (lambda: GRULM(15, 8).step(torch.zeros(2, 7), 1), "h"),
    (lambda: GRULM(15, 8).token_map(-1), "token"),
    (lambda: GRULM(15, 0), "d_hidden"),
])
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        call()
