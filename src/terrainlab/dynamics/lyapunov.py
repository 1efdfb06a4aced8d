"""Lyapunov exponents (Benettin / QR) and orbit classification.

Lyapunov spectrum by the standard QR method (Benettin, Galgani, Giorgilli & Strelcyn 1980; Shimada &
Nagashima 1979; Eckmann & Ruelle 1985): k tangent vectors Q are pushed forward by the Jacobian of
one step, V = DΦ(s_t) Q_t, re-orthonormalised V = Q_{t+1} R_{t+1}, and

    λ_i = lim (1/(n·τ)) Σ_t log |R_t[i, i]|,

τ = 1 for maps and τ = η for flows (one scheme step of size η). The Jacobian–vector products
DΦ·Q are autograd through the actual step — a user map, or one step of a core scheme (``RK4()``
by default) on a field — so any PyTorch model works. Two strategies: ``"batched"`` runs the orbit
first with the core ``rollout`` and forms the one-step Jacobians of thousands of recorded states
in one batched reverse pass (parallel over time; only the tiny QR recursion is sequential), and
``"sequential"`` pushes the k tangents forward step by step with forward-mode JVPs (all k tangents
and all starts in one pass over a replicated batch; no Jacobian is ever formed).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.autograd.forward_ad as fwAD

from ..core import RK4, Euler, map_field, rollout
from ..core.cycles import detect_cycle
from ..core.fields import as_field
from ..core.schemes import AbstractScheme
from ..core.status import Status
from ..core.validate import check_choice, check_int, check_positive
from ._util import KINDS, check_eta, check_states, state_fn


@dataclass(frozen=True)
class LyapunovResult:
    """Lyapunov exponents of a batch of orbits.

    exponents: (B, k) per start, descending.  mean: (k,) average over starts; stderr: (k,) standard
    error — across starts when B > 1, else from 10 block means of the single orbit.
    history: (R, B, k) running estimates at ``times`` (R,) — the convergence diagnostic;
    drift: (B, k) |final estimate − estimate at ¾ of the run|.
    unit: "per step" (maps) or "per unit time" (flows).  status: ``completed`` (a fixed-length
    run), or ``nonfinite`` if any orbit blew up (its exponents are NaN).  n_steps, n_jvp (tangent products), n_evals, seconds.
    """

    exponents: torch.Tensor
    mean: torch.Tensor
    stderr: torch.Tensor
    history: torch.Tensor
    times: torch.Tensor
    drift: torch.Tensor
    final_states: torch.Tensor
    unit: str
    status: Status
    n_steps: int
    n_jvp: int
    seconds: float


def _stepper(fn, kind: str, eta, scheme, t0: float):
    """One step Φ(s) of the system, built on core pieces (the map itself, or scheme.step)."""
    if kind == "map":
        g = state_fn(fn)
        return lambda s, k: g(s)
    field = as_field(fn)
    return lambda s, k: scheme.step(field, s, t0 + k * eta, eta).state


def _jac_step(step, s: torch.Tensor, Q: torch.Tensor, k_step: int):
    """(Φ(s), DΦ(s) Q) with DΦ formed by d reverse passes over one forward pass of the batch —
    cheaper than k forward-mode tangents when d ≤ k (and forward-mode AD of scalar and broadcast
    ops is slow in current torch)."""
    from .jacobian import _batched_value_and_jac

    new, J = _batched_value_and_jac(lambda x: step(x, k_step), s)
    return new, J @ Q


def _jvp_step(step, s: torch.Tensor, Q: torch.Tensor, k_step: int):
    """(Φ(s), DΦ(s) Q) for s (B, d), Q (B, d, k), in one forward-mode pass over a replicated batch."""
    B, d = s.shape
    k = Q.shape[-1]
    srep = s[:, None, :].expand(B, k, d).reshape(B * k, d).clone()
    tan = Q.transpose(1, 2).reshape(B * k, d).clone()
    with fwAD.dual_level():
        out = step(fwAD.make_dual(srep, tan), k_step)
        primal, tout = fwAD.unpack_dual(out)
    if tout is None:  # the step does not depend on s
        tout = torch.zeros_like(primal)
    new = primal.reshape(B, k, d)[:, 0].detach()
    V = tout.reshape(B, k, d).transpose(1, 2).detach()
    return new, V


def lyapunov_spectrum(
    fn: Callable,
    s0: torch.Tensor,
    *,
    kind: str = "map",
    eta: float | None = None,
    steps: int = 10_000,
    k: int | None = None,
    transient: int = 0,
    scheme: AbstractScheme | None = None,
    qr_every: int = 1,
    n_records: int = 50,
    t0: float = 0.0,
    method: str = "auto",
    chunk: int = 2048,
) -> LyapunovResult:
    """Lyapunov spectrum (the k largest exponents) of maps or flows by the QR/Benettin method.

    Args:
        fn: a batched map T(s) (``kind="map"``) or field F(s, t) (``kind="field"``, stepped with
            ``scheme`` — ``RK4()`` by default — at step ``eta``).
        s0: (B, d) starts; B orbits are run at once and averaged.
        steps: steps measured after ``transient`` steps (the transient also aligns Q).
        k: number of exponents (default d: the full spectrum; k = 1: the largest).
        qr_every: re-orthonormalise every this many steps (1 is safest).
        n_records: checkpoints of the running estimate kept in ``history``.
        method: ``"batched"`` — run the orbit with the core ``rollout`` first, then form the
            one-step Jacobians of ``chunk`` recorded states at a time in one batched reverse pass
            (parallel over time), leaving only the small QR recursion sequential; requires an
            autonomous system. ``"sequential"`` — forward-mode JVPs step by step (any system;
            memory O(B·k·d)). ``"auto"``: batched for autonomous systems with d ≤ 64.

    Returns:
        :class:`LyapunovResult`; for flows the exponents are per unit time.

    Example:
        >>> T = lambda x: 4.0 * x * (1 - x)               # logistic map at r = 4: λ = ln 2
        >>> res = lyapunov_spectrum(T, torch.full((8, 1), 0.3, dtype=torch.float64) + 0.01 *
        ...                         torch.arange(8, dtype=torch.float64)[:, None], steps=4000)
        >>> abs(float(res.mean[0]) - 0.6931) < 0.02
        True
    """
    check_choice(kind, "kind", KINDS)
    check_int(steps, "steps", minimum=1)
    check_int(transient, "transient", minimum=0)
    check_int(qr_every, "qr_every", minimum=1)
    check_int(n_records, "n_records", minimum=1)
    if kind == "field" and eta is None:
        raise ValueError("eta must be given for kind='field' (the integration step)")
    check_eta(eta)
    scheme = RK4() if scheme is None else scheme
    if not isinstance(scheme, AbstractScheme) or scheme.partitioned or scheme.stochastic:
        raise ValueError(f"scheme must be a deterministic single-tensor scheme such as RK4(), got {scheme!r}")
    check_choice(method, "method", ("auto", "batched", "sequential"))
    check_int(chunk, "chunk", minimum=1)
    s = check_states(s0, "s0").detach().clone()
    B, d = s.shape
    k = d if k is None else k
    check_int(k, "k", minimum=1, maximum=d)  # at most d = s0.shape[-1] exponents
    step = _stepper(fn, kind, eta, scheme, t0)
    tau = 1.0 if kind == "map" else float(eta)
    if method == "auto":
        method = "batched" if d <= 64 else "sequential"
    if method == "batched":
        return _spectrum_batched(fn, s, kind=kind, eta=eta, steps=steps, k=k, transient=transient,
                                 scheme=scheme, qr_every=qr_every, n_records=n_records, chunk=chunk)
    start = time.perf_counter()
    gen = torch.Generator(device="cpu").manual_seed(12345)
    Q0 = torch.randn(d, k, generator=gen, dtype=torch.float64).to(s.dtype).to(s.device)
    Q = torch.linalg.qr(Q0)[0].expand(B, d, k).clone()
    n_jvp = 0
    push = _jac_step if d <= k else _jvp_step
    for i in range(transient):
        s, V = push(step, s, Q, i)
        Q = _qr(V)[0]
        n_jvp += B * k
    tally = _Tally(B, k, steps, tau, n_records, qr_every, s)
    for i in range(1, steps + 1):
        s, V = push(step, s, Q, transient + i - 1)
        n_jvp += B * k
        Q = tally.push(V, i)
    finite = torch.isfinite(s).all(-1)
    return tally.finish(finite, s, kind, transient, n_jvp, start)


def _spectrum_batched(fn, s, *, kind, eta, steps, k, transient, scheme, qr_every, n_records, chunk):
    """Orbit first (core rollout), then batched one-step Jacobians over time, then QR."""
    from .jacobian import _batched_jac

    B, d = s.shape
    tau = 1.0 if kind == "map" else float(eta)
    start = time.perf_counter()
    if kind == "map":
        g = state_fn(fn)
        field, sch, h = map_field(g), Euler(), 1.0

        def phi(x):
            return g(x)
    else:
        field, sch, h = as_field(fn), scheme, float(eta)

        def phi(x):
            return sch.step(field, x, 0.0, h).state

    gen = torch.Generator(device="cpu").manual_seed(12345)
    Q = torch.linalg.qr(torch.randn(d, k, generator=gen, dtype=torch.float64))[0]
    Q = Q.to(s.dtype).to(s.device).expand(B, d, k).clone()
    tally = _Tally(B, k, steps, tau, n_records, qr_every, s)
    n_vjp, n_evals = 0, 0
    total = transient + steps
    done = 0
    cur = s
    finite = torch.ones(B, dtype=torch.bool, device=s.device)  # every chunk of the orbit finite so far
    while done < total:
        m = min(chunk, total - done)
        tr = rollout(field, cur, eta=h, steps=m, scheme=sch, record="all")
        n_evals += tr.n_evals
        X = tr.states.detach()  # (m + 1, B, d)
        finite &= torch.isfinite(X).all(0).all(-1)
        cur = X[-1]
        if not bool(torch.isfinite(cur).all()):  # keep the batch running; blown-up orbits are masked
            cur = torch.nan_to_num(cur)
        J = _batched_jac(phi, torch.nan_to_num(X[:-1]).reshape(m * B, d)).reshape(m, B, d, d)
        n_vjp += m * B * d
        for j in range(m):
            i_glob = done + j + 1  # steps taken so far, transient included
            V = J[j] @ Q
            if i_glob <= transient:
                Q = _qr(V)[0]
                continue
            Q = tally.push(V, i_glob - transient)
        done += m
    return tally.finish(finite, cur, kind, transient, n_vjp, start)


def _qr(V: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Re-orthonormalise the tangents V (B, d, k): (Q, diag R). For one tangent (k = 1) this is
    a normalisation, done directly — a batched LAPACK QR of B tiny matrices costs ~50 µs per row."""
    if V.shape[-1] == 1:
        norm = torch.linalg.vector_norm(V, dim=-2, keepdim=True)
        return V / norm.clamp(min=torch.finfo(V.dtype).tiny), norm[..., 0, :]
    Q, R = torch.linalg.qr(V)
    return Q, R.diagonal(dim1=-2, dim2=-1)


