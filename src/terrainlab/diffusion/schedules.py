"""Noise schedules: variance preserving (VP, DDPM) and variance exploding (VE).

Every schedule describes the forward process as a linear SDE on t ∈ [0, 1] (Song et al. 2021,
"Score-based generative modeling through SDEs", ICLR):

    dx = f(t)·x dt + g(t) dw,      q(x_t | x_0) = N(α(t)·x_0, σ(t)²·I).

VP (DDPM, Ho et al. 2020):  f = −½β(t), g = √β(t), α(t)² = ᾱ(t) = exp(−∫₀ᵗ β), σ² = 1 − ᾱ.
The discrete chain x_i = √(1−β_i)·x_{i−1} + √β_i·ε_i (i = 1..T) has ᾱ_i = Π_{s≤i}(1 − β_s); the
continuous β(t) is its limit with β(t = i/T) = T·β_i (so β_min = T·beta_start = 0.1 and
β_max = T·beta_end = 20 for the standard 1e-4 … 0.02, T = 1000).

VE (SMLD/NCSN, Song & Ermon 2019): f = 0, σ(t) = σ_min·(σ_max/σ_min)^t, g = σ(t)·√(2 log(σ_max/σ_min)),
α = 1. The discrete chain is x_i = x_{i−1} + √(σ_i² − σ_{i−1}²)·z_i.

Times can be Python floats or tensors (per-sample times); the result has the same kind.

Example:
    >>> s = VPSchedule()                       # linear β, T = 1000, β(t) ∈ [0.1, 20]
    >>> round(s.alpha_bar(1.0), 6)
    4.3e-05
    >>> s.alphas_bar[-1].item() < 1e-4         # the discrete DDPM chain agrees
    True
"""

from __future__ import annotations

import math

import torch

from ..core.validate import check_choice, check_int, check_number, check_positive


def _exp(x):
    return torch.exp(x) if torch.is_tensor(x) else math.exp(x)


def _sqrt(x):
    return torch.sqrt(x) if torch.is_tensor(x) else math.sqrt(x)


def _log(x):
    return torch.log(x) if torch.is_tensor(x) else math.log(x)


def _check_pos(name, v):
    return check_positive(v, name)


class Schedule:
    """Base class: a linear forward SDE dx = f(t)·x dt + g(t) dw on t ∈ [0, t_max].

    Subclasses implement ``drift_coef`` f(t), ``g2`` g(t)², ``alpha`` α(t), ``sigma`` σ(t),
    the discrete chain (``T``, ``discrete_step``) and ``prior_sample``.
    """

    t_max: float = 1.0
    T: int = 1000
    kind: str = "vp"

    def drift_coef(self, t):
        raise NotImplementedError

    def g2(self, t):
        raise NotImplementedError

    def g(self, t):
        return _sqrt(self.g2(t))

    def alpha(self, t):
        raise NotImplementedError

    def sigma(self, t):
        raise NotImplementedError

    def sigma_tilde(self, t):
        """σ(t)/α(t): the noise level of x/α (the EDM / k-diffusion "sigma")."""
        return self.sigma(t) / self.alpha(t)

    def log_snr(self, t):
        """λ(t) = log(α²/σ²)."""
        return 2 * _log(self.alpha(t) / self.sigma(t))

    def t_from_sigma_tilde(self, s: float) -> float:
        """Inverse of :meth:`sigma_tilde` (a float), by bisection unless a subclass knows better."""
        lo, hi = 0.0, self.t_max
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            if self.sigma_tilde(mid) < s:
                lo = mid
            else:
                hi = mid
        return 0.5 * (lo + hi)

    def prior_std(self) -> float:
        return float(self.sigma(self.t_max))

    def prior_sample(self, n: int, dim: int, *, dtype=torch.float32, device=None, generator=None):
        """Samples of the reference distribution N(0, σ(t_max)²I) at t_max."""
        check_int(n, "n", minimum=1)
        check_int(dim, "dim", minimum=1)
        z = torch.randn(n, dim, dtype=dtype, generator=generator,
                        device=generator.device if generator is not None else device)
        return (z * self.prior_std()).to(device) if device is not None else z * self.prior_std()

    # ---- discrete chain ------------------------------------------------------------------
    def discrete_step(self, i: int):
        """(a_i, b_i) of the i-th (1-based) discrete step x_i = a_i·x_{i−1} + b_i·ε_i."""
        raise NotImplementedError

    def discrete_marginal(self, i: int):
        """(mean coefficient, std) of q(x_i | x_0) for the discrete chain, i = 0..T."""
        raise NotImplementedError

    def discrete_time(self, i: int) -> float:
        """The continuous time t of the discrete step i: t = i/T·t_max."""
        return i / self.T * self.t_max


