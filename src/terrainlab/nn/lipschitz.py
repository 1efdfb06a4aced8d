"""Contraction utilities for equilibrium layers: spectral normalisation, a Lipschitz upper bound,
the Jacobian's spectral radius and norm at a point, and the Hutchinson Jacobian regulariser.

A layer z ↦ f(z, x) has a unique fixed point reached by Picard iteration when it is a contraction,
Lip_z(f) < 1 (Banach 1922). Lip is bounded above by the product of the layers' operator norms
(``lipschitz_upper_bound``); *local* convergence near h* only needs the spectral radius ρ(J) < 1 of
J = ∂f/∂z at h* (Ostrowski's theorem), estimated by ``jacobian_spectrum``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.nn.utils import parametrize

from ..core.linalg.jacobian import linearize


class SpectralNorm(nn.Module):
    """Parametrisation W ↦ W / max(1, σ(W)/c), so ‖W‖₂ ≤ c (Miyato et al., "Spectral normalization
    for generative adversarial networks", ICLR 2018, with a bound instead of an equality).

    σ is exact (``torch.linalg.matrix_norm(W, 2)``, differentiable) when ``exact`` (default: matrices
    up to 1024 on a side), so the bound truly holds; otherwise it is tracked by power iteration on a
    persistent vector updated in training mode (a slight under-estimate, as in Miyato et al.). Conv
    weights are reshaped to (out, −1), which bounds that matrix, not the convolution operator.
    """

    def __init__(
        self,
        weight: torch.Tensor,
        scale: float = 1.0,
        n_power_iterations: int = 1,
        eps: float = 1e-12,
        exact: bool | None = None,
    ):
        super().__init__()
        self.exact = max(weight.shape[0], weight[0].numel()) <= 1024 if exact is None else bool(exact)
        if not scale > 0:
            raise ValueError(f"scale must be > 0, got {scale!r}")
        if not (isinstance(n_power_iterations, int) and n_power_iterations >= 1):
            raise ValueError(f"n_power_iterations must be an int >= 1, got {n_power_iterations!r}")
        self.scale, self.n, self.eps = float(scale), n_power_iterations, eps
        W = weight.detach().reshape(weight.shape[0], -1)
        u = torch.randn(W.shape[0], dtype=W.dtype, device=W.device)
        self.register_buffer("u", u / u.norm().clamp_min(eps))
        with torch.no_grad():
            self._power(W, 15)

    def _power(self, W, n):
        u = self.u
        for _ in range(n):
            v = W.T @ u
            v = v / v.norm().clamp_min(self.eps)
            u = W @ v
            u = u / u.norm().clamp_min(self.eps)
        self.u.copy_(u)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        W = weight.reshape(weight.shape[0], -1)
        if self.exact:
            sigma = torch.linalg.matrix_norm(W, 2)
            return weight / torch.clamp(sigma / self.scale, min=1.0)
        if self.training:
            with torch.no_grad():
                self._power(W, self.n)
        u = self.u
        v = W.T @ u
        v = v / v.norm().clamp_min(self.eps)
        sigma = u @ (W @ v)
        return weight / torch.clamp(sigma / self.scale, min=1.0)


def spectral_norm(module: nn.Module, scale: float = 1.0, name: str = "weight", n_power_iterations: int = 1) -> nn.Module:
    """Constrain ``module.<name>`` to operator norm ≤ ``scale`` (in place; returns the module).

    Example:
        >>> lin = spectral_norm(nn.Linear(8, 8), scale=0.9)
        >>> float(torch.linalg.matrix_norm(lin.weight.detach(), 2)) <= 0.9 + 1e-6
        True
    """
    if not isinstance(module, nn.Module) or not hasattr(module, name):
        raise ValueError(f"module must be an nn.Module with a parameter {name!r}")
    parametrize.register_parametrization(
        module, name, SpectralNorm(getattr(module, name), scale=scale, n_power_iterations=n_power_iterations)
    )
    return module


_ACT = {
    nn.ReLU: 1.0,
    nn.Tanh: 1.0,
    nn.Sigmoid: 0.25,
    nn.GELU: 1.1289,  # max of Φ(x) + xφ(x)
    nn.SiLU: 1.0998,  # max of σ(x)(1 + x(1 − σ(x)))
    nn.Softplus: 1.0,
    nn.Identity: 1.0,
    nn.Hardtanh: 1.0,
    nn.Mish: 1.09,
}


def lipschitz_upper_bound(module: nn.Module) -> float:
    """An upper bound on Lip(module) in the Euclidean norm: the product over a chain of layers of
    each layer's exact operator norm (‖W‖₂ for Linear) and activation slope bound (Szegedy et al.
    2014; Virmaux & Scaman 2018 discuss how loose it can be).

    Supports Linear, Sequential, common 1-D activations, Dropout and Identity; anything else raises
    ``ValueError`` naming it (a bound that silently skipped a layer would be wrong).

    Example:
        >>> lipschitz_upper_bound(nn.Sequential(nn.Linear(4, 4, bias=False), nn.Tanh())) > 0
        True
    """
    if isinstance(module, nn.Sequential):
        out = 1.0
        for sub in module:
            out *= lipschitz_upper_bound(sub)
        return out
    if isinstance(module, nn.Linear):
        return float(torch.linalg.matrix_norm(module.weight.detach().double(), 2))
    if isinstance(module, nn.LeakyReLU):
        return max(1.0, abs(module.negative_slope))
    if isinstance(module, nn.ELU):
        return max(1.0, module.alpha)
    if isinstance(module, nn.Dropout):
        return 1.0 / (1.0 - module.p) if module.training and module.p < 1 else 1.0
    for cls, c in _ACT.items():
        if type(module) is cls:
            return c
    raise ValueError(
        f"module: no Lipschitz bound known for {type(module).__name__}; supported are Linear, "
        "Sequential and 1-D activations (use jacobian_spectrum for a local estimate)"
    )


@dataclass(frozen=True)
class SpectralEstimate:
    """Per-sample estimates at a point z: ``radius`` ρ(J) (Gelfand: ‖Jᵏv‖^{1/k}), ``norm`` ‖J‖₂
    (power iteration on JᵀJ), ``iterations`` and ``converged`` (radius changed by < tol at the end)."""

    radius: torch.Tensor
    norm: torch.Tensor
    iterations: int
    converged: torch.Tensor


def jacobian_spectrum(f, z: torch.Tensor, *, iters: int = 60, tol: float = 1e-3, generator=None) -> SpectralEstimate:
    """Estimate ρ(∂f/∂z) and ‖∂f/∂z‖₂ at ``z`` for each sample of a batch (rows independent).

    ρ < 1 at a fixed point h* means the iteration contracts locally (Ostrowski); ‖J‖₂ < 1 is the
    local Lipschitz constant. Uses exact Jacobian–vector products by autograd; no Jacobian is formed.

    Example:
        >>> A = torch.diag(torch.tensor([0.5, -0.9, 0.1]))
        >>> est = jacobian_spectrum(lambda z: z @ A.T, torch.zeros(2, 3))
        >>> [round(float(r), 2) for r in est.radius]
        [0.9, 0.9]
    """
    if not torch.is_tensor(z) or z.ndim < 1:
        raise ValueError("z must be a tensor with a leading batch dimension")
    if not (isinstance(iters, int) and iters >= 2):
        raise ValueError(f"iters must be an int >= 2, got {iters!r}")
    z = z.detach()
    B = z.shape[0]

    def nrm(t):
        return t.reshape(B, -1).norm(dim=1).clamp_min(1e-300)

    def view(s):
        return s.view(-1, *[1] * (z.ndim - 1))

    _, jvp, vjp = linearize(f, z)
    v = torch.randn(z.shape, dtype=z.dtype, device=z.device, generator=generator)
    v = v / view(nrm(v))
    logs = []
    with torch.no_grad():
        for _ in range(iters):
            jv = jvp(v)
            g = nrm(jv)
            logs.append(torch.log(g))
            v = jv / view(g)
        L = torch.stack(logs)  # (iters, B)
        half = iters // 2
        radius = torch.exp(L[half:].mean(dim=0))
        lag = max(1, half // 2)
        prev = torch.exp(L[half - lag : iters - lag].mean(dim=0))
        converged = (radius - prev).abs() <= tol * radius.clamp_min(1e-12)
        w = torch.randn(z.shape, dtype=z.dtype, device=z.device, generator=generator)
        w = w / view(nrm(w))
        s = torch.zeros(B, dtype=z.dtype, device=z.device)
        for _ in range(iters):
            jtjw = vjp(jvp(w))
            s = nrm(jtjw)
            w = jtjw / view(s)
        norm = torch.sqrt(s)
    return SpectralEstimate(radius=radius, norm=norm, iterations=iters, converged=converged)


def jacobian_regularizer(f, z: torch.Tensor, *, n_samples: int = 1, generator=None) -> torch.Tensor:
    """Hutchinson estimate of ‖∂f/∂z‖_F² / dim at ``z`` (averaged over the batch), differentiable
    in f's parameters: E‖εᵀJ‖² = ‖J‖_F² for ε ~ N(0, I) (Hutchinson 1989). Adding it to the loss
    keeps DEQ Jacobians small and solves short (Bai, Koltun & Kolter, "Stabilizing equilibrium
    models by Jacobian regularization", ICML 2021).
    """
    if not (isinstance(n_samples, int) and n_samples >= 1):
        raise ValueError(f"n_samples must be an int >= 1, got {n_samples!r}")
    z0 = z.detach().requires_grad_(True)
    with torch.enable_grad():
        fz = f(z0)
        total = fz.new_zeros(())
        for _ in range(n_samples):
            eps = torch.randn(fz.shape, dtype=fz.dtype, device=fz.device, generator=generator)
            (vjp,) = torch.autograd.grad(fz, z0, eps, create_graph=True, retain_graph=True)
            total = total + vjp.pow(2).sum() / vjp.numel()
    return total / n_samples
