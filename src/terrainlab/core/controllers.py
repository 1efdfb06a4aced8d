"""Step-size controllers for :func:`terrainlab.core.integrate`: how big the next step is.

A controller is a separate object from the scheme (as in diffrax): the scheme says how a step is
taken, the controller which steps to take.

- :class:`PIController` — adaptive: a step is accepted when the scaled RMS error of an embedded pair

      e = ‖err / (atol + rtol·max(|y₀|, |y₁|))‖_RMS ≤ 1,

  and the next step is h⁺ = h·safety·e_n^{−α/k}·e_{n−1}^{β/k}, k = error order + 1, clipped to
  [factor_min, factor_max]·h (and to ≤ h right after a rejection). Gustafsson, "Control-theoretic
  techniques for stepsize selection in explicit Runge–Kutta methods", ACM TOMS 17, 1991; Hairer &
  Wanner, *Solving ODEs II*, §IV.2. ``beta = 0`` is the classical integral controller.
- :class:`ConstantStepSize` — a fixed grid of equal steps; :func:`~terrainlab.core.integrate` hands
  it to :func:`~terrainlab.core.rollout`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .validate import check_nonnegative, check_number, check_positive


class AbstractController:
    """Base class of the step-size controllers."""


def _head(x: torch.Tensor, n_norm: int | None) -> torch.Tensor:
    """The entries the error norm looks at: all, or the first ``n_norm`` flattened ones."""
    return x.reshape(-1)[:n_norm] if n_norm is not None else x


@dataclass(frozen=True)
class PIController(AbstractController):
    """Adaptive step size from an embedded pair's error estimate (see the module docstring).

    Args:
        rtol, atol: relative and absolute tolerance of the local error (rtol > 0, atol ≥ 0).
        alpha, beta: the integral and proportional gains (divided by k). The defaults 1 and 0.1 are a
            mild PI controller: on the smooth MLP field of ``bench/ode.py`` (no rejections) the
            textbook gains alpha = 0.7, beta = 0.4 cost 1.6× the evaluations at rtol 1e-5 for no
            gain in accuracy; pass them for problems with frequent rejections.
        safety: factor < 1 on every proposal.  factor_min, factor_max: bounds on h⁺/h.

    Example:
        >>> ctrl = PIController(rtol=1e-6, atol=1e-9)
        >>> ctrl.factor(err=0.5, err_prev=1.0, k=5, accepted=True, after_reject=False) > 1
        True
    """

    rtol: float = 1e-5
    atol: float = 1e-6
    alpha: float = 1.0
    beta: float = 0.1
    safety: float = 0.9
    factor_min: float = 0.2
    factor_max: float = 10.0

    def __post_init__(self):
        check_positive(self.rtol, "rtol")
        check_nonnegative(self.atol, "atol")
        check_positive(self.alpha, "alpha")
        check_nonnegative(self.beta, "beta")
        check_number(self.safety, "safety", minimum=0, maximum=1, strict_min=True)
        check_number(self.factor_min, "factor_min", minimum=0, maximum=1, strict_min=True, strict_max=True)
        check_number(self.factor_max, "factor_max", minimum=1, strict_min=True)

    def error_ratio(self, err: torch.Tensor, y0: torch.Tensor, y1: torch.Tensor, n_norm: int | None = None) -> torch.Tensor:
        """e = ‖err / (atol + rtol·max(|y₀|, |y₁|))‖_RMS as a 0-d tensor (the step is accepted at e ≤ 1)."""
        with torch.no_grad():
            err, y0, y1 = _head(err, n_norm), _head(y0.detach(), n_norm), _head(y1.detach(), n_norm)
            scale = torch.maximum(y0.abs(), y1.abs()).mul_(self.rtol).add_(self.atol)
            return (err / scale).pow_(2).mean().sqrt()

    def initial_step(self, field, y0, f0, t0: float, direction: float, order: int, n_norm: int | None = None) -> float:
        """A first step from the local scale of y and F, one extra evaluation (Hairer, Nørsett &
        Wanner, *Solving ODEs I*, §II.4, "starting step size"): h₀ = 0.01·‖y₀‖/‖F(y₀)‖, then
        h₁ = (0.01 / max(‖F‖, ‖F(y₀ + h₀F) − F‖/h₀))^{1/order}, and h = min(100·h₀, h₁)."""
        with torch.no_grad():
            def rms(x):
                return float(x.pow(2).mean().sqrt())

            yy = _head(y0.detach(), n_norm)
            scale = yy.abs() * self.rtol + self.atol
            d0 = rms(yy / scale)
            d1 = rms(_head(f0.detach(), n_norm) / scale)
            h0 = 1e-6 if (d0 < 1e-5 or d1 < 1e-5) else 0.01 * d0 / d1
            f1 = field(y0 + direction * h0 * f0, t0 + direction * h0)
            d2 = rms(_head((f1 - f0).detach(), n_norm) / scale) / h0
            m = max(d1, d2)
            h1 = max(1e-6, h0 * 1e-3) if m <= 1e-15 else (0.01 / m) ** (1.0 / order)
        h = min(100 * h0, h1)
        return h if math.isfinite(h) and h > 0 else 1e-6

    def factor(self, err: float, err_prev: float, k: int, accepted: bool, after_reject: bool) -> float:
        """h⁺/h after a step with error ratio ``err`` (previous accepted one ``err_prev``)."""
        if not math.isfinite(err):
            return self.factor_min
        err = max(err, 1e-10)
        if accepted:
            f = self.safety * err ** (-self.alpha / k) * max(err_prev, 1e-4) ** (self.beta / k)
            hi = 1.0 if after_reject else self.factor_max
            return min(hi, max(self.factor_min, f))
        return min(1.0, max(self.factor_min, self.safety * err ** (-1.0 / k)))


@dataclass(frozen=True)
class ConstantStepSize(AbstractController):
    """Equal steps of at most ``step_size`` from t0 to t1: n = ⌈|t1 − t0|/step_size⌉ steps of (t1 − t0)/n, so
    the last one lands exactly on t1. Every step is accepted; any core scheme can take them.

    Example:
        >>> ConstantStepSize(0.3).n_steps(0.0, 1.0)
        4
    """

    step_size: float

    def __post_init__(self):
        check_positive(self.step_size, "step_size")

    def n_steps(self, t0: float, t1: float) -> float:
        """Steps needed to cover [t0, t1] (a float: ``inf`` when the count overflows)."""
        ratio = abs(t1 - t0) / self.step_size
        if not math.isfinite(ratio) or ratio > 2**62:
            return math.inf
        return max(1, math.ceil(ratio - 1e-9))
