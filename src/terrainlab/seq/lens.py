"""Logit lens and the answer-belief probe: beliefs read out of hidden states.

Logit lens (nostalgebraist 2020, "interpreting GPT: the logit lens"): apply the model's final norm and
unembedding to every layer's residual stream,

    p_l = softmax(W_lm · LN_f(h_l)),   l = 0 … L,

giving a next-token distribution per layer; KL(p_{l+1}‖p_l) measures how much layer l+1 moves the
prediction (a small, smooth sequence is what an Euler discretisation of a flow across depth predicts).

Answer-belief probe (the monograph's ch. 7, Theorem 2 made operational, §7.3 item 5): softmax(W_lm h_t)
is the *next-token* distribution and never converges to an answer, so at every chain-of-thought prefix
x_{≤t} we append probe tokens (``answer``), read the logits z of a fixed answer set A at the last
position and renormalise,

    p_t = softmax(z_A),   D_t = KL(p_T ‖ p_t),   t = 0 … T,

a trajectory on the simplex Δ^{|A|−1}. Theorem 2 claims D_t ≤ k^t D_0 with k < 1; :class:`AnswerBelief`
reports whether D_t is monotone and the least-squares rate k of log D_t against t.

Example:
    >>> import torch
    >>> from torch import nn
    >>> states = torch.zeros(2, 1, 1, 3); states[1, ..., 0] = 2.0      # layer 1 favours token 0
    >>> lens = logit_lens(states, nn.Identity())
    >>> lens.probs[0, 0, 0].tolist(), round(float(lens.kl_next[0, 0, 0]), 4)
    ([0.3333333432674408, 0.3333333432674408, 0.3333333432674408], 0.433)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..belief.divergences import kl
from ..core.validate import check_callable, check_int, check_tensor
from .trajectory import HiddenTrajectory, first_tensor

__all__ = ["AnswerBelief", "LogitLens", "answer_belief", "logit_lens", "masked_kl"]


def masked_kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL(p‖q) over the last axis (:func:`terrainlab.belief.kl`) for every row where both are finite;
    NaN where either holds a NaN/inf (reported, not averaged)."""
    ok = torch.isfinite(p).all(-1) & torch.isfinite(q).all(-1)
    out = torch.full(p.shape[:-1], float("nan"), dtype=p.dtype, device=p.device)
    if bool(ok.any()):
        out[ok] = kl(p[ok], q[ok])
    return out


def _resolve(fn, name: str, model: nn.Module | None) -> Callable:
    if isinstance(fn, str):
        if model is None:
            raise ValueError(f"{name} is a module name ({fn!r}); pass model= to look it up")
        mods = dict(model.named_modules())
        if fn not in mods:
            raise ValueError(f"{name}: no module named {fn!r}; the model's modules are: "
                             f"{', '.join(n for n in mods if n)}")
        return mods[fn]
    return check_callable(fn, name)


@dataclass(frozen=True)
class LogitLens:
    """probs (L+1, …, V): per-layer next-token distributions; kl_next (L, …): KL(p_{l+1}‖p_l);
    kl_final (L+1, …): KL(p_L‖p_l); n_nonfinite_layers: layers whose distribution holds a NaN (their KLs
    are NaN)."""

    probs: torch.Tensor
    kl_next: torch.Tensor
    kl_final: torch.Tensor
    n_nonfinite_layers: int


def logit_lens(states, unembed, norm=None, *, model: nn.Module | None = None) -> LogitLens:
    """Logit lens of a stack of residual streams.

    Args:
        states: (L+1, …, d) tensor, or a :class:`~terrainlab.seq.HiddenTrajectory`.
        unembed: the unembedding (W_lm), a callable or a module name in ``model`` (``"lm_head"``).
        norm: the final norm applied first (``"ln_f"``), a callable or module name; ``None`` for none.
        model: where module names are looked up.
    """
    if isinstance(states, HiddenTrajectory):
        states = states.states
    check_tensor(states, "states", min_ndim=2)
    if states.shape[0] < 1:
        raise ValueError("states must hold at least one layer")
    unembed = _resolve(unembed, "unembed", model)
    norm = None if norm is None else _resolve(norm, "norm", model)
    with torch.no_grad():
        x = states if norm is None else norm(states)
        logits = first_tensor(unembed(x), "the unembedding's output")
    probs = torch.softmax(logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits, dim=-1)
    kl_next = masked_kl(probs[1:], probs[:-1])
    kl_final = masked_kl(probs[-1:].expand_as(probs), probs)
    bad = int((~torch.isfinite(probs)).flatten(1).any(1).sum())
    return LogitLens(probs=probs, kl_next=kl_next, kl_final=kl_final, n_nonfinite_layers=bad)


@dataclass(frozen=True)
class AnswerBelief:
    """beliefs (T+1, K): p_t over the answer set after t chain-of-thought tokens; logits (T+1, K);
    kl_to_final (T+1,): KL(p_T‖p_t); monotone: D_t never increases (within 1e-6·D_0); n_increases:
    steps where it does; rate: k of the least-squares fit log D_t ≈ log D_0 + t log k over the D_t > 0
    (t < T), NaN with fewer than two such points; final_answer: argmax of p_T (index into the set)."""

    beliefs: torch.Tensor
    logits: torch.Tensor
    kl_to_final: torch.Tensor
    monotone: bool
    n_increases: int
    rate: float
    final_answer: int


def _ids(x, name: str) -> torch.Tensor:
    t = torch.as_tensor(x)
    if t.numel() == 0:
        return t.reshape(0).long()
    if t.is_floating_point() or t.is_complex() or t.ndim > 1:
        raise ValueError(f"{name} must be a 1-D sequence of integer token ids, got {t.dtype} of shape {tuple(t.shape)}")
    return t.reshape(-1).long()


