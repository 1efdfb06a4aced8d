"""A small byte-level language model with hub or softmax attention (../shared/aleph.md §5), and its data.

The model follows the author's recipe at toy scale. Bytes 0…255 are the vocabulary; the input embedding
is a *trigram* embedding with learned absolute positions (no rotary)::

    e_t = E0[x_t] + E1[x_{t−1}] + E2[x_{t−2}] + P[t]          (x_{−1} = x_{−2} = the "before the start" id 256)

then pre-norm blocks h ← h + Attn(LN(h)), h ← h + MLP(LN(h)) with a GELU MLP, a final LayerNorm and a
linear read-out to 256 logits. ``attention`` chooses the mixer:

* ``"hub"`` — :class:`~terrainlab.aleph.attention.AlephAttention` (linear attention with the signed-address
  feature map, the exact chunked scan);
* ``"softmax"`` — :class:`~terrainlab.aleph.softmax_baseline.SoftmaxAttention` with ``d_qk = D_addr`` per
  head, so both models have the same projections and differ only by the hub's codebooks (H·K·D_addr
  parameters per layer: 0.2 % of the default model);
* ``"mean"`` — the control mixer: the causal *uniform* average of the value projections,
  out_t = (1/(t+1)) Σ_{j≤t} v_j, i.e. attention with every score equal — mixing without routing.

Data (:func:`stdlib_corpus`): the Python standard library's own top-level ``*.py`` sources (sorted by
name; every ``held_out_every``-th file is held out, so the held-out text comes from *different files*).
:func:`bits_per_byte` is the mean next-byte cross-entropy over a fixed set of held-out windows, divided
by ln 2 (a uniform model scores exactly 8). :func:`train_byte_lm` is a plain AdamW loop (warm-up, cosine
decay, gradient clipping) that records the loss, the held-out bits per byte along the way and the wall
time of every step, and reports a :class:`~terrainlab.core.status.Status` instead of raising.
(:func:`terrainlab.seq.train_lm` is not reused: its :class:`~terrainlab.seq.tasks.TaskBatch` contract
carries a word vocabulary and answer positions, and it draws its held-out batch from the training task.)

Example:
    >>> corpus = stdlib_corpus(max_files=20)
    >>> g = torch.Generator().manual_seed(0)
    >>> model = ByteLM("hub", d_model=32, n_layers=1, n_heads=2, context=32, generator=g)
    >>> x = sample_windows(corpus.train, 4, 32, g)
    >>> model(x).shape
    torch.Size([4, 32, 256])
    >>> res = train_byte_lm(model, corpus.train, steps=5, batch_size=4, length=32, generator=g)
    >>> res.status, res.n_steps
    ('completed', 5)
"""

from __future__ import annotations

import math
import os
import pathlib
import time
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from terrainlab.aleph.attention import AlephAttention
from terrainlab.aleph.softmax_baseline import SoftmaxAttention
from terrainlab.core.status import Status
from terrainlab.core.validate import (
    check_choice,
    check_instance,
    check_int,
    check_nonnegative,
    check_positive,
)

ATTENTIONS = ("hub", "softmax", "mean", "none")
VOCAB = 256
_START = 256  # the id of "before the start" in the trigram tables


# ------------------------------------------------------------------------------------------------ data
@dataclass(frozen=True)
class ByteCorpus:
    """Training and held-out bytes (uint8, 1-D; files joined by a blank line) and the file names of each."""

    train: Tensor
    held_out: Tensor
    train_files: tuple[str, ...]
    held_out_files: tuple[str, ...]


@lru_cache(maxsize=8)
def _read_stdlib(held_out_every: int, max_files: int | None) -> tuple[bytes, bytes, tuple, tuple]:
    root = pathlib.Path(os.__file__).parent
    files = sorted(p for p in root.glob("*.py") if p.is_file())
    if max_files is not None:
        files = files[:max_files]
    if len(files) < held_out_every:
        raise ValueError(f"max_files must leave at least held_out_every={held_out_every} files, found {len(files)} "
                         f"in {root}")
    held = [p for i, p in enumerate(files) if i % held_out_every == held_out_every - 1]
    train = [p for i, p in enumerate(files) if i % held_out_every != held_out_every - 1]
    join = b"\n\n".join
    return (join(p.read_bytes() for p in train), join(p.read_bytes() for p in held),
            tuple(p.name for p in train), tuple(p.name for p in held))


