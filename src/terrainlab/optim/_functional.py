"""The update rules, written once on lists of tensors with ``torch._foreach_*`` kernels.

Each function mutates its tensor lists in place and is shared by the two faces of every optimizer:
the ``torch.optim.Optimizer`` (lists are a param group's parameters and state buffers) and the
core scheme (lists are one-element clones of a rollout state). Code follows the equations line by
line; ``g`` is the gradient ∇L (so the field is F = −g).
"""

from __future__ import annotations

import math

import torch

Tensors = list[torch.Tensor]


def _with_l2(params: Tensors, grads: Tensors, weight_decay: float) -> Tensors:
    """g ← g + λθ (coupled L2 penalty (λ/2)‖θ‖², as torch.optim's ``weight_decay``)."""
    if weight_decay == 0:
        return grads
    return torch._foreach_add(grads, params, alpha=weight_decay)


def gd_(params: Tensors, grads: Tensors, *, lr: float, weight_decay: float = 0.0) -> None:
    """θ ← θ − η g."""
    grads = _with_l2(params, grads, weight_decay)
    torch._foreach_add_(params, grads, alpha=-lr)


def heavy_ball_(
    params: Tensors, grads: Tensors, bufs: Tensors, *, lr: float, beta: float, weight_decay: float = 0.0
) -> None:
    """v ← βv + g;  θ ← θ − η v   (Polyak 1964; PyTorch's SGD momentum with dampening 0)."""
    grads = _with_l2(params, grads, weight_decay)
    torch._foreach_mul_(bufs, beta)
    torch._foreach_add_(bufs, grads)
    torch._foreach_add_(params, bufs, alpha=-lr)


def nesterov_(
    params: Tensors,
    grads: Tensors,
    vels: Tensors,
    *,
    lr: float,
    beta: float,
    beta_next: float | None = None,
    weight_decay: float = 0.0,
) -> None:
    """Sutskever's Nesterov step held at the look-ahead point.

    Sutskever et al. (2013):  v_{k+1} = β_{k+1} v_k − η∇L(θ_k + β_{k+1} v_k),  θ_{k+1} = θ_k + v_{k+1}.
    Storing φ_k = θ_k + β_{k+1} v_k (Bengio et al. 2013), the gradient is taken at the stored point
    and the same iteration reads
        v ← β_{k+1} v − η g(φ);   φ ← φ + β_{k+2} v − η g(φ),
    which a training loop (gradient at the current parameters) can run. ``beta_next`` = β_{k+2}
    (defaults to ``beta``: constant momentum, where this is PyTorch's ``nesterov=True``).
    """
    beta_next = beta if beta_next is None else beta_next
    grads = _with_l2(params, grads, weight_decay)
    torch._foreach_mul_(vels, beta)
    torch._foreach_add_(vels, grads, alpha=-lr)
    torch._foreach_add_(params, vels, alpha=beta_next)
    torch._foreach_add_(params, grads, alpha=-lr)


def adam_(
    params: Tensors,
    grads: Tensors,
    ms: Tensors,
    vs: Tensors,
    *,
    steps: list[float],
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float = 0.0,
    decoupled: bool = False,
) -> None:
    """Adam (Kingma & Ba 2015) and AdamW (Loshchilov & Hutter 2019); ``steps[i]`` ≥ 1 is tensor i's
    step number (after this step).

        m ← β1 m + (1 − β1) g,   v ← β2 v + (1 − β2) g²,
        m̂ = m/(1 − β1^t),  v̂ = v/(1 − β2^t),   θ ← θ − η m̂/(√v̂ + ε)
    AdamW first applies θ ← (1 − ηλ)θ (decoupled decay); Adam adds λθ to g (coupled L2).
    """
    if decoupled:
        if weight_decay != 0:
            torch._foreach_mul_(params, 1 - lr * weight_decay)
    else:
        grads = _with_l2(params, grads, weight_decay)
    torch._foreach_lerp_(ms, grads, 1 - beta1)
    torch._foreach_mul_(vs, beta2)
    torch._foreach_addcmul_(vs, grads, grads, 1 - beta2)
    step_size = [-lr / (1 - beta1**t) for t in steps]
    bc2_sqrt = [math.sqrt(1 - beta2**t) for t in steps]
    denom = torch._foreach_sqrt(vs)
    torch._foreach_div_(denom, bc2_sqrt)
    torch._foreach_add_(denom, eps)
    torch._foreach_addcdiv_(params, ms, denom, step_size)


def soft_threshold_(xs: Tensors, tau: float) -> None:
    """x ← sign(x)·max(|x| − τ, 0), the proximal map of τ‖·‖₁ (Donoho 1995), in place."""
    if tau == 0:
        return
    for x in xs:
        x.copy_(torch.sign(x) * torch.clamp(x.abs() - tau, min=0))


def prox_grad_(
    params: Tensors, grads: Tensors, *, lr: float, l1: float = 0.0, l2: float = 0.0
) -> None:
    """Forward–backward step for L + λ1‖θ‖₁ + (λ2/2)‖θ‖²:

        θ ← prox_{η(λ1‖·‖₁ + λ2/2‖·‖²)}(θ − η g) = S_{ηλ1}(θ − η g) / (1 + ηλ2)

    (ISTA when λ2 = 0: Daubechies, Defrise & De Mol 2004; Beck & Teboulle 2009. Elastic net: Zou &
    Hastie 2005.)
    """
    torch._foreach_add_(params, grads, alpha=-lr)
    soft_threshold_(params, lr * l1)
    if l2 != 0:
        torch._foreach_div_(params, 1 + lr * l2)
