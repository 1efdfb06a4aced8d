"""Benchmark: hub attention (terrainlab.aleph) against torch's scaled_dot_product_attention.

What is compared — the attention core against the attention core, at equal B, H, T and d_head:

* ``hub``: from the per-head query/key projections q_a, k_a ∈ ℝ^{T×D_addr} and the values v ∈ ℝ^{T×d_head},
  the signed address features φ = [p₊; p₋] ∈ ℝ^{T×2K} (``address_logits`` + ``signed_softmax``, what
  ``AlephAttention.features`` computes) and the exact chunked scan ``linear_attention_chunked`` (chunk C);
  ``hub scan`` is the scan alone on given features (the address excluded);
* ``sdpa``: ``torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)`` with q, k, v ∈
  ℝ^{T×d_head}, torch's default backend (on the CPU of torch 2.13 that is the flash kernel
  ``_scaled_dot_product_flash_attention_for_cpu``: O(T) memory, O(T²) time — the script prints the backend
  it saw in the profiler);
* ``sdpa math``: the same call forced onto ``SDPBackend.MATH``, which materialises the T×T weights.

Default shapes: B = 1, H = 4, d_head = 64, K = 32 (F = 2K = 64 features per head, = d_head), D_addr = 16
(K ≤ 2·D_addr, the author's supply law), τ = 0.1, C = 64 (``AlephAttention``'s default). The projections
themselves are not timed (the hub's q/k projections are narrower, D_addr instead of d_head, which this
comparison does not credit it for).

Measured (float32 on the CPU, one torch thread, contenders alternated in one process, medians):

1. forward+backward time at T = 1k … 64k, the ratio hub/sdpa and the crossover length;
2. memory of forward+backward, two measures: the peak resident memory above the start (Linux: the
   process's VmHWM is reset through /proc/self/clear_refs before each call, glibc's mmap threshold is
   fixed at 64 KiB so freed tensors leave the RSS; on CUDA ``torch.cuda.max_memory_allocated``), and the
   bytes of the tensors autograd saves for backward (``torch.autograd.graph.saved_tensors_hooks``, unique
   storages, the inputs' own storages excluded) plus the output — deterministic. A contender whose
   predicted peak (the last two measured points extrapolated as a power law) exceeds the memory limit is
   not run: "out of memory (predicted X GiB)";
3. decoding: time per token of ``AlephAttention.step`` (constant-size state) against
   ``SoftmaxAttention.step`` (KV cache) after a prefill of 256 … 16k tokens;
4. a chunk-size sweep C ∈ {16, 32, 64, 128, 256} of the hub's forward+backward at one long T.

With CUDA present (or ``--device cuda``) the same runs in bf16: bf16 inputs under
``torch.autocast(dtype=torch.bfloat16)``, the address and the scan's reductions in float32 as
aleph.md §3 prescribes; times are absolute, synchronised before every clock read.

    python bench/aleph.py [--quick] [--device cpu|cuda] [--dtype float32|bfloat16]
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.nn.functional import scaled_dot_product_attention

sys.path.insert(0, str(Path(__file__).parent))
from _timing import table  # noqa: E402

from terrainlab.aleph.address import address_logits, signed_softmax  # noqa: E402
from terrainlab.aleph.attention import AlephAttention, linear_attention_chunked  # noqa: E402
from terrainlab.aleph.softmax_baseline import KVCache, SoftmaxAttention  # noqa: E402

B, H, D_HEAD, K, D_ADDR, TAU, CHUNK = 1, 4, 64, 32, 16, 0.1, 64
GIB = 2.0**30
CONTENDERS = ("hub", "hub scan", "sdpa", "sdpa math")


# ----------------------------------------------------------------------------------------------- setup
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def fix_malloc() -> bool:
    """Fix glibc's mmap threshold at 64 KiB so that freed tensors are returned to the OS (the RSS then
    tracks the live tensors); False where that is not possible (not glibc)."""
    try:
        return bool(ctypes.CDLL("libc.so.6").mallopt(-3, 1 << 16))  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        return False


def _status_bytes(key: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def memory_limit(device: torch.device) -> float:
    """Bytes a contender may use: 80 % of the GPU's memory, or 80 % of MemAvailable on the host."""
    if device.type == "cuda":
        return 0.8 * torch.cuda.get_device_properties(device).total_memory
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return 0.8 * int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 * GIB


