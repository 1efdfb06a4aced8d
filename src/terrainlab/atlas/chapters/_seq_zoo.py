"""The atlas's trained sequence models: trained once per atlas run, shared by the experiments that use them.

Holds no experiment (the registry imports it and finds none). Every model is built through
:meth:`terrainlab.atlas.Context.shared`: the first experiment that asks trains it and writes
``<out>/shared/<name>-v<version>-s<seed>[-quick].pt`` atomically (state dict, config and the training
record, all loadable with ``weights_only=True``); every later one — in this run, a concurrent worker, or a
``--resume`` — loads that file and never retrains.

The task is the book's chain-of-thought arithmetic (§7.3): k = 2 sums of three digits mod 7, written
``<bos> a + b + c = ; a + b = s1 ; so s1 + c = s2 ; answer s2 <eos>`` (CoT form) or
``<bos> a + b + c = answer s2 <eos>`` (direct form). The zoo:

========== ======================================= ===========================================
name       model                                   trained on
========== ======================================= ===========================================
gpt_mix    TinyGPT, 2 layers, d = 64, 4 heads       CoT and direct rows, half and half
gpt_direct the same architecture and init           direct rows only (Theorem 1's arm (a))
gru_mix    GRULM, d = 96                            CoT and direct rows, half and half
========== ======================================= ===========================================

All three see the same number of optimizer steps and batch rows. ``ZOO_STEPS`` says how many (full,
quick); the quick sizes are what makes ``--quick`` fit in its budget, and are still trained to high CoT
accuracy (the record says how high).

Example:
    >>> spec = ZOO["gpt_mix"]
    >>> spec.kind, spec.forms
    ('gpt', ('cot', 'direct'))
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from terrainlab.seq import GRULM, Mixture, ModArithmetic, TinyGPT, generated_accuracy, train_lm

P, K = 7, 2  # digits mod 7, two additions
VERSION = 1  # bump when a build below changes: old files are then ignored, not loaded


@dataclass(frozen=True)
class ZooSpec:
    kind: str  # "gpt" or "gru"
    forms: tuple  # the task forms in the training mixture
    steps: tuple  # (full, quick) optimizer steps
    lr: float


ZOO = {
    "gpt_mix": ZooSpec("gpt", ("cot", "direct"), (1500, 400), 3e-3),
    "gpt_direct": ZooSpec("gpt", ("direct",), (1500, 400), 3e-3),
    "gru_mix": ZooSpec("gru", ("cot", "direct"), (1500, 800), 1e-2),
}


def cot_task() -> ModArithmetic:
    return ModArithmetic(P, K, "cot")


def direct_task() -> ModArithmetic:
    return ModArithmetic(P, K, "direct")


def training_task(forms) -> Mixture:
    """The training distribution of a zoo model: its forms in equal shares."""
    return Mixture(tuple(ModArithmetic(P, K, f) for f in forms))


def new_model(kind: str, seed: int) -> torch.nn.Module:
    """An untrained zoo architecture drawn from ``seed`` (the same draw for every model of one kind)."""
    vocab = cot_task().vocab.size
    g = torch.Generator().manual_seed(seed)
    if kind == "gpt":
        return TinyGPT(vocab, d_model=64, n_layers=2, n_heads=4, context=32, generator=g)
    if kind == "gru":
        return GRULM(vocab, d_hidden=96, generator=g)
    raise ValueError(f"kind must be 'gpt' or 'gru', got {kind!r}")


def _build(name: str, seed: int, quick: bool):
    spec = ZOO[name]
    model = new_model(spec.kind, seed)
    steps = spec.steps[1] if quick else spec.steps[0]
    rec = train_lm(model, training_task(spec.forms), steps=steps, batch_size=64, lr=spec.lr,
                   generator=torch.Generator().manual_seed(10_000 + seed))
    g = torch.Generator().manual_seed(20_000 + seed)
    with torch.no_grad():
        acc = {f: generated_accuracy(model, ModArithmetic(P, K, f)(256, g)) for f in ("cot", "direct")}
    meta = {"name": name, "kind": spec.kind, "forms": list(spec.forms), "steps": rec.n_steps,
            "status": str(rec.status), "seconds": rec.seconds, "final_loss": float(rec.losses[-1]),
            "eval_loss": rec.eval_loss, "generated_accuracy": acc, "seed": seed, "p": P, "k": K}
    return {"state_dict": model.state_dict(), "meta": meta}


def trained(ctx, name: str) -> tuple[torch.nn.Module, dict]:
    """Zoo model ``name`` for this run (trained by the first experiment that asks, loaded after that),
    and its training record: steps, seconds, final loss, free-running accuracy on 256 fresh CoT and
    direct prompts."""
    if name not in ZOO:
        raise ValueError(f"name must be one of {sorted(ZOO)}, got {name!r}")
    obj = ctx.shared(name, lambda: _build(name, ctx.seed, ctx.quick), version=VERSION)
    model = new_model(ZOO[name].kind, ctx.seed)
    model.load_state_dict(obj["state_dict"])
    return model, obj["meta"]