class VPSchedule(Schedule):
    """Variance-preserving schedule (DDPM), ``kind="linear"`` or ``"cosine"``.

    linear: β_i = beta_start + (beta_end − beta_start)(i−1)/(T−1) (Ho et al. 2020), continuous
        β(t) = β_min + t(β_max − β_min) with β_min = T·beta_start, β_max = T·beta_end.
    cosine: ᾱ(t) = cos²(π/2·(t+s)/(1+s)) / cos²(π/2·s/(1+s)), s = 0.008 (Nichol & Dhariwal 2021);
        discrete β_i = 1 − ᾱ_i/ᾱ_{i−1} clipped at 0.999; continuous t_max = 1 − 1e-3 keeps β finite.

    Example:
        >>> s = VPSchedule("linear", T=1000, beta_start=1e-4, beta_end=0.02)
        >>> s.beta(0.0), s.beta(1.0)
        (0.1, 20.0)
    """

    kind = "vp"

    def __init__(self, schedule: str = "linear", T: int = 1000, beta_start: float = 1e-4,
                 beta_end: float = 0.02, cosine_s: float = 0.008):
        check_choice(schedule, "schedule", ("linear", "cosine"))
        check_int(T, "T", minimum=2)
        _check_pos("beta_start", beta_start)
        check_number(beta_end, "beta_end", minimum=beta_start, maximum=1, strict_min=True, strict_max=True)
        _check_pos("cosine_s", cosine_s)
        self.schedule, self.T = schedule, T
        self.beta_start, self.beta_end, self.s = float(beta_start), float(beta_end), float(cosine_s)
        self.beta_min, self.beta_max = T * self.beta_start, T * self.beta_end
        self.t_max = 1.0 if schedule == "linear" else 1.0 - 1e-3
        if schedule == "linear":
            self.betas = torch.linspace(beta_start, beta_end, T, dtype=torch.float64)
        else:
            i = torch.arange(T + 1, dtype=torch.float64) / T
            ab = self._cos_ab(i)
            self.betas = (1 - ab[1:] / ab[:-1]).clamp(max=0.999)
        #: ᾱ_i for i = 1..T (index i−1), float64.
        self.alphas_bar = torch.cumprod(1 - self.betas, 0)

    def _cos_ab(self, t):
        c = math.pi / 2
        f = (torch.cos if torch.is_tensor(t) else math.cos)((t + self.s) / (1 + self.s) * c)
        return f**2 / math.cos(self.s / (1 + self.s) * c) ** 2

    def integral_beta(self, t):
        """∫₀ᵗ β(s) ds = −log ᾱ(t)."""
        if self.schedule == "linear":
            return self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t * t
        return -_log(self._cos_ab(t))

    def beta(self, t):
        """Continuous β(t)."""
        if self.schedule == "linear":
            return self.beta_min + t * (self.beta_max - self.beta_min)
        c = math.pi / 2 / (1 + self.s)
        return 2 * c * (torch.tan if torch.is_tensor(t) else math.tan)((t + self.s) * c)

    def alpha_bar(self, t):
        return _exp(-self.integral_beta(t))

    def drift_coef(self, t):
        return -0.5 * self.beta(t)

    def g2(self, t):
        return self.beta(t)

    def alpha(self, t):
        return _exp(-0.5 * self.integral_beta(t))

    def sigma(self, t):
        return _sqrt(1 - _exp(-self.integral_beta(t)))

    def t_from_sigma_tilde(self, s: float) -> float:
        # σ̃² = 1/ᾱ − 1  ⇒  ∫β = log(1 + σ̃²); for the linear schedule solve the quadratic.
        target = math.log1p(s * s)
        if self.schedule == "linear":
            a, b = 0.5 * (self.beta_max - self.beta_min), self.beta_min
            return (-b + math.sqrt(b * b + 4 * a * target)) / (2 * a)
        return super().t_from_sigma_tilde(s)

    def discrete_step(self, i: int):
        b = float(self.betas[i - 1])
        return math.sqrt(1 - b), math.sqrt(b)

    def discrete_marginal(self, i: int):
        if i == 0:
            return 1.0, 0.0
        ab = float(self.alphas_bar[i - 1])
        return math.sqrt(ab), math.sqrt(1 - ab)

    def __repr__(self):
        return (f"VPSchedule({self.schedule!r}, T={self.T}, beta_start={self.beta_start}, "
                f"beta_end={self.beta_end})")


