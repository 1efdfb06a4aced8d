"""Optimizers as core schemes: each one a :class:`terrainlab.core.AbstractScheme` on a gradient field.

``rollout(gradient_field(L), scheme.init(θ0), eta=η, steps=n, scheme=scheme)`` runs the optimizer
on a terrain; ``scheme.params(state)`` reads θ back. Stateful optimizers carry their buffers in a
tuple state (θ, v, …), so the state is explicit, as in diffrax. Every scheme states

- ``flow``: the continuous-time limit it discretises;
- ``R(z)``: its linear amplification on the test problem θ' = λθ at z = ηλ — the spectral radius
  of the companion (amplification) matrix for two-step methods — so ``stability_limit(λ_max)``
  (the largest stable η on a quadratic of top curvature λ_max) is scanned from R, not typed in, by
  the one implementation every scheme shares (:meth:`terrainlab.core.AbstractScheme.stability_limit`);
- ``modified_loss(L, η)`` where a first correction is known: the loss whose flow the discrete
  iteration follows to one order higher in η (Barrett & Dherin 2021 for GD; Ghosh et al. 2023 for
  heavy ball), with ``time_scale`` c in θ' = −c·∇L̃ and one step lasting η time units.

Example:
    >>> from terrainlab.core import gradient_field, rollout
    >>> F = gradient_field(lambda th: 0.5 * (th ** 2 * torch.tensor([10.0, 1.0])).sum(-1))
    >>> hb = HeavyBallScheme(beta=0.9)
    >>> tr = rollout(F, hb.init(torch.ones(2)), eta=0.05, steps=300, scheme=hb)
    >>> float(hb.params(tr.final).abs().max()) < 1e-3, round(hb.stability_limit(10.0), 3)
    (True, 0.38)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch.func import grad

from ..core.schemes import AbstractScheme, Euler, ImplicitEuler, StepResult
from ..core.validate import (
    check_callable,
    check_choice,
    check_instance,
    check_nonnegative,
    check_number,
)
from ._functional import adam_, heavy_ball_, prox_grad_
from .mirror import BregmanGenerator, SquaredEuclidean


def _check_unit(name: str, x: float, closed_zero: bool = True) -> float:
    """A momentum/averaging coefficient in [0, 1) (in (0, 1) with ``closed_zero=False``)."""
    return float(check_number(x, name, minimum=0, maximum=1, strict_min=not closed_zero, strict_max=True))


def _check_nonneg(name: str, x: float) -> float:
    return float(check_nonnegative(x, name))


def _grad_sq_norm(loss_fn: Callable, theta: torch.Tensor) -> torch.Tensor:
    g = grad(lambda th: loss_fn(th).sum())(theta)
    return (g * g).sum(-1)


class OptimizerScheme(AbstractScheme):
    """Base: an optimizer as a scheme. ``init``/``params`` convert between θ and the scheme state."""

    order = 1
    flow: str = ""
    #: c in the modified flow θ' = −c ∇L̃ (one step = η time units); None when unknown.
    time_scale: float | None = None

    def init(self, theta: torch.Tensor):
        """The scheme state for parameters θ (θ itself for one-step methods)."""
        return theta

    def params(self, state) -> torch.Tensor:
        """θ from a scheme state (or from a stacked trajectory of states)."""
        return state[0] if isinstance(state, tuple) else state

    def modified_loss(self, loss_fn: Callable, eta: float) -> Callable:
        """L̃ whose flow θ' = −time_scale·∇L̃ the iteration follows to O(η²); see subclasses."""
        raise NotImplementedError(f"no modified equation is known for {type(self).__name__}")


class _MatrixScheme(OptimizerScheme):
    """Two-step methods: R(z) = spectral radius of the 2×2 amplification matrix M(z)."""

    partitioned = True
    order = 1

    def amplification_matrix(self, z) -> np.ndarray:
        raise NotImplementedError

    def R(self, z):
        z = np.asarray(z, dtype=complex)
        M = self.amplification_matrix(z)
        rho = np.abs(np.linalg.eigvals(M)).max(-1)
        return rho if rho.shape else float(rho)


def _stack2(a, b, c, d) -> np.ndarray:
    a, b, c, d = np.broadcast_arrays(*(np.asarray(v, dtype=complex) for v in (a, b, c, d)))
    return np.stack([np.stack([a, b], -1), np.stack([c, d], -1)], -2)


