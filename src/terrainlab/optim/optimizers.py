"""Optimizers written as integrators, as ``torch.optim.Optimizer`` subclasses.

Each drops into an ordinary training loop (``loss.backward(); opt.step()``) and shares its update
rule (``_functional``, ``torch._foreach_*`` kernels) with the scheme ``opt.as_scheme()`` that
:func:`terrainlab.core.rollout` drives on a gradient field. Each one says which flow it
discretises (``opt.flow``), where it stops being stable on a quadratic
(``opt.stability_limit(λ_max)``, scanned from the scheme's amplification R), and, where known, its
modified loss (``opt.modified_loss(L)``).

Example:
    >>> model = torch.nn.Linear(4, 1)
    >>> opt = HeavyBall(model.parameters(), lr=0.01, beta=0.9)
    >>> round(opt.stability_limit(100.0), 6)   # largest stable lr when λ_max(H) = 100
    0.038
    >>> opt.physics(mass=1.0)                # the (mass, friction, h) of the damped ODE
    HeavyBallPhysics(mass=1.0, friction=1.054..., h=0.105...)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..core.validate import (
    check_choice,
    check_instance,
    check_int,
    check_nonnegative,
    check_positive,
)
from ._functional import adam_, gd_, heavy_ball_, nesterov_, prox_grad_
from .mirror import BregmanGenerator, SquaredEuclidean
from .schemes import (
    AdamScheme,
    GradientDescentScheme,
    HeavyBallScheme,
    MirrorDescentScheme,
    NesterovScheme,
    OptimizerScheme,
    ProximalGradientScheme,
    ProximalPointScheme,
    _check_nonneg,
    _check_unit,
    nesterov_convex_beta,
)


def _check_lr(lr, name: str = "lr") -> float:
    return float(check_positive(lr, name))


class IntegratorOptimizer(torch.optim.Optimizer):
    """Base class: a torch optimizer that is also a scheme. Subclasses implement ``_group_step``
    and ``as_scheme``."""

    flow: str = ""

    def as_scheme(self, group: int = 0) -> OptimizerScheme:
        """The same update as a core scheme, with this param group's hyperparameters. (GD, heavy ball
        and Nesterov leave coupled ``weight_decay`` to the field: add λθ/2·‖θ‖² to the loss.)"""
        raise NotImplementedError

    def stability_limit(self, lam_max: float, group: int = 0) -> float:
        """Largest stable learning rate on a quadratic whose top curvature is ``lam_max``,
        scanned from the scheme's amplification R(z) along the negative real axis."""
        return self.as_scheme(group).stability_limit(float(lam_max))

    def modified_loss(self, loss_fn, group: int = 0):
        """L̃ whose flow the iteration follows to O(η²) (see the scheme); ``NotImplementedError``
        when no modified equation is known."""
        return self.as_scheme(group).modified_loss(loss_fn, self.param_groups[group]["lr"])

    def _active(self, group):
        params, grads = [], []
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise ValueError(f"{type(self).__name__} does not support sparse gradients")
            params.append(p)
            grads.append(p.grad)
        return params, grads

    def _buffers(self, params, name):
        out = []
        for p in params:
            st = self.state[p]
            if name not in st:
                st[name] = torch.zeros_like(p, memory_format=torch.preserve_format)
            out.append(st[name])
        return out

    def _steps(self, params):
        out = []
        for p in params:
            st = self.state[p]
            if "step" not in st:
                st["step"] = torch.tensor(0.0)
            out.append(st["step"])
        return out

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params, grads = self._active(group)
            if params:
                self._group_step(group, params, grads)
        return loss

    def _group_step(self, group, params, grads):
        raise NotImplementedError


class GD(IntegratorOptimizer):
    """Gradient descent θ ← θ − η(∇L + λθ): explicit Euler on θ' = −∇L (twin: ``torch.optim.SGD``).

    Stable on a quadratic iff η < 2/λ_max; follows L̃ = L + (η/4)‖∇L‖² to O(η²) (Barrett & Dherin
    2021). See :class:`~terrainlab.optim.schemes.GradientDescentScheme`.
    """

    flow = GradientDescentScheme.flow

    def __init__(self, params, lr: float, weight_decay: float = 0.0):
        super().__init__(params, dict(lr=_check_lr(lr), weight_decay=_check_nonneg("weight_decay", weight_decay)))

    def _group_step(self, group, params, grads):
        gd_(params, grads, lr=group["lr"], weight_decay=group["weight_decay"])

    def as_scheme(self, group=0):
        return GradientDescentScheme()