class VESchedule(Schedule):
    """Variance-exploding schedule (NCSN / SMLD), σ(t) = σ_min (σ_max/σ_min)^t.

    q(x_t | x_0) = N(x_0, (σ(t)² − σ_min²)·I) exactly; for t_max = 1 and σ_max ≫ σ_min the usual
    approximation N(x_0, σ(t)²I) differs by σ_min². Here ``sigma`` is the exact marginal std
    √(σ(t)² − σ(0)²) so the oracle and the closed form agree with the SDE.

    Example:
        >>> s = VESchedule(sigma_min=0.01, sigma_max=10.0)
        >>> round(s.sigma(1.0), 4)
        10.0
    """

    kind = "ve"

    def __init__(self, sigma_min: float = 0.01, sigma_max: float = 10.0, T: int = 1000):
        _check_pos("sigma_min", sigma_min)
        _check_pos("sigma_max", sigma_max)
        if not sigma_min < sigma_max:
            raise ValueError(f"sigma_min must be < sigma_max, got {sigma_min}, {sigma_max}")
        check_int(T, "T", minimum=2)
        self.sigma_min, self.sigma_max, self.T = float(sigma_min), float(sigma_max), T
        self._logr = math.log(self.sigma_max / self.sigma_min)
        #: discrete σ_i, i = 0..T (geometric).
        self.sigmas = self.sigma_min * torch.exp(
            torch.linspace(0, 1, T + 1, dtype=torch.float64) * self._logr)

    def _s(self, t):
        return self.sigma_min * _exp(t * self._logr)

    def drift_coef(self, t):
        return 0.0 * t

    def g2(self, t):
        return 2 * self._logr * self._s(t) ** 2

    def alpha(self, t):
        return 1.0 + 0.0 * t

    def sigma(self, t):
        return _sqrt(self._s(t) ** 2 - self.sigma_min**2)

    def t_from_sigma_tilde(self, s: float) -> float:
        return math.log(math.sqrt(s * s + self.sigma_min**2) / self.sigma_min) / self._logr

    def discrete_step(self, i: int):
        return 1.0, math.sqrt(float(self.sigmas[i] ** 2 - self.sigmas[i - 1] ** 2))

    def discrete_marginal(self, i: int):
        return 1.0, math.sqrt(float(self.sigmas[i] ** 2 - self.sigmas[0] ** 2))

    def __repr__(self):
        return f"VESchedule(sigma_min={self.sigma_min}, sigma_max={self.sigma_max}, T={self.T})"
