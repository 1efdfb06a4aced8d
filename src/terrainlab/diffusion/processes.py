"""Forward noising, reverse SDE and probability-flow ODE as terrainlab.core fields.

Forward SDE (Song et al. 2021):      dx = f(t)·x dt + g(t) dw
Reverse SDE (Anderson 1982):         dx = [f(t)·x − g(t)²·∇log p_t(x)] dt + g(t) dw̄      (t ↓)
Probability-flow ODE (Song 2021):    dx/dt = f(t)·x − ½ g(t)²·∇log p_t(x)                   (t ↓)

For VP these read dx = [−½β x − β∇log p_t] dt + √β dw̄ and dx/dt = −½β(t)[x + ∇log p_t(x)].

**Time convention.** ``rollout`` always moves forward with a positive step η. The reverse
processes are therefore written in a *sampler time* u ∈ [0, 1] that increases while the
diffusion time t = t(u) decreases from ``t_hi`` to ``t_lo`` (a :class:`TimeWarp`). By the chain
rule the field in u is

    dx/du = v(x, t(u)) · t'(u)          (t'(u) < 0),

and Brownian increments over du have variance |t'(u)| du, so the Euler–Maruyama diffusion is
g(t(u))·√|t'(u)|. A uniform warp t(u) = t_hi + u(t_lo − t_hi) is the usual "integrate backwards
with step (t_hi − t_lo)/N"; the ``"karras"`` and ``"log_snr"`` warps place more steps at low noise
without changing the engine (η stays constant in u).

Example:
    >>> import torch
    >>> from terrainlab.core import rollout, Heun
    >>> from terrainlab.diffusion import VPSchedule, GaussianMixture, TimeWarp, pf_ode_field
    >>> sched = VPSchedule()
    >>> gm = GaussianMixture.isotropic([[-2.0, 0.0], [2.0, 0.0]], std=0.3)
    >>> F = pf_ode_field(gm.score_fn(sched), sched, TimeWarp(sched, t_lo=1e-3))
    >>> x1 = sched.prior_sample(512, 2, generator=torch.Generator().manual_seed(0))
    >>> tr = rollout(F, x1, eta=1 / 50, steps=50, scheme=Heun(), record="last")
    >>> tr.n_evals
    100
"""

from __future__ import annotations

import math

import torch

from ..core import EulerMaruyama, rollout
from ..core.validate import (
    check_callable,
    check_choice,
    check_instance,
    check_int,
    check_number,
    check_positive,
    check_tensor,
)
from .schedules import Schedule

WARPS = ("uniform", "karras", "log_snr")


def _check_schedule(schedule):
    check_instance(schedule, "schedule", Schedule, "a VPSchedule or VESchedule")


def check_time(t, schedule: Schedule, name: str = "t"):
    """A diffusion time in the schedule's range [0, t_max]: a number, or a tensor of them (finite).

    NaN, ±inf and times outside [0, t_max] raise ``ValueError`` naming ``name`` (they would give
    NaN or a silently extrapolated α(t), σ(t))."""
    if torch.is_tensor(t):
        check_tensor(t, name, finite=True)
        if t.numel() and bool(((t < 0) | (t > schedule.t_max)).any()):
            raise ValueError(f"{name} must lie in [0, {schedule.t_max}], got values in "
                             f"[{float(t.min()):.6g}, {float(t.max()):.6g}]")
        return t
    return check_number(t, name, minimum=0, maximum=schedule.t_max)