@dataclass(frozen=True)
class HeavyBallPhysics:
    """The damped ODE m θ'' + γ θ' = −∇L that heavy ball discretises with time step h."""

    mass: float
    friction: float
    h: float


def heavy_ball_physics(lr: float, beta: float, mass: float = 1.0) -> HeavyBallPhysics:
    """(η, β) → (m, γ, h): h = √(ηm/β), γ = m(1 − β)/(βh). Inverse of :func:`heavy_ball_from_physics`."""
    lr, beta = _check_lr(lr), _check_unit("beta", beta, closed_zero=False)
    check_positive(mass, "mass")
    h = math.sqrt(lr * mass / beta)
    return HeavyBallPhysics(mass=float(mass), friction=mass * (1 - beta) / (beta * h), h=h)


def heavy_ball_from_physics(mass: float, friction: float, h: float) -> tuple[float, float]:
    """(m, γ, h) → (η, β) = (h²/(m + γh), m/(m + γh)).

    From m(θ_{k+1} − 2θ_k + θ_{k−1})/h² + γ(θ_{k+1} − θ_k)/h = −∇L(θ_k) solved for θ_{k+1}.
    """
    check_positive(mass, "mass")
    check_nonnegative(friction, "friction")
    check_positive(h, "h")
    d = mass + friction * h
    return h * h / d, mass / d


class HeavyBall(IntegratorOptimizer):
    """Polyak heavy ball v ← βv + g, θ ← θ − ηv (twin: ``torch.optim.SGD(momentum=β)``).

    Discretises m θ'' + γ θ' = −∇L with β = m/(m + γh), η = h²/(m + γh) (``physics()``). Stable on
    a quadratic for ηλ_max < 2(1 + β). See :class:`~terrainlab.optim.schemes.HeavyBallScheme`.
    """

    flow = HeavyBallScheme.flow

    def __init__(self, params, lr: float, beta: float = 0.9, weight_decay: float = 0.0):
        super().__init__(params, dict(lr=_check_lr(lr), beta=_check_unit("beta", beta),
                                      weight_decay=_check_nonneg("weight_decay", weight_decay)))

    def _group_step(self, group, params, grads):
        heavy_ball_(params, grads, self._buffers(params, "momentum_buffer"), lr=group["lr"],
                    beta=group["beta"], weight_decay=group["weight_decay"])

    def as_scheme(self, group=0):
        return HeavyBallScheme(beta=self.param_groups[group]["beta"])

    def physics(self, group: int = 0, mass: float = 1.0) -> HeavyBallPhysics:
        g = self.param_groups[group]
        return heavy_ball_physics(g["lr"], g["beta"], mass)


class Nesterov(IntegratorOptimizer):
    """Nesterov momentum, Sutskever form, with constant β or ``schedule="convex"`` (β_t = (t−1)/(t+2)).

    The parameters held are the look-ahead point φ_k = θ_k + β_{k+1}v_k, where the next gradient is
    taken; the state holds Sutskever's velocity v (parameter units). With constant β and lr this is exactly
    ``torch.optim.SGD(momentum=β, nesterov=True)``. See :class:`~terrainlab.optim.schemes.NesterovScheme`.
    """

    def __init__(self, params, lr: float, beta: float = 0.9, schedule: str | None = None,
                 weight_decay: float = 0.0):
        check_choice(schedule, "schedule", (None, "convex"))
        super().__init__(params, dict(lr=_check_lr(lr), beta=_check_unit("beta", beta), schedule=schedule,
                                      weight_decay=_check_nonneg("weight_decay", weight_decay)))

    @property
    def flow(self):  # type: ignore[override]
        return self.as_scheme().flow

    def _group_step(self, group, params, grads):
        vels = self._buffers(params, "velocity")
        if group["schedule"]:
            steps = self._steps(params)
            torch._foreach_add_(steps, 1.0)
            # groups step together; a param without a gradient keeps its own count
            for p, g, v, k in zip(params, grads, vels, steps):
                t = int(k.item())
                nesterov_([p], [g], [v], lr=group["lr"], beta=nesterov_convex_beta(t),
                          beta_next=nesterov_convex_beta(t + 1), weight_decay=group["weight_decay"])
        else:
            nesterov_(params, grads, vels, lr=group["lr"], beta=group["beta"], weight_decay=group["weight_decay"])

    def as_scheme(self, group=0):
        g = self.param_groups[group]
        return NesterovScheme(beta=g["beta"], schedule=g["schedule"])


