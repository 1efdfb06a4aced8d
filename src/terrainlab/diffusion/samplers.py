"""Samplers: every one is a rollout of terrainlab.core on a score field.

* :func:`sample_reverse_sde` — Euler–Maruyama on the reverse SDE (Song et al. 2021; for VP this
  is the continuous-time limit of DDPM ancestral sampling, Ho et al. 2020).
* :func:`sample_pf_ode` — the probability-flow ODE with any core scheme: ``Euler()`` (the
  continuous limit of DDIM, Song, Meng & Ermon 2021), ``Heun()`` (Karras et al. 2022), ``RK4()``.
* :func:`sample_annealed_langevin` — Langevin dynamics at a decreasing ladder of noise levels
  (Song & Ermon 2019), each level a rollout of ``EulerMaruyama(√2)`` on the field ∇log p_t.
* :func:`sample_pc` — predictor–corrector (Song et al. 2021, Alg. 2/5): one reverse-SDE step, then
  Langevin corrector steps with the signal-to-noise step rule ε = 2α(r‖z‖/‖s‖)².

Sampler time u ∈ [0, 1] runs forward while diffusion time t(u) runs from ``t_hi`` down to
``t_lo`` (see :mod:`terrainlab.diffusion.processes`), so η = 1/steps always.

Every sampler returns a :class:`SampleResult` with the samples, the recorded trajectory, the
diffusion times of the recorded states and the number of score evaluations.

Example:
    >>> import torch
    >>> from terrainlab.core import Heun
    >>> from terrainlab.diffusion import VPSchedule, GaussianMixture, sample_pf_ode
    >>> sched = VPSchedule()
    >>> gm = GaussianMixture.isotropic([[-2.0, 0.0], [2.0, 0.0]], std=0.3)
    >>> xT = sched.prior_sample(1000, 2, generator=torch.Generator().manual_seed(0))
    >>> res = sample_pf_ode(gm.score_fn(sched), xT, sched, steps=50, scheme=Heun())
    >>> res.n_score_evals, res.samples.shape
    (100, torch.Size([1000, 2]))
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from ..core import RK4, AbstractScheme, Euler, EulerMaruyama, Heun, rollout
from ..core.status import Status
from ..core.validate import (
    check_callable,
    check_choice,
    check_instance,
    check_int,
    check_number,
    check_positive,
)
from .models import score_to_x0
from .processes import WARPS, TimeWarp, pf_ode_field, reverse_sde_field
from .schedules import Schedule


@dataclass(frozen=True)
class SampleResult:
    """samples (n, …); trajectory (k, n, …) recorded states or None; times (k,) diffusion time t
    of each recorded state; n_score_evals (batch score evaluations, including a final denoising
    step); status (a :class:`~terrainlab.core.Status`: the core rollout status, the worst over
    sub-rollouts, ``nonfinite`` when a sample is NaN/inf); seconds; method."""

    samples: torch.Tensor
    trajectory: torch.Tensor | None
    times: torch.Tensor
    n_score_evals: int
    status: Status
    seconds: float
    method: str


_WORST = (Status.NONFINITE, Status.DIVERGED, Status.CYCLE, Status.CONVERGED, Status.MAX_STEPS)


def _worst(statuses) -> Status:
    for s in _WORST:
        if s in statuses:
            return s
    return Status.MAX_STEPS


def _check(score, x, schedule, steps, name="steps"):
    check_callable(score, "score")  # score(x, t)
    if not torch.is_tensor(x) or not torch.is_floating_point(x):
        raise ValueError("x_T must be a floating-point tensor (draw it with schedule.prior_sample)")
    check_instance(schedule, "schedule", Schedule, "a VPSchedule or VESchedule")
    check_int(steps, name, minimum=1)


def _warp(schedule, t_eps, t_hi, warp) -> TimeWarp:
    """The sampler's time grid; the samplers' own argument names (t_eps, warp) in every message."""
    if isinstance(warp, TimeWarp):
        return warp
    check_choice(warp, "warp", WARPS)
    check_number(t_eps, "t_eps", minimum=0, maximum=schedule.t_max, strict_min=True, strict_max=True)
    if t_hi is not None:
        check_number(t_hi, "t_hi", minimum=t_eps, maximum=schedule.t_max, strict_min=True)
    return TimeWarp(schedule, t_lo=t_eps, t_hi=t_hi, kind=warp)


def _denoise(score, x, schedule, t):
    a, s = float(schedule.alpha(t)), float(schedule.sigma(t))
    return score_to_x0(score(x, t), x, a, s)


def _finish(score, tr, warp, schedule, steps, denoise, method, start):
    x = tr.final
    n = tr.n_evals
    if denoise:
        x = _denoise(score, x, schedule, warp.t_lo)
        n += 1
    states = tr.states
    times = torch.tensor([warp.t(int(k) / steps) for k in tr.steps], dtype=torch.float64)
    status = Status(tr.status) if bool(torch.isfinite(x).all()) else Status.NONFINITE
    return SampleResult(x, states, times, n, status, time.perf_counter() - start, method)


def _keep(record, i, total) -> bool:
    """Whether a Python-loop sampler records its state after iteration i (0-based) of ``total``."""
    return record == "all" or (isinstance(record, int) and (i + 1) % record == 0) or i == total - 1


def _finish_loop(score, x, n, states, times, statuses, schedule, t_end, record, denoise, start, method):
    """The end of a sampler that loops in Python: the optional denoising step at ``t_end``, the
    recorded states (only the last for ``record="last"``) and the worst status seen."""
    if denoise:
        x = _denoise(score, x, schedule, t_end)
        n += 1
    if record == "last":
        states, times = [x], [t_end]
    status = _worst(statuses) if bool(torch.isfinite(x).all()) else Status.NONFINITE
    return SampleResult(x, torch.stack(states), torch.tensor(times, dtype=torch.float64), n, status,
                        time.perf_counter() - start, method)


def sample_reverse_sde(score, x_T, schedule: Schedule, steps: int, *, t_eps: float = 1e-3,
                       t_hi: float | None = None, warp="uniform", generator=None, record="last",
                       denoise: bool = False) -> SampleResult:
    """Euler–Maruyama on dx = [f x − g²∇log p_t] dt + g dw̄ from t_hi to t_eps in ``steps`` steps.

    Args:
        score: ``score(x, t)``; x_T: starting noise (its dtype/device are used throughout).
        warp: ``"uniform" | "karras" | "log_snr"`` or a :class:`TimeWarp`.
        generator: torch.Generator for reproducible noise.  record: as in ``rollout``.
        denoise: finish with Tweedie's x̂₀ = (x + σ²s)/α at t_eps (+1 evaluation).
    """
    _check(score, x_T, schedule, steps)
    w = _warp(schedule, t_eps, t_hi, warp)
    F = reverse_sde_field(score, schedule, w)
    start = time.perf_counter()
    tr = rollout(F, x_T, eta=1.0 / steps, steps=steps, scheme=EulerMaruyama(F.diffusion, generator),
                 record=record)
    return _finish(score, tr, w, schedule, steps, denoise, "reverse_sde_em", start)


def sample_pf_ode(score, x_T, schedule: Schedule, steps: int, *, scheme: AbstractScheme | None = None,
                  t_eps: float = 1e-3, t_hi: float | None = None, warp="uniform", record="last",
                  denoise: bool = False) -> SampleResult:
    """Integrate the probability-flow ODE dx/dt = f x − ½g²∇log p_t from t_hi to t_eps.

    ``scheme`` is a core scheme (``Euler()`` default, ``Heun()``, ``RK4()``, ``Midpoint()``);
    ``steps`` scheme steps cost ``steps × stages`` score evaluations. Deterministic: the map
    x_T ↦ x_0 is the PF-ODE coupling.

    ``warp="karras"`` or ``"log_snr"`` spends more steps at low noise (see :class:`TimeWarp`).
    """
    _check(score, x_T, schedule, steps)
    scheme = Euler() if scheme is None else scheme
    if not isinstance(scheme, AbstractScheme) or scheme.stochastic or scheme.partitioned:
        raise ValueError(f"scheme must be a deterministic single-state core scheme, got {scheme!r}")
    w = _warp(schedule, t_eps, t_hi, warp)
    F = pf_ode_field(score, schedule, w)
    start = time.perf_counter()
    tr = rollout(F, x_T, eta=1.0 / steps, steps=steps, scheme=scheme, record=record)
    name = {Euler: "pf_ode_euler", Heun: "pf_ode_heun", RK4: "pf_ode_rk4"}.get(type(scheme), "pf_ode")
    return _finish(score, tr, w, schedule, steps, denoise, name, start)


class _LangevinField:
    # F(x) = c·s(x, t) with c chosen from the SNR rule on each call (c = 1 for a fixed step);
    # the paired diffusion √(2c) is read by Euler–Maruyama right after the field call.
    def __init__(self, score, t, snr, alpha_coef):
        self.score, self.t, self.snr, self.alpha_coef, self.c = score, t, snr, alpha_coef, 1.0

    def __call__(self, x, _):
        s = self.score(x, self.t)
        if self.snr is not None:
            d = s[0].numel()
            gnorm = s.flatten(1).norm(dim=1).mean()
            self.c = 2 * self.alpha_coef * (self.snr * math.sqrt(d) / gnorm) ** 2
            return self.c * s
        return s

    def diffusion(self, x, _):
        return torch.sqrt(2 * self.c) if torch.is_tensor(self.c) else math.sqrt(2 * self.c)


def _langevin(score, x, t, steps, eta, generator, snr=None, alpha_coef=1.0):
    F = _LangevinField(score, t, snr, alpha_coef)
    return rollout(F, x, eta=eta, steps=steps, scheme=EulerMaruyama(F.diffusion, generator), record="last")


def sample_annealed_langevin(score, x_T, schedule: Schedule, levels: int, steps_per_level: int = 10, *,
                             eps: float = 3e-5, t_eps: float = 1e-3, t_hi: float | None = None,
                             warp="log_snr", generator=None, record="last",
                             denoise: bool = False) -> SampleResult:
    """Annealed Langevin dynamics (Song & Ermon 2019, Alg. 1).

    For noise levels t_1 > … > t_L (``levels`` points of ``warp``), run ``steps_per_level`` steps of
    x ← x + η_i ∇log p_{t_i}(x) + √(2η_i) z with η_i = ε·σ_i²/σ_L² (σ_i = σ(t_i), the noise std
    in the state's own coordinates: for VE the NCSN σ_i, for VP √(1 − ᾱ)), each level a core
    rollout. ``record`` ("all"/"last"/k) records the state after every level / every k-th level.
    """
    _check(score, x_T, schedule, levels, "levels")
    _check(score, x_T, schedule, steps_per_level, "steps_per_level")
    check_positive(eps, "eps")
    w = _warp(schedule, t_eps, t_hi, warp)
    ts = [w.t(k / max(levels - 1, 1)) for k in range(levels)]
    s_last = float(schedule.sigma(ts[-1]))
    start = time.perf_counter()
    x, states, times, n, statuses = x_T, [x_T], [w.t_hi], 0, []
    for i, t in enumerate(ts):
        eta = eps * (float(schedule.sigma(t)) / s_last) ** 2
        tr = _langevin(score, x, t, steps_per_level, eta, generator)
        x, n = tr.final, n + tr.n_evals
        statuses.append(tr.status)
        if _keep(record, i, levels):
            states.append(x)
            times.append(t)
    return _finish_loop(score, x, n, states, times, statuses, schedule, ts[-1], record, denoise, start,
                        "annealed_langevin")


def sample_pc(score, x_T, schedule: Schedule, steps: int, *, corrector_steps: int = 1, snr: float = 0.16,
              t_eps: float = 1e-3, t_hi: float | None = None, warp="uniform", generator=None,
              record="last", denoise: bool = False) -> SampleResult:
    """Predictor–corrector sampling (Song et al. 2021, Alg. 2 and 5).

    Each of ``steps`` predictor steps is one Euler–Maruyama step of the reverse SDE (a 1-step core
    rollout), followed by ``corrector_steps`` Langevin steps at the new time with step
    ε = 2·α_i·(r·√d/‖s‖)² (r = ``snr``; ‖z‖ replaced by its expectation √d; α_i = 1 − β_i Δt for
    VP, 1 for VE). Score evaluations: steps·(1 + corrector_steps).
    """
    _check(score, x_T, schedule, steps)
    check_int(corrector_steps, "corrector_steps", minimum=0)
    check_positive(snr, "snr")
    w = _warp(schedule, t_eps, t_hi, warp)
    F = reverse_sde_field(score, schedule, w)
    em = EulerMaruyama(F.diffusion, generator)
    start = time.perf_counter()
    x, states, times, n, statuses = x_T, [x_T], [w.t_hi], 0, []
    eta = 1.0 / steps
    for k in range(steps):
        tr = rollout(F, x, eta=eta, steps=1, scheme=em, record="last", t0=k * eta)
        x, n = tr.final, n + tr.n_evals
        statuses.append(tr.status)
        t = w.t((k + 1) * eta)
        if corrector_steps:
            a_i = 1.0 - float(schedule.g2(t)) * abs(w.dt_du((k + 1) * eta)) * eta if schedule.kind == "vp" else 1.0
            tr = _langevin(score, x, t, corrector_steps, 1.0, generator, snr=snr, alpha_coef=max(a_i, 0.0))
            x, n = tr.final, n + tr.n_evals
            statuses.append(tr.status)
        if _keep(record, k, steps):
            states.append(x)
            times.append(t)
    return _finish_loop(score, x, n, states, times, statuses, schedule, w.t_lo, record, denoise, start,
                        "predictor_corrector")