def make_inputs(T: int, *, batch: int = B, heads: int = H, d_head: int = D_HEAD, K_: int = K,
                d_addr: int = D_ADDR, device="cpu", dtype=torch.float32, seed: int = 0) -> dict:
    """Leaf tensors (requires_grad) for one length T: q, k, v (B, H, T, d_head) for SDPA; q_a, k_a
    (B, H, T, D_addr) and the codebooks (H, K, D_addr) for the hub, which shares v; phi_q, phi_k (B, H, T, 2K)
    — the hub's features of q_a, k_a, detached — for the scan alone."""
    if T < 1:
        raise ValueError(f"T must be >= 1, got {T}")
    g = torch.Generator().manual_seed(seed)

    def leaf(*shape):
        return torch.randn(*shape, generator=g).to(device=device, dtype=dtype).requires_grad_()

    x = {"q": leaf(batch, heads, T, d_head), "k": leaf(batch, heads, T, d_head), "v": leaf(batch, heads, T, d_head),
         "q_a": leaf(batch, heads, T, d_addr), "k_a": leaf(batch, heads, T, d_addr)}
    book = torch.randn(heads, K_, d_addr, generator=g, dtype=torch.float64)
    x["book"] = (book / book.norm(dim=-1, keepdim=True)).to(device=device, dtype=torch.float32).requires_grad_()
    with torch.no_grad():
        x["phi_q"] = hub_features(x["q_a"], x["book"]).requires_grad_()
        x["phi_k"] = hub_features(x["k_a"], x["book"]).requires_grad_()
    return x


def hub_features(a: torch.Tensor, book: torch.Tensor, tau: float = TAU) -> torch.Tensor:
    """φ(a) = [p₊; p₋] (…, T, 2K) of rows a (B, H, T, D_addr) on codebooks (H, K, D_addr), as
    ``AlephAttention.features`` computes it (float32 at least)."""
    p_plus, p_minus = signed_softmax(address_logits(a, book, tau))
    return torch.cat([p_plus, p_minus], dim=-1)


def forward_fn(name: str, x: dict, chunk: int = CHUNK):
    """The contender's forward on the inputs ``x`` (a zero-argument function returning the output)."""
    if name == "hub":
        return lambda: linear_attention_chunked(hub_features(x["q_a"], x["book"]), hub_features(x["k_a"], x["book"]),
                                                x["v"], chunk)
    if name == "hub scan":
        return lambda: linear_attention_chunked(x["phi_q"], x["phi_k"], x["v"], chunk)
    if name == "sdpa":
        return lambda: scaled_dot_product_attention(x["q"], x["k"], x["v"], is_causal=True)
    if name == "sdpa math":
        from torch.nn.attention import SDPBackend, sdpa_kernel

        def run():
            with sdpa_kernel(SDPBackend.MATH):
                return scaled_dot_product_attention(x["q"], x["k"], x["v"], is_causal=True)

        return run
    raise ValueError(f"name must be one of {CONTENDERS}, got {name!r}")


def _autocast(device: torch.device, dtype: torch.dtype):
    if dtype == torch.bfloat16:
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def fwd_bwd_fn(name: str, x: dict, device, dtype=torch.float32, chunk: int = CHUNK):
    """One forward+backward of the contender (gradients of every leaf input), synchronised at the end."""
    fwd = forward_fn(name, x, chunk)
    device = torch.device(device)

    def run():
        for t in x.values():
            t.grad = None
        with _autocast(device, dtype):
            out = fwd()
        out.float().sum().backward()
        sync(device)

    return run