class Adam(IntegratorOptimizer):
    """Adam: θ ← θ − η m̂/(√v̂ + ε), coupled L2 ``weight_decay`` (twin: ``torch.optim.Adam``).

    A preconditioned momentum flow with the preconditioner P = diag(√v̂) + ε frozen per step; stable
    on a quadratic for ηλ_max(P⁻¹H) < 2(1 + β1)/(1 − β1) — pass the *preconditioned* sharpness to
    ``stability_limit``. See :class:`~terrainlab.optim.schemes.AdamScheme`.
    """

    flow = AdamScheme.flow
    _decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        b1, b2 = _check_unit("betas[0]", betas[0]), _check_unit("betas[1]", betas[1])
        super().__init__(params, dict(lr=_check_lr(lr), betas=(b1, b2), eps=_check_nonneg("eps", eps),
                                      weight_decay=_check_nonneg("weight_decay", weight_decay)))

    def _group_step(self, group, params, grads):
        ms, vs, steps = self._buffers(params, "exp_avg"), self._buffers(params, "exp_avg_sq"), self._steps(params)
        torch._foreach_add_(steps, 1.0)
        b1, b2 = group["betas"]
        adam_(params, grads, ms, vs, steps=[s.item() for s in steps], lr=group["lr"], beta1=b1, beta2=b2,
              eps=group["eps"], weight_decay=group["weight_decay"], decoupled=self._decoupled)

    def as_scheme(self, group=0):
        g = self.param_groups[group]
        return AdamScheme(g["betas"][0], g["betas"][1], g["eps"], g["weight_decay"], self._decoupled)


class AdamW(Adam):
    """AdamW: θ ← (1 − ηλ)θ − η m̂/(√v̂ + ε), decoupled decay (Loshchilov & Hutter 2019;
    twin: ``torch.optim.AdamW``). Its flow is Adam's plus the linear pull −λθ."""

    _decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


class ProximalGradient(IntegratorOptimizer):
    """ISTA / elastic net: θ ← S_{ηλ1}(θ − η∇L)/(1 + ηλ2), the proximal (backward) step on the
    regulariser after the explicit step on L. Produces exact zeros, which subgradient descent on
    λ1‖θ‖₁ does not. See :class:`~terrainlab.optim.schemes.ProximalGradientScheme`."""

    flow = ProximalGradientScheme.flow

    def __init__(self, params, lr: float, l1: float = 0.0, l2: float = 0.0):
        super().__init__(params, dict(lr=_check_lr(lr), l1=_check_nonneg("l1", l1), l2=_check_nonneg("l2", l2)))

    def _group_step(self, group, params, grads):
        prox_grad_(params, grads, lr=group["lr"], l1=group["l1"], l2=group["l2"])

    def as_scheme(self, group=0):
        g = self.param_groups[group]
        return ProximalGradientScheme(l1=g["l1"], l2=g["l2"])


