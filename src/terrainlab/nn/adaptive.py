"""Adaptive Runge–Kutta integration on the core's scheme contract, and the ``NeuralODE`` layer.

Embedded explicit pairs give a solution y₁ = y₀ + hΣb_i k_i and an error estimate
err = hΣ(b_i − b̂_i)k_i from the same stages. A step is accepted when

    ‖err / (atol + rtol·max(|y₀|, |y₁|))‖_RMS ≤ 1,

and the next step comes from a PI controller (Gustafsson 1991; Hairer & Wanner, *Solving ODEs II*,
§IV.2): h⁺ = h·s·e_n^{−α/k}·e_{n−1}^{β/k}, k = order of the error estimate + 1, clipped to
[0.2, 10]·h (≤ h right after a rejection). The last step is shortened to land exactly on t1 (no
dense-output interpolation).

Pairs: ``Dopri5`` (Dormand & Prince, J. Comput. Appl. Math. 1980, order 5(4), FSAL) and ``Bosh3``
(Bogacki & Shampine, Appl. Math. Lett. 1989, order 3(2), FSAL). Both are ``AbstractScheme`` objects
(``order``, ``R(z)``, ``step``), so they also run in ``rollout`` and ``ODEStack`` with fixed steps.

``NeuralODE`` backpropagates either directly through the solver's operations or by the adjoint
method: integrate a(t) = ∂L/∂y(t) backwards, a' = −aᵀ∂f/∂y, θ-gradient ∫ −aᵀ∂f/∂θ dt (Chen, Rubanova,
Bettencourt & Duvenaud, "Neural ordinary differential equations", NeurIPS 2018), by default with
the error norm taken over (y, a) only ("seminorm": Kidger, Chen & Lyons, ICML 2021).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn

from ..core.schemes import AbstractScheme, StepResult
from ._field import as_field


class EmbeddedRK(AbstractScheme):
    """An explicit Runge–Kutta pair given by its Butcher tableau (c, A, b, b̂)."""

    c: tuple = ()
    A: tuple = ()
    b: tuple = ()
    b_hat: tuple = ()
    error_order: int = 0
    fsal: bool = True

    @property
    def n_stages(self) -> int:
        return len(self.b)

    def R(self, z):
        """Stability polynomial of the propagating (order ``order``) solution: 1 + z bᵀ(I − zA)^{-1}1."""
        z = np.asarray(z, dtype=complex)
        s = self.n_stages
        A = np.zeros((s, s))
        for i, row in enumerate(self.A):
            A[i + 1, : len(row)] = row
        b = np.asarray(self.b)
        out = np.empty(z.shape, dtype=complex)
        for idx, zi in np.ndenumerate(z):
            out[idx] = 1 + zi * b @ np.linalg.solve(np.eye(s) - zi * A, np.ones(s))
        return out if out.shape else complex(out)

    def step(self, field, state, t, eta):
        y1, _, _, n = self.step_with_error(field, state, t, eta)
        return StepResult(y1, n)

    def step_with_error(self, field, y, t, h, k1=None):
        """One step: returns (y1, err or None-free tensor, last stage (FSAL), evaluations used)."""
        n = 0
        if k1 is None:
            k1 = field(y, t)
            n += 1
        ks = [k1]
        for i, row in enumerate(self.A):
            acc = None
            for a, k in zip(row, ks):
                if a == 0:
                    continue
                acc = k * a if acc is None else acc.add_(k, alpha=a)
            yi = y if acc is None else torch.add(y, acc, alpha=h)
            if self.fsal and i == len(self.A) - 1:
                y1 = yi  # the last stage's input is the solution (FSAL)
            ks.append(field(yi, t + self.c[i + 1] * h))
            n += 1
        if not self.fsal:
            acc = None
            for bi, k in zip(self.b, ks):
                if bi != 0:
                    acc = k * bi if acc is None else acc.add_(k, alpha=bi)
            y1 = torch.add(y, acc, alpha=h)
        with torch.no_grad():
            err = None
            for bi, bh, k in zip(self.b, self.b_hat, ks):
                e = bi - bh
                if e != 0:
                    kd = k.detach()
                    err = kd * e if err is None else err.add_(kd, alpha=e)
            err = err * h
        return y1, err, ks[-1], n


class Dopri5(EmbeddedRK):
    """Dormand–Prince 5(4): 7 stages, first-same-as-last (6 evaluations per accepted step)."""

    order = 5
    error_order = 4
    c = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0)
    A = (
        (1 / 5,),
        (3 / 40, 9 / 40),
        (44 / 45, -56 / 15, 32 / 9),
        (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
        (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
        (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
    )
    b = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0)
    b_hat = (5179 / 57600, 0.0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40)


class Bosh3(EmbeddedRK):
    """Bogacki–Shampine 3(2): 4 stages, FSAL (3 evaluations per accepted step)."""

    order = 3
    error_order = 2
    c = (0.0, 1 / 2, 3 / 4, 1.0)
    A = ((1 / 2,), (0.0, 3 / 4), (2 / 9, 1 / 3, 4 / 9))
    b = (2 / 9, 1 / 3, 4 / 9, 0.0)
    b_hat = (7 / 24, 1 / 4, 1 / 3, 1 / 8)


@dataclass(frozen=True)
class PIController:
    """h⁺ = h·safety·e_n^{−α}·e_{n−1}^{β}, α = alpha/k, β = beta/k (Gustafsson's PI; beta = 0 is
    the classical integral controller).

    Default alpha = 1, beta = 0.1: a mild proportional term. On the smooth MLP field of
    ``bench/ode.py`` (no rejected steps) the textbook PI gains alpha = 0.7, beta = 0.4 cost 1.6×
    the evaluations at rtol 1e-5 for no gain in accuracy; pass them for problems with frequent
    rejections."""

    alpha: float = 1.0
    beta: float = 0.1
    safety: float = 0.9
    factor_min: float = 0.2
    factor_max: float = 10.0

    def factor(self, err: float, err_prev: float, k: int, accepted: bool, after_reject: bool) -> float:
        if not math.isfinite(err):
            return self.factor_min
        err = max(err, 1e-10)
        if accepted:
            f = self.safety * err ** (-self.alpha / k) * max(err_prev, 1e-4) ** (self.beta / k)
            hi = 1.0 if after_reject else self.factor_max
            return min(hi, max(self.factor_min, f))
        return min(1.0, max(self.factor_min, self.safety * err ** (-1.0 / k)))


@dataclass
class ODEBackwardStats:
    """Filled by the adjoint backward pass: evaluations, accepted/rejected steps, status, seconds."""

    n_evals: int = 0
    n_steps: int = 0
    n_rejected: int = 0
    status: str | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class ODESolution:
    """Result of an adaptive (or fixed-grid) solve from t0 to t1.

    y1: the state at t1.  n_evals: batched field evaluations (the NFE).  n_steps: accepted steps;
    n_rejected: rejected steps.  status: ``success`` | ``max_steps`` | ``step_too_small`` |
    ``nonfinite``.  ts: accepted step times.  seconds.  backward: adjoint statistics (filled later).
    """

    y1: torch.Tensor
    n_evals: int
    n_steps: int
    n_rejected: int
    status: str
    ts: tuple
    seconds: float
    backward: ODEBackwardStats = field(default_factory=ODEBackwardStats)


def _rms_ratio(err, y0, y1, rtol, atol, n_norm):
    with torch.no_grad():
        if n_norm is not None:
            err, y0, y1 = err.reshape(-1)[:n_norm], y0.reshape(-1)[:n_norm], y1.reshape(-1)[:n_norm]
        scale = torch.maximum(y0.detach().abs(), y1.detach().abs()).mul_(rtol).add_(atol)
        r = (err / scale).pow_(2).mean().sqrt()
    return float(r)


def _initial_step(f, y0, f0, t0, direction, order, rtol, atol, n_norm):
    with torch.no_grad():
        def rms(x):
            x = x.reshape(-1)[:n_norm] if n_norm is not None else x
            return float(x.pow(2).mean().sqrt())

        yy = y0.reshape(-1)[:n_norm] if n_norm is not None else y0
        scale = yy.abs() * rtol + atol
        d0 = rms(yy / scale)
        ff = f0.reshape(-1)[:n_norm] if n_norm is not None else f0
        d1 = rms(ff / scale)
        h0 = 1e-6 if (d0 < 1e-5 or d1 < 1e-5) else 0.01 * d0 / d1
        y1 = y0 + direction * h0 * f0
        f1 = f(y1, t0 + direction * h0)
        df = (f1 - f0).reshape(-1)[:n_norm] if n_norm is not None else f1 - f0
        d2 = rms(df / scale) / h0
        m = max(d1, d2)
        h1 = max(1e-6, h0 * 1e-3) if m <= 1e-15 else (0.01 / m) ** (1.0 / order)
    return min(100 * h0, h1)


def odeint_adaptive(
    f,
    y0: torch.Tensor,
    t0: float,
    t1: float,
    *,
    solver: EmbeddedRK | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-6,
    max_steps: int = 10_000,
    first_step: float | None = None,
    controller: PIController | None = None,
    n_norm: int | None = None,
) -> ODESolution:
    """Integrate y' = f(y, t) from t0 to t1 (either direction) with an embedded pair.

    The whole state shares one step size (the error norm is an RMS over all entries, or over the
    first ``n_norm`` flattened entries). Never raises on failure: see ``status``.

    Example:
        >>> sol = odeint_adaptive(lambda y, t: -y, torch.ones(3), 0.0, 1.0, rtol=1e-8, atol=1e-10)
        >>> sol.status, abs(float(sol.y1[0]) - math.exp(-1)) < 1e-7
        ('success', True)
    """
    solver = Dopri5() if solver is None else solver
    if not isinstance(solver, EmbeddedRK):
        raise ValueError(f"solver must be an embedded pair such as Dopri5() or Bosh3(), got {solver!r}")
    if not (rtol > 0 and atol >= 0):
        raise ValueError(f"rtol must be > 0 and atol >= 0, got rtol={rtol!r}, atol={atol!r}")
    if not (isinstance(max_steps, int) and max_steps >= 1):
        raise ValueError(f"max_steps must be an int >= 1, got {max_steps!r}")
    ctrl = PIController() if controller is None else controller
    start = time.perf_counter()
    t0, t1 = float(t0), float(t1)
    direction = 1.0 if t1 >= t0 else -1.0
    span = abs(t1 - t0)
    y = y0
    if span == 0:
        return ODESolution(y0, 0, 0, 0, "success", (t0,), 0.0)
    k1 = f(y, t0)
    n_evals = 1
    if first_step is None:
        h = _initial_step(f, y0, k1, t0, direction, solver.order, rtol, atol, n_norm)
        n_evals += 1
    else:
        h = float(first_step)
    k = solver.error_order + 1
    t, done = t0, 0.0
    err_prev, after_reject = 1.0, False
    n_steps = n_rej = 0
    ts = [t0]
    status = "success"
    while done < span:
        if n_steps + n_rej >= max_steps:
            status = "max_steps"
            break
        h = min(h, span - done)
        if h <= 1e-14 * max(1.0, abs(t)):
            status = "step_too_small"
            break
        y1, err, k_last, n = solver.step_with_error(f, y, t, direction * h, k1=k1)
        n_evals += n
        e = _rms_ratio(err, y, y1, rtol, atol, n_norm)
        if e <= 1.0:
            done = done + h if span - done - h > 1e-12 * span else span
            t = t0 + direction * done
            y, k1 = y1, k_last if solver.fsal else None
            if k1 is None:
                k1 = f(y, t)
                n_evals += 1
            n_steps += 1
            ts.append(t)
            h = h * ctrl.factor(e, err_prev, k, True, after_reject)
            err_prev, after_reject = max(e, 1e-4), False
        else:
            n_rej += 1
            h = h * ctrl.factor(e, err_prev, k, False, after_reject)
            after_reject = True
            if not math.isfinite(e) and n_rej > 50 + n_steps:
                status = "nonfinite"
                break
    return ODESolution(y, n_evals, n_steps, n_rej, status, tuple(ts), time.perf_counter() - start)


def odeint_fixed(f, y0, t0, t1, *, scheme: AbstractScheme, step_size: float) -> ODESolution:
    """Fixed grid from t0 to t1 with a core scheme (last step shortened to land on t1)."""
    if not step_size > 0:
        raise ValueError(f"step_size must be > 0, got {step_size!r}")
    start = time.perf_counter()
    span = float(t1) - float(t0)
    n = max(1, int(math.ceil(abs(span) / step_size - 1e-9)))
    h = span / n
    y, n_evals, ts = y0, 0, [float(t0)]
    for i in range(n):
        r = scheme.step(f, y, t0 + i * h, h)
        y, n_evals = r.state, n_evals + r.n_evals
        ts.append(t0 + (i + 1) * h)
    status = "success" if bool(torch.isfinite(y).all()) else "nonfinite"
    return ODESolution(y, n_evals, n, 0, status, tuple(ts), time.perf_counter() - start)


class _Adjoint(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y0, node, holder, *params):
        with torch.no_grad():
            sol = node._solve(y0.detach(), node._f)
        holder.append(sol)
        ctx.node, ctx.sol = node, sol
        ctx.save_for_backward(sol.y1, *params)
        return sol.y1.clone()

    @staticmethod
    def backward(ctx, g):
        start = time.perf_counter()
        node, sol = ctx.node, ctx.sol
        y1, *params = ctx.saved_tensors
        n = y1.numel()
        shapes = [p.shape for p in params]
        sizes = [p.numel() for p in params]
        f = node._f

        def aug(s, t):
            y = s[:n].view_as(y1)
            a = s[n : 2 * n].view_as(y1)
            with torch.enable_grad():
                y_ = y.detach().requires_grad_(True)
                fy = f(y_, t)
                grads = torch.autograd.grad(fy, (y_, *params), -a, allow_unused=True)
            parts = [fy.detach().reshape(-1), grads[0].reshape(-1)]
            for gp, p in zip(grads[1:], params):
                parts.append((torch.zeros_like(p) if gp is None else gp).reshape(-1))
            return torch.cat(parts)

        s1 = torch.cat([y1.reshape(-1), g.reshape(-1)] + [p.new_zeros(p.numel()) for p in params])
        bsol = node._solve_between(aug, s1, node.t1, node.t0, n_norm=2 * n if node.seminorm else None)
        st = sol.backward
        st.n_evals += bsol.n_evals
        st.n_steps += bsol.n_steps
        st.n_rejected += bsol.n_rejected
        st.status = bsol.status
        st.seconds += time.perf_counter() - start
        s0 = bsol.y1
        a0 = s0[n : 2 * n].view_as(y1)
        out, off = [], 2 * n
        for shp, sz in zip(shapes, sizes):
            out.append(s0[off : off + sz].view(shp))
            off += sz
        return (a0, None, None, *out)


class NeuralODE(nn.Module):
    """y(t1) for y' = f_θ(y, t), y(t0) = input — an ODE as a layer, with the NFE reported.

    Args:
        field: nn.Module f(y) or f(y, t) (or a callable; then only y gets gradients by adjoint).
        t0, t1: integration interval.
        solver: ``Dopri5()`` (default) or ``Bosh3()`` (adaptive, rtol/atol), or any core scheme
            such as ``RK4()`` together with ``step_size`` (fixed grid).
        adjoint: gradients by the adjoint ODE (memory independent of the number of steps) instead
            of direct backprop through the solver.  seminorm: adjoint error norm over (y, a) only.

    ``forward(y0)`` returns y(t1); ``solve(y0)`` returns the :class:`ODESolution` (with
    differentiable ``y1``, ``n_evals``, steps, status; ``backward`` is filled by an adjoint pass).

    Example:
        >>> node = NeuralODE(nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2)), rtol=1e-6)
        >>> sol = node.solve(torch.randn(5, 2))
        >>> sol.status, sol.n_evals > 0
        ('success', True)
    """

    def __init__(
        self,
        field,
        t0: float = 0.0,
        t1: float = 1.0,
        *,
        solver: AbstractScheme | None = None,
        rtol: float = 1e-5,
        atol: float = 1e-6,
        step_size: float | None = None,
        adjoint: bool = False,
        seminorm: bool = True,
        max_steps: int = 10_000,
        controller: PIController | None = None,
        time_arg: bool | None = None,
    ):
        super().__init__()
        solver = Dopri5() if solver is None else solver
        if not isinstance(solver, AbstractScheme) or solver.partitioned or solver.stochastic:
            raise ValueError(f"solver must be Dopri5(), Bosh3() or a deterministic core scheme, got {solver!r}")
        if not isinstance(solver, EmbeddedRK) and step_size is None:
            raise ValueError("step_size is required for a fixed-step solver such as RK4()")
        if not (math.isfinite(t0) and math.isfinite(t1)):
            raise ValueError(f"t0 and t1 must be finite, got {t0!r}, {t1!r}")
        if not (rtol > 0 and atol >= 0):
            raise ValueError(f"rtol must be > 0 and atol >= 0, got rtol={rtol!r}, atol={atol!r}")
        self.field = field
        self._f = as_field(field, time_arg)
        self.t0, self.t1 = float(t0), float(t1)
        self.solver, self.rtol, self.atol, self.step_size = solver, rtol, atol, step_size
        self.adjoint, self.seminorm, self.max_steps = bool(adjoint), bool(seminorm), max_steps
        self.controller = controller

    def extra_repr(self) -> str:
        return f"t=({self.t0}, {self.t1}), solver={self.solver!r}, rtol={self.rtol}, atol={self.atol}, adjoint={self.adjoint}"

    def _solve_between(self, f, y0, t0, t1, n_norm=None) -> ODESolution:
        if self.step_size is not None:
            return odeint_fixed(f, y0, t0, t1, scheme=self.solver, step_size=self.step_size)
        return odeint_adaptive(
            f, y0, t0, t1, solver=self.solver, rtol=self.rtol, atol=self.atol,
            max_steps=self.max_steps, controller=self.controller, n_norm=n_norm,
        )

    def _solve(self, y0, f):
        return self._solve_between(f, y0, self.t0, self.t1)

    def solve(self, y0: torch.Tensor) -> ODESolution:
        if not torch.is_tensor(y0) or not torch.is_floating_point(y0):
            raise ValueError("y0 must be a floating-point tensor")
        if self.adjoint and torch.is_grad_enabled():
            params = (
                tuple(p for p in self.field.parameters() if p.requires_grad)
                if isinstance(self.field, nn.Module)
                else ()
            )
            holder: list = []
            y1 = _Adjoint.apply(y0, self, holder, *params)
            s = holder[0]
            return ODESolution(y1, s.n_evals, s.n_steps, s.n_rejected, s.status, s.ts, s.seconds, s.backward)
        return self._solve(y0, self._f)

    def forward(self, y0: torch.Tensor) -> torch.Tensor:
        return self.solve(y0).y1
