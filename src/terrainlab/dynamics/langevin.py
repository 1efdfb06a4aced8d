"""Overdamped Langevin dynamics, first-passage escape times, Arrhenius fits, Eyring–Kramers rates.

Overdamped Langevin at temperature T: dX = −∇E(X) dt + √(2T) dW, stepped with the core
``EulerMaruyama(√(2T))`` through ``rollout``. Escape over a barrier ΔE = E(saddle) − E(min) is a
rare event with rate (Arrhenius 1889; Kramers 1940; Eyring 1935; in n dimensions the
Eyring–Kramers formula, Bovier, Eckhoff, Gayrard & Klein 2004):

    k = |λ⁻(s)| / (2π) · √( det ∇²E(m) / |det ∇²E(s)| ) · exp(−ΔE / T),

which in 1-D is k = √(E''(m)·|E''(s)|)/(2π) · exp(−ΔE/T), with λ⁻(s) the negative Hessian
eigenvalue at the saddle. First-passage times of many walkers are simulated at once; the rate is the
censored exponential maximum-likelihood estimate k̂ = (number escaped)/(total time at risk), and the
barrier is the slope of log k̂ against 1/T.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..core import EulerMaruyama, rollout
from ..core.fields import as_field
from ..core.validate import check_callable, check_int, check_positive
from ._util import check_states


def langevin_rollout(field: Callable, s0: torch.Tensor, *, temperature: float, eta: float, steps: int,
                     generator: torch.Generator | None = None, record="all", geometry=None):
    """Overdamped Langevin dX = F(X) dt + √(2T) dW (F = −∇E) with the core Euler–Maruyama scheme.

    Returns the core :class:`~terrainlab.core.Trajectory`.

    Example:
        >>> from terrainlab.core import gradient_field
        >>> F = gradient_field(lambda x: 0.5 * (x ** 2).sum(-1))
        >>> tr = langevin_rollout(F, torch.zeros(4000, 1), temperature=0.5, eta=0.01, steps=500,
        ...                       generator=torch.Generator().manual_seed(0), record="last")
        >>> abs(float(tr.final.var()) - 0.5) < 0.05          # stationary variance = T
        True
    """
    check_positive(temperature, "temperature")
    scheme = EulerMaruyama(math.sqrt(2 * temperature), generator)
    return rollout(as_field(field), s0, eta=eta, steps=steps, scheme=scheme, record=record, geometry=geometry)


@dataclass(frozen=True)
class EscapeResult:
    """First-passage times of many walkers.

    times (N,) first time (steps·η) each walker satisfied ``escaped`` (inf if it never did within
    the horizon); escaped (N,) bool; rate: censored MLE n_escaped / Σ min(τ_i, horizon);
    rate_stderr: rate/√n_escaped; mean_time: mean of the observed times; horizon; temperature;
    n_steps (largest step count simulated); seconds.
    """

    times: torch.Tensor
    escaped: torch.Tensor
    rate: float
    rate_stderr: float
    mean_time: float
    n_escaped: int
    horizon: float
    temperature: float
    n_steps: int
    seconds: float


def escape_times(
    field: Callable,
    s0: torch.Tensor,
    escaped: Callable[[torch.Tensor], torch.Tensor],
    *,
    temperature: float,
    eta: float,
    max_steps: int,
    chunk: int = 2000,
    generator: torch.Generator | None = None,
) -> EscapeResult:
    """Simulate walkers under overdamped Langevin until each first satisfies ``escaped(state)``.

    Args:
        field: F = −∇E (e.g. ``gradient_field(E)``).  s0: (N, d) starting walkers (e.g. all at the
            bottom of a well).
        escaped: maps states (..., d) to a bool tensor (...): True once a walker has crossed (put
            the boundary past the saddle, e.g. in the other well, so recrossings do not count).
        temperature, eta: T and the Euler–Maruyama step.  max_steps: horizon (censoring).
        chunk: steps simulated per rollout call; finished walkers are dropped between chunks.

    Returns:
        :class:`EscapeResult`.
    """
    check_positive(temperature, "temperature")
    check_positive(eta, "eta")
    check_int(max_steps, "max_steps", minimum=1)
    check_int(chunk, "chunk", minimum=1)
    check_callable(escaped, "escaped")
    x = check_states(s0, "s0").detach()
    N = x.shape[0]
    start = time.perf_counter()
    times = torch.full((N,), math.inf, dtype=torch.float64, device=x.device)
    alive = torch.arange(N, device=x.device)
    done_steps = 0
    F = as_field(field)
    scheme = EulerMaruyama(math.sqrt(2 * temperature), generator)
    while done_steps < max_steps and alive.numel():
        m = min(chunk, max_steps - done_steps)
        tr = rollout(F, x, eta=eta, steps=m, scheme=scheme, record="all")
        S = tr.states.detach()[1:]  # (m, n_alive, d)
        hit = escaped(S)
        if hit.shape != S.shape[:2]:
            raise ValueError(f"escaped must return one bool per state, shape {tuple(S.shape[:2])}, got {tuple(hit.shape)}")
        hit = hit | ~torch.isfinite(S).all(-1)
        any_hit = hit.any(0)
        first = torch.argmax(hit.to(torch.int8), dim=0)
        idx = alive[any_hit]
        times[idx] = (done_steps + first[any_hit] + 1).to(torch.float64) * eta
        keep = ~any_hit
        alive = alive[keep]
        x = S[-1][keep]
        done_steps += m
    horizon = max_steps * eta
    times = times.cpu()
    esc = torch.isfinite(times)
    n_esc = int(esc.sum())
    at_risk = float(torch.where(esc, times, torch.full_like(times, horizon)).sum())
    rate = n_esc / at_risk if at_risk > 0 else math.nan
    return EscapeResult(
        times=times, escaped=esc, rate=rate, rate_stderr=rate / math.sqrt(n_esc) if n_esc else math.inf,
        mean_time=float(times[esc].mean()) if n_esc else math.inf, n_escaped=n_esc, horizon=horizon,
        temperature=float(temperature), n_steps=done_steps, seconds=time.perf_counter() - start,
    )


@dataclass(frozen=True)
class ArrheniusFit:
    """log k = log A − ΔE/T fitted by weighted least squares on (1/T, log k).

    barrier ΔE, barrier_stderr, prefactor A, r2 (weighted), residuals of log k."""

    barrier: float
    barrier_stderr: float
    prefactor: float
    r2: float
    residuals: torch.Tensor


def arrhenius_fit(temperatures, rates, rate_stderr=None) -> ArrheniusFit:
    """Fit log k = log A − ΔE/T. With ``rate_stderr`` the points are weighted by
    1/Var(log k) ≈ (k/σ_k)² (delta method).

    Example:
        >>> Ts = torch.tensor([0.2, 0.25, 0.3]); ks = 2.0 * torch.exp(-0.7 / Ts)
        >>> round(arrhenius_fit(Ts, ks).barrier, 6)
        0.7
    """
    T = torch.as_tensor(temperatures, dtype=torch.float64).flatten()
    k = torch.as_tensor(rates, dtype=torch.float64).flatten()
    if T.numel() != k.numel() or T.numel() < 2:
        raise ValueError("temperatures and rates must have the same length >= 2")
    if bool((T <= 0).any()) or bool((k <= 0).any()) or not bool(torch.isfinite(k).all()):
        raise ValueError("temperatures and rates must be finite and > 0")
    if rate_stderr is not None:
        se = torch.as_tensor(rate_stderr, dtype=torch.float64).flatten()
        w = (k / se) ** 2
    else:
        w = torch.ones_like(k)
    X = torch.stack([torch.ones_like(T), 1 / T], -1)
    y = torch.log(k)
    W = torch.diag(w)
    A = X.T @ W @ X
    beta = torch.linalg.solve(A, X.T @ W @ y)
    resid = y - X @ beta
    dof = max(T.numel() - 2, 1)
    s2 = float((w * resid ** 2).sum()) / dof if rate_stderr is None or T.numel() > 2 else 1.0
    cov = torch.linalg.inv(A) * (s2 if rate_stderr is None else max(s2, 1.0))
    ybar = float((w * y).sum() / w.sum())
    ss_tot = float((w * (y - ybar) ** 2).sum())
    r2 = 1 - float((w * resid ** 2).sum()) / ss_tot if ss_tot > 0 else 1.0
    return ArrheniusFit(barrier=-float(beta[1]), barrier_stderr=math.sqrt(float(cov[1, 1])),
                        prefactor=math.exp(float(beta[0])), r2=r2, residuals=resid)


@dataclass(frozen=True)
class KramersRate:
    """Eyring–Kramers rate k = |λ⁻|/(2π)·√(det H_m/|det H_s|)·exp(−ΔE/T) and its parts."""

    rate: float
    barrier: float
    prefactor: float
    hess_min: torch.Tensor
    hess_saddle: torch.Tensor


def eyring_kramers_rate(energy: Callable, x_min, x_saddle, temperature: float) -> KramersRate:
    """Eyring–Kramers escape rate from the minimum ``x_min`` over the index-1 saddle ``x_saddle``
    of ``energy`` (batched E: (N, d) → (N,)), for overdamped Langevin at temperature T.

    Example:
        >>> E = lambda x: ((x[..., 0] ** 2 - 1) ** 2)
        >>> kr = eyring_kramers_rate(E, [1.0], [0.0], 0.1)
        >>> round(kr.prefactor, 6) == round(math.sqrt(8 * 4) / (2 * math.pi), 6)
        True
    """
    check_positive(temperature, "temperature")
    xm = torch.as_tensor(x_min, dtype=torch.float64).flatten()
    xs = torch.as_tensor(x_saddle, dtype=torch.float64).flatten()
    if xm.shape != xs.shape or xm.numel() == 0:
        raise ValueError("x_min and x_saddle must be points of the same dimension")

    def e1(x):
        return energy(x[None])[0]

    Hm = torch.autograd.functional.hessian(e1, xm)
    Hs = torch.autograd.functional.hessian(e1, xs)
    em = torch.linalg.eigvalsh(Hm)
    es = torch.linalg.eigvalsh(Hs)
    if not bool((em > 0).all()):
        raise ValueError("x_min must be a strict minimum of energy (positive-definite Hessian)")
    if not (float(es[0]) < 0 and (es.numel() == 1 or bool((es[1:] > 0).all()))):
        raise ValueError("x_saddle must be an index-1 saddle of energy (exactly one negative Hessian eigenvalue)")
    dE = float(e1(xs) - e1(xm))
    pref = abs(float(es[0])) / (2 * math.pi) * math.sqrt(float(torch.prod(em)) / abs(float(torch.prod(es))))
    return KramersRate(rate=pref * math.exp(-dE / temperature), barrier=dE, prefactor=pref, hess_min=Hm, hess_saddle=Hs)


def mfpt_1d(energy: Callable, x0: float, boundary: float, temperature: float, *, far: float | None = None,
            n: int = 200_001) -> float:
    """Exact mean first-passage time of 1-D overdamped Langevin from x0 to ``boundary``.

    τ = (1/T) ∫_b^{x0} e^{E(y)/T} ∫_y^{∞} e^{−E(z)/T} dz dy for boundary b < x0 (reflecting at
    +∞; mirrored for b > x0) — the classical double integral (Pontryagin, Andronov & Vitt 1933;
    Gardiner, *Stochastic Methods*, §5.2.7), evaluated by cumulative trapezoid on a fine grid. It is
    the reference the Eyring–Kramers formula approximates as ΔE/T → ∞.
    """
    check_positive(temperature, "temperature")
    sign = 1.0 if boundary < x0 else -1.0
    span = abs(x0 - boundary)
    far = far if far is not None else x0 + sign * max(4.0, 4 * span)
    z = torch.linspace(boundary, far, n, dtype=torch.float64)
    Ez = energy(z[:, None]).to(torch.float64)
    shift = float(Ez.min())
    w = torch.exp(-(Ez - shift) / temperature)
    # inner integral I(y) = ∫_y^{far} w: reverse cumulative trapezoid
    dz = (z[1] - z[0]).abs()
    seg = 0.5 * (w[1:] + w[:-1]) * dz
    inner = torch.cat([torch.flip(torch.cumsum(torch.flip(seg, [0]), 0), [0]), seg.new_zeros(1)])
    outer_f = torch.exp((Ez - shift) / temperature) * inner
    mask = (z - boundary).abs() <= span + 1e-15
    zz, ff = z[mask], outer_f[mask]
    return float(torch.trapezoid(ff, zz).abs()) / temperature