def stdlib_corpus(held_out_every: int = 10, *, max_files: int | None = None) -> ByteCorpus:
    """The standard library's top-level ``*.py`` files (of the running Python, ``Path(os.__file__).parent``),
    sorted by name, the first ``max_files`` of them (all by default); file i is held out when
    i mod ``held_out_every`` = ``held_out_every`` − 1. Deterministic for a given Python; read once per process.

    >>> c = stdlib_corpus(max_files=30)
    >>> len(c.train_files), len(c.held_out_files), set(c.train_files).isdisjoint(c.held_out_files)
    (27, 3, True)
    >>> c.train.dtype
    torch.uint8
    """
    check_int(held_out_every, "held_out_every", minimum=2)
    if max_files is not None:
        check_int(max_files, "max_files", minimum=1)
    tr, ho, ftr, fho = _read_stdlib(held_out_every, max_files)
    as_tensor = lambda b: torch.frombuffer(bytearray(b), dtype=torch.uint8)  # noqa: E731 (a fresh copy)
    return ByteCorpus(train=as_tensor(tr), held_out=as_tensor(ho), train_files=ftr, held_out_files=fho)


def _check_data(data, name: str, length: int) -> Tensor:
    check_instance(data, name, Tensor, "a 1-D uint8 tensor of bytes")
    if data.dtype != torch.uint8 or data.ndim != 1:
        raise ValueError(f"{name} must be a 1-D uint8 tensor of bytes, got dtype {data.dtype} and shape "
                         f"{tuple(data.shape)}")
    if data.numel() < length:
        raise ValueError(f"{name} must hold at least length={length} bytes, got {data.numel()}")
    return data


def sample_windows(data: Tensor, n: int, length: int, generator: torch.Generator) -> Tensor:
    """``n`` windows of ``length`` consecutive bytes at uniformly random starts (drawn from ``generator``),
    as int64 (n, length)."""
    check_int(n, "n", minimum=1)
    check_int(length, "length", minimum=2)
    _check_data(data, "data", length)
    check_instance(generator, "generator", torch.Generator, "a torch.Generator")
    start = torch.randint(0, data.numel() - length + 1, (n,), generator=generator)
    return data[start[:, None] + torch.arange(length)].long()


def fixed_windows(data: Tensor, n: int, length: int) -> Tensor:
    """``n`` windows of ``length`` bytes at evenly spaced starts (no randomness): the fixed evaluation set.

    >>> fixed_windows(torch.arange(10, dtype=torch.uint8), 3, 4).tolist()
    [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]
    """
    check_int(n, "n", minimum=1)
    check_int(length, "length", minimum=2)
    _check_data(data, "data", length)
    start = torch.linspace(0, data.numel() - length, n).round().long()
    return data[start[:, None] + torch.arange(length)].long()


# ----------------------------------------------------------------------------------------------- model
class CausalMean(nn.Module):
    """The control mixer: out_t = o(Σ_{j≤t} v(x_j) / (t+1)) — causal attention with all scores equal."""

    def __init__(self, d_model: int, *, dtype=None, device=None):
        super().__init__()
        self.v_proj = nn.Linear(d_model, d_model, bias=False, dtype=dtype, device=device)
        self.o_proj = nn.Linear(d_model, d_model, bias=False, dtype=dtype, device=device)

    def forward(self, x: Tensor) -> Tensor:
        v = self.v_proj(x)
        n = torch.arange(1, x.shape[1] + 1, dtype=v.dtype, device=v.device)[:, None]
        return self.o_proj(v.cumsum(1) / n)