def saved_bytes(name: str, x: dict, device="cpu", dtype=torch.float32, chunk: int = CHUNK) -> int:
    """Bytes of the tensors autograd saves for backward in one forward (unique storages, the inputs' own
    storages excluded) plus the output's."""
    inputs = {t.untyped_storage().data_ptr() for t in x.values()}
    seen: dict[int, int] = {}

    def pack(t):
        s = t.untyped_storage()
        if s.data_ptr() not in inputs:
            seen[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), _autocast(torch.device(device), dtype):
        out = forward_fn(name, x, chunk)()
    s = out.untyped_storage()
    seen.setdefault(s.data_ptr(), s.nbytes())
    return sum(seen.values())


def peak_memory(fn, device) -> float | None:
    """Peak memory above the start while ``fn`` runs: resident memory on the host (VmHWM reset first),
    allocated memory on CUDA. None where it cannot be measured."""
    device = torch.device(device)
    if device.type == "cuda":
        sync(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        return float(torch.cuda.max_memory_allocated(device) - base)
    if not _reset_hwm():
        fn()
        return None
    base = _status_bytes("VmRSS:")
    fn()
    peak = _status_bytes("VmHWM:")
    return None if base is None or peak is None else float(max(peak - base, 0))


def sdpa_backend(device="cpu", dtype=torch.float32) -> str:
    """The ATen kernel name(s) torch's SDPA dispatches to for this device/dtype (forward+backward, profiled once)."""
    x = make_inputs(256, device=device, dtype=dtype)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        fwd_bwd_fn("sdpa", x, device, dtype)()
    names = sorted({e.key for e in prof.key_averages()
                    if "attention" in e.key and e.key != "aten::scaled_dot_product_attention"})
    return ", ".join(names) or "unknown"


# --------------------------------------------------------------------------------------- measurements
def _extrapolate(points: list[tuple[int, float]], T: int) -> float | None:
    """Power-law extrapolation of the last two (T, value) points to T (exponent at least 1)."""
    pts = [(t, v) for t, v in points if v and v > 0]
    if not pts:
        return None
    if len(pts) == 1:
        return pts[0][1] * T / pts[0][0]
    (t0, v0), (t1, v1) = pts[-2], pts[-1]
    slope = max(math.log(v1 / v0) / math.log(t1 / t0), 1.0)
    return v1 * (T / t1) ** slope


def loglog_slope(Ts, values) -> float:
    """Least-squares slope of log(value) against log(T)."""
    pts = [(math.log(t), math.log(v)) for t, v in zip(Ts, values) if v and v > 0]
    if len(pts) < 2:
        return float("nan")
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sum((p[0] - mx) ** 2 for p in pts)


def crossover(Ts, ratios) -> tuple[int | None, float | None]:
    """(the smallest measured T from which ratio < 1 at every measured T ≥ it, the length where log(ratio)
    crosses 0 by linear interpolation in log T between the last measured T with ratio ≥ 1 and the next)."""
    pairs = [(t, r) for t, r in zip(Ts, ratios) if r is not None]
    first = None
    for i, (t, _) in enumerate(pairs):
        if all(r < 1 for _, r in pairs[i:]):
            first = t
            break
    if first is None:
        return None, None
    idx = [t for t, _ in pairs].index(first)
    if idx == 0:
        return first, None
    (t0, r0), (t1, r1) = pairs[idx - 1], pairs[idx]
    w = math.log(r0) / (math.log(r0) - math.log(r1))
    return first, math.exp(math.log(t0) + w * (math.log(t1) - math.log(t0)))


def memory_pass(Ts, *, device="cpu", dtype=torch.float32, contenders=CONTENDERS, limit: float | None = None,
                max_call_s: float = 150.0, chunk: int = CHUNK) -> dict:
    """One forward+backward of every contender at every T, recording the peak memory above the start and the
    saved bytes; a contender stops at the first T where its extrapolated peak exceeds ``limit`` ("out of
    memory (predicted X GiB)") or its extrapolated call time exceeds ``max_call_s``.
    Returns {name: {T: {"peak", "saved", "call_s", "skip"}}} (None where not run)."""
    device = torch.device(device)
    limit = memory_limit(device) if limit is None else limit
    res: dict = {n: {} for n in contenders}
    stopped: dict[str, str] = {}
    for T in Ts:
        x = make_inputs(T, device=device, dtype=dtype)
        for n in contenders:
            done = [(t, r) for t, r in res[n].items() if r["skip"] is None]
            pred_mem = _extrapolate([(t, r["peak"] or r["saved"]) for t, r in done], T)
            pred_t = _extrapolate([(t, r["call_s"]) for t, r in done], T)
            if pred_mem is not None and pred_mem > limit:
                stopped[n] = f"out of memory (predicted {pred_mem / GIB:.1f} GiB > {limit / GIB:.1f} GiB)"
            elif n in stopped or (pred_t is not None and pred_t > max_call_s):
                stopped[n] = f"not run (predicted {pred_t:.0f} s per call > {max_call_s:.0f} s, {pred_mem / GIB:.1f} GiB)"
            if n in stopped:
                res[n][T] = {"peak": None, "saved": None, "call_s": None, "skip": stopped[n]}
                continue
            fn = fwd_bwd_fn(n, x, device, dtype, chunk)
            if T == Ts[0]:
                fn()  # warm-up: one-time allocations (thread pools, kernels) stay out of the peak
            clock = {}

            def timed(fn=fn, clock=clock):
                t0 = time.perf_counter()
                fn()
                clock["t"] = time.perf_counter() - t0

            peak = peak_memory(timed, device)
            res[n][T] = {"peak": peak, "saved": saved_bytes(n, x, device, dtype, chunk), "call_s": clock["t"],
                         "skip": None}
        del x
    return res


def _memory_child(spec: str) -> None:
    import json

    a = json.loads(spec)
    torch.set_num_threads(1)
    fix_malloc()
    res = memory_pass(a["Ts"], device=a["device"], dtype=getattr(torch, a["dtype"]), contenders=a["contenders"],
                      limit=a["limit"], max_call_s=a["max_call_s"], chunk=a["chunk"])
    print("RESULT " + json.dumps({n: {str(T): r for T, r in d.items()} for n, d in res.items()}))


def memory_pass_fresh(Ts, *, dtype=torch.float32, contenders=CONTENDERS, limit: float | None = None, max_call_s: float = 150.0,
                      chunk: int = CHUNK, timeout_s: float = 3600) -> dict:
    """:func:`memory_pass` on the CPU in a fresh process whose glibc mmap threshold is fixed at 64 KiB (so a
    freed tensor leaves the resident set and the RSS peak is the peak of live tensors) — the timing process
    keeps the allocator as users have it."""
    import json
    import subprocess

    spec = json.dumps({"Ts": list(Ts), "device": "cpu", "dtype": str(dtype).removeprefix("torch."), "contenders": list(contenders),
                       "limit": memory_limit(torch.device("cpu")) if limit is None else limit,
                       "max_call_s": max_call_s, "chunk": chunk})
    out = subprocess.run([sys.executable, __file__, "--memory-child", spec], capture_output=True, text=True,
                         timeout=timeout_s)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"memory child failed (exit {out.returncode}): {out.stderr[-2000:]}")
    raw = json.loads(lines[-1][len("RESULT "):])
    return {n: {int(T): r for T, r in d.items()} for n, d in raw.items()}


