"""Two small language models whose hidden states are easy to read: a pre-LN GPT and a GRU.

:class:`TinyGPT` is a decoder-only transformer (Radford et al. 2019, GPT-2; pre-LN as in Xiong et al.
2020, "On Layer Normalization in the Transformer Architecture"). Its residual stream is written out
as explicit Euler steps across depth (the step size is 1)::

    h_0 = E[x_t] + P[t]
    h_{l+½} = h_l + Attn_l(LN(h_l))          (causal self-attention)
    h_{l+1} = h_{l+½} + MLP_l(LN(h_{l+½}))
    logits = W_lm · LN_f(h_L)

Module names, for forward hooks (``model.get_submodule(name)``):

==================  ==========================================================================
``embed``           output h_0 (B, T, d): token + learned position embeddings
``blocks.{l}``      output h_{l+1} (B, T, d): the residual stream after layer l (l = 0 … L−1)
``blocks.{l}.attn`` output Attn_l(LN(h_l)), the attention update (before it is added)
``blocks.{l}.mlp``  output MLP_l(LN(h_{l+½})), the MLP update (before it is added)
``ln_f``            output LN_f(h_L)
``lm_head``         output the logits (B, T, V)
==================  ==========================================================================

:class:`GRULM` is a one-layer GRU language model (Cho et al. 2014): its state is one vector per token,
``h_t = Φ(h_{t−1}, x_t)``, exposed as :meth:`GRULM.step` so the dynamics toolkit can find fixed and
slow points of the per-token map. Module names: ``embed`` (x_t's embedding), ``rnn`` (nn.GRU; output
the hidden trajectory (B, T, d)), ``lm_head`` (logits).

Both take ``generator=`` for their initial weights (no global random state is touched when it is
given), both check their input (ids in range, length within ``context``) and both expose ``config``
(the constructor's arguments) so a checkpoint can rebuild them.

Example:
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> gpt = TinyGPT(vocab_size=20, d_model=32, n_layers=2, n_heads=4, context=16, generator=g)
    >>> tokens = torch.randint(0, 20, (3, 10), generator=g)
    >>> gpt(tokens).shape, gpt.hidden_states(tokens).shape
    (torch.Size([3, 10, 20]), torch.Size([3, 3, 10, 32]))
    >>> gru = GRULM(vocab_size=20, d_hidden=32, generator=g)
    >>> h = gru.initial_state(3)
    >>> torch.allclose(gru.step(h, tokens[:, 0]), gru.hidden_states(tokens)[:, 0], atol=1e-6)
    True
"""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import nn

from ..core.validate import check_instance, check_int


def _check_tokens(tokens, vocab_size: int, context: int | None, name: str = "tokens") -> torch.Tensor:
    if not torch.is_tensor(tokens) or tokens.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise ValueError(f"{name} must be an integer tensor of token ids, got "
                         f"{tokens.dtype if torch.is_tensor(tokens) else type(tokens).__name__}")
    if tokens.ndim != 2:
        raise ValueError(f"{name} must have shape (batch, length), got {tuple(tokens.shape)}")
    if tokens.shape[1] == 0:
        raise ValueError(f"{name} must hold at least one position, got shape {tuple(tokens.shape)}")
    if context is not None and tokens.shape[1] > context:
        raise ValueError(f"{name} must have at most context={context} positions, got {tokens.shape[1]}")
    if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= vocab_size):
        raise ValueError(f"{name} must hold ids in [0, {vocab_size}), got ids in "
                         f"[{int(tokens.min())}, {int(tokens.max())}]")
    return tokens.long()


def _own_rng(generator: torch.Generator | None):
    """With a generator, the global CPU RNG is restored after the block (the modules' default
    initialisation draws from it before :func:`_init_` replaces the weights from ``generator``)."""
    return contextlib.nullcontext() if generator is None else torch.random.fork_rng(devices=[])