class NoMixer(nn.Module):
    """The attention removed: contributes 0, so each position sees only its own trigram embedding."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.zeros_like(x)


class ByteBlock(nn.Module):
    """Pre-norm block: h + Attn(LN h), then + MLP(LN h) with a GELU MLP of width ``d_mlp``."""

    def __init__(self, attn: nn.Module, d_model: int, d_mlp: int, *, dtype=None, device=None):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model, dtype=dtype, device=device)
        self.attn = attn
        self.ln2 = nn.LayerNorm(d_model, dtype=dtype, device=device)
        self.mlp = nn.Sequential(nn.Linear(d_model, d_mlp, dtype=dtype, device=device), nn.GELU(),
                                 nn.Linear(d_mlp, d_model, dtype=dtype, device=device))

    def forward(self, h: Tensor) -> Tensor:
        h = h + self.attn(self.ln1(h))
        return h + self.mlp(self.ln2(h))


class ByteLM(nn.Module):
    """Byte-level causal LM with the trigram input embedding (module docstring).

    Args:
        attention: ``"hub"``, ``"softmax"`` or ``"mean"`` (the control mixer).
        d_model, n_layers, n_heads: width, depth, heads.
        context: the longest input (the number of learned positions).
        ngram: 3 for the trigram input embedding (default), 2 bigram, 1 the current byte only.
        K, D_addr, tau: the hub's codebook axes, address dimension and temperature (``"softmax"`` uses
            ``d_qk = D_addr`` per head so the parameter counts match).
        d_mlp: MLP width (default 4·d_model).
        chunk: the hub's training-scan chunk length (default ``context``: one masked block).
        generator: every initial weight is drawn from it (the caller's global random state is untouched).
    """

    def __init__(self, attention: str = "hub", *, d_model: int = 64, n_layers: int = 2, n_heads: int = 4,
                 context: int = 64, K: int = 8, D_addr: int = 4, tau: float = 0.1, d_mlp: int | None = None,
                 chunk: int | None = None, ngram: int = 3, generator: torch.Generator | None = None, dtype=None,
                 device=None):
        super().__init__()
        self.attention = check_choice(attention, "attention", ATTENTIONS)
        self.d_model = check_int(d_model, "d_model", minimum=1)
        self.n_layers = check_int(n_layers, "n_layers", minimum=1)
        self.n_heads = check_int(n_heads, "n_heads", minimum=1)
        if d_model % n_heads:
            raise ValueError(f"n_heads must divide d_model={d_model}, got {n_heads}")
        self.context = check_int(context, "context", minimum=1)
        self.ngram = check_int(ngram, "ngram", minimum=1, maximum=3)
        self.vocab_size = VOCAB
        d_mlp = 4 * d_model if d_mlp is None else check_int(d_mlp, "d_mlp", minimum=1)
        chunk = context if chunk is None else check_int(chunk, "chunk", minimum=1)
        check_int(K, "K", minimum=1)
        check_int(D_addr, "D_addr", minimum=1)
        check_positive(tau, "tau")
        if generator is None:
            generator = torch.Generator().manual_seed(0)
        check_instance(generator, "generator", torch.Generator, "a torch.Generator or None")
        kw = dict(dtype=dtype, device=device)
        with torch.random.fork_rng(devices=[]):  # nn.Linear's own init draws from the global RNG
            self.E = nn.ModuleList(nn.Embedding(VOCAB + (i > 0), d_model, **kw) for i in range(ngram))
            self.P = nn.Embedding(context, d_model, **kw)

            def mixer() -> nn.Module:
                if attention == "hub":
                    return AlephAttention(d_model, n_heads, K, D_addr, tau, chunk=chunk, generator=generator, **kw)
                if attention == "softmax":
                    return SoftmaxAttention(d_model, n_heads, d_qk=D_addr, generator=generator, **kw)
                return CausalMean(d_model, **kw) if attention == "mean" else NoMixer()

            self.blocks = nn.ModuleList(ByteBlock(mixer(), d_model, d_mlp, **kw) for _ in range(n_layers))
            self.ln_f = nn.LayerNorm(d_model, **kw)
            self.head = nn.Linear(d_model, VOCAB, **kw)
        with torch.no_grad():
            for emb in (*self.E, self.P):
                emb.weight.copy_(0.02 * torch.randn(emb.weight.shape, generator=generator))
            lins = [self.head] + [m for b in self.blocks for m in b.mlp if isinstance(m, nn.Linear)]
            if attention == "mean":
                lins += [m for b in self.blocks for m in (b.attn.v_proj, b.attn.o_proj)]
            for lin in lins:
                bound = 1 / math.sqrt(lin.in_features)
                lin.weight.copy_((2 * torch.rand(lin.weight.shape, generator=generator) - 1) * bound)
                if lin.bias is not None:
                    lin.bias.zero_()
            for b in self.blocks:  # residual branches of the mixers start at 0 (the model starts as "none")
                if hasattr(b.attn, "o_proj"):
                    b.attn.o_proj.weight.zero_()

    def embed(self, x: Tensor) -> Tensor:
        """e_t = E0[x_t] + E1[x_{t−1}] + E2[x_{t−2}] + P[t] (the first ``ngram`` terms), shape (B, T, d_model)."""
        T = x.shape[1]
        pad = torch.full((x.shape[0], 2), _START, dtype=x.dtype, device=x.device)
        xp = torch.cat([pad, x], dim=1)
        h = self.P(torch.arange(T, device=x.device)) + self.E[0](x)
        for i in range(1, self.ngram):
            h = h + self.E[i](xp[:, 2 - i:2 - i + T])
        return h

    def forward(self, x: Tensor) -> Tensor:
        """Logits (B, T, 256) for byte ids x (B, T), T ≤ context; logits at t depend on x_{≤t} only."""
        x = check_bytes(x, "x", self.context)
        h = self.embed(x)
        for block in self.blocks:
            h = block(h)
        return self.head(self.ln_f(h))


def check_bytes(x, name: str, context: int) -> Tensor:
    """``x`` as a (B, T) integer tensor of byte ids in 0…255 with 1 ≤ T ≤ ``context``, else ValueError."""
    if not torch.is_tensor(x) or x.ndim != 2 or x.dtype.is_floating_point or x.dtype.is_complex or x.dtype == torch.bool:
        raise ValueError(f"{name} must be a (batch, length) integer tensor of byte ids")
    if not 1 <= x.shape[1] <= context:
        raise ValueError(f"{name} must have 1 to context={context} positions, got {x.shape[1]}")
    if x.numel() and (int(x.min()) < 0 or int(x.max()) >= VOCAB):
        raise ValueError(f"{name} must hold byte ids in 0..255, got values in [{int(x.min())}, {int(x.max())}]")
    return x.long()


def n_params(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# ------------------------------------------------------------------------------------------ evaluation
def lm_loss(model: nn.Module, windows: Tensor) -> Tensor:
    """Mean next-byte cross-entropy (nats) of ``model`` over ``windows`` (B, L): logits at t score byte t+1."""
    logits = model(windows[:, :-1])
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), windows[:, 1:].reshape(-1))


@torch.no_grad()
def bits_per_byte(model: nn.Module, windows: Tensor, *, batch_size: int = 64) -> float:
    """Mean next-byte cross-entropy over every predicted byte of ``windows`` (B, L), in bits: nats / ln 2
    (float64 logits, an exactly rounded sum). A model with constant logits scores exactly log2 256 = 8.

    >>> class Uniform(nn.Module):
    ...     def forward(self, x): return torch.zeros(*x.shape, 256)
    >>> bits_per_byte(Uniform(), torch.randint(0, 256, (3, 9), generator=torch.Generator().manual_seed(0)))
    8.0
    """
    check_instance(model, "model", nn.Module, "an nn.Module")
    if not torch.is_tensor(windows) or windows.ndim != 2 or windows.shape[1] < 2 or windows.dtype.is_floating_point:
        raise ValueError("windows must be a (n, length ≥ 2) integer tensor of byte ids")
    check_int(batch_size, "batch_size", minimum=1)
    was = model.training
    model.eval()
    parts: list[float] = []
    try:
        for i in range(0, windows.shape[0], batch_size):
            w = windows[i:i + batch_size]
            logits = model(w[:, :-1]).double()
            ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), w[:, 1:].reshape(-1), reduction="none")
            parts.extend(ce.tolist())
    finally:
        model.train(was)
    return math.fsum(parts) / len(parts) / math.log(2)


@torch.no_grad()
def generate(model: ByteLM, prompt: bytes, n: int) -> bytes:
    """Greedy continuation of ``prompt`` by ``n`` bytes (the last ``context`` bytes re-run every step)."""
    check_instance(prompt, "prompt", (bytes, bytearray), "bytes")
    check_int(n, "n", minimum=0)
    if not prompt:
        raise ValueError("prompt must hold at least one byte")
    seq = list(prompt)
    for _ in range(n):
        x = torch.tensor([seq[-model.context:]], dtype=torch.long)
        seq.append(int(model(x)[0, -1].argmax()))
    return bytes(seq)


# ------------------------------------------------------------------------------------------- training
@dataclass(frozen=True)
class ByteLMTrainResult:
    """What :func:`train_byte_lm` did.

    - ``losses`` (n_steps,) float64: the training loss (nats) at each step, before its update;
    - ``eval_steps``, ``eval_bpb``: the steps at which the held-out bits per byte was measured and its values
      (empty without ``eval_windows``; the last entry is after the final step);
    - ``step_seconds`` (n_steps,) float64: wall time of each step (forward, backward, update);
    - ``status``: ``completed``, ``nonfinite`` or ``diverged``; ``n_steps``; ``seconds`` (the whole loop).
    """

    losses: Tensor
    eval_steps: tuple[int, ...]
    eval_bpb: tuple[float, ...]
    step_seconds: Tensor
    status: Status
    n_steps: int
    seconds: float


def train_byte_lm(model: nn.Module, train: Tensor, *, steps: int, batch_size: int = 32, length: int = 65,
                  lr: float = 3e-3, generator: torch.Generator, weight_decay: float = 0.01,
                  betas: tuple[float, float] = (0.9, 0.98), warmup: int | None = None,
                  grad_clip: float | None = 1.0, eval_windows: Tensor | None = None, eval_every: int | None = None,
                  diverge_factor: float = 10.0) -> ByteLMTrainResult:
    """Train ``model`` in place with AdamW on random windows of ``length`` bytes of ``train`` (drawn from
    ``generator``; the model sees ``length − 1`` inputs). Linear warm-up (default min(100, steps // 10))
    then cosine decay to 0.1·lr. With ``eval_windows`` the held-out bits per byte is measured every
    ``eval_every`` steps (default steps // 10) and after the last. A NaN loss ends the run as ``nonfinite``,
    a loss above ``diverge_factor`` × the first as ``diverged``."""
    check_instance(model, "model", nn.Module, "an nn.Module")
    check_int(steps, "steps", minimum=1)
    check_int(batch_size, "batch_size", minimum=1)
    check_int(length, "length", minimum=2)
    _check_data(train, "train", length)
    check_instance(generator, "generator", torch.Generator, "a torch.Generator")
    check_positive(lr, "lr")
    check_nonnegative(weight_decay, "weight_decay")
    check_positive(diverge_factor, "diverge_factor")
    if grad_clip is not None:
        check_positive(grad_clip, "grad_clip")
    warmup = min(100, steps // 10) if warmup is None else check_int(warmup, "warmup", minimum=0)
    eval_every = max(1, steps // 10) if eval_every is None else check_int(eval_every, "eval_every", minimum=1)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model must have trainable parameters")
    opt = torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=weight_decay)

    def factor(i: int) -> float:
        if i < warmup:
            return (i + 1) / (warmup + 1)
        frac = (i - warmup) / max(1, steps - warmup - 1)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))

    losses: list[float] = []
    secs: list[float] = []
    ev_steps: list[int] = []
    ev_bpb: list[float] = []
    status, first = Status.COMPLETED, None
    t_start = time.perf_counter()
    model.train()
    for i in range(steps):
        if eval_windows is not None and i % eval_every == 0:
            ev_steps.append(i)
            ev_bpb.append(bits_per_byte(model, eval_windows))
        batch = sample_windows(train, batch_size, length, generator)
        t0 = time.perf_counter()
        for g in opt.param_groups:
            g["lr"] = lr * factor(i)
        loss = lm_loss(model, batch)
        value = float(loss.detach())
        losses.append(value)
        if not math.isfinite(value):
            status = Status.NONFINITE
            break
        first = value if first is None else first
        if value > diverge_factor * first:
            status = Status.DIVERGED
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        opt.step()
        secs.append(time.perf_counter() - t0)
    if eval_windows is not None:
        ev_steps.append(len(losses))
        ev_bpb.append(bits_per_byte(model, eval_windows))
    return ByteLMTrainResult(losses=torch.tensor(losses, dtype=torch.float64), eval_steps=tuple(ev_steps),
                             eval_bpb=tuple(ev_bpb), step_seconds=torch.tensor(secs, dtype=torch.float64),
                             status=status, n_steps=len(losses), seconds=time.perf_counter() - t_start)


__all__ = ["ATTENTIONS", "ByteCorpus", "ByteLM", "ByteLMTrainResult", "CausalMean", "bits_per_byte", "fixed_windows",
           "generate", "lm_loss", "n_params", "sample_windows", "stdlib_corpus", "train_byte_lm"]
