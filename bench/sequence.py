"""Benchmark: reading the residual stream (all layers, all positions) against a plain forward.

MiniLM-L6 (all-MiniLM-L6-v2 as ``transformers.BertModel``, from the ``lm`` extra), under
``torch.no_grad()``, one torch thread, alternated in one process, medians:

* ``forward``: ``model(**enc)``, the plain forward the trajectory is read from;
* ``hooks``: the residual stream h₀ … h₆ captured with forward hooks and stacked,
  (L+1, B, S, D), with its NaN/inf count — ``terrainlab.seq.trajectory.capture`` through
  ``terrainlab.seq.pretrained.residual_stream``;
* ``hf hidden_states``: the same states through Hugging Face's ``output_hidden_states=True``
  (the anchor: what an HF user would write).

The same for the tiny GPT of ``terrainlab.seq.models`` (pre-LN, d = 64, 2 and 4 layers, random init;
the atlas models have this size): ``capture`` of ``embed``, ``blocks.0`` … against ``model(tokens)``.

Target: hooks ≤ 1.1× forward.

``--train`` also trains each model of the atlas's zoo (:mod:`terrainlab.atlas.chapters._seq_zoo`,
full and quick sizes, seed 0) once and prints its training time, final loss and free-running accuracy:
what the first experiment that asks for a model pays in an atlas run (later ones load the file).

Run: python bench/sequence.py [--quick] [--train]
"""

from __future__ import annotations

import argparse
import importlib
import platform

import torch
from _timing import alternate, table

from terrainlab.seq.models import TinyGPT
from terrainlab.seq.pretrained import load_minilm, residual_stream, tokenize_texts
from terrainlab.seq.trajectory import capture

torch.set_num_threads(1)

MODULES = ("json", "heapq", "bisect", "textwrap", "difflib", "fractions", "argparse", "csv", "shlex",
           "fnmatch", "glob", "string", "calendar", "statistics", "pprint", "base64")


def texts(n: int, chars: int) -> list[str]:
    out = [" ".join((importlib.import_module(m).__doc__ or "").split())[:chars] for m in MODULES]
    return [t for t in out if t][:n]


def tiny_gpt(quick: bool):
    rows = []
    for L, B, T in ([(2, 64, 32)] if quick else [(2, 64, 32), (4, 64, 64), (4, 256, 64)]):
        model = TinyGPT(20, d_model=64, n_layers=L, context=64, generator=torch.Generator().manual_seed(0))
        tokens = torch.randint(0, 20, (B, T), generator=torch.Generator().manual_seed(1))
        layers = ["embed"] + [f"blocks.{i}" for i in range(L)]

        def forward():
            with torch.no_grad():
                return model(tokens)

        def hooks():
            with torch.no_grad():
                return capture(model, tokens, layers).states

        t = alternate({"forward": forward, "hooks": hooks}, repeats=11 if quick else 31, warmup=3)
        rows.append([f"L={L}, {B}×{T}", f"{t['forward'] * 1e3:.2f}", f"{t['hooks'] * 1e3:.2f}",
                     f"{t['hooks'] / t['forward']:.3f}"])
    print(table(rows, ["tiny GPT (d = 64)", "forward ms", "capture ms", "capture / forward"]))


def zoo_training():
    from terrainlab.atlas.chapters import _seq_zoo

    rows = []
    for name in _seq_zoo.ZOO:
        for quick in (False, True):
            meta = _seq_zoo._build(name, 0, quick)["meta"]
            acc = meta["generated_accuracy"]
            rows.append([name, "quick" if quick else "full", str(meta["steps"]), f"{meta['seconds']:.1f}",
                         f"{meta['final_loss']:.4f}", f"{acc['cot']:.3f}", f"{acc['direct']:.3f}"])
    print(table(rows, ["zoo model", "mode", "steps", "train s", "final loss", "CoT acc", "direct acc"]))


def main(quick: bool = False, train: bool = False):
    model, tok = load_minilm()
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, 1 thread; MiniLM-L6 "
          f"({sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters)")
    shapes = [(4, 120)] if quick else [(4, 120), (16, 200), (16, 500)]
    rows = []
    for n, chars in shapes:
        enc = tokenize_texts(tok, texts(n, chars), max_length=512)
        B, S = enc["input_ids"].shape

        def forward():
            with torch.no_grad():
                return model(**enc).last_hidden_state

        def hooks():
            return residual_stream(model, enc)

        def hf():
            with torch.no_grad():
                return torch.stack(model(**enc, output_hidden_states=True).hidden_states)

        assert torch.allclose(hooks(), hf(), atol=1e-5)
        t = alternate({"forward": forward, "hooks": hooks, "hf": hf}, repeats=5 if quick else 11)
        rows.append([f"{B}×{S}", f"{t['forward'] * 1e3:.1f}", f"{t['hooks'] * 1e3:.1f}", f"{t['hf'] * 1e3:.1f}",
                     f"{t['hooks'] / t['forward']:.3f}", f"{t['hf'] / t['forward']:.3f}"])
    print(table(rows, ["batch × tokens", "forward ms", "hooks ms", "hf hidden_states ms", "hooks / forward",
                       "hf / forward"]))
    tiny_gpt(quick)
    if train:
        zoo_training()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument("--train", action="store_true", help="also time the training of the atlas's zoo models")
    args = p.parse_args()
    main(args.quick, args.train)