class _Tally:
    """The QR bookkeeping both strategies share: Σ log|R_ii| over the measured steps, the same sums
    in 10 consecutive blocks (single-orbit standard error), the running estimate every
    ``steps // n_records`` steps and the estimate at ¾ of the run (the drift diagnostic)."""

    n_blocks = 10

    def __init__(self, B, k, steps, tau, n_records, qr_every, s):
        self.steps, self.tau, self.qr_every = steps, tau, qr_every
        self.sums = torch.zeros(B, k, dtype=torch.float64, device=s.device)
        self.block_sums = torch.zeros(self.n_blocks, B, k, dtype=torch.float64, device=s.device)
        self.block_len = torch.zeros(self.n_blocks, dtype=torch.float64)
        self.rec_every = max(1, steps // n_records)
        self.history, self.times = [], []
        self.est_34 = None
        self.tiny = torch.finfo(s.dtype).tiny

    def push(self, V, i):
        """Measured step i (1-based) with pushed-forward tangents V; returns the next Q."""
        steps, tau = self.steps, self.tau
        b = min(self.n_blocks - 1, (i - 1) * self.n_blocks // steps)
        if i % self.qr_every == 0 or i == steps:
            Q, Rdiag = _qr(V)
            logs = torch.log(Rdiag.abs().clamp(min=self.tiny)).to(torch.float64)
            self.sums += logs
            self.block_sums[b] += logs
        else:
            Q = V
        self.block_len[b] += 1
        if i % self.rec_every == 0 or i == steps:
            self.history.append(self.sums / (i * tau))
            self.times.append(i * tau)
        if self.est_34 is None and i >= (3 * steps) // 4:
            self.est_34 = self.sums / (i * tau)
        return Q

    def finish(self, finite, s, kind, transient, n_jvp, start) -> LyapunovResult:
        sums, steps, tau, n_blocks = self.sums, self.steps, self.tau, self.n_blocks
        k = sums.shape[1]
        exps = sums / (steps * tau)
        finite = finite & torch.isfinite(exps).all(-1)
        exps = torch.where(finite[:, None], exps, torch.full_like(exps, math.nan))
        exps = torch.sort(exps, dim=-1, descending=True).values
        good = exps[finite]
        if good.shape[0] > 1:
            mean = good.mean(0)
            stderr = good.std(0) / math.sqrt(good.shape[0])
        elif good.shape[0] == 1:
            mean = good[0]
            bm = self.block_sums[:, finite][:, 0] / (self.block_len[:, None].to(sums.device) * tau)
            bm = torch.sort(bm, dim=-1, descending=True).values
            stderr = bm.std(0) / math.sqrt(n_blocks)
        else:
            mean = torch.full((k,), math.nan, dtype=torch.float64)
            stderr = torch.full((k,), math.nan, dtype=torch.float64)
        hist = torch.stack(self.history)
        drift = (exps - torch.sort(self.est_34, dim=-1, descending=True).values).abs()
        return LyapunovResult(
            exponents=exps, mean=mean, stderr=stderr, history=hist, times=torch.tensor(self.times), drift=drift,
            final_states=s, unit="per step" if kind == "map" else "per unit time",
            status=Status.COMPLETED if bool(finite.all()) else Status.NONFINITE, n_steps=steps + transient, n_jvp=n_jvp,
            seconds=time.perf_counter() - start,
        )


def largest_lyapunov(fn, s0, **kw) -> LyapunovResult:
    """The largest Lyapunov exponent only (k = 1): one tangent vector, one JVP per step."""
    return lyapunov_spectrum(fn, s0, k=1, **kw)


# ----------------------------------------------------------------------------- orbit classes


@dataclass(frozen=True)
class OrbitClassification:
    """labels: per start "converged" | "period-k" | "chaotic" | "quasi-periodic" | "divergent";
    periods (B,) (1 for converged, k for period-k, 0 otherwise); lyapunov (B,) largest exponent
    (NaN where not computed); final_states (B, d); seconds."""

    labels: list
    periods: torch.Tensor
    lyapunov: torch.Tensor
    final_states: torch.Tensor
    seconds: float


def classify_orbit(
    fn: Callable,
    s0: torch.Tensor,
    *,
    kind: str = "map",
    eta: float | None = None,
    transient: int = 1000,
    window: int = 256,
    max_period: int = 64,
    tol: float | None = None,
    lyap_steps: int = 2000,
    lyap_tol: float = 1e-2,
    bound: float = 1e6,
    scheme: AbstractScheme | None = None,
) -> OrbitClassification:
    """Classify the long-run behaviour of orbits: converged / period-k / chaotic / divergent.

    The orbit is run for ``transient`` steps with the core ``rollout`` (maps as s + 1·(T(s) − s),
    fields with ``scheme`` at step ``eta``), then a ``window`` is recorded. Divergent: left
    ``bound`` or became non-finite. Converged: the last step moved ≤ tol. Period-k: the window is
    k-periodic within tol (:func:`detect_cycle`). Otherwise the largest Lyapunov exponent decides:
    > ``lyap_tol`` per unit (step or time) is ``"chaotic"``, else ``"quasi-periodic"`` (e.g. a limit
    cycle of a flow, which has no integer period in steps). Caveat: an orbit that drifts off slowly
    without leaving ``bound`` within the horizon (e.g. x ↦ x + 1) also has λ₁ ≈ 0 and is reported
    as quasi-periodic; inspect ``final_states`` or raise the horizon.

    Example:
        >>> T = lambda x: 3.2 * x * (1 - x)
        >>> classify_orbit(T, torch.tensor([[0.3]], dtype=torch.float64)).labels
        ['period-2']
    """
    check_choice(kind, "kind", KINDS)
    check_int(transient, "transient", minimum=0)
    check_int(window, "window", minimum=4)
    check_int(max_period, "max_period", minimum=1)
    check_int(lyap_steps, "lyap_steps", minimum=1)
    check_positive(bound, "bound")
    if kind == "field" and eta is None:
        raise ValueError("eta must be given for kind='field'")
    check_eta(eta)
    s = check_states(s0, "s0").detach()
    B, d = s.shape
    tol = (1e-9 if s.dtype == torch.float64 else 1e-5) if tol is None else tol
    scheme = RK4() if scheme is None else scheme
    start = time.perf_counter()
    if kind == "map":
        g = state_fn(fn)
        field, step_eta = map_field(lambda x: g(x)), 1.0
    else:
        field, step_eta = as_field(fn), float(eta)

    def guarded(x, t=0.0):
        f = field(x, t)
        bad = (~torch.isfinite(f).all(-1)) | (x.abs().amax(-1) > bound)
        return torch.where(bad[:, None], torch.zeros_like(f), f)

    sch = Euler() if kind == "map" else scheme
    tr = rollout(guarded, s, eta=step_eta, steps=max(transient, 1), scheme=sch, record="last")
    tail = rollout(guarded, tr.final.detach(), eta=step_eta, steps=window, scheme=sch, record="all")
    W = tail.states.detach()  # (window + 1, B, d)
    last = W[-1]
    diverged = (~torch.isfinite(W).all(0).all(-1)) | (W.abs().amax(0).amax(-1) > bound)
    with torch.no_grad():
        f_last = field(torch.nan_to_num(last), 0.0)
    moving = (step_eta * f_last).abs().amax(-1)
    labels, periods = [], torch.zeros(B, dtype=torch.long)
    lyap = torch.full((B,), math.nan, dtype=torch.float64)
    need_lyap = []
    for b in range(B):
        if bool(diverged[b]):
            labels.append("divergent")
        elif float(moving[b]) <= tol:
            labels.append("converged")
            periods[b] = 1
        else:
            cyc = detect_cycle(W[:, b], max_period, tol=max(tol * 10, tol), min_repeats=2)
            if cyc.period >= 1 and cyc.start == 0:
                labels.append(f"period-{cyc.period}")
                periods[b] = cyc.period
            else:
                labels.append(None)
                need_lyap.append(b)
    if need_lyap:
        idx = torch.tensor(need_lyap)
        ly = lyapunov_spectrum(fn, last[idx], kind=kind, eta=eta, steps=lyap_steps, k=1, scheme=scheme)
        lyap[idx] = ly.exponents[:, 0].to(torch.float64).cpu()
        for j, b in enumerate(need_lyap):
            v = float(ly.exponents[j, 0])
            labels[b] = "chaotic" if v > lyap_tol else ("divergent" if math.isnan(v) else "quasi-periodic")
    return OrbitClassification(labels=labels, periods=periods, lyapunov=lyap, final_states=last,
                               seconds=time.perf_counter() - start)
