"""Aleph-routed ("hub") causal attention: linear attention whose feature map is the signed address.

Per head, queries and keys are projected to D_addr, put on the sphere and given their address
probabilities φ(x) = [p₊(x); p₋(x)] ∈ Δ^{2K−1} (:mod:`terrainlab.aleph.address`). The score of a query i on
a key j is the positive kernel s(i, j) = ⟨φ(q_i), φ(k_j)⟩, so causal attention is a *state iteration*
(Katharopoulos et al. 2020, "Transformers are RNNs", eq. 16–18)::

    S_t = S_{t−1} + φ(k_t) v_tᵀ,        z_t = z_{t−1} + φ(k_t)           (state: 2K×d_head + 2K per head)
    out_t = φ(q_t)ᵀ S_t / φ(q_t)ᵀ z_t

— the monograph's S_{t+1} = S_t + η F(S_t, x) with a state that does not grow with the context, where
softmax attention's "state", the KV cache, grows by one key and value per token. The attention matrix
φ(Q) φ(K)ᵀ has rank ≤ 2K — 2K on generic inputs; with n_codebooks = c it is ≤ 2Kc − c + 1, since every
codebook's block of φ sums to the same constant (c − 1 linear relations) — and the denominator is a dot
product of positive vectors, so it is strictly positive (in floating point too: see the feature floor
below). Several codebooks are combined by summing numerators and denominators before the
one division, which is the same as concatenating their feature maps.

Three equal forms of the same function:

* :func:`linear_attention_naive` — cumulative sums of the outer products, O(T·F·d) memory (the oracle);
* :func:`linear_attention_chunked` — the exact chunked scan used for training: inside a chunk of C
  tokens a causally masked C×C score block; across chunks the carried prefix states, all as GEMMs with
  the prefix sums accumulated in float32 (or the input's float64);
* :func:`linear_attention_step` / :meth:`AlephAttention.step` — one token, constant memory (decoding).

And, to show what decoding is, :func:`linear_attention_rollout`: the same recurrence run by
:func:`terrainlab.core.rollout` on the field :func:`hub_decoding_field` (Euler, η = 1).

bf16 discipline (aleph.md §3, on by default): the address in float32 with max-subtraction, τ folded into
the float32 codebook, the GEMM operands in the compute dtype with their results, the carried state and
the denominators in float32, and a clamp floor ``finfo(dtype).tiny·8`` that is not 0 in half precision;
the features get F·``finfo.tiny·8`` added, so φ(q)·φ(k) cannot underflow to 0 when p± ≥ e^{−2/τ}/2K does
(τ ≲ 0.01 in float32): a lone key antipodal to its query then still gives out = v, not a silent 0.
``discipline=False`` is the control: logits in the compute dtype, exp(±u) without max-subtraction, and
every sum and the recurrent state kept in the compute dtype.

Example:
    >>> g = torch.Generator().manual_seed(0)
    >>> att = AlephAttention(d_model=16, n_heads=2, K=4, D_addr=4, generator=g).double()
    >>> x = torch.randn(3, 10, 16, generator=g, dtype=torch.float64)
    >>> y = att(x)
    >>> state = att.init_state(3, dtype=torch.float64)
    >>> steps = []
    >>> for t in range(10):
    ...     y_t, state = att.step(x[:, t], state)
    ...     steps.append(y_t)
    >>> bool(torch.allclose(torch.stack(steps, 1), y, atol=1e-12)), state.n_tokens
    (True, 10)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from terrainlab.aleph.address import (
    INITS,
    MODES,
    address_logits,
    compute_dtype,
    signed_softmax,
    super_fibonacci,
    tiny_floor,
)
from terrainlab.core import Euler, rollout
from terrainlab.core.validate import check_choice, check_int, check_positive, check_tensor

IMPLS = ("chunked", "naive", "rollout")


@dataclass(frozen=True)
class HubState:
    """The constant-size decoding state of hub attention, per batch row and head.

    Attributes:
        S: Σ_j φ(k_j) v_jᵀ, shape (B, H, F, d_head), F = 2K·n_codebooks, in the accumulation dtype.
        z: Σ_j φ(k_j), shape (B, H, F).
        n_tokens: tokens absorbed so far.
        status: ``"ok"``, or ``"nonfinite"`` once a NaN or inf entered the state (a property, read on demand).

    The state only ever grows by addition, and a sum that once held a NaN or an inf never becomes finite
    again (it is never silently zeroed either), so ``status`` can be read from the current S and z alone.
    It is computed when asked, not on every step: the check costs about a fifth of a CPU decoding step
    and, on a GPU, a host synchronisation per token (bench/aleph.py).
    """

    S: Tensor
    z: Tensor
    n_tokens: int = 0

    @property
    def status(self) -> str:
        """``"nonfinite"`` when S or z holds a NaN or an inf, else ``"ok"``."""
        finite = bool(torch.isfinite(self.z).all()) and bool(torch.isfinite(self.S).all())
        return "ok" if finite else "nonfinite"

    @property
    def nbytes(self) -> int:
        """Memory held by the state (independent of ``n_tokens``)."""
        return self.S.numel() * self.S.element_size() + self.z.numel() * self.z.element_size()


def _check_features(phi_q: Tensor, phi_k: Tensor, v: Tensor) -> None:
    check_tensor(phi_q, "phi_q", min_ndim=2)
    check_tensor(phi_k, "phi_k", min_ndim=2)
    check_tensor(v, "v", min_ndim=2)
    if phi_q.shape != phi_k.shape:
        raise ValueError(f"phi_k must have the shape of phi_q {tuple(phi_q.shape)}, got {tuple(phi_k.shape)}")
    if v.shape[:-1] != phi_k.shape[:-1]:
        raise ValueError(f"v must have shape (..., T, d) with (..., T) = {tuple(phi_k.shape[:-1])}, got {tuple(v.shape)}")


def _accum_dtype(compute: torch.dtype, discipline: bool) -> torch.dtype:
    return compute_dtype(compute) if discipline else compute


def linear_attention_naive(phi_q: Tensor, phi_k: Tensor, v: Tensor) -> Tensor:
    """The oracle: out_t = φ(q_t)ᵀ (Σ_{j≤t} φ(k_j) v_jᵀ) / φ(q_t)ᵀ Σ_{j≤t} φ(k_j), by cumulative sums of the
    outer products (O(T·F·d) memory; for tests). Shapes (…, T, F), (…, T, F), (…, T, d) → (…, T, d)."""
    _check_features(phi_q, phi_k, v)
    S = torch.cumsum(phi_k[..., :, :, None] * v[..., :, None, :], dim=-3)
    z = torch.cumsum(phi_k, dim=-2)
    num = (phi_q[..., :, :, None] * S).sum(-2)
    den = (phi_q * z).sum(-1, keepdim=True)
    return num / den.clamp_min(tiny_floor(den.dtype))


def linear_attention_chunked(phi_q: Tensor, phi_k: Tensor, v: Tensor, chunk: int = 64, *,
                             state: HubState | None = None, discipline: bool = True,
                             return_state: bool = False):
    """The exact chunked scan (training form). With T = N·C (the tail padded with zeros, which add nothing
    to a state), for chunk n with rows q_n, k_n, v_n ∈ ℝ^{C×·} and M the C×C lower-triangular ones mask::

        num_n = ((q_n k_nᵀ) ⊙ M) v_n + q_n S_{n−1},    den_n = ((q_n k_nᵀ) ⊙ M) 1 + q_n z_{n−1}
        S_n = S_{n−1} + k_nᵀ v_n,                      z_n = z_{n−1} + k_nᵀ 1

    with S_{n−1} an exclusive prefix sum over chunks. GEMM operands are in v's dtype (the compute dtype);
    with ``discipline`` their results, the prefix sums and the division are in float32 (float64 inputs stay
    float64). ``state`` (a :class:`HubState`) is a prefix already absorbed; ``return_state`` also returns the
    state after the last token. Shapes (…, T, F), (…, T, F), (…, T, d) → (…, T, d) in v's dtype."""
    _check_features(phi_q, phi_k, v)
    check_int(chunk, "chunk", minimum=1)
    comp = v.dtype
    acc = _accum_dtype(comp, discipline)
    *lead, T, F = phi_k.shape
    d = v.shape[-1]
    C = min(chunk, max(T, 1))
    N = -(-T // C)
    pad = N * C - T
    with torch.autocast(device_type=v.device.type, enabled=False):
        q, k, vv = phi_q.to(comp), phi_k.to(comp), v
        if pad:
            q, k, vv = (torch.nn.functional.pad(a, (0, 0, 0, pad)) for a in (q, k, vv))
        q = q.reshape(*lead, N, C, F)
        k = k.reshape(*lead, N, C, F)
        vv = vv.reshape(*lead, N, C, d)
        mask = torch.ones(C, C, dtype=torch.bool, device=v.device).tril()
        scores = (q @ k.transpose(-1, -2)).masked_fill(~mask, 0)        # (…, N, C, C)
        if bool(torch.isfinite(vv).all()):
            num = (scores @ vv).to(acc)
        else:  # 0·NaN = NaN would leak a later token's NaN into earlier rows: multiply by the finite values,
            # then mark NaN every (row, column) whose causal past in the chunk holds a non-finite value
            bad = ~torch.isfinite(vv)
            num = (scores @ vv.masked_fill(bad, 0)).to(acc)
            reached = (mask.to(acc) @ bad.to(acc)) > 0
            num = num.masked_fill(reached, float("nan"))
        den = scores.to(acc).sum(-1)
        chunk_S = (k.transpose(-1, -2) @ vv).to(acc)                   # (…, N, F, d)
        chunk_z = k.to(acc).sum(-2)                                      # (…, N, F)
        S_incl, z_incl = torch.cumsum(chunk_S, dim=-3), torch.cumsum(chunk_z, dim=-2)
        S_prev = torch.cat([torch.zeros_like(chunk_S[..., :1, :, :]), S_incl[..., :-1, :, :]], dim=-3)
        z_prev = torch.cat([torch.zeros_like(chunk_z[..., :1, :]), z_incl[..., :-1, :]], dim=-2)
        if state is not None:
            _check_state(state, lead, F, d)
            S_prev = S_prev + state.S.to(acc)[..., None, :, :]
            z_prev = z_prev + state.z.to(acc)[..., None, :]
        num = num + (q @ S_prev.to(comp)).to(acc) if discipline else num + q @ S_prev
        den = den + (q.to(acc) * z_prev[..., None, :]).sum(-1)
        out = num / den.clamp_min(tiny_floor(acc))[..., None]
        out = out.reshape(*lead, N * C, d)[..., :T, :].to(comp)
    if not return_state:
        return out
    if N == 0:  # an empty sequence absorbs nothing
        S_last, z_last = S_incl.new_zeros(*lead, F, d), z_incl.new_zeros(*lead, F)
    else:
        S_last, z_last = S_incl[..., -1, :, :], z_incl[..., -1, :]
    n0 = 0 if state is None else state.n_tokens
    if state is not None:
        S_last, z_last = S_last + state.S.to(acc), z_last + state.z.to(acc)
    return out, HubState(S=S_last, z=z_last, n_tokens=n0 + T)


def _check_state(state, lead, F: int, d: int) -> None:
    if not isinstance(state, HubState):
        raise ValueError(f"state must be a HubState, got {type(state).__name__}")
    want_S = (*lead, F, d)
    if tuple(state.S.shape) != tuple(want_S) or tuple(state.z.shape) != (*lead, F):
        raise ValueError(f"state must have S of shape {tuple(want_S)} and z of shape {(*lead, F)} (same batch "
                         f"size and heads), got S {tuple(state.S.shape)} and z {tuple(state.z.shape)}")


def _read_out(q: Tensor, S: Tensor, z: Tensor) -> Tensor:
    """out = φ(q)ᵀ S / φ(q)ᵀ z for one state per query: q (…, F), S (…, F, d), z (…, F) → (…, d), the
    denominator floored at ``tiny_floor`` (positive features make it > 0; the floor only guards underflow)."""
    num = (q[..., None, :] @ S).squeeze(-2)
    den = (q * z).sum(-1, keepdim=True)
    return num / den.clamp_min(tiny_floor(den.dtype))


def linear_attention_step(phi_q: Tensor, phi_k: Tensor, v: Tensor, state: HubState, *,
                          discipline: bool = True) -> tuple[Tensor, HubState]:
    """One decoding step: S ← S + φ(k) vᵀ, z ← z + φ(k), out = φ(q)ᵀS / φ(q)ᵀz. Shapes (…, F), (…, F),
    (…, d) with the state's S (…, F, d) and z (…, F); the state keeps its dtype (float32 under the
    discipline), so memory and time per token do not depend on how many tokens came before."""
    check_tensor(phi_q, "phi_q", min_ndim=1)
    check_tensor(phi_k, "phi_k", min_ndim=1)
    check_tensor(v, "v", min_ndim=1)
    if phi_q.shape != phi_k.shape:
        raise ValueError(f"phi_k must have the shape of phi_q {tuple(phi_q.shape)}, got {tuple(phi_k.shape)}")
    if v.shape[:-1] != phi_k.shape[:-1]:
        raise ValueError(f"v must have shape (..., d) with (...) = {tuple(phi_k.shape[:-1])}, got {tuple(v.shape)}")
    _check_state(state, tuple(phi_k.shape[:-1]), phi_k.shape[-1], v.shape[-1])
    acc = state.S.dtype if discipline else v.dtype
    with torch.autocast(device_type=v.device.type, enabled=False):
        k, q = phi_k.to(acc), phi_q.to(acc)
        S = state.S.to(acc) + k[..., :, None] * v.to(acc)[..., None, :]
        z = state.z.to(acc) + k
        out = _read_out(q, S, z).to(v.dtype)
    return out, HubState(S=S, z=z, n_tokens=state.n_tokens + 1)


def hub_decoding_field(phi_k: Tensor, v: Tensor):
    """The hub's decoding as a core field on the packed state s = [S | z] of shape (…, F, d + 1):

        F(s, t) = φ(k_t) [v_t; 1]ᵀ,

    so :func:`terrainlab.core.rollout` with ``Euler()`` and η = 1 from s₀ = [S₀ | z₀] is the decoding
    recurrence S_t = S_{t−1} + φ(k_t) v_tᵀ, z_t = z_{t−1} + φ(k_t) — the monograph's
    S_{t+1} = S_t + η F(S_t, x_t) with a field that reads the t-th token (t = 0, 1, …: the rollout's time with η = 1) and does not depend on
    s. The denominator's state z is S for a value with a constant 1 appended. Shapes (…, T, F) and (…, T, d);
    the field returns the state's dtype (that of ``v``).
    """
    check_tensor(phi_k, "phi_k", min_ndim=2)
    check_tensor(v, "v", min_ndim=2)
    if v.shape[:-1] != phi_k.shape[:-1]:
        raise ValueError(f"v must have shape (..., T, d) with (..., T) = {tuple(phi_k.shape[:-1])}, "
                         f"got {tuple(v.shape)}")
    T = phi_k.shape[-2]
    v1 = torch.cat([v, torch.ones_like(v[..., :1])], -1)

    def field(s: Tensor, t: float) -> Tensor:
        i = int(round(t))
        if not 0 <= i < T:
            raise ValueError(f"t must index a token in [0, {T}), got {t!r}")
        return (phi_k[..., i, :, None] * v1[..., i, None, :]).to(s.dtype)

    return field


def linear_attention_rollout(phi_q: Tensor, phi_k: Tensor, v: Tensor, state: HubState | None = None):
    """Causal linear attention computed by :func:`terrainlab.core.rollout` of :func:`hub_decoding_field`
    (``Euler()``, η = 1, every state recorded), then out_t = φ(q_t)ᵀ S_t / φ(q_t)ᵀ z_t on the recorded states.

    The same function as :func:`linear_attention_naive` and :func:`linear_attention_chunked` (and
    memory O(T·F·d) like the oracle): it exists to show, and test, that hub decoding *is* a rollout of the
    core engine. Shapes (…, T, F), (…, T, F), (…, T, d), in the dtype of ``v``. Returns (out, state,
    trajectory); ``trajectory.states`` is (T + 1, …, F, d + 1), the packed [S_t | z_t] for t = 0 … T.

    >>> g = torch.Generator().manual_seed(0)
    >>> phi_q, phi_k = torch.rand(2, 1, 5, 4, generator=g, dtype=torch.float64).unbind(0)
    >>> v = torch.randn(1, 5, 3, generator=g, dtype=torch.float64)
    >>> out, state, traj = linear_attention_rollout(phi_q, phi_k, v)
    >>> bool(torch.allclose(out, linear_attention_naive(phi_q, phi_k, v), atol=1e-14)), str(traj.status)
    (True, 'max_steps')
    """
    _check_features(phi_q, phi_k, v)
    lead, T, F, d = tuple(phi_k.shape[:-2]), phi_k.shape[-2], phi_k.shape[-1], v.shape[-1]
    if state is None:
        s0 = v.new_zeros(*lead, F, d + 1)
        n0 = 0
    else:
        _check_state(state, lead, F, d)
        s0 = torch.cat([state.S, state.z[..., None]], -1).to(v.dtype)
        n0 = state.n_tokens
    traj = rollout(hub_decoding_field(phi_k, v), s0, eta=1.0, steps=T, scheme=Euler())
    S, z = traj.states[1:, ..., :d], traj.states[1:, ..., d]            # (T, …, F, d), (T, …, F)
    q = phi_q.movedim(-2, 0).to(v.dtype)                                 # (T, …, F)
    out = _read_out(q, S, z).movedim(0, -2)
    last = traj.states[-1]
    return out, HubState(S=last[..., :d], z=last[..., d], n_tokens=n0 + T), traj


def _naive_signed_softmax(u: Tensor) -> tuple[Tensor, Tensor]:
    """exp(±u)/Σ(exp(u) + exp(−u)) without max-subtraction: overflows once |u| > log(max float) (the
    discipline-off control)."""
    e_plus, e_minus = torch.exp(u), torch.exp(-u)
    z = (e_plus + e_minus).sum(-1, keepdim=True)
    return e_plus / z, e_minus / z


class AlephAttention(nn.Module):
    """Causal hub attention (module docstring for the equations).

    Args:
        d_model: model width.
        n_heads: heads H.
        K: codebook axes per codebook (F = 2K·n_codebooks features per head). K > 2·D_addr warns.
        D_addr: the sphere dimension the queries and keys are projected to.
        tau: address temperature τ > 0.
        n_codebooks: codebooks per head; their numerators and denominators are summed.
        d_head: value width per head (default d_model // n_heads).
        chunk: chunk length C of the training scan.
        mode: address mode of :class:`~terrainlab.aleph.address.AlephAddress` used for the features:
            ``"soft"`` (φ = [p₊; p₋]) or ``"hard"`` (φ one-hot on the nearest oriented axis, straight-through).
        init: ``"random"`` or ``"fibonacci"`` (D_addr = 4) codebooks.
        discipline: the bf16 discipline of aleph.md §3 (default on; off is the control).
        generator: for the initialisation (no global RNG state is touched).
    """

    def __init__(self, d_model: int, n_heads: int, K: int, D_addr: int, tau: float = 0.1, n_codebooks: int = 1, *,
                 d_head: int | None = None, chunk: int = 64, mode: str = "soft", init: str = "random",
                 discipline: bool = True, bias: bool = False, generator: torch.Generator | None = None,
                 dtype: torch.dtype | None = None, device=None):
        super().__init__()
        self.d_model = check_int(d_model, "d_model", minimum=1)
        self.n_heads = check_int(n_heads, "n_heads", minimum=1)
        self.K, self.D_addr = check_int(K, "K", minimum=1), check_int(D_addr, "D_addr", minimum=1)
        self.tau = float(check_positive(tau, "tau"))
        self.n_codebooks = check_int(n_codebooks, "n_codebooks", minimum=1)
        if d_head is None:
            if d_model % n_heads:
                raise ValueError(f"d_head must be given when n_heads={n_heads} does not divide d_model={d_model}")
            d_head = d_model // n_heads
        self.d_head = check_int(d_head, "d_head", minimum=1)
        self.chunk = check_int(chunk, "chunk", minimum=1)
        self.mode = check_choice(mode, "mode", tuple(m for m in MODES if m != "none"))
        check_choice(init, "init", INITS)
        self.discipline = bool(discipline)
        if K > 2 * D_addr:
            import warnings

            warnings.warn(f"K={K} > 2·D_addr={2 * D_addr}: more axes than the author's supply law K ≤ 2·D allows",
                          UserWarning, stacklevel=2)
        dtype = dtype or torch.get_default_dtype()
        H, Cb = n_heads, n_codebooks
        self.q_proj = nn.Linear(d_model, H * Cb * D_addr, bias=bias, dtype=dtype, device=device)
        self.k_proj = nn.Linear(d_model, H * Cb * D_addr, bias=bias, dtype=dtype, device=device)
        self.v_proj = nn.Linear(d_model, H * d_head, bias=bias, dtype=dtype, device=device)
        self.o_proj = nn.Linear(H * d_head, d_model, bias=bias, dtype=dtype, device=device)
        for lin in (self.q_proj, self.k_proj, self.v_proj, self.o_proj):
            bound = 1 / math.sqrt(lin.in_features)
            with torch.no_grad():
                w = torch.rand(lin.weight.shape, generator=generator, dtype=torch.float64) * 2 - 1
                lin.weight.copy_(w * bound)
                if lin.bias is not None:
                    lin.bias.zero_()
        if init == "fibonacci":
            if D_addr != 4:
                raise ValueError(f"init='fibonacci' places unit quaternions on S³ and needs D_addr == 4, got {D_addr}")
            book = super_fibonacci(K, dtype=torch.float64).expand(H * Cb, K, 4).clone()
        else:
            book = torch.randn(H * Cb, K, D_addr, generator=generator, dtype=torch.float64)
            book = book / book.norm(dim=-1, keepdim=True)
        self.codebooks = nn.Parameter(book.to(dtype=dtype, device=device))  # (H·n_codebooks, K, D_addr)

    @property
    def n_features(self) -> int:
        """F = 2K·n_codebooks: the width of φ per head (the state is F×d_head + F)."""
        return 2 * self.K * self.n_codebooks

    def extra_repr(self) -> str:
        return (f"d_model={self.d_model}, n_heads={self.n_heads}, K={self.K}, D_addr={self.D_addr}, tau={self.tau}, "
                f"n_codebooks={self.n_codebooks}, d_head={self.d_head}, chunk={self.chunk}, mode={self.mode!r}, "
                f"discipline={self.discipline}")

    def _phi(self, a: Tensor) -> Tensor:
        """(B, T, H·Cb·D) projections → (B, H, T, F) features (at least float32 under the discipline)."""
        B, T = a.shape[0], a.shape[1]
        H, Cb, D, K = self.n_heads, self.n_codebooks, self.D_addr, self.K
        a = a.reshape(B, T, H * Cb, D).transpose(1, 2)                      # (B, H·Cb, T, D)
        if self.discipline:
            u = address_logits(a, self.codebooks, self.tau)                 # (B, H·Cb, T, K)
            p_plus, p_minus = signed_softmax(u)
        else:
            with torch.autocast(device_type=a.device.type, enabled=False):
                dt = a.dtype
                x = a / a.norm(dim=-1, keepdim=True)
                book = self.codebooks.to(dt)
                book = book / book.norm(dim=-1, keepdim=True)
                u = (x @ book.transpose(-1, -2)) / self.tau
                p_plus, p_minus = _naive_signed_softmax(u)
        if self.mode == "hard":
            p_plus, p_minus = _straight_through_hard(u, p_plus, p_minus)
        phi = torch.cat([p_plus, p_minus], dim=-1)                          # (B, H·Cb, T, 2K)
        phi = phi.reshape(B, H, Cb, T, 2 * K).permute(0, 1, 3, 2, 4)        # (B, H, T, Cb, 2K)
        phi = phi.reshape(B, H, T, Cb * 2 * K)
        if self.discipline:
            # p± ≥ e^{−2/τ}/2K underflows to 0 for small τ (τ ≲ 0.01 in float32, 1e-3 in float64), and with it
            # the denominator φ(q)·Σφ(k): a silent 0/0 → 0. Adding f = F·finfo.tiny·8 to every feature adds the
            # constant 2f·n_codebooks + F·f² to every score (a vanishing uniform attention); the largest term
            # max_f φ(q)_f · f ≥ f/F = finfo.tiny·8 is a normal number, so the denominator stays > 0 even with
            # subnormals flushed. f is absorbed by rounding wherever p± > ~1e-28 (float32).
            phi = phi + tiny_floor(phi.dtype) * phi.shape[-1]
        return phi

    def features(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(φ(q), φ(k), v) for x of shape (B, T, d_model): (B, H, T, F), (B, H, T, F), (B, H, T, d_head)."""
        check_tensor(x, "x", ndim=3)
        if x.shape[-1] != self.d_model:
            raise ValueError(f"x must have shape (B, T, d_model={self.d_model}), got {tuple(x.shape)}")
        B, T, _ = x.shape
        v = self.v_proj(x).reshape(B, T, self.n_heads, self.d_head).transpose(1, 2)
        return self._phi(self.q_proj(x)), self._phi(self.k_proj(x)), v

    def forward(self, x: Tensor, *, state: HubState | None = None, return_state: bool = False,
                impl: str = "chunked"):
        """y = o_proj(hub attention) for x of shape (B, T, d_model). ``state`` continues from a prefix (a
        :class:`HubState` from :meth:`init_state`, :meth:`step` or an earlier ``return_state=True`` call);
        ``impl="naive"`` uses the cumulative-sum oracle (no state), ``impl="rollout"`` the decoding recurrence run
        by :func:`terrainlab.core.rollout` (:func:`linear_attention_rollout`; O(T·F·d) memory, to show and test
        that decoding is a rollout)."""
        check_choice(impl, "impl", IMPLS)
        phi_q, phi_k, v = self.features(x)
        B, T = x.shape[0], x.shape[1]
        if impl == "naive":
            if state is not None or return_state:
                raise ValueError("impl='naive' is the oracle and takes no state (use impl='chunked')")
            out, new_state = linear_attention_naive(phi_q.to(v.dtype), phi_k.to(v.dtype), v), None
        elif impl == "rollout":
            acc = compute_dtype(v.dtype) if state is None else state.S.dtype
            out, new_state, _ = linear_attention_rollout(phi_q, phi_k, v.to(acc), state=state)
            out = out.to(v.dtype)
        else:
            res = linear_attention_chunked(phi_q, phi_k, v, self.chunk, state=state, discipline=self.discipline,
                                           return_state=return_state)
            out, new_state = res if return_state else (res, None)
        y = self.o_proj(out.transpose(1, 2).reshape(B, T, self.n_heads * self.d_head))
        return (y, new_state) if return_state else y

    def init_state(self, batch_size: int, *, dtype: torch.dtype | None = None, device=None) -> HubState:
        """The empty decoding state (S = 0, z = 0) for ``batch_size`` sequences, in the accumulation dtype
        (float32 unless ``dtype`` is float64, or the compute dtype with the discipline off)."""
        check_int(batch_size, "batch_size", minimum=1)
        dt = dtype or self.q_proj.weight.dtype
        acc = _accum_dtype(dt, self.discipline)
        device = device if device is not None else self.q_proj.weight.device
        F = self.n_features
        return HubState(S=torch.zeros(batch_size, self.n_heads, F, self.d_head, dtype=acc, device=device),
                        z=torch.zeros(batch_size, self.n_heads, F, dtype=acc, device=device))

    def step(self, x_t: Tensor, state: HubState) -> tuple[Tensor, HubState]:
        """Decode one token: x_t of shape (B, d_model) → (y_t (B, d_model), the next state). The state's size
        is fixed: a state for another batch size raises ``ValueError`` naming ``state``."""
        check_tensor(x_t, "x_t", ndim=2)
        if x_t.shape[-1] != self.d_model:
            raise ValueError(f"x_t must have shape (B, d_model={self.d_model}), got {tuple(x_t.shape)}")
        if not isinstance(state, HubState):
            raise ValueError(f"state must be a HubState (from init_state), got {type(state).__name__}")
        if state.S.shape[0] != x_t.shape[0]:
            raise ValueError(f"state must come from a batch of size {x_t.shape[0]} (x_t), got one of size "
                             f"{state.S.shape[0]}")
        phi_q, phi_k, v = self.features(x_t[:, None, :])
        out, state = linear_attention_step(phi_q[:, :, 0], phi_k[:, :, 0], v[:, :, 0], state,
                                           discipline=self.discipline)
        return self.o_proj(out.reshape(x_t.shape[0], self.n_heads * self.d_head)), state

    def score_matrix(self, x: Tensor) -> Tensor:
        """The unmasked kernel matrix s(i, j) = ⟨φ(q_i), φ(k_j)⟩ per head, (B, H, T, T): rank ≤ F − n_codebooks + 1."""
        phi_q, phi_k, _ = self.features(x)
        return phi_q @ phi_k.transpose(-1, -2)


def _straight_through_hard(u: Tensor, p_plus: Tensor, p_minus: Tensor) -> tuple[Tensor, Tensor]:
    """One-hot on the nearest oriented axis (value) with the soft gradient (straight-through)."""
    K = u.shape[-1]
    k = u.abs().argmax(dim=-1, keepdim=True)
    neg = u.gather(-1, k) < 0
    hard = torch.zeros(*u.shape[:-1], 2 * K, dtype=p_plus.dtype, device=u.device)
    hard.scatter_(-1, k + K * neg.long(), 1.0)
    soft = torch.cat([p_plus, p_minus], dim=-1)
    st = hard + soft - soft.detach()
    return st[..., :K], st[..., K:]