def timing_pass(Ts, mem: dict, *, device="cpu", dtype=torch.float32, repeats: int = 5, level_budget_s: float = 60.0,
                chunk: int = CHUNK, verbose: bool = True) -> dict:
    """Median forward+backward time of every contender that ``mem`` (from :func:`memory_pass`) ran at T, the
    contenders alternated round by round; each contender runs ``repeats`` rounds, fewer (at least 1) where
    they would exceed its share of ``level_budget_s``. A warm-up call precedes the rounds
    where T ≤ 4096. Returns {name: {T: {"time": s | None, "rounds": n}}}."""
    device = torch.device(device)
    contenders = list(mem)
    res: dict = {n: {} for n in contenders}
    for T in Ts:
        x = make_inputs(T, device=device, dtype=dtype)
        runs = {n: fwd_bwd_fn(n, x, device, dtype, chunk) for n in contenders if mem[n][T]["skip"] is None}
        if T <= 4096:
            for fn in runs.values():
                fn()
        # each contender gets up to ``repeats`` rounds within its share of the level's budget (at least 1);
        # the rounds alternate the contenders still running
        share = level_budget_s / max(len(runs), 1)
        want = {n: max(1, min(repeats, int(share / max(mem[n][T]["call_s"], 1e-9)))) for n in runs}
        times: dict[str, list[float]] = {n: [] for n in runs}
        for i in range(max(want.values(), default=0)):
            for n, fn in runs.items():
                if i < want[n]:
                    t0 = time.perf_counter()
                    fn()
                    times[n].append(time.perf_counter() - t0)
        for n in contenders:
            res[n][T] = {"time": statistics.median(times[n]) if n in runs else None, "rounds": want.get(n, 0)}
        if verbose:
            cells = ", ".join(f"{n} {res[n][T]['time'] * 1e3:.1f} ms" if res[n][T]["time"] else f"{n} –"
                              for n in contenders)
            print(f"  T={T}: {cells} (rounds {want})", flush=True)
        del x, runs
    return res