class GradientDescentScheme(Euler, OptimizerScheme):
    """θ_{t+1} = θ_t − η∇L(θ_t): explicit Euler on the gradient flow θ' = −∇L (Cauchy 1847).

    R(z) = 1 + z, so on a quadratic GD is stable iff η < 2/λ_max. Modified equation (Barrett &
    Dherin 2021, "Implicit gradient regularization"): GD follows θ' = −∇L̃ with
    L̃ = L + (η/4)‖∇L‖² to O(η²) on finite horizons.
    """

    flow = "θ' = −∇L(θ)  (gradient flow; explicit Euler)"
    time_scale = 1.0

    def modified_loss(self, loss_fn, eta):
        def L_tilde(theta):
            return loss_fn(theta) + (eta / 4) * _grad_sq_norm(loss_fn, theta)

        return L_tilde

    def __repr__(self):
        return "GradientDescentScheme()"


class HeavyBallScheme(_MatrixScheme):
    """Polyak's heavy ball, v ← βv + ∇L(θ); θ ← θ − ηv (state (θ, v), v in gradient units).

    Discretises the damped second-order flow m θ'' + γ θ' = −∇L(θ): with time step h the scheme
        m(θ_{k+1} − 2θ_k + θ_{k−1})/h² + γ(θ_{k+1} − θ_k)/h = −∇L(θ_k)
    is exactly heavy ball with β = m/(m + γh) and η = h²/(m + γh); conversely, for a chosen mass m,
    h = √(ηm/β) and γ = m(1 − β)/(βh) (see :func:`heavy_ball_physics`). First order in h.

    Amplification on θ' = λθ with u = ηv: M(z) = [[1 + z, −β], [−z, β]]; stable on the real axis
    for ηλ_max < 2(1 + β) (scanned, not assumed). Modified loss (Ghosh, Lyu, Zhang & Balcan 2023):
    θ' = −∇L̃/(1 − β) with L̃ = L + η(1 + β)/(4(1 − β)²)‖∇L‖².
    """

    flow = "m θ'' + γ θ' = −∇L(θ)  (damped heavy-ball ODE)"

    def __init__(self, beta: float = 0.9):
        self.beta = _check_unit("beta", beta)
        self.time_scale = 1.0 / (1.0 - self.beta)

    def init(self, theta):
        return (theta, torch.zeros_like(theta))

    def amplification_matrix(self, z):
        return _stack2(1 + z, -self.beta * np.ones_like(z), -z, self.beta * np.ones_like(z))

    def step(self, field, state, t, eta):
        theta, v = (x.clone() for x in state)
        g = -field(state[0], t)
        heavy_ball_([theta], [g], [v], lr=eta, beta=self.beta)
        return StepResult((theta, v), 1)

    def modified_loss(self, loss_fn, eta):
        b = self.beta
        c = eta * (1 + b) / (4 * (1 - b) ** 2)

        def L_tilde(theta):
            return loss_fn(theta) + c * _grad_sq_norm(loss_fn, theta)

        return L_tilde

    def __repr__(self):
        return f"HeavyBallScheme(beta={self.beta})"


def nesterov_convex_beta(t: int) -> float:
    """The momentum schedule β_t = (t − 1)/(t + 2), t = 1, 2, … (Nesterov 1983; Beck & Teboulle 2009);
    with η ≤ 1/L it gives L(θ_t) − L* = O(1/t²) on convex L."""
    return (t - 1) / (t + 2)


