"""Training a small language model on a task, and scoring it: teacher-forced and greedy.

:func:`train_lm` minimises the masked next-token cross-entropy

    L(θ) = − (1/|M|) Σ_{(b,t) ∈ M} log p_θ(x_{b,t} | x_{b,<t}),    M = {(b, t) : loss_mask[b, t]}

with AdamW (Loshchilov & Hutter 2019) — the optimizer is the integrator of the parameter-space flow,
as with any ``torch.optim`` loop — on fresh batches drawn from ``task(batch_size, generator)``. It is
deterministic given ``seed`` (or the generator passed in) and the model's initial weights, and it
never raises for what the numbers do: a NaN loss ends the run with ``status="nonfinite"``, a loss
above ``diverge_factor`` × the first one with ``status="diverged"``.

Example:
    >>> import torch
    >>> from terrainlab.seq import Copy, TinyGPT
    >>> task = Copy(n=4, p=5)
    >>> model = TinyGPT(task.vocab.size, d_model=32, n_layers=1, n_heads=2, context=task.length,
    ...                 generator=torch.Generator().manual_seed(0))
    >>> res = train_lm(model, task, steps=20, batch_size=16, lr=3e-3, seed=0)
    >>> res.status, res.n_steps, res.losses.shape, bool(res.losses[-1] < res.losses[0])
    ('completed', 20, torch.Size([20]), True)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..core.status import Status
from ..core.validate import (
    check_callable,
    check_choice,
    check_instance,
    check_int,
    check_nonnegative,
    check_positive,
)
from .models import check_model_input
from .tasks import TaskBatch


@dataclass(frozen=True)
class LMTrainResult:
    """What a training run did.

    - ``losses`` (n_steps,) float64: the training loss at each step (before that step's update);
    - ``accuracy``: answer-token accuracy (teacher-forced) on a held-out batch after training;
    - ``exact_accuracy``: fraction of held-out rows with every answer token right;
    - ``eval_loss``: the masked loss on that batch;
    - ``status``: ``completed``, ``nonfinite`` (NaN / inf loss) or ``diverged``;
    - ``n_steps`` (steps taken), ``seconds`` (wall time of the loop and the evaluation).
    """

    losses: torch.Tensor
    accuracy: float
    exact_accuracy: float
    eval_loss: float
    status: Status
    n_steps: int
    seconds: float


def _device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def _check_batch(batch) -> TaskBatch:
    return check_instance(batch, "batch", TaskBatch, "a TaskBatch")


def lm_loss(model: nn.Module, batch: TaskBatch) -> torch.Tensor:
    """The masked next-token cross-entropy (mean over supervised tokens) of ``model`` on ``batch``."""
    _check_batch(batch)
    tokens = check_model_input(model, batch.tokens.to(_device(model)))
    logits = model(tokens)
    mask = batch.loss_mask[:, 1:].to(logits.device)
    if not bool(mask.any()):
        raise ValueError("batch must supervise at least one token (loss_mask is all False)")
    return F.cross_entropy(logits[:, :-1][mask].float(), tokens[:, 1:][mask])


@torch.no_grad()
def answer_correct(model: nn.Module, batch: TaskBatch) -> torch.Tensor:
    """(B, A) bool: is each answer token the argmax of the logits one position before it (teacher forcing)?"""
    _check_batch(batch)
    dev = _device(model)
    logits = model(check_model_input(model, batch.tokens.to(dev)))
    rows = torch.arange(batch.batch_size, device=dev)[:, None]
    pred = logits[rows, batch.answer_pos.to(dev) - 1].argmax(-1)
    return pred == batch.answers.to(dev)


def accuracy(model: nn.Module, batch: TaskBatch, *, exact: bool = False) -> float:
    """Teacher-forced answer accuracy: the fraction of answer tokens predicted right (``exact=True``:
    the fraction of rows with all of them right).

    For a chain-of-thought batch the chain in the context is the true one; :func:`generated_accuracy`
    scores the model's own chain.
    """
    ok = answer_correct(model, batch)
    return float((ok.all(dim=1) if exact else ok).float().mean())


@torch.no_grad()
def generate(model: nn.Module, prompt: torch.Tensor, max_new_tokens: int, *, eos_id: int | None = None,
             pad_id: int = 0) -> torch.Tensor:
    """Greedy decoding: append argmax p(x_t | x_<t) ``max_new_tokens`` times to ``prompt`` (B, T0).

    Rows that have emitted ``eos_id`` continue with ``pad_id``; the loop stops early when all have.
    Returns (B, T0 + n) with n ≤ max_new_tokens. The whole prefix is re-run each step (no KV cache;
    the models here are small).
    """
    prompt = check_model_input(model, prompt, "prompt")
    check_int(max_new_tokens, "max_new_tokens", minimum=0)
    context = getattr(model, "context", None)
    if context is not None and prompt.shape[1] + max_new_tokens > context:
        raise ValueError(f"max_new_tokens must be <= context - prompt length = {context - prompt.shape[1]}, "
                         f"got {max_new_tokens}")
    seq = prompt.to(_device(model))
    done = torch.zeros(seq.shape[0], dtype=torch.bool, device=seq.device)
    for _ in range(max_new_tokens):
        nxt = model(seq)[:, -1].argmax(-1)
        nxt = torch.where(done, torch.full_like(nxt, pad_id), nxt)
        seq = torch.cat([seq, nxt[:, None]], dim=1)
        if eos_id is not None:
            done = done | (nxt == eos_id)
            if bool(done.all()):
                break
    return seq


def generated_accuracy(model: nn.Module, batch: TaskBatch, *, exact: bool = True) -> float:
    """Accuracy when the model writes everything after the prompt itself (greedy): the answer tokens
    must appear at their positions in the generated sequence. Rows must share one prompt length."""
    _check_batch(batch)
    L = batch.prompt_len
    if bool((L != L[0]).any()):
        raise ValueError("batch must have one prompt length for all rows (score a Mixture per task)")
    L = int(L[0])
    need = int(batch.answer_pos.max()) + 1
    out = generate(model, batch.tokens[:, :L], need - L, eos_id=batch.vocab.eos)
    out = F.pad(out, (0, need - out.shape[1]), value=batch.vocab.pad)  # rows that stopped early
    rows = torch.arange(batch.batch_size, device=out.device)[:, None]
    ok = out[rows, batch.answer_pos.to(out.device)] == batch.answers.to(out.device)
    return float((ok.all(dim=1) if exact else ok).float().mean())


def train_lm(
    model: nn.Module,
    task: Callable[[int, torch.Generator], TaskBatch],
    *,
    steps: int,
    batch_size: int = 64,
    lr: float = 3e-3,
    seed: int = 0,
    generator: torch.Generator | None = None,
    weight_decay: float = 0.01,
    betas: tuple[float, float] = (0.9, 0.98),
    warmup: int | None = None,
    schedule: str = "cosine",
    grad_clip: float | None = 1.0,
    eval_batch_size: int = 512,
    diverge_factor: float = 10.0,
) -> LMTrainResult:
    """Train ``model`` in place on batches from ``task`` with AdamW; returns an :class:`LMTrainResult`.

    Args:
        model: any module mapping token ids (B, T) to logits (B, T, V).
        task: ``task(batch_size, generator) -> TaskBatch`` (a task of :mod:`terrainlab.seq.tasks` or yours).
        steps: optimizer steps; each draws a fresh batch.
        lr, weight_decay, betas: AdamW's.
        seed: seeds the data generator when ``generator`` is None.
        generator: the data source (the held-out batch is drawn from it first, then the training batches).
        warmup: linear warm-up steps (default min(100, steps // 10)); then ``schedule``:
            ``"cosine"`` decays to 0.1·lr at the last step, ``"constant"`` holds lr.
        grad_clip: clip the gradient's global norm to this (None: no clipping).
        eval_batch_size: size of the held-out batch scored after training.
        diverge_factor: a loss above this × the first loss ends the run as ``diverged``.
    """
    check_instance(model, "model", nn.Module, "an nn.Module")
    check_callable(task, "task")
    check_int(steps, "steps", minimum=1)
    check_int(batch_size, "batch_size", minimum=1)
    check_positive(lr, "lr")
    check_nonnegative(weight_decay, "weight_decay")
    check_int(eval_batch_size, "eval_batch_size", minimum=1)
    check_choice(schedule, "schedule", ("cosine", "constant"))
    check_positive(diverge_factor, "diverge_factor")
    if grad_clip is not None:
        check_positive(grad_clip, "grad_clip")
    warmup = min(100, steps // 10) if warmup is None else check_int(warmup, "warmup", minimum=0)
    if generator is None:
        check_int(seed, "seed", minimum=0)
        generator = torch.Generator().manual_seed(seed)
    else:
        check_instance(generator, "generator", torch.Generator, "a torch.Generator or None")

    t0 = time.perf_counter()
    held_out = task(eval_batch_size, generator)
    _check_batch(held_out)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model must have trainable parameters")
    opt = torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=weight_decay)

    def factor(i: int) -> float:
        if i < warmup:
            return (i + 1) / (warmup + 1)
        if schedule == "constant":
            return 1.0
        frac = (i - warmup) / max(1, steps - warmup - 1)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))

    losses: list[float] = []
    status = Status.COMPLETED
    first = None
    for i in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr * factor(i)
        loss = lm_loss(model, task(batch_size, generator))
        value = float(loss.detach())
        losses.append(value)
        if not math.isfinite(value):
            status = Status.NONFINITE
            break
        first = value if first is None else first
        if value > diverge_factor * max(first, 1e-12):
            status = Status.DIVERGED
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        opt.step()

    with torch.no_grad():
        eval_loss = float(lm_loss(model, held_out))
    ok = answer_correct(model, held_out)
    return LMTrainResult(
        losses=torch.tensor(losses, dtype=torch.float64),
        accuracy=float(ok.float().mean()),
        exact_accuracy=float(ok.all(dim=1).float().mean()),
        eval_loss=eval_loss,
        status=status,
        n_steps=len(losses),
        seconds=time.perf_counter() - t0,
    )