class TimeWarp:
    """The map u ∈ [0, 1] ↦ t(u) from ``t_hi`` (u = 0) down to ``t_lo`` (u = 1), and t'(u).

    kind:
        ``"uniform"``: t linear in u.
        ``"karras"``: σ̃ = σ/α with σ̃^{1/ρ} linear in u (Karras et al. 2022, EDM, ρ = 7).
        ``"log_snr"``: log(α²/σ²) linear in u (the DPM-Solver time, Lu et al. 2022).

    t'(u) is exact: for the linear SDE, d(σ̃²)/dt = g(t)²/α(t)².
    """

    def __init__(self, schedule: Schedule, t_lo: float = 1e-3, t_hi: float | None = None,
                 kind: str = "uniform", rho: float = 7.0):
        _check_schedule(schedule)
        t_hi = schedule.t_max if t_hi is None else t_hi
        check_number(t_lo, "t_lo", minimum=0, maximum=schedule.t_max, strict_min=True, strict_max=True)
        check_number(t_hi, "t_hi", minimum=t_lo, maximum=schedule.t_max, strict_min=True)
        check_choice(kind, "kind", WARPS)
        check_positive(rho, "rho")
        self.schedule, self.t_lo, self.t_hi, self.kind, self.rho = schedule, float(t_lo), float(t_hi), kind, rho
        self._s_lo, self._s_hi = float(schedule.sigma_tilde(t_lo)), float(schedule.sigma_tilde(t_hi))

    def _dsig_dt(self, t):
        s = self.schedule
        return float(s.g2(t)) / (2 * float(s.alpha(t)) ** 2 * float(s.sigma_tilde(t)))

    def t(self, u: float) -> float:
        u = min(max(float(u), 0.0), 1.0)
        if self.kind == "uniform":
            return self.t_hi + u * (self.t_lo - self.t_hi)
        if self.kind == "karras":
            r = 1.0 / self.rho
            sig = (self._s_hi**r + u * (self._s_lo**r - self._s_hi**r)) ** self.rho
        else:
            lam = (1 - u) * math.log(self._s_hi) + u * math.log(self._s_lo)
            sig = math.exp(lam)
        return min(max(self.schedule.t_from_sigma_tilde(sig), self.t_lo), self.t_hi)

    def dt_du(self, u: float) -> float:
        u = min(max(float(u), 0.0), 1.0)
        if self.kind == "uniform":
            return self.t_lo - self.t_hi
        t = self.t(u)
        if self.kind == "karras":
            r = 1.0 / self.rho
            a, b = self._s_hi**r, self._s_lo**r
            dsig_du = self.rho * (a + u * (b - a)) ** (self.rho - 1) * (b - a)
        else:
            sig = float(self.schedule.sigma_tilde(t))
            dsig_du = sig * (math.log(self._s_lo) - math.log(self._s_hi))
        return dsig_du / self._dsig_dt(t)

    def times(self, n: int) -> list[float]:
        """t at the n + 1 grid points u = k/n."""
        return [self.t(k / n) for k in range(n + 1)]

    def __repr__(self):
        return f"TimeWarp(t_lo={self.t_lo}, t_hi={self.t_hi}, kind={self.kind!r})"


class ReverseField:
    """The reverse-time field in sampler time u (see the module docstring).

    ``probability_flow=False``: drift of the reverse SDE, (f·x − g²·s)·t'(u); its Euler–Maruyama
    diffusion is :meth:`diffusion` = g(t)·√|t'(u)|.
    ``probability_flow=True``: the PF-ODE velocity (f·x − ½g²·s)·t'(u).

    ``score(x, t)`` is any callable returning ∇log p_t(x) (exact oracle or a network via
    :func:`as_score`); t is passed as a Python float.
    """

    def __init__(self, score, schedule: Schedule, warp: TimeWarp, probability_flow: bool):
        check_callable(score, "score")  # score(x, t)
        _check_schedule(schedule)
        check_instance(warp, "warp", TimeWarp, "a TimeWarp")
        self.score, self.schedule, self.warp = score, schedule, warp
        self.c = 0.5 if probability_flow else 1.0

    def __call__(self, x, u):
        t = self.warp.t(u)
        f, g2 = float(self.schedule.drift_coef(t)), float(self.schedule.g2(t))
        return (f * x - (self.c * g2) * self.score(x, t)) * self.warp.dt_du(u)

    def diffusion(self, x, u):
        t = self.warp.t(u)
        return math.sqrt(float(self.schedule.g2(t)) * abs(self.warp.dt_du(u)))


def reverse_sde_field(score, schedule: Schedule, warp: TimeWarp) -> ReverseField:
    """Drift of the reverse SDE in sampler time; pair with ``EulerMaruyama(field.diffusion)``."""
    return ReverseField(score, schedule, warp, probability_flow=False)


def pf_ode_field(score, schedule: Schedule, warp: TimeWarp) -> ReverseField:
    """Velocity of the probability-flow ODE in sampler time u (deterministic)."""
    return ReverseField(score, schedule, warp, probability_flow=True)


class ForwardField:
    """Forward-SDE drift f(t)·x in diffusion time t (rollout's own clock), diffusion g(t)."""

    def __init__(self, schedule: Schedule):
        _check_schedule(schedule)
        self.schedule = schedule

    def __call__(self, x, t):
        return float(self.schedule.drift_coef(t)) * x

    def diffusion(self, x, t):
        return math.sqrt(float(self.schedule.g2(t)))