class ProximalPoint(IntegratorOptimizer):
    """Proximal point θ' = argmin_x L(x) + ‖x − θ‖²/(2η): implicit Euler on θ' = −∇L (Rockafellar 1976).

    In a training loop the implicit equation x = θ − η∇L(x) is solved inexactly by ``inner_steps``
    gradient steps (step ``inner_lr``) on the proximal objective, re-evaluating ``closure`` (which
    must zero the grads, compute the loss and call backward). ``opt.inner_residual`` holds the
    last ‖∇L(x) + (x − θ)/η‖∞ so the user can see how exact the step was. Unconditionally stable on
    convex quadratics (R(z) = 1/(1 − z)); see :class:`~terrainlab.optim.schemes.ProximalPointScheme`.
    """

    flow = ProximalPointScheme.flow

    def __init__(self, params, lr: float, inner_lr: float = 0.01, inner_steps: int = 20, tol: float = 1e-10):
        check_int(inner_steps, "inner_steps", minimum=1)
        super().__init__(params, dict(lr=_check_lr(lr), inner_lr=_check_lr(inner_lr, "inner_lr"), inner_steps=inner_steps,
                                      tol=_check_nonneg("tol", tol)))
        self.inner_residual = float("nan")

    @torch.no_grad()
    def step(self, closure=None):
        if closure is None:
            raise ValueError("closure is required: ProximalPoint re-evaluates the loss in its inner solve")
        loss = None
        anchors = [[p.detach().clone() for p in g["params"]] for g in self.param_groups]
        for _ in range(max(g["inner_steps"] for g in self.param_groups)):
            with torch.enable_grad():
                loss = closure()
            res = 0.0
            for group, anc in zip(self.param_groups, anchors):
                for p, a in zip(group["params"], anc):
                    if p.grad is None:
                        continue
                    r = p.grad + (p - a) / group["lr"]
                    res = max(res, float(r.abs().max()))
                    p.add_(r, alpha=-group["inner_lr"])
            self.inner_residual = res
            if res <= min(g["tol"] for g in self.param_groups):
                break
        return loss

    def as_scheme(self, group=0):
        return ProximalPointScheme()


class MirrorDescent(IntegratorOptimizer):
    """Mirror descent ∇ψ(θ') = ∇ψ(θ) − η∇L(θ) with Bregman generator ``psi`` (applied per tensor).

    ``SquaredEuclidean()`` is gradient descent; ``NegativeEntropy()`` is exponentiated gradient on
    the simplex (last dim; ``simplex=False``: the positive orthant). See
    :class:`~terrainlab.optim.schemes.MirrorDescentScheme`.
    """

    flow = MirrorDescentScheme.flow

    def __init__(self, params, lr: float, psi: BregmanGenerator | None = None):
        psi = SquaredEuclidean() if psi is None else psi
        check_instance(psi, "psi", BregmanGenerator, "a BregmanGenerator such as NegativeEntropy()")
        super().__init__(params, dict(lr=_check_lr(lr)))
        self.psi = psi
        for g in self.param_groups:
            for p in g["params"]:
                psi.validate(p.detach(), "params")

    def _group_step(self, group, params, grads):
        for p, g in zip(params, grads):
            p.copy_(self.psi.grad_conj(self.psi.grad(p) - group["lr"] * g))

    def as_scheme(self, group=0):
        return MirrorDescentScheme(self.psi)


class NaturalGradient(IntegratorOptimizer):
    """Damped natural gradient θ ← θ − η (F + δI)⁻¹∇L (Amari 1998), F from ``fisher``.

    ``fisher`` is any object with ``precondition(params, grads, damping) -> list[Tensor]``:
    :class:`~terrainlab.optim.natural.DenseFisher` (small models), ``DiagonalFisher``, or your own
    structured approximation (K-FAC, …). All param groups share one Fisher over their parameters.
    """

    flow = "θ' = −F(θ)⁻¹ ∇L(θ)  (natural-gradient flow)"

    def __init__(self, params, lr: float, fisher, damping: float = 1e-3):
        if not hasattr(fisher, "precondition"):
            raise ValueError("fisher must have precondition(params, grads, damping), e.g. DenseFisher(fn)")
        super().__init__(params, dict(lr=_check_lr(lr), damping=_check_nonneg("damping", damping)))
        self.fisher = fisher

    def _group_step(self, group, params, grads):
        dirs = self.fisher.precondition(params, grads, group["damping"])
        torch._foreach_add_(params, dirs, alpha=-group["lr"])

    def as_scheme(self, group=0):
        from .schemes import NaturalGradientScheme

        raise NotImplementedError(
            "a NaturalGradient optimizer's Fisher is built from model data; use "
            f"{NaturalGradientScheme.__name__}(metric, damping) on a terrain"
        )

    def stability_limit(self, lam_max: float, group: int = 0) -> float:
        """η limit for λ_max of (F + δI)⁻¹H: explicit Euler in the natural metric, 2/λ_max."""
        from .schemes import NaturalGradientScheme

        return NaturalGradientScheme(lambda th: th, self.param_groups[group]["damping"]).stability_limit(lam_max)