class NesterovScheme(_MatrixScheme):
    """Nesterov momentum in Sutskever's form, on state (θ, v, t):

        v' = β_t v − η∇L(θ + β_t v),   θ' = θ + v'    (Sutskever, Martens, Dahl & Hinton 2013)

    with constant β_t = β, or ``schedule="convex"``: β_t = (t − 1)/(t + 2). Its limit as η → 0 with
    the schedule is Su, Boyd & Candès's (2016) θ'' + (3/s) θ' + ∇L = 0 (time s = t√η).
    Amplification with x' = λx: M(z) = [[1 + z, β(1 + z)], [z, β(1 + z)]] on (θ, v); for the
    schedule R uses β = 1, the supremum of β_t (worst case), giving ηλ_max < 4/3.
    """

    def __init__(self, beta: float = 0.9, schedule: str | None = None):
        self.schedule = check_choice(schedule, "schedule", (None, "convex"))
        self.beta = _check_unit("beta", beta)
        self.flow = (
            "θ'' + (3/s) θ' + ∇L(θ) = 0  (Su–Boyd–Candès ODE, s = t√η)"
            if schedule
            else "m θ'' + γ θ' = −∇L(θ)  (damped ODE, as heavy ball, gradient at the look-ahead)"
        )

    def beta_at(self, t: int) -> float:
        """β used at step number t ≥ 1."""
        return nesterov_convex_beta(t) if self.schedule else self.beta

    def init(self, theta):
        return (theta, torch.zeros_like(theta), torch.zeros((), dtype=theta.dtype, device=theta.device))

    def amplification_matrix(self, z):
        b = 1.0 if self.schedule else self.beta
        return _stack2(1 + z, b * (1 + z), z, b * (1 + z))

    def step(self, field, state, t, eta):
        theta, v, k = state
        b = self.beta_at(int(k) + 1)
        v1 = b * v + eta * field(theta + b * v, t)
        return StepResult((theta + v1, v1, k + 1), 1)

    def __repr__(self):
        return f"NesterovScheme(beta={self.beta}, schedule={self.schedule!r})"


class AdamScheme(_MatrixScheme):
    """Adam / AdamW on state (θ, m, v, t): a preconditioned momentum flow, preconditioner frozen per step.

        θ' = −P_t⁻¹ m̂,   P_t = diag(√v̂_t) + ε,   m̂ ≈ EMA of ∇L,  v̂ ≈ EMA of (∇L)²

    (Kingma & Ba 2015; decoupled decay: Loshchilov & Hutter 2019). As η → 0 with β's fixed this is
    sign-like descent θ' = −∇L/(|∇L| + ε) (Ma, Wu & E 2022). R(z) is for the frozen preconditioner:
    z = ηλ/(√v̂ + ε) is the *preconditioned* curvature, M(z) = [[1 + (1−β1)z, −β1], [−(1−β1)z, β1]],
    stable for ηλ_max(P⁻¹H) < 2(1 + β1)/(1 − β1) (= 38 at β1 = 0.9; Cohen et al. 2022).
    """

    flow = "θ' = −P⁻¹ m,  m' ∝ ∇L − m,  P = diag(√v̂) + ε  (preconditioned momentum flow)"

    def __init__(self, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, decoupled=False):
        self.beta1 = _check_unit("beta1", beta1)
        self.beta2 = _check_unit("beta2", beta2)
        self.eps = _check_nonneg("eps", eps)
        self.weight_decay = _check_nonneg("weight_decay", weight_decay)
        self.decoupled = bool(decoupled)

    def init(self, theta):
        z = torch.zeros_like(theta)
        return (theta, z, z.clone(), torch.zeros((), dtype=theta.dtype, device=theta.device))

    def amplification_matrix(self, z):
        b = self.beta1
        one = np.ones_like(z)
        return _stack2(1 + (1 - b) * z, -b * one, -(1 - b) * z, b * one)

    def step(self, field, state, t, eta):
        theta, m, v, k = state
        theta1, m1, v1 = theta.clone(), m.clone(), v.clone()
        g = -field(theta, t)
        adam_([theta1], [g], [m1], [v1], steps=[int(k) + 1], lr=eta, beta1=self.beta1, beta2=self.beta2,
              eps=self.eps, weight_decay=self.weight_decay, decoupled=self.decoupled)
        return StepResult((theta1, m1, v1, k + 1), 1)

    def __repr__(self):
        return f"AdamScheme(beta1={self.beta1}, beta2={self.beta2}, eps={self.eps}, weight_decay={self.weight_decay}, decoupled={self.decoupled})"