def forward_backward(Ts, *, device="cpu", dtype=torch.float32, repeats: int = 5, level_budget_s: float = 60.0,
                     max_call_s: float = 150.0, contenders=CONTENDERS, limit: float | None = None,
                     chunk: int = CHUNK, fresh_memory: bool | None = None, verbose: bool = True) -> dict:
    """Memory pass (in a fresh process on the CPU unless ``fresh_memory=False``), then the timing pass.
    Returns {name: {T: {"time", "rounds", "peak", "saved", "call_s", "skip"}}}."""
    device = torch.device(device)
    fresh = device.type == "cpu" if fresh_memory is None else fresh_memory
    if fresh:
        mem = memory_pass_fresh(Ts, dtype=dtype, contenders=contenders, limit=limit, max_call_s=max_call_s, chunk=chunk)
    else:
        mem = memory_pass(Ts, device=device, dtype=dtype, contenders=contenders, limit=limit, max_call_s=max_call_s,
                          chunk=chunk)
    if verbose:
        print("  memory pass done", flush=True)
    tim = timing_pass(Ts, mem, device=device, dtype=dtype, repeats=repeats, level_budget_s=level_budget_s,
                      chunk=chunk, verbose=verbose)
    return {n: {T: {**mem[n][T], **tim[n][T]} for T in Ts} for n in contenders}


def decoding(contexts, *, window: int = 32, repeats: int = 5, d_model: int = H * D_HEAD, heads: int = H,
             device="cpu", dtype=torch.float32, verbose: bool = True) -> dict:
    """Time per decoded token of ``AlephAttention.step`` (K, D_addr as above) and ``SoftmaxAttention.step``
    after a prefill of L tokens, L in ``contexts`` (a window of ``window`` steps, median over ``repeats``
    alternated rounds, each round restarting from the prefilled state/cache). Returns
    {L: {"hub": s/token, "softmax": s/token, "hub_bytes": state bytes, "softmax_bytes": cache bytes}}."""
    device = torch.device(device)
    g = torch.Generator().manual_seed(0)
    hub = AlephAttention(d_model, heads, K, D_ADDR, TAU, generator=g, device=device)
    soft = SoftmaxAttention(d_model, heads, generator=g, device=device)
    out = {}
    for L in contexts:
        x = torch.randn(1, L + window, d_model, generator=g).to(device)
        with torch.no_grad(), _autocast(device, dtype):
            _, state = hub(x[:, :L], return_state=True)
            kk = soft.k_proj(x[:, :L]).reshape(1, L, heads, soft.d_qk).transpose(1, 2)
            vv = soft.v_proj(x[:, :L]).reshape(1, L, heads, soft.d_head).transpose(1, 2)
            cache = KVCache(k=kk.contiguous(), v=vv.contiguous())

        def run_hub(state=state, x=x, L=L):
            s = state
            with torch.no_grad(), _autocast(device, dtype):
                for t in range(window):
                    _, s = hub.step(x[:, L + t], s)
            sync(device)
            return s

        def run_soft(cache=cache, x=x, L=L):
            c = cache
            with torch.no_grad(), _autocast(device, dtype):
                for t in range(window):
                    _, c = soft.step(x[:, L + t], c)
            sync(device)
            return c

        run_hub(), run_soft()  # warm-up
        times = {"hub": [], "softmax": []}
        for _ in range(repeats):
            for n, fn in (("hub", run_hub), ("softmax", run_soft)):
                t0 = time.perf_counter()
                fn()
                times[n].append((time.perf_counter() - t0) / window)
        out[L] = {n: statistics.median(v) for n, v in times.items()}
        out[L].update(hub_bytes=state.nbytes, softmax_bytes=cache.nbytes)
        if verbose:
            print(f"  L={L}: hub {out[L]['hub'] * 1e6:.0f} µs/token, softmax {out[L]['softmax'] * 1e6:.0f} µs/token",
                  flush=True)
    return out