def forward_sde_field(schedule: Schedule) -> ForwardField:
    """The forward SDE drift as a core field (use with ``EulerMaruyama(field.diffusion)``)."""
    return ForwardField(schedule)


def _check_x(x, name="x0"):
    check_tensor(x, name)


def q_sample(x0, t, schedule: Schedule, noise=None, generator=None):
    """Closed-form draw from q(x_t | x_0) = N(α(t)x_0, σ(t)²I).

    ``t`` is a float or a tensor of per-sample times (shape (n,)). Returns (x_t, noise).

    Example:
        >>> import torch
        >>> from terrainlab.diffusion import VPSchedule, q_sample
        >>> sched, x0 = VPSchedule(), torch.ones(4, 2)
        >>> xt, eps = q_sample(x0, 0.5, sched, generator=torch.Generator().manual_seed(0))
        >>> xt.shape, torch.allclose(xt, sched.alpha(0.5) * x0 + sched.sigma(0.5) * eps)
        (torch.Size([4, 2]), True)
    """
    _check_x(x0)
    _check_schedule(schedule)
    check_time(t, schedule)
    if noise is None:
        gdev = generator.device if generator is not None else x0.device
        noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=gdev).to(x0.device)
    elif noise.shape != x0.shape:
        raise ValueError(f"noise must have x0's shape {tuple(x0.shape)}, got {tuple(noise.shape)}")
    if torch.is_tensor(t):
        t = t.to(device=x0.device, dtype=x0.dtype).reshape(-1, *([1] * (x0.dim() - 1)))
    a, s = schedule.alpha(t), schedule.sigma(t)
    return a * x0 + s * noise, noise


def q_sample_discrete(x0, i: int, schedule: Schedule, generator=None):
    """Closed-form draw from the discrete chain's marginal q(x_i | x_0), i = 0..T."""
    _check_x(x0)
    _check_schedule(schedule)
    check_int(i, "i", minimum=0, maximum=schedule.T)
    a, s = schedule.discrete_marginal(i)
    gdev = generator.device if generator is not None else x0.device
    z = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=gdev).to(x0.device)
    return a * x0 + s * z


class _ChainField:
    # x_i = a_i x_{i-1} + b_i ε as Euler–Maruyama with η = 1: F = (a_i − 1)x, g = b_i.
    def __init__(self, schedule):
        self.schedule = schedule

    def __call__(self, x, k):
        a, _ = self.schedule.discrete_step(int(round(k)) + 1)
        return (a - 1.0) * x

    def diffusion(self, x, k):
        return self.schedule.discrete_step(int(round(k)) + 1)[1]


def forward_chain(x0, schedule: Schedule, steps: int | None = None, *, generator=None, record="all"):
    """The iterated discrete forward chain x_i = a_i·x_{i−1} + b_i·ε_i as a core rollout.

    Written as Euler–Maruyama with η = 1 on F(x, i) = (a_i − 1)·x and diffusion b_i, so the DDPM
    chain is literally S_{i+1} = S_i + η·F(S_i, i) + noise. Returns the core ``Trajectory``
    (``states[k]`` is x at recorded step ``steps[k]``).
    """
    _check_x(x0)
    _check_schedule(schedule)
    steps = schedule.T if steps is None else steps
    check_int(steps, "steps", minimum=0, maximum=schedule.T)
    F = _ChainField(schedule)
    return rollout(F, x0, eta=1.0, steps=steps, scheme=EulerMaruyama(F.diffusion, generator),
                   record=record)


def forward_sde(x0, schedule: Schedule, steps: int, t_end: float | None = None, *, generator=None,
                record="all"):
    """Euler–Maruyama on the forward SDE from t = 0 to ``t_end`` (default t_max) in ``steps``."""
    _check_x(x0)
    _check_schedule(schedule)
    t_end = schedule.t_max if t_end is None else t_end
    check_number(t_end, "t_end", minimum=0, maximum=schedule.t_max, strict_min=True)
    check_int(steps, "steps", minimum=1)
    F = forward_sde_field(schedule)
    return rollout(F, x0, eta=t_end / steps, steps=steps, scheme=EulerMaruyama(F.diffusion, generator),
                   record=record)