class ProximalGradientScheme(OptimizerScheme):
    """Forward–backward splitting for L + λ1‖θ‖₁ + (λ2/2)‖θ‖² (ISTA / elastic net):

        θ' = prox_{η r}(θ − η∇L(θ)) = S_{ηλ1}(θ − η∇L(θ)) / (1 + ηλ2)

    explicit Euler on the smooth part, implicit (backward) Euler on the regulariser: a discretisation
    of the differential inclusion θ' ∈ −∇L(θ) − ∂r(θ) (Lions & Mercier 1979; Daubechies et al.
    2004; Beck & Teboulle 2009). R(z) = 1 + z for the smooth part: stable for η < 2/λ_max(∇²L).
    """

    flow = "θ' ∈ −∇L(θ) − λ1 ∂‖θ‖₁ − λ2 θ  (subdifferential inclusion; forward–backward)"

    def __init__(self, l1: float = 0.0, l2: float = 0.0):
        self.l1, self.l2 = _check_nonneg("l1", l1), _check_nonneg("l2", l2)

    def R(self, z):
        return 1 + z

    def step(self, field, state, t, eta):
        theta = state.clone()
        prox_grad_([theta], [-field(state, t)], lr=eta, l1=self.l1, l2=self.l2)
        return StepResult(theta, 1)

    def __repr__(self):
        return f"ProximalGradientScheme(l1={self.l1}, l2={self.l2})"


class ProximalPointScheme(ImplicitEuler, OptimizerScheme):
    """θ' = argmin_x L(x) + ‖x − θ‖²/(2η)  ⇔  θ' = θ − η∇L(θ'): implicit Euler on θ' = −∇L
    (Rockafellar 1976). R(z) = 1/(1 − z): stable for every η on a convex quadratic."""

    flow = "θ' = −∇L(θ)  (gradient flow; implicit Euler)"

    def __repr__(self):
        return f"ProximalPointScheme(solver={self.solver!r}, tol={self.tol}, max_iter={self.max_iter})"


class MirrorDescentScheme(OptimizerScheme):
    """∇ψ(θ') = ∇ψ(θ) − η∇L(θ): explicit Euler in the dual coordinates y = ∇ψ(θ) of the mirror flow
    d/dt ∇ψ(θ) = −∇L(θ) (Nemirovski & Yudin 1983; Beck & Teboulle 2003).

    R(z) = 1 + z with z = ηλ, λ an eigenvalue of the mirror-preconditioned Hessian (∇²ψ)⁻¹∇²L.
    """

    flow = "d/dt ∇ψ(θ) = −∇L(θ)  ⇔  θ' = −(∇²ψ(θ))⁻¹ ∇L(θ)  (Hessian-metric gradient flow)"

    def __init__(self, psi: BregmanGenerator | None = None):
        psi = SquaredEuclidean() if psi is None else psi
        self.psi = check_instance(psi, "psi", BregmanGenerator, "a BregmanGenerator such as NegativeEntropy()")

    def R(self, z):
        return 1 + z

    def step(self, field, state, t, eta):
        return StepResult(self.psi.grad_conj(self.psi.grad(state) + eta * field(state, t)), 1)

    def __repr__(self):
        return f"MirrorDescentScheme(psi={self.psi!r})"


class NaturalGradientScheme(OptimizerScheme):
    """θ' = θ − η (G(θ) + δI)⁻¹ ∇L(θ): explicit Euler on the natural-gradient flow
    θ' = −G(θ)⁻¹∇L(θ) (Amari 1998), damped by δ (Levenberg–Marquardt / Tikhonov).

    ``metric(θ)`` returns G for a batch of row states, shape (..., d, d). R(z) = 1 + z with z = ηλ,
    λ an eigenvalue of (G + δI)⁻¹∇²L — at a minimum with G = ∇²L that is ≤ 1, so η < 2 is stable.
    """

    flow = "θ' = −G(θ)⁻¹ ∇L(θ)  (natural-gradient flow)"

    def __init__(self, metric: Callable[[torch.Tensor], torch.Tensor], damping: float = 1e-3):
        self.metric = check_callable(metric, "metric")
        self.damping = _check_nonneg("damping", damping)

    def R(self, z):
        return 1 + z

    def step(self, field, state, t, eta):
        G = self.metric(state)
        d = state.shape[-1]
        A = G + self.damping * torch.eye(d, dtype=state.dtype, device=state.device)
        F = field(state, t)
        return StepResult(state + eta * torch.linalg.solve(A, F.unsqueeze(-1)).squeeze(-1), 1)

    def __repr__(self):
        return f"NaturalGradientScheme(damping={self.damping})"
