"""Basins of an answer: robustness of the answer to noise on h₀, the curvature of −log p(answer) at
the final belief, and the per-token map of a GRU for the dynamics toolkit.

Basin volume (the monograph's ch. 7, Theorem 1, §7.3 item 4): with ε ~ N(0, I) added to the
embedding output h₀ (by a forward hook — the model is not edited),

    V(σ) = P_ε[ argmax_y logits(h₀ + σ ε)_y = y* ],

estimated from n draws per σ with the Bernoulli standard error √(V(1−V)/n). V(0) is the clean accuracy;
as σ → ∞ V falls toward chance.

Tangent Hessian at the final belief: with p = softmax(z) over an answer set of K tokens and
f = −log p_{y*}, the Hessian restricted to the simplex tangent space {v : Σv = 0} (orthonormal Helmert
basis B from :func:`terrainlab.core.geometry.simplex_tangent_basis`) is BᵀHB, K−1 eigenvalues:

    logits coordinates:   H = ∇²_z f = diag(p) − p pᵀ            (all K−1 eigenvalues > 0 inside)
    simplex coordinates:  H = ∇²_p f = e_{y*} e_{y*}ᵀ / p_{y*}²   (rank 1 — the §7.3 point that
                                                                 μ = 0 for a one-hot target)

The book's Theorem 1 claims CoT training *lowers* these eigenvalues ("the basin widens"); adding
−ΔH(p−p*) to a gradient field raises them — measure which way they move.

Example:
    >>> import torch
    >>> res = answer_hessian(torch.zeros(3), 0)            # uniform belief over 3 answers
    >>> [round(v, 4) for v in res.eigenvalues.tolist()]    # diag(p) − ppᵀ on the tangent: 1/3, 1/3
    [0.3333, 0.3333]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..core.geometry import simplex_tangent_basis
from ..core.validate import check_callable, check_choice, check_instance, check_int, check_tensor
from .trajectory import first_tensor, resolve_layers

__all__ = ["BasinVolume", "TangentHessian", "answer_hessian", "basin_volume", "gru_cell_map"]


@dataclass(frozen=True)
class BasinVolume:
    """sigmas (S,); volume (S,): fraction of noisy runs that still give the right answer; stderr (S,):
    Bernoulli standard error √(V(1−V)/n); per_example (S, B): that fraction per example; n_trials
    (per σ, = n_samples·B); chance: 1/K when an answer set of K tokens is given, else None;
    n_nonfinite (S,): runs whose logits held a NaN/inf (counted as wrong)."""

    sigmas: torch.Tensor
    volume: torch.Tensor
    stderr: torch.Tensor
    per_example: torch.Tensor
    n_trials: int
    chance: float | None
    n_nonfinite: torch.Tensor
    relative: bool


def _repeat(inputs, n: int):
    if torch.is_tensor(inputs):
        return inputs.repeat(n, *([1] * (inputs.ndim - 1)))
    if isinstance(inputs, dict):
        return {k: _repeat(v, n) if torch.is_tensor(v) else v for k, v in inputs.items()}
    raise ValueError(f"inputs must be a tensor or a dict of tensors, got {type(inputs).__name__}")


def _batch(inputs) -> int:
    t = inputs if torch.is_tensor(inputs) else next((v for v in inputs.values() if torch.is_tensor(v)), None)
    if t is None or t.ndim == 0:
        raise ValueError("inputs must hold a tensor with a batch dimension")
    return int(t.shape[0])


def basin_volume(model: nn.Module, inputs, answers, *, layer: str, sigmas: Sequence[float],
                 generator: torch.Generator, n_samples: int = 32, position: int | torch.Tensor = -1,
                 answer_ids=None, call: Callable | None = None, relative: bool = False) -> BasinVolume:
    """Probability that the answer stays correct under Gaussian noise of size σ on h₀, for each σ.

    Args:
        model: returns logits (B, T, V) (or an output whose ``.logits``/first tensor is that).
        inputs: a (B, …) tensor or dict of tensors (repeated ``n_samples`` times along the batch).
        answers: (B,) the correct token id at ``position`` for each example.
        layer: the module whose output is h₀ (the embedding module: ``"embed"``); noise is added to
            its output (its first tensor for tuple outputs) by a forward hook, removed afterwards.
        sigmas: noise sizes (≥ 0); with ``relative=True`` in units of the RMS of h₀ over features
            at each token.
        generator: the source of all noise (a run is reproducible given its seed).
        position: where the answer is read: an int, or (B,) positions (rows of different lengths).
        answer_ids: restrict the argmax to this answer set (chance = 1/K); default: the vocabulary.
        call: ``call(model, inputs)`` when ``model(inputs)`` is not the forward.
    """
    (name,) = resolve_layers(model, [layer])
    check_instance(generator, "generator", torch.Generator, "a torch.Generator")
    check_int(n_samples, "n_samples", minimum=1)
    B = _batch(inputs)
    if torch.is_tensor(position):
        if position.is_floating_point() or position.shape != (B,):
            raise ValueError(f"position must be an int or {B} integer positions (one per example), "
                             f"got shape {tuple(position.shape)}")
    else:
        check_int(position, "position")
    if call is not None:
        check_callable(call, "call")
    sig = torch.as_tensor(list(sigmas), dtype=torch.float64)
    if sig.ndim != 1 or sig.numel() == 0 or not bool(torch.isfinite(sig).all()) or bool((sig < 0).any()):
        raise ValueError(f"sigmas must be a non-empty list of finite numbers >= 0, got {list(sigmas)!r}")
    ans = torch.as_tensor(answers)
    if ans.is_floating_point() or ans.shape != (B,):
        raise ValueError(f"answers must be {B} integer token ids (one per example), got shape {tuple(ans.shape)}")
    aset = None
    if answer_ids is not None:
        aset = torch.as_tensor(list(answer_ids)).long()
        if aset.numel() == 0:
            raise ValueError("answer_ids must not be empty (pass None to use the whole vocabulary)")
        if not bool(torch.isin(ans, aset).all()):
            raise ValueError("answers must all lie in answer_ids")
    module = dict(model.named_modules())[name]
    big = _repeat(inputs, n_samples)
    state = {"sigma": 0.0}

    def hook(_mod, _inp, out):
        h = first_tensor(out, f"the output of {name!r}")
        s = state["sigma"]
        if s == 0.0:
            return out
        eps = torch.randn(h.shape, generator=generator, device=generator.device, dtype=torch.float32)
        eps = eps.to(device=h.device, dtype=h.dtype)
        scale = h.detach().pow(2).mean(-1, keepdim=True).sqrt() if relative else 1.0
        noisy = h + s * scale * eps
        if torch.is_tensor(out):
            return noisy
        if isinstance(out, tuple):
            i = next(k for k, o in enumerate(out) if torch.is_tensor(o))
            return out[:i] + (noisy,) + out[i + 1:]
        raise ValueError(f"layer {name!r} returns {type(out).__name__}; noise can be added to a tensor or tuple output")

    vols, per, nbad = [], [], []
    handle = module.register_forward_hook(hook)
    try:
        with torch.no_grad():
            for s in sig.tolist():
                state["sigma"] = float(s)
                out = call(model, big) if call is not None else model(big)
                logits = first_tensor(getattr(out, "logits", out), "the model's output")
                if torch.is_tensor(position):
                    rows = torch.arange(logits.shape[0], device=logits.device)
                    logits = logits[rows, position.to(logits.device).repeat(n_samples)]
                else:
                    logits = logits[:, position]
                bad = ~torch.isfinite(logits).all(-1)
                if aset is not None:
                    a = aset.to(logits.device)
                    pred = a[logits[:, a].argmax(-1)]
                else:
                    pred = logits.argmax(-1)
                ok = (pred == ans.to(pred.device).repeat(n_samples)) & ~bad
                ok = ok.reshape(n_samples, B).double().cpu()
                per.append(ok.mean(0))
                vols.append(ok.mean())
                nbad.append(int(bad.sum()))
    finally:
        handle.remove()
    vol = torch.stack(vols)
    n = n_samples * B
    return BasinVolume(sigmas=sig, volume=vol, stderr=(vol * (1 - vol) / n).sqrt(),
                       per_example=torch.stack(per), n_trials=n,
                       chance=None if aset is None else 1.0 / aset.numel(),
                       n_nonfinite=torch.tensor(nbad), relative=bool(relative))


@dataclass(frozen=True)
class TangentHessian:
    """eigenvalues (…, K−1) ascending, of BᵀHB; matrix (…, K−1, K−1) = BᵀHB; belief (…, K) = p;
    answer: the index of y* in the answer set; coords: ``"logits"`` or ``"simplex"``."""

    eigenvalues: torch.Tensor
    matrix: torch.Tensor
    belief: torch.Tensor
    answer: int
    coords: str


def answer_hessian(logits: torch.Tensor, answer: int, *, coords: str = "logits") -> TangentHessian:
    """Tangent Hessian of −log p(answer) at p = softmax(``logits``) (see the module docstring),
    by automatic differentiation (``torch.autograd.functional.hessian``), batched over leading axes.

    Args:
        logits: (…, K) logits of the answer set (K ≥ 2), e.g. ``AnswerBelief.logits[-1]``.
        answer: the index of the correct answer in the set.
        coords: ``"logits"`` (∇²_z, on Σz = 0 directions) or ``"simplex"`` (∇²_p, on Σp = 0).
    """
    check_tensor(logits, "logits", min_ndim=1, finite=True)
    K = logits.shape[-1]
    if K < 2:
        raise ValueError(f"logits must have at least 2 answers on the last axis, got shape {tuple(logits.shape)}")
    check_int(answer, "answer", minimum=0, maximum=K - 1)
    check_choice(coords, "coords", ("logits", "simplex"))
    z = logits.detach().reshape(-1, K)
    p = torch.softmax(z, -1)
    if coords == "logits":
        def f(v):
            return -torch.log_softmax(v, -1)[answer]
        x = z
    else:
        def f(v):
            return -torch.log(v[answer])
        x = p
    H = torch.stack([torch.autograd.functional.hessian(f, row) for row in x]) if x.shape[0] else x.new_zeros(0, K, K)
    Bt = simplex_tangent_basis(K, dtype=z.dtype, device=z.device)
    M = Bt.T @ H @ Bt
    M = 0.5 * (M + M.transpose(-1, -2))
    ev = torch.linalg.eigvalsh(M)
    lead = logits.shape[:-1]
    return TangentHessian(eigenvalues=ev.reshape(*lead, K - 1), matrix=M.reshape(*lead, K - 1, K - 1),
                          belief=p.reshape(*lead, K), answer=int(answer), coords=coords)


def gru_cell_map(rnn: nn.Module, x: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """The per-token map Φ_x(h) = GRU(x, h) with the input x held fixed (Cho et al. 2014):

        r = σ(W_ir x + b_ir + W_hr h + b_hr),  u = σ(W_iz x + b_iz + W_hz h + b_hz),
        n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)),  Φ_x(h) = (1 − u) ⊙ n + u ⊙ h,

    batched over h's leading axes, differentiable (forward and reverse mode), so
    :func:`terrainlab.dynamics.find_fixed_points` / :func:`terrainlab.dynamics.lyapunov_spectrum`
    apply with ``kind="map"`` (Sussillo & Barak 2013, fixed and slow points of RNNs).

    Args:
        rnn: an ``nn.GRUCell``, or a one-layer unidirectional ``nn.GRU``.
        x: (d_in,) the fixed input (a token's embedding).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> cell = nn.GRUCell(2, 3)
        >>> phi = gru_cell_map(cell, torch.ones(2))
        >>> h = torch.zeros(4, 3)
        >>> torch.allclose(phi(h), cell(torch.ones(4, 2), h))
        True
    """
    if isinstance(rnn, nn.GRUCell):
        w_ih, w_hh, b_ih, b_hh = rnn.weight_ih, rnn.weight_hh, rnn.bias_ih, rnn.bias_hh
    elif isinstance(rnn, nn.GRU):
        if rnn.num_layers != 1 or rnn.bidirectional or getattr(rnn, "proj_size", 0):
            raise ValueError("rnn must be a one-layer unidirectional nn.GRU (or an nn.GRUCell)")
        w_ih, w_hh = rnn.weight_ih_l0, rnn.weight_hh_l0
        b_ih, b_hh = (rnn.bias_ih_l0, rnn.bias_hh_l0) if rnn.bias else (None, None)
    else:
        raise ValueError(f"rnn must be an nn.GRUCell or a one-layer nn.GRU, got {type(rnn).__name__}")
    check_tensor(x, "x", shape=(w_ih.shape[1],))
    gi = x @ w_ih.T + (b_ih if b_ih is not None else 0)
    gi_r, gi_z, gi_n = gi.chunk(3, -1)

    def phi(h: torch.Tensor) -> torch.Tensor:
        gh = h @ w_hh.T + (b_hh if b_hh is not None else 0)
        gh_r, gh_z, gh_n = gh.chunk(3, -1)
        r = torch.sigmoid(gi_r + gh_r)
        u = torch.sigmoid(gi_z + gh_z)
        n = torch.tanh(gi_n + r * gh_n)
        return (1 - u) * n + u * h

    return phi


