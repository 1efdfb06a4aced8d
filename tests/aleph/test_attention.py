"""terrainlab.aleph.attention: the three equal forms (naive oracle, chunked scan, recurrent step), several
codebooks, rank, positivity of the denominator, small τ, gradients, constant decoding memory, bf16, bad input."""

import copy
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils._python_dispatch import TorchDispatchMode

import terrainlab.aleph.attention as attention_mod
from terrainlab.aleph.address import AlephAddress, address_logits, signed_softmax
from terrainlab.aleph.attention import (
    AlephAttention,
    HubState,
    hub_decoding_field,
    linear_attention_chunked,
    linear_attention_naive,
    linear_attention_rollout,
    linear_attention_step,
)

f64 = torch.float64
BF16_U = 2.0**-8  # bf16 unit roundoff (8 significand bits)


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _att(d_model=16, n_heads=2, K=4, D_addr=4, tau=0.3, seed=0, dtype=f64, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return AlephAttention(d_model, n_heads, K, D_addr, tau, generator=_gen(seed), dtype=dtype, **kw)


def _x(*shape, seed=1, dtype=f64):
    return torch.randn(*shape, generator=_gen(seed), dtype=dtype)


def _features(B, H, T, F, d, seed, dtype):
    """Random positive features (rows of a softmax) and values."""
    g = _gen(seed)
    phi_q = torch.softmax(torch.randn(B, H, T, F, generator=g, dtype=f64) * 2, -1).to(dtype)
    phi_k = torch.softmax(torch.randn(B, H, T, F, generator=g, dtype=f64) * 2, -1).to(dtype)
    v = torch.randn(B, H, T, d, generator=g, dtype=f64).to(dtype)
    return phi_q, phi_k, v


def _step_loop(phi_q, phi_k, v):
    B, H, T, F = phi_k.shape
    acc = torch.float64 if v.dtype == f64 else torch.float32
    state = HubState(S=torch.zeros(B, H, F, v.shape[-1], dtype=acc), z=torch.zeros(B, H, F, dtype=acc))
    outs = []
    for t in range(T):
        y, state = linear_attention_step(phi_q[:, :, t], phi_k[:, :, t], v[:, :, t], state)
        outs.append(y)
    return torch.stack(outs, 2), state


# ---------------------------------------------------------------------------- decoding as a core rollout
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_rollout_of_the_hub_field_is_the_decoding(dtype, tol):
    phi_q, phi_k, v = _features(2, 3, 19, 6, 4, seed=31, dtype=dtype)
    out, state, traj = linear_attention_rollout(phi_q, phi_k, v)
    assert out.dtype == dtype and out.shape == v.shape and traj.status == "max_steps" and traj.n_steps == 19
    assert torch.allclose(out, linear_attention_naive(phi_q, phi_k, v), atol=tol, rtol=0)
    stepped, step_state = _step_loop(phi_q, phi_k, v)
    assert torch.allclose(state.S.to(step_state.S.dtype), step_state.S, atol=tol * 19, rtol=0)
    assert torch.allclose(state.z.to(step_state.z.dtype), step_state.z, atol=tol * 19, rtol=0)
    # every recorded state is the prefix sum: s_t = Σ_{j<t} φ(k_j)[v_j; 1]ᵀ
    assert traj.states.shape == (20, 2, 3, 6, 5)
    t = 7
    want_S = (phi_k[:, :, :t, :, None] * v[:, :, :t, None, :]).sum(2)
    assert torch.allclose(traj.states[t, ..., :4], want_S, atol=tol, rtol=0)
    assert torch.allclose(traj.states[t, ..., 4], phi_k[:, :, :t].sum(2), atol=tol, rtol=0)
    # continuing from a state = running the whole sequence
    _, s1, _ = linear_attention_rollout(phi_q[:, :, :11], phi_k[:, :, :11], v[:, :, :11])
    out2, s2, _ = linear_attention_rollout(phi_q[:, :, 11:], phi_k[:, :, 11:], v[:, :, 11:], state=s1)
    assert s2.n_tokens == 19 and torch.allclose(out2, out[:, :, 11:], atol=tol, rtol=0)


def test_hub_decoding_field_bad_input():
    phi_q, phi_k, v = _features(1, 1, 4, 3, 2, seed=2, dtype=f64)
    F = hub_decoding_field(phi_k, v)
    s = torch.zeros(1, 1, 3, 3, dtype=f64)
    assert torch.equal(F(s, 0.0)[..., -1], phi_k[:, :, 0])  # z's increment is φ(k_t)
    with pytest.raises(ValueError, match="t must index a token"):
        F(s, 4.0)
    with pytest.raises(ValueError, match="v must have shape"):
        hub_decoding_field(phi_k, v[:, :, :3])
    with pytest.raises(ValueError, match="state"):
        linear_attention_rollout(phi_q, phi_k, v, state=HubState(S=torch.zeros(2, 1, 3, 2), z=torch.zeros(2, 1, 3)))


# ---------------------------------------------------------------------------------------------- three forms
@settings(max_examples=30)
@given(T=st.integers(1, 40), chunk=st.integers(1, 48), F=st.integers(1, 12), d=st.integers(1, 5),
       seed=st.integers(0, 10_000), dtype=st.sampled_from([torch.float64, torch.float32]),
       discipline=st.booleans())
def test_chunked_equals_step_equals_naive(T, chunk, F, d, seed, dtype, discipline):
    # covers T not a multiple of the chunk, chunk > T and chunk = 1; the discipline changes only numerics
    phi_q, phi_k, v = _features(2, 2, T, F, d, seed, dtype)
    tol = 1e-10 if dtype == f64 else 1e-5
    naive = linear_attention_naive(phi_q, phi_k, v)
    chunked, state = linear_attention_chunked(phi_q, phi_k, v, chunk, return_state=True, discipline=discipline)
    stepped, step_state = _step_loop(phi_q, phi_k, v)
    assert chunked.dtype == dtype and chunked.shape == v.shape
    assert torch.allclose(chunked, naive, atol=tol, rtol=0)
    assert torch.allclose(stepped, naive, atol=tol, rtol=0)
    assert state.n_tokens == T == step_state.n_tokens and state.status == "ok"
    assert torch.allclose(state.S, step_state.S, atol=tol * T, rtol=0)
    assert torch.allclose(state.z, step_state.z, atol=tol * T, rtol=0)
    # the oracle by its definition, one query at a time
    t = T - 1
    w = (phi_q[..., t, None, :] * phi_k[..., : t + 1, :]).sum(-1)
    assert torch.allclose(naive[..., t, :], (w[..., None] * v[..., : t + 1, :]).sum(-2) / w.sum(-1, keepdim=True),
                          atol=tol, rtol=0)


@pytest.mark.parametrize("split,chunk", [(1, 4), (7, 4), (8, 4), (13, 64), (19, 1)])
def test_state_continues_a_prefix(split, chunk):
    phi_q, phi_k, v = _features(2, 3, 20, 6, 3, seed=split, dtype=f64)
    whole, whole_state = linear_attention_chunked(phi_q, phi_k, v, chunk, return_state=True)
    head, st1 = linear_attention_chunked(phi_q[..., :split, :], phi_k[..., :split, :], v[..., :split, :], chunk,
                                         return_state=True)
    tail, st2 = linear_attention_chunked(phi_q[..., split:, :], phi_k[..., split:, :], v[..., split:, :], chunk,
                                         state=st1, return_state=True)
    assert st1.n_tokens == split and st2.n_tokens == 20
    assert torch.allclose(torch.cat([head, tail], -2), whole, atol=1e-12, rtol=0)
    assert torch.allclose(st2.S, whole_state.S, atol=1e-12) and torch.allclose(st2.z, whole_state.z, atol=1e-12)
    # the step form continues the chunked state too
    y, _ = linear_attention_step(phi_q[..., split, :], phi_k[..., split, :], v[..., split, :], st1)
    assert torch.allclose(y, whole[..., split, :], atol=1e-12)


@pytest.mark.parametrize("mode", ["soft", "hard"])
@pytest.mark.parametrize("chunk,T", [(4, 11), (64, 9), (1, 5), (3, 12)])
def test_module_forward_equals_naive_equals_step(mode, chunk, T):
    att = _att(mode=mode, chunk=chunk, n_codebooks=2, seed=chunk)
    x = _x(3, T, 16, seed=T)
    y = att(x)
    assert torch.allclose(y, att(x, impl="naive"), atol=1e-10, rtol=0)
    y_r, state_r = att(x, impl="rollout", return_state=True)
    assert torch.allclose(y_r, y, atol=1e-10, rtol=0) and state_r.n_tokens == T
    state, outs = att.init_state(3), []
    for t in range(T):
        y_t, state = att.step(x[:, t], state)
        outs.append(y_t)
    assert torch.allclose(torch.stack(outs, 1), y, atol=1e-10, rtol=0)
    assert torch.allclose(state_r.S, state.S, atol=1e-10, rtol=0) and torch.allclose(state_r.z, state.z, atol=1e-10)
    assert state.n_tokens == T and state.status == "ok"
    # forward with return_state hands over to step()
    y_head, st = att(x[:, : T - 1], return_state=True)
    y_last, _ = att.step(x[:, T - 1], st)
    assert torch.allclose(y_last, y[:, -1], atol=1e-10) and torch.allclose(y_head, y[:, :-1], atol=1e-10)


@pytest.mark.parametrize("n_codebooks", [2, 3])
def test_several_codebooks_sum_numerators_and_denominators(n_codebooks):
    H, Cb, K, D, dh = 2, n_codebooks, 3, 4, 5
    att = _att(d_model=12, n_heads=H, K=K, D_addr=D, d_head=dh, n_codebooks=Cb, chunk=4, seed=Cb)
    x = _x(2, 10, 12, seed=Cb)
    B, T = 2, 10
    q = att.q_proj(x).reshape(B, T, H, Cb, D)
    k = att.k_proj(x).reshape(B, T, H, Cb, D)
    v = att.v_proj(x).reshape(B, T, H, dh)
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    out = torch.zeros(B, T, H, dh, dtype=f64)
    for h in range(H):
        num, den = 0, 0
        for c in range(Cb):  # per codebook, by hand: φ = [p₊; p₋], scores masked causally
            book = att.codebooks[h * Cb + c]
            fq = torch.cat(signed_softmax(address_logits(q[:, :, h, c], book, att.tau)), -1)
            fk = torch.cat(signed_softmax(address_logits(k[:, :, h, c], book, att.tau)), -1)
            s = (fq @ fk.transpose(1, 2)) * mask
            num = num + s @ v[:, :, h]
            den = den + s.sum(-1, keepdim=True)
        out[:, :, h] = num / den
    expected = att.o_proj(out.reshape(B, T, H * dh))
    assert torch.allclose(att(x), expected, atol=1e-10, rtol=0)
    # … which is one codebook block after another in the features
    phi_q, _, _ = att.features(x)
    assert phi_q.shape == (B, H, T, 2 * K * Cb)
    block = torch.cat(signed_softmax(address_logits(q[:, :, 1, Cb - 1], att.codebooks[2 * Cb - 1], att.tau)), -1)
    assert torch.allclose(phi_q[:, 1, :, -2 * K:], block, atol=1e-12)


# ------------------------------------------------------------------------------------------------------- rank
@pytest.mark.parametrize("K,Cb,tau", [(2, 1, 0.3), (4, 1, 0.5), (8, 1, 0.3), (3, 2, 0.5), (4, 3, 0.5)])
def test_score_matrix_rank(K, Cb, tau):
    att = _att(K=K, n_codebooks=Cb, tau=tau, seed=K + Cb)
    T = 60  # > 2K·Cb
    S = att.score_matrix(_x(2, T, 16, seed=K))
    assert S.shape == (2, 2, T, T) and (S > 0).all()
    ranks = torch.linalg.matrix_rank(S)
    assert (ranks <= 2 * K * Cb).all()
    # generic rank: 2K for one codebook. With Cb codebooks each block of φ sums to the same constant
    # (1, plus the floor), so φ ⊥ (1_block_a − 1_block_b): Cb − 1 linear relations, rank 2K·Cb − Cb + 1.
    assert (ranks == 2 * K * Cb - (Cb - 1)).all()
    # short sequences: rank ≤ T
    assert (torch.linalg.matrix_rank(att.score_matrix(_x(1, 3, 16))) == 3).all()


# ------------------------------------------------------------------------------- positivity, small τ, overflow
def _probe(tau, dtype, relation, q_dirs, k_scale, q_scale):
    """A 1-head hub with q = x[:, :4], k = x[:, 4:], v = 1: its output is 1 exactly when the denominator > 0
    (a zero denominator gives 0/floor = 0). q_dirs (B, T, 4), or None for queries exactly on codebook axes
    (the hardest case at small τ)."""
    att = _att(d_model=8, n_heads=1, K=4, D_addr=4, d_head=8, tau=tau, bias=True, dtype=torch.float32)
    with torch.no_grad():
        eye = torch.eye(4)
        att.q_proj.weight.zero_()
        att.q_proj.weight[:, :4] = eye
        att.k_proj.weight.zero_()
        att.k_proj.weight[:, 4:] = eye
        att.v_proj.weight.zero_()
        att.v_proj.bias.fill_(1.0)
        att.o_proj.weight.copy_(torch.eye(8))
    if isinstance(q_dirs, int):
        T = q_dirs
        q_dirs = att.codebooks.detach()[0, torch.arange(T) % 4][None]
    if relation == "identical":
        k = q_dirs * k_scale
    elif relation == "antipodal":
        k = -q_dirs * k_scale
    else:
        k = q_dirs.roll(1, dims=-1).flip(-1) * k_scale
    return att.to(dtype), torch.cat([q_dirs * q_scale, k], -1).to(dtype)


@settings(max_examples=40)
@given(tau_exp=st.floats(-3, 1), qs=st.sampled_from([1e-30, 1e-5, 1.0, 1e5, 1e30]),
       ks=st.sampled_from([1e-30, 1.0, 1e30]), relation=st.sampled_from(["identical", "antipodal", "other"]),
       on_axis=st.booleans(), T=st.integers(1, 5), seed=st.integers(0, 1000),
       path=st.sampled_from(["float32", "float64", "bf16"]))
def test_denominator_positive_for_adversarial_inputs(tau_exp, qs, ks, relation, on_axis, T, seed, path):
    tau = 10.0**tau_exp
    dirs = T if on_axis else _x(1, T, 4, seed=seed, dtype=torch.float32)
    dtype = f64 if path == "float64" else torch.float32
    att, x = _probe(tau, dtype, relation, dirs, ks, qs)
    if path == "bf16":
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y, state = att(x, return_state=True)
            y_step, _ = att.step(x[:, 0], att.init_state(1))
    else:
        y, state = att(x, return_state=True)
        y_step, _ = att.step(x[:, 0], att.init_state(1))
    assert state.status == "ok" and (state.z > 0).all()
    # v = 1 everywhere, so out = den/den = 1 iff den > 0 (bf16 output: within its rounding)
    tol = 1e-2 if path == "bf16" else 1e-5
    assert torch.allclose(y.float(), torch.ones_like(y, dtype=torch.float32), atol=tol, rtol=0)
    assert torch.allclose(y_step.float(), torch.ones_like(y_step, dtype=torch.float32), atol=tol, rtol=0)


def test_denominator_underflows_without_the_feature_floor():
    # The control for the floor: the raw address features p± ≥ e^{−2/τ}/2K underflow, so for a lone key
    # antipodal to its query φ(q)·φ(k) is exactly 0 — in float32 from τ = 0.01, in float64 at τ = 1e-3 —
    # and out = 0/floor = 0, a silent zero. The hub's features (floored) give the right answer 1.
    for dtype, tau in ((torch.float32, 0.01), (f64, 1e-3)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            a = AlephAddress(4, 4, tau, generator=_gen(0), dtype=dtype)
        x = _x(1, 4, seed=1, dtype=dtype)
        fq, fk = a.features(x), a.features(-x)
        assert (fq * fk).sum() == 0
        raw = linear_attention_chunked(fq[None], fk[None], torch.ones(1, 1, 1, dtype=dtype))
        assert raw.item() == 0.0
        att, xx = _probe(tau, dtype, "antipodal", x.float()[None], 1.0, 1.0)
        assert att(xx).flatten().tolist() == [1.0] * 8


def test_small_tau_float32_no_overflow_and_the_control_overflows():
    x = _x(2, 40, 16, seed=3, dtype=torch.float32)
    att = _att(tau=1e-3, dtype=torch.float32, seed=4)
    y = att(x)
    phi_q, phi_k, _ = att.features(x)
    assert torch.isfinite(y).all()
    F, floor = att.n_features, attention_mod.tiny_floor(torch.float32)
    # each φ is a point of the 2K-simplex (plus the floor F·tiny·8 per feature, far below float32 resolution)
    assert torch.allclose(phi_q.sum(-1), torch.ones(2, 2, 40), atol=1e-6) and (phi_k >= F * floor).all()
    # discipline off (the control): u = ±1000, exp(1000) = inf in float32, inf/inf = NaN in the features,
    # and NaN outputs. This is what happens; if it ever stopped happening the control would not be a control.
    ctl = _att(tau=1e-3, dtype=torch.float32, seed=4, discipline=False)
    ctl_q, _, _ = ctl.features(x)
    assert torch.isnan(ctl_q).any()
    assert not torch.isfinite(ctl(x)).all()
    # at a moderate τ the two agree (the discipline changes numerics, not the function)
    a, b = _att(tau=0.3, seed=5), _att(tau=0.3, seed=5, discipline=False)
    x = _x(1, 9, 16)
    assert torch.allclose(a(x), b(x), atol=1e-12)
    state, outs = b.init_state(1), []
    for t in range(9):
        y_t, state = b.step(x[:, t], state)
        outs.append(y_t)
    assert torch.allclose(torch.stack(outs, 1), a(x), atol=1e-12)


# -------------------------------------------------------------------------------------------------- gradients
def test_gradcheck_chunked_and_step():
    att = _att(d_model=6, n_heads=2, K=2, D_addr=3, tau=0.5, chunk=2, seed=7)
    x = _x(1, 5, 6, seed=8).requires_grad_()
    assert torch.autograd.gradcheck(att, (x,))
    assert torch.autograd.gradcheck(lambda x: att(x, impl="naive"), (x,))

    def steps(x):
        state, outs = att.init_state(1), []
        for t in range(x.shape[1]):
            y, state = att.step(x[:, t], state)
            outs.append(y)
        return torch.stack(outs, 1)

    assert torch.autograd.gradcheck(steps, (x,))
    # and with respect to the codebooks
    books = att.codebooks.detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda b: torch.func.functional_call(att, {"codebooks": b}, (x.detach(),)),
                                    (books,))


def test_gradcheck_functional_scan():
    phi_q, phi_k, v = (t.requires_grad_() for t in _features(1, 1, 7, 3, 2, seed=2, dtype=f64))
    assert torch.autograd.gradcheck(lambda a, b, c: linear_attention_chunked(a, b, c, 3), (phi_q, phi_k, v))


def test_hard_features_have_the_soft_gradient():
    soft, hard = _att(seed=9), _att(seed=9, mode="hard")
    x = _x(2, 7, 16, seed=10)
    r = _x(2, 2, 7, 8, seed=11)
    grads = []
    for att in (soft, hard):
        xx = x.clone().requires_grad_()
        phi_q, phi_k, _ = att.features(xx)
        ((phi_q + phi_k) * r).sum().backward()
        grads.append((xx.grad, att.codebooks.grad))
    assert torch.equal(grads[0][0], grads[1][0]) and grads[0][0].abs().max() > 1e-4
    assert torch.equal(grads[0][1], grads[1][1])
    # the hard values are one-hot (plus the floor) on the nearest oriented axis
    phi_h, _, _ = hard.features(x)
    assert torch.allclose(phi_h.sum(-1), torch.ones(2, 2, 7, dtype=f64)) and ((phi_h > 0.5).sum(-1) == 1).all()


# ------------------------------------------------------------------------------------------ decoding memory
def test_decoding_memory_is_independent_of_tokens_decoded():
    att = _att(dtype=torch.float32, seed=12)
    x = _x(2, 16, dtype=torch.float32)
    state = att.init_state(2)
    sizes = {}
    with torch.no_grad():
        for t in range(1, 1001):
            _, state = att.step(x, state)
            if t in (10, 1000):
                sizes[t] = (state.nbytes, tuple(state.S.shape), state.S.dtype)
    assert state.n_tokens == 1000
    assert sizes[10] == sizes[1000]
    # exactly (F·d_head + F) float32 numbers per batch row and head
    assert sizes[10][0] == 2 * 2 * (att.n_features * att.d_head + att.n_features) * 4


# ------------------------------------------------------------------------------------------------------ bf16
class _GemmDtypes(TorchDispatchMode):
    GEMMS = {"mm", "bmm", "addmm", "baddbmm", "matmul", "addbmm", "_unsafe_bmm"}

    def __init__(self):
        super().__init__()
        self.seen = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if name in self.GEMMS:
            self.seen.append((name, tuple(a.dtype for a in args if isinstance(a, torch.Tensor))))
        return func(*args, **(kwargs or {}))


def test_bf16_autocast_state_logits_output_and_no_fp32_gemm_in_the_scan(monkeypatch):
    att = _att(d_model=32, K=8, D_addr=4, tau=0.1, chunk=16, dtype=torch.float32, seed=13)
    seen = []
    scan = attention_mod.linear_attention_chunked

    def spy(*args, **kwargs):
        with _GemmDtypes() as mode:
            out = scan(*args, **kwargs)
        seen.extend(mode.seen)
        return out

    monkeypatch.setattr(attention_mod, "linear_attention_chunked", spy)
    x = _x(2, 100, 32, seed=14, dtype=torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, state = att(x, return_state=True)
        phi_q, phi_k, v = att.features(x)
        u = address_logits(att.q_proj(x).reshape(2, 100, 2, 4)[:, :, 0], att.codebooks[0], att.tau)
    assert y.dtype == torch.bfloat16 and v.dtype == torch.bfloat16
    assert state.S.dtype == torch.float32 and state.z.dtype == torch.float32
    assert phi_q.dtype == torch.float32 and u.dtype == torch.float32
    # the autocast trap: every GEMM of the scan has bf16 operands (one fp32 operand would promote it all)
    assert len(seen) >= 3
    assert all(dt == (torch.bfloat16,) * len(dt) for _, dt in seen), seen
    # the spy itself can see the trap: the same scan on fp32 operands reports fp32 GEMMs
    with _GemmDtypes() as mode:
        scan(phi_q, phi_k, v.float(), 16)
    assert any(torch.float32 in dt for _, dt in mode.seen)


@pytest.mark.parametrize("T", [64, 512])
def test_bf16_output_close_to_float64(T):
    # Measured (3 seeds, T = 64…2048): RMS error relative to the RMS of the float64 output 0.0069–0.0081,
    # i.e. ≈ 2u with u = 2⁻⁸ the bf16 unit roundoff, flat in T (the state is float32: no growth with the
    # context). Rounding enters at x, the projection weights and outputs, the features and the state operand
    # of the scan GEMMs, and o_proj: a handful of independent u-sized errors. Tolerance 4u (twice measured).
    # float32 (no autocast) is at 3e-7 of the same scale.
    att = _att(d_model=32, K=8, D_addr=4, tau=0.1, dtype=torch.float32, seed=15)
    x = _x(2, T, 32, seed=16, dtype=torch.float32)
    with torch.no_grad():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            yb = att(x)
        y64 = copy.deepcopy(att).double()(x.double())
    rel = float((yb.double() - y64).pow(2).mean().sqrt() / y64.pow(2).mean().sqrt())
    assert rel < 4 * BF16_U
    assert rel > BF16_U / 8  # it really ran in bf16
    with torch.no_grad():
        assert float((att(x).double() - y64).abs().max()) < 1e-5


def test_bf16_step_state_is_float32():
    att = _att(dtype=torch.float32, seed=17)
    x = _x(3, 6, 16, dtype=torch.float32)
    state = att.init_state(3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outs = []
        for t in range(6):
            y, state = att.step(x[:, t], state)
            outs.append(y)
        y_full = att(x)
    assert state.S.dtype == torch.float32 and y.dtype == torch.bfloat16
    assert torch.allclose(torch.stack(outs, 1).float(), y_full.float(), atol=8 * BF16_U)


# -------------------------------------------------------------------------------------------------- NaN input
def test_nan_input_gives_nan_output_flagged_and_stays_causal():
    att = _att(chunk=8, seed=18)
    x = _x(2, 12, 16, seed=19)
    x[0, 5, 3] = float("nan")
    y, state = att(x, return_state=True)
    assert state.status == "nonfinite"
    assert torch.isnan(y[0, 5:]).all(-1).all()  # NaN, never a silent zero
    assert torch.isfinite(y[0, :5]).all() and torch.isfinite(y[1]).all()  # earlier tokens, other rows untouched
    assert torch.allclose(y[0, :5], att(x[:, :5])[0], atol=1e-12)
    yn = att(x, impl="naive")
    assert torch.equal(torch.isnan(yn), torch.isnan(y))
    s, outs = att.init_state(2), []
    for t in range(12):
        o, s = att.step(x[:, t], s)
        outs.append(o)
        assert s.status == ("nonfinite" if t >= 5 else "ok")
    assert torch.equal(torch.isnan(torch.stack(outs, 1)), torch.isnan(y))
    # a NaN state stays flagged when continued
    _, s2 = att(x[:, :2], state=state, return_state=True)
    assert s2.status == "nonfinite"


def test_nan_value_in_the_functional_scan_is_causal():
    phi_q, phi_k, v = _features(1, 1, 10, 4, 2, seed=3, dtype=f64)
    v[..., 6, 0] = float("nan")
    out, state = linear_attention_chunked(phi_q, phi_k, v, 16, return_state=True)
    assert torch.isfinite(out[..., :6, :]).all() and torch.isnan(out[..., 6:, 0]).all()
    assert torch.isfinite(out[..., 1]).all()
    assert torch.allclose(out[..., :6, :], linear_attention_naive(phi_q, phi_k, v)[..., :6, :], atol=1e-12)
    assert state.status == "nonfinite"
    v[..., 6, 0] = float("inf")  # an inf value: non-finite from there on, never a silent finite number
    out = linear_attention_chunked(phi_q, phi_k, v, 4)
    assert torch.isfinite(out[..., :6, :]).all() and not torch.isfinite(out[..., 6:, 0]).any()


def test_empty_sequence():
    phi_q, phi_k, v = _features(2, 1, 0, 4, 3, seed=0, dtype=f64)
    out, state = linear_attention_chunked(phi_q, phi_k, v, 4, return_state=True)
    assert out.shape == (2, 1, 0, 3) and state.n_tokens == 0 and not state.S.any() and state.S.shape == (2, 1, 4, 3)
    _, st = linear_attention_chunked(*_features(2, 1, 3, 4, 3, seed=1, dtype=f64), 4, return_state=True)
    _, st2 = linear_attention_chunked(phi_q, phi_k, v, 4, state=st, return_state=True)
    assert torch.equal(st2.S, st.S) and st2.n_tokens == 3
    att = _att()
    y, s = att(_x(1, 0, 16), return_state=True)
    assert y.shape == (1, 0, 16) and s.n_tokens == 0


# ---------------------------------------------------------------------------------------------------- dtypes
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtypes_kept(dtype):
    att = _att(dtype=dtype, seed=20)
    assert all(p.dtype == dtype for p in att.parameters())
    x = _x(2, 5, 16, dtype=dtype)
    y, state = att(x, return_state=True)
    assert y.dtype == dtype and state.S.dtype == dtype and att.init_state(2).S.dtype == dtype
    y_t, _ = att.step(x[:, 0], att.init_state(2))
    assert y_t.dtype == dtype
    phi_q, _, _ = att.features(x)
    assert phi_q.dtype == dtype
    assert att.init_state(2, dtype=torch.bfloat16).S.dtype == torch.float32  # accumulation dtype
    assert _att(dtype=torch.float32, discipline=False).init_state(1).S.dtype == torch.float32


def test_fibonacci_init_and_repr():
    att = _att(init="fibonacci", K=8, seed=0)
    from terrainlab.aleph.address import super_fibonacci

    assert torch.allclose(att.codebooks, super_fibonacci(8, dtype=f64).expand(2, 8, 4))
    assert "K=8" in repr(att) and att.n_features == 16


# ------------------------------------------------------------------------------------------------- bad input
def test_bad_input():
    with pytest.warns(UserWarning, match="K=9"):
        AlephAttention(16, 2, 9, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        AlephAttention(16, 2, 8, 4)
    for bad in (0.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="tau"):
            AlephAttention(16, 2, 4, 4, tau=bad)
    with pytest.raises(ValueError, match="mode"):
        AlephAttention(16, 2, 4, 4, mode="none")
    with pytest.raises(ValueError, match="init"):
        AlephAttention(16, 2, 4, 4, init="grid")
    with pytest.raises(ValueError, match="fibonacci"):
        AlephAttention(16, 2, 4, 3, init="fibonacci")
    with pytest.raises(ValueError, match="d_head"):
        AlephAttention(15, 2, 4, 4)
    with pytest.raises(ValueError, match="n_codebooks"):
        AlephAttention(16, 2, 4, 4, n_codebooks=0)
    with pytest.raises(ValueError, match="chunk"):
        AlephAttention(16, 2, 4, 4, chunk=0)
    att = AlephAttention(16, 2, 4, 4, generator=_gen(0))
    with pytest.raises(ValueError, match="x"):
        att(torch.randn(2, 5, 15))
    with pytest.raises(ValueError, match="x"):
        att(torch.randn(5, 16))
    with pytest.raises(ValueError, match="impl"):
        att(torch.randn(1, 5, 16), impl="fast")
    with pytest.raises(ValueError, match="state"):
        att(torch.randn(1, 5, 16), impl="naive", return_state=True)
    with pytest.raises(ValueError, match="x_t"):
        att.step(torch.randn(2, 15), att.init_state(2))
    with pytest.raises(ValueError, match="state"):  # a state from another batch size
        att.step(torch.randn(2, 16), att.init_state(3))
    with pytest.raises(ValueError, match="state"):
        att(torch.randn(2, 5, 16), state=att.init_state(3))
    with pytest.raises(ValueError, match="state"):
        att.step(torch.randn(2, 16), (torch.zeros(2), torch.zeros(2)))
    with pytest.raises(ValueError, match="batch_size"):
        att.init_state(0)
    phi_q, phi_k, v = _features(1, 1, 6, 4, 2, seed=0, dtype=f64)
    with pytest.raises(ValueError, match="phi_k"):
        linear_attention_chunked(phi_q, phi_k[..., :3], v)
    with pytest.raises(ValueError, match="phi_k"):
        linear_attention_naive(phi_q, phi_k[..., :5, :], v)
    with pytest.raises(ValueError, match="v"):
        linear_attention_chunked(phi_q, phi_k, v[..., :5, :])
    with pytest.raises(ValueError, match="chunk"):
        linear_attention_chunked(phi_q, phi_k, v, 0)
    with pytest.raises(ValueError, match="state"):
        linear_attention_step(phi_q[..., 0, :], phi_k[..., 0, :], v[..., 0, :],
                              HubState(S=torch.zeros(2, 1, 4, 2, dtype=f64), z=torch.zeros(2, 1, 4, dtype=f64)))
    with pytest.raises(ValueError, match="phi_q"):
        linear_attention_step(None, phi_k[..., 0, :], v[..., 0, :], None)
    one = HubState(S=torch.zeros(1, 1, 4, 2, dtype=f64), z=torch.zeros(1, 1, 4, dtype=f64))
    with pytest.raises(ValueError, match="v"):  # would broadcast silently
        linear_attention_step(phi_q[..., 0, :], phi_k[..., 0, :], v[..., 0, :].expand(1, 3, 2), one)
    with pytest.raises(ValueError, match="phi_k"):
        linear_attention_step(phi_q[..., 0, :], phi_k[..., 0, :3], v[..., 0, :], one)


def test_state_bytes_formula():
    s = HubState(S=torch.zeros(2, 3, 4, 5), z=torch.zeros(2, 3, 4, dtype=f64))
    assert s.nbytes == 2 * 3 * 4 * 5 * 4 + 2 * 3 * 4 * 8 == 672