def _model_limit(model, attr_names):
    for a in attr_names:
        v = getattr(model, a, None)
        if isinstance(v, int):
            return v
        cfg = getattr(model, "config", None)
        v = cfg.get(a) if isinstance(cfg, dict) else getattr(cfg, a, None)
        if isinstance(v, int):
            return v
    return None


def answer_belief(model: nn.Module, prompt_ids, cot_ids, answer_ids, probe_ids=(), *,
                  call: Callable | None = None, vocab_size: int | None = None,
                  context: int | None = None, causal: bool = False) -> AnswerBelief:
    """The answer-belief trajectory p_0 … p_T of one chain of thought (see the module docstring).

    Args:
        model: returns logits (B, T, V) (or an output whose first tensor / ``.logits`` is that).
        prompt_ids, cot_ids, probe_ids: 1-D token ids; the input at step t is
            ``prompt + cot[:t] + probe`` (T = len(cot_ids), T+1 forward passes).
        answer_ids: the answer set A (token ids, non-empty, distinct).
        call: ``call(model, ids)`` with ids (1, n) when ``model(ids)`` is not the forward.
        vocab_size, context: limits to check against (default: the model's ``vocab_size``/``context``
            attributes or ``config`` entries ``vocab_size``/``max_position_embeddings``).
        causal: the model is causal (position i sees tokens ≤ i only, e.g. a GPT): all T+1 inputs then
            go through one right-padded forward of batch T+1, read at each row's last real position —
            the same beliefs as T+1 separate forwards (tested), at a fraction of the calls. Leave it
            False for a bidirectional model, where padding would change the logits.

    Raises:
        ValueError naming the argument: an empty or repeated answer set, ids out of range, a
        prompt + cot + probe longer than the context.
    """
    prompt, cot, probe, ans = (_ids(prompt_ids, "prompt_ids"), _ids(cot_ids, "cot_ids"),
                               _ids(probe_ids, "probe_ids"), _ids(answer_ids, "answer_ids"))
    if ans.numel() == 0:
        raise ValueError("answer_ids must not be empty (the answer set the belief lives on)")
    if torch.unique(ans).numel() != ans.numel():
        raise ValueError(f"answer_ids must be distinct, got {ans.tolist()}")
    if prompt.numel() + probe.numel() == 0:
        raise ValueError("prompt_ids and probe_ids are both empty: the first input would be empty")
    V = vocab_size if vocab_size is not None else _model_limit(model, ("vocab_size",))
    C = context if context is not None else _model_limit(model, ("context", "max_position_embeddings"))
    if V is not None:
        check_int(V, "vocab_size", minimum=1)
        for t, name in ((prompt, "prompt_ids"), (cot, "cot_ids"), (probe, "probe_ids"), (ans, "answer_ids")):
            if t.numel() and (int(t.min()) < 0 or int(t.max()) >= V):
                raise ValueError(f"{name} must be token ids in [0, {V}), got {t.tolist()}")
    n = prompt.numel() + cot.numel() + probe.numel()
    if C is not None and n > C:
        raise ValueError(f"cot_ids: prompt ({prompt.numel()}) + cot ({cot.numel()}) + probe ({probe.numel()}) "
                         f"= {n} tokens is longer than the model's context {C}")
    if call is not None:
        check_callable(call, "call")
    device = next((p.device for p in model.parameters()), torch.device("cpu"))

    def forward(ids):
        out = call(model, ids) if call is not None else model(ids)
        logits = first_tensor(getattr(out, "logits", out), "the model's output")
        if int(ans.max()) >= logits.shape[-1]:
            raise ValueError(f"answer_ids must be < the model's vocabulary {logits.shape[-1]}, got {ans.tolist()}")
        return logits

    seqs = [torch.cat([prompt, cot[:t], probe]) for t in range(cot.numel() + 1)]
    with torch.no_grad():
        if causal:  # one forward: pad on the right (a causal position never sees what follows it)
            lens = torch.tensor([q.numel() for q in seqs])
            ids = torch.stack([torch.cat([q, q[-1:].expand(n - q.numel())]) for q in seqs]).to(device)
            logits = forward(ids)
            last = (lens - 1).to(logits.device)
            z = logits[torch.arange(len(seqs), device=logits.device), last][:, ans.to(logits.device)]
        else:
            z = torch.stack([forward(q.to(device)[None])[0, -1, ans.to(device)] for q in seqs])
    p = torch.softmax(z, dim=-1)
    D = masked_kl(p[-1:].expand_as(p), p)
    D0 = float(D[0])
    inc = D[1:] - D[:-1] > 1e-6 * max(abs(D0), 1e-12)
    n_inc = int(inc.sum())
    use = (D[:-1] > 0) & torch.isfinite(D[:-1])
    t_idx = torch.arange(D.numel() - 1, dtype=torch.float64)[use.cpu()]
    if t_idx.numel() >= 2:
        y = torch.log(D[:-1][use].double().cpu())
        A = torch.stack([torch.ones_like(t_idx), t_idx], 1)
        sol = torch.linalg.lstsq(A, y[:, None]).solution
        rate = math.exp(float(sol[1, 0]))
    else:
        rate = float("nan")
    return AnswerBelief(beliefs=p, logits=z, kl_to_final=D, monotone=n_inc == 0 and bool(torch.isfinite(D).all()),
                        n_increases=n_inc, rate=rate, final_answer=int(p[-1].argmax()))