def _init_(module: nn.Module, generator: torch.Generator | None, std: float = 0.02) -> None:
    """GPT-2 style initial weights drawn from ``generator``: N(0, std²) weights, zero biases, unit LN."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, std, generator=generator)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class Embed(nn.Module):
    """h_0 = E[x_t] + P[t]: token and learned position embeddings (the residual stream's start)."""

    def __init__(self, vocab_size: int, d_model: int, context: int):
        super().__init__()
        self.tok = nn.Embedding(vocab_size, d_model)
        self.pos = nn.Embedding(context, d_model)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.tok(tokens) + self.pos(torch.arange(tokens.shape[1], device=tokens.device))


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention, softmax(QKᵀ/√d_head + causal mask)·V (Vaswani et al. 2017)."""

    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, d = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(B, T, d))


class MLP(nn.Module):
    """x ↦ W_2 GELU(W_1 x + b_1) + b_2."""

    def __init__(self, d_model: int, d_mlp: int):
        super().__init__()
        self.fc = nn.Linear(d_model, d_mlp)
        self.proj = nn.Linear(d_mlp, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.gelu(self.fc(x)))


class Block(nn.Module):
    """One pre-LN layer: h ← h + Attn(LN₁(h)); h ← h + MLP(LN₂(h)). Its output is the next residual state."""

    def __init__(self, d_model: int, n_heads: int, d_mlp: int):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, n_heads)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = MLP(d_model, d_mlp)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = h + self.attn(self.ln1(h))
        return h + self.mlp(self.ln2(h))


class TinyGPT(nn.Module):
    """A small pre-LN decoder-only transformer with learned positions (see the module docstring).

    Args:
        vocab_size: number of token ids.
        d_model: width of the residual stream (divisible by ``n_heads``).
        n_layers: number of blocks L.
        n_heads: attention heads per block.
        context: the longest sequence accepted (the size of the position table).
        d_mlp: hidden width of each MLP (default 4·d_model).
        generator: draws the initial weights (N(0, 0.02²), the output projections scaled by
            1/√(2L) as in GPT-2); None uses torch's global generator.
    """

    def __init__(self, vocab_size: int, d_model: int = 64, n_layers: int = 2, n_heads: int = 4,
                 context: int = 64, d_mlp: int | None = None, *, generator: torch.Generator | None = None):
        super().__init__()
        check_int(vocab_size, "vocab_size", minimum=2)
        check_int(d_model, "d_model", minimum=1)
        check_int(n_layers, "n_layers", minimum=1)
        check_int(n_heads, "n_heads", minimum=1)
        if d_model % n_heads:
            raise ValueError(f"n_heads must divide d_model={d_model}, got {n_heads}")
        check_int(context, "context", minimum=1)
        d_mlp = 4 * d_model if d_mlp is None else check_int(d_mlp, "d_mlp", minimum=1)
        if generator is not None:
            check_instance(generator, "generator", torch.Generator, "a torch.Generator or None")
        self.config = dict(vocab_size=vocab_size, d_model=d_model, n_layers=n_layers, n_heads=n_heads,
                           context=context, d_mlp=d_mlp)
        self.vocab_size, self.d_model, self.context = vocab_size, d_model, context
        with _own_rng(generator):  # torch's default initialisation draws, then _init_ overwrites
            self.embed = Embed(vocab_size, d_model, context)
            self.blocks = nn.ModuleList([Block(d_model, n_heads, d_mlp) for _ in range(n_layers)])
            self.ln_f = nn.LayerNorm(d_model)
            self.lm_head = nn.Linear(d_model, vocab_size, bias=False)
        _init_(self, generator)
        with torch.no_grad():
            for b in self.blocks:
                b.attn.proj.weight.mul_(1 / math.sqrt(2 * n_layers))
                b.mlp.proj.weight.mul_(1 / math.sqrt(2 * n_layers))

    def unembed(self, h: torch.Tensor) -> torch.Tensor:
        """logits = W_lm · LN_f(h) for any residual state h (the logit lens of nostalgebraist 2020)."""
        return self.lm_head(self.ln_f(h))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits (B, T, V) for token ids (B, T); position t sees tokens 0 … t only."""
        h = self.embed(_check_tokens(tokens, self.vocab_size, self.context))
        for block in self.blocks:
            h = block(h)
        return self.unembed(h)

    def hidden_states(self, tokens: torch.Tensor) -> torch.Tensor:
        """The residual stream h_0 … h_L as one tensor (B, L+1, T, d) — the trajectory across depth."""
        h = self.embed(_check_tokens(tokens, self.vocab_size, self.context))
        hs = [h]
        for block in self.blocks:
            h = block(h)
            hs.append(h)
        return torch.stack(hs, dim=1)


class GRULM(nn.Module):
    """A one-layer GRU language model, h_t = Φ(h_{t−1}, x_t), logits_t = W h_t + b (Cho et al. 2014).

    Φ is the GRU cell (PyTorch's gate convention)::

        r = σ(W_ir e + b_ir + W_hr h + b_hr),  z = σ(W_iz e + b_iz + W_hz h + b_hz)
        n = tanh(W_in e + b_in + r ⊙ (W_hn h + b_hn)),  Φ(h, x) = (1 − z) ⊙ n + z ⊙ h

    with e = E[x] the token's embedding. :meth:`forward` runs ``nn.GRU`` over the sequence;
    :meth:`step` evaluates Φ with the same weights, differentiably (``torch.func`` works through it),
    and :meth:`token_map` fixes the token to give the map h ↦ Φ(h, x) the dynamics toolkit iterates.

    Args:
        vocab_size: number of token ids.
        d_hidden: state size d.
        d_embed: token embedding size (default d_hidden).
        context: the longest sequence accepted (None: any length).
        generator: draws the initial weights (U(−1/√d, 1/√d) as nn.GRU does, N(0, 0.02²) embeddings).
    """

    def __init__(self, vocab_size: int, d_hidden: int = 64, d_embed: int | None = None,
                 context: int | None = None, *, generator: torch.Generator | None = None):
        super().__init__()
        check_int(vocab_size, "vocab_size", minimum=2)
        check_int(d_hidden, "d_hidden", minimum=1)
        d_embed = d_hidden if d_embed is None else check_int(d_embed, "d_embed", minimum=1)
        if context is not None:
            check_int(context, "context", minimum=1)
        if generator is not None:
            check_instance(generator, "generator", torch.Generator, "a torch.Generator or None")
        self.config = dict(vocab_size=vocab_size, d_hidden=d_hidden, d_embed=d_embed, context=context)
        self.vocab_size, self.d_hidden, self.context = vocab_size, d_hidden, context
        with _own_rng(generator):
            self.embed = nn.Embedding(vocab_size, d_embed)
            self.rnn = nn.GRU(d_embed, d_hidden, batch_first=True)
            self.lm_head = nn.Linear(d_hidden, vocab_size)
        with torch.no_grad():
            nn.init.normal_(self.embed.weight, 0.0, 0.02, generator=generator)
            bound = 1 / math.sqrt(d_hidden)
            for p in self.rnn.parameters():
                nn.init.uniform_(p, -bound, bound, generator=generator)
            nn.init.normal_(self.lm_head.weight, 0.0, 0.02, generator=generator)
            nn.init.zeros_(self.lm_head.bias)

    def initial_state(self, batch_size: int = 1) -> torch.Tensor:
        """h_{−1} = 0, shape (batch_size, d), on the model's device and dtype."""
        check_int(batch_size, "batch_size", minimum=1)
        w = self.lm_head.weight
        return torch.zeros(batch_size, self.d_hidden, device=w.device, dtype=w.dtype)

    def hidden_states(self, tokens: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
        """The state trajectory h_0 … h_{T−1} (B, T, d), h_t after reading token t."""
        tokens = _check_tokens(tokens, self.vocab_size, self.context)
        if h0 is not None:
            self._check_state(h0, "h0", tokens.shape[0])
            h0 = h0[None]
        out, _ = self.rnn(self.embed(tokens), h0)
        return out

    def forward(self, tokens: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, T, V); ``h0`` (B, d) is the state before the first token (zeros by default)."""
        return self.lm_head(self.hidden_states(tokens, h0))

    def _check_state(self, h, name, batch=None):
        if not torch.is_tensor(h) or not h.is_floating_point() or h.shape[-1] != self.d_hidden:
            raise ValueError(f"{name} must be a floating-point tensor (..., {self.d_hidden}), got "
                             f"{tuple(h.shape) if torch.is_tensor(h) else type(h).__name__}")
        if batch is not None and tuple(h.shape) != (batch, self.d_hidden):
            raise ValueError(f"{name} must have shape ({batch}, {self.d_hidden}), got {tuple(h.shape)}")

    def step(self, h: torch.Tensor, token) -> torch.Tensor:
        """One token: Φ(h, x) for states h (..., d) and token ids ``token`` (an int or a tensor
        broadcasting against h's leading dimensions)."""
        self._check_state(h, "h")
        if isinstance(token, int) and not isinstance(token, bool):
            token = torch.tensor(token, device=h.device)
        if not torch.is_tensor(token) or token.is_floating_point() or token.is_complex():
            raise ValueError(f"token must be an int or an integer tensor of ids, got {token!r}")
        if token.numel() and (int(token.min()) < 0 or int(token.max()) >= self.vocab_size):
            raise ValueError(f"token must hold ids in [0, {self.vocab_size}), got {token.tolist()}")
        e = self.embed(token.long())
        return self._cell(h, e)

    def _cell(self, h: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        w_ih, w_hh = self.rnn.weight_ih_l0, self.rnn.weight_hh_l0
        b_ih, b_hh = self.rnn.bias_ih_l0, self.rnn.bias_hh_l0
        gi = e @ w_ih.T + b_ih
        gh = h @ w_hh.T + b_hh
        i_r, i_z, i_n = gi.chunk(3, -1)
        h_r, h_z, h_n = gh.chunk(3, -1)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        return (1 - z) * n + z * h

    def token_map(self, token: int):
        """The map T_x(h) = Φ(h, x) for one fixed token x: batched over h's leading dimensions."""
        check_int(token, "token", minimum=0, maximum=self.vocab_size - 1)
        e = self.embed(torch.tensor(token, device=self.lm_head.weight.device))

        def phi(h: torch.Tensor) -> torch.Tensor:
            return self._cell(h, e)

        return phi


def check_model_input(model: nn.Module, tokens: torch.Tensor, name: str = "tokens") -> torch.Tensor:
    """Check ``tokens`` against a model's ``vocab_size`` / ``context`` attributes when it has them."""
    vocab = getattr(model, "vocab_size", None)
    if vocab is None:
        if not torch.is_tensor(tokens) or tokens.ndim != 2:
            raise ValueError(f"{name} must be a (batch, length) tensor of token ids")
        return tokens
    return _check_tokens(tokens, vocab, getattr(model, "context", None), name)


__all__ = ["TinyGPT", "GRULM", "Block", "Embed", "CausalSelfAttention", "MLP", "check_model_input"]
