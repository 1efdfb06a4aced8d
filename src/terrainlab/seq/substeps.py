"""A pre-LN transformer re-run with finer Euler steps across depth: each residual branch as n sub-steps.

A pre-LN layer (Xiong et al. 2020) adds two residual branches to the stream, each one explicit Euler
step of size 1 of its own field::

    h ← h + f_attn(h),   f_attn(h) = Attn(LN₁(h))
    h ← h + f_mlp(h),    f_mlp(h)  = MLP(LN₂(h))

(no norm after the addition, unlike the post-LN BERT of :func:`terrainlab.seq.bert_layer_substeps`).
If the network discretises a flow h' = f(h) across depth (Chen et al. 2018, "Neural ordinary
differential equations"; Haber & Ruthotto 2017), replacing each step by n steps of size 1/n,

    h ← h + f(h)/n,   n times  (explicit Euler with η = 1/n, :func:`terrainlab.core.rollout`),

must barely change the stream. n = 1 is the layer itself. The weights are never edited: the branches
are called as they are, in the order the layer applies them.

Example:
    >>> import torch
    >>> from terrainlab.seq import TinyGPT
    >>> gpt = TinyGPT(12, d_model=16, n_layers=2, n_heads=2, context=8, generator=torch.Generator().manual_seed(0))
    >>> x = torch.randint(0, 12, (2, 5), generator=torch.Generator().manual_seed(1))
    >>> one = pre_ln_substep_stream(gpt, x, n=1)
    >>> one.states.shape, one.status, torch.allclose(one.states, gpt.hidden_states(x).transpose(0, 1), atol=1e-6)
    (torch.Size([3, 2, 5, 16]), 'completed', True)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..core.rollout import rollout
from ..core.schemes import Euler
from ..core.status import Status
from ..core.validate import check_callable, check_instance, check_int, check_tensor
from .models import _check_tokens

__all__ = ["SubstepStream", "pre_ln_branches", "pre_ln_substep_stream", "residual_substeps"]


def residual_substeps(h: torch.Tensor, branches: Sequence[Callable[[torch.Tensor], torch.Tensor]], *,
                      n: int = 2) -> tuple[torch.Tensor, Status]:
    """Apply the residual branches in order, each integrated as ``n`` explicit Euler steps of size 1/n.

    For every branch f: h ← h + f(h)/n, n times (:func:`terrainlab.core.rollout` with ``Euler()``,
    η = 1/n). Returns the final state and the status of the run: ``completed`` when every state is
    finite, ``nonfinite`` as soon as a branch's rollout meets a NaN/inf (later branches are skipped).
    """
    check_tensor(h, "h", min_ndim=1)
    check_int(n, "n", minimum=1)
    branches = list(branches)
    if not branches:
        raise ValueError("branches must hold at least one callable")
    for f in branches:
        check_callable(f, "branches")
    for f in branches:
        tr = rollout(lambda x, _t, f=f: f(x), h, eta=1.0 / n, steps=n, scheme=Euler(), record="last")
        h = tr.final
        if tr.status == Status.NONFINITE:
            return h, Status.NONFINITE
    return h, Status.COMPLETED


def pre_ln_branches(block: nn.Module) -> tuple[Callable, Callable]:
    """The two residual branches of a pre-LN block, (h ↦ attn(ln1(h)), h ↦ mlp(ln2(h))).

    Works on :class:`terrainlab.seq.TinyGPT`'s blocks (``ln1, attn, ln2, mlp``) and on GPT-2-style
    blocks (``ln_1, attn, ln_2, mlp``; a tuple output of ``attn`` contributes its first entry)."""
    check_instance(block, "block", nn.Module, "an nn.Module")
    for names in (("ln1", "attn", "ln2", "mlp"), ("ln_1", "attn", "ln_2", "mlp")):
        if all(hasattr(block, a) for a in names):
            ln1, attn, ln2, mlp = (getattr(block, a) for a in names)
            break
    else:
        raise ValueError(f"block must be a pre-LN block with ln1/attn/ln2/mlp (or ln_1/attn/ln_2/mlp) "
                         f"submodules, got {type(block).__name__}")

    def f_attn(h):
        a = attn(ln1(h))
        return a[0] if isinstance(a, tuple) else a

    def f_mlp(h):
        return mlp(ln2(h))

    return f_attn, f_mlp


@dataclass(frozen=True)
class SubstepStream:
    """states (L+1, B, T, d): h_0 and the stream after each layer re-run with n sub-steps per branch;
    n; status: ``completed`` (all finite) or ``nonfinite`` (the states from that layer on are NaN);
    nonfinite_layer: the first layer (1 … L) whose output is not finite, else None."""

    states: torch.Tensor
    n: int
    status: Status
    nonfinite_layer: int | None


def pre_ln_substep_stream(model: nn.Module, tokens: torch.Tensor, *, n: int = 2) -> SubstepStream:
    """The residual stream of a pre-LN model (``model.embed`` then ``model.blocks``, e.g.
    :class:`~terrainlab.seq.TinyGPT`) with every branch re-run as ``n`` Euler sub-steps
    (:func:`residual_substeps`). n = 1 reproduces ``model.hidden_states(tokens)`` (axes swapped)."""
    check_instance(model, "model", nn.Module, "an nn.Module")
    check_int(n, "n", minimum=1)
    embed, blocks = getattr(model, "embed", None), getattr(model, "blocks", None)
    if not isinstance(embed, nn.Module) or not isinstance(blocks, (nn.ModuleList, nn.Sequential)):
        raise ValueError("model must have an `embed` module and a `blocks` ModuleList (a TinyGPT-like pre-LN model)")
    vocab = getattr(model, "vocab_size", None)
    if isinstance(vocab, int):  # the model's own input checks: integer ids in range, within the context
        tokens = _check_tokens(tokens, vocab, getattr(model, "context", None))
    h = embed(tokens)
    states, status, bad = [h], Status.COMPLETED, None
    for i, block in enumerate(blocks):
        h, st = residual_substeps(h, pre_ln_branches(block), n=n)
        if st == Status.NONFINITE and bad is None:
            status, bad = Status.NONFINITE, i + 1
        states.append(h)
    return SubstepStream(states=torch.stack(states), n=int(n), status=status, nonfinite_layer=bad)