def chunk_sweep(T: int, chunks=(16, 32, 64, 128, 256), *, repeats: int = 5, device="cpu", dtype=torch.float32,
                name: str = "hub") -> dict:
    """Median forward+backward time of the hub at length T for each chunk size C (alternated rounds)."""
    for c in chunks:
        if int(c) < 1:
            raise ValueError(f"chunks must be positive integers, got {c}")
    device = torch.device(device)
    x = make_inputs(T, device=device, dtype=dtype)
    fns = {c: fwd_bwd_fn(name, x, device, dtype, c) for c in chunks}
    for fn in fns.values():
        fn()
    times: dict[int, list[float]] = {c: [] for c in chunks}
    for _ in range(repeats):
        for c, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[c].append(time.perf_counter() - t0)
    return {c: statistics.median(v) for c, v in times.items()}


# ----------------------------------------------------------------------------------------------- report
def _fmt_bytes(b) -> str:
    if b is None:
        return "–"
    return f"{b / 2**20:.1f} MiB" if b < GIB else f"{b / GIB:.2f} GiB"


def report_forward_backward(res: dict, Ts) -> dict:
    contenders = list(res)
    rows, ratios = [], []
    for T in Ts:
        r = {n: res[n][T] for n in contenders}
        hub, sd = r.get("hub", {}).get("time"), r.get("sdpa", {}).get("time")
        ratio = hub / sd if hub and sd else None
        ratios.append(ratio)
        row = [f"{T // 1024}k" if T % 1024 == 0 else str(T)]
        for n in contenders:
            row.append(f"{r[n]['time'] * 1e3:.1f}" if r[n].get("time") else r[n]["skip"])
        row += [f"{ratio:.2f}" if ratio else "–",
                f"{r['hub']['time'] / r['sdpa math']['time']:.2f}" if r.get("sdpa math", {}).get("time") and hub else "–",
                "/".join(str(r[n].get("rounds", 0)) for n in contenders)]
        rows.append(row)
    print(table(rows, ["T"] + [f"{n} ms" for n in contenders] + ["hub/sdpa", "hub/sdpa math", "rounds"]))
    first, interp = crossover(Ts, ratios)
    if first is None:
        print("crossover: none — the hub is not faster than SDPA from any measured length on")
    elif interp is None:
        print(f"crossover: the hub is faster at every measured length (from T = {first} on)")
    else:
        print(f"crossover: the hub is faster from T = {first} on (ratio 1 crossed at T ≈ {interp:.0f}, "
              f"log-interpolated)")
    # memory
    rows = []
    for T in Ts:
        row = [f"{T // 1024}k" if T % 1024 == 0 else str(T)]
        for n in contenders:
            r = res[n][T]
            row.append(f"{_fmt_bytes(r.get('peak'))} / {_fmt_bytes(r.get('saved'))}" if r.get("time") else r["skip"])
        rows.append(row)
    print("\nmemory of forward+backward: peak above the start / saved for backward + output")
    print(table(rows, ["T"] + contenders))
    slopes = {}
    for n in contenders:
        pts = [(T, res[n][T]) for T in Ts if res[n][T].get("time") and T >= 2048]
        slopes[n] = {"peak": loglog_slope([p[0] for p in pts], [p[1].get("peak") for p in pts]),
                     "saved": loglog_slope([p[0] for p in pts], [p[1].get("saved") for p in pts]),
                     "time": loglog_slope([p[0] for p in pts], [p[1].get("time") for p in pts])}
        print(f"slopes of log(·) vs log T over T ≥ 2k, {n}: peak {slopes[n]['peak']:.2f}, saved "
              f"{slopes[n]['saved']:.2f}, time {slopes[n]['time']:.2f}")
    return {"ratios": dict(zip(Ts, ratios)), "crossover": (first, interp), "slopes": slopes}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small version (< 60 s on the 2-core CPU)")
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    ap.add_argument("--dtype", default=None, choices=("float32", "bfloat16"),
                    help="default float32 on the CPU, bfloat16 (autocast) on CUDA")
    ap.add_argument("--max-T", type=int, default=None, help="largest context of the forward+backward table")
    ap.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.memory_child:
        _memory_child(args.memory_child)
        return {}
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: nothing to run")
        return {}
    dtype = getattr(torch, args.dtype) if args.dtype else (torch.bfloat16 if device.type == "cuda" else torch.float32)
    if device.type == "cpu":
        torch.set_num_threads(1)
    quick = args.quick
    max_T = args.max_T or (4096 if quick else 65536)
    Ts = [2**i * 1024 for i in range(7) if 2**i * 1024 <= max_T]
    contexts = [256, 1024, 4096] if quick else [256, 1024, 4096, 16384]
    sweep_T = 4096 if quick else 16384
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    print(f"device {device} ({dev_name}), torch {torch.__version__}, {torch.get_num_threads()} thread(s), dtype {dtype}, "
          f"load average {load}, memory limit {memory_limit(device) / GIB:.1f} GiB")
    print(f"shapes: B={B}, H={H}, d_head={D_HEAD}; hub K={K} (F={2 * K}), D_addr={D_ADDR}, tau={TAU}, chunk={CHUNK}")
    print(f"SDPA backend (profiled): {sdpa_backend(device, dtype)}")
    t_start = time.perf_counter()

    print("\n1-2. forward+backward")
    fb = forward_backward(Ts, device=device, dtype=dtype, repeats=3 if quick else 5,
                          level_budget_s=6.0 if quick else 40.0, max_call_s=10.0 if quick else 150.0)
    summary = report_forward_backward(fb, Ts)

    print(f"\n3. decoding (time per token over a window of 32 steps after a prefill of L tokens; "
          f"d_model={H * D_HEAD}, H={H})")
    dec = decoding(contexts, repeats=3 if quick else 5, device=device, dtype=dtype, verbose=False)
    rows = [[str(L), f"{d['hub'] * 1e6:.0f}", f"{d['softmax'] * 1e6:.0f}", f"{d['hub'] / d['softmax']:.2f}",
             _fmt_bytes(d["hub_bytes"]), _fmt_bytes(d["softmax_bytes"])] for L, d in dec.items()]
    print(table(rows, ["context L", "hub µs/token", "softmax µs/token", "hub/softmax", "hub state", "KV cache"]))
    Ls = list(dec)
    print(f"slope of log(µs/token) vs log L: hub {loglog_slope(Ls, [dec[L]['hub'] for L in Ls]):.2f}, "
          f"softmax {loglog_slope(Ls, [dec[L]['softmax'] for L in Ls]):.2f}")

    print(f"\n4. chunk sweep (hub forward+backward at T={sweep_T})")
    sw = chunk_sweep(sweep_T, repeats=3 if quick else 5, device=device, dtype=dtype)
    best = min(sw, key=sw.get)
    print(table([[str(c), f"{t * 1e3:.1f}", f"{t / sw[CHUNK]:.2f}"] for c, t in sw.items()],
                ["chunk C", "ms", f"/ C={CHUNK}"]))
    print(f"fastest C = {best} ({sw[best] / sw[CHUNK]:.2f}× the time of the default C = {CHUNK})")
    load_end = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"\ntotal {time.perf_counter() - t_start:.0f} s; load average at the end {load_end}")
    return {"forward_backward": fb, "summary": summary, "decoding": dec, "chunk_sweep": sw}


if __name__ == "__main__":
    main()
