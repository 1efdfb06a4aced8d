"""Fisher preconditioners for the damped natural gradient θ' = θ − η (F + δI)⁻¹ ∇L (Amari 1998).

A preconditioner is any object with ``precondition(params, grads, damping) -> list[Tensor]`` (the
hook for structured approximations such as K-FAC: Martens & Grosse 2015). Two are built in:

- :class:`DenseFisher`: F = (1/n) Σ_i ∇s_i ∇s_iᵀ from a per-sample vector s = fn() of length n,
  materialised as a P×P matrix (small models only). What s is decides which matrix you get:
  the per-sample model outputs of a unit-variance Gaussian model give the Fisher = Gauss–Newton
  JᵀJ/n; log-probabilities of labels *sampled from the model* give an unbiased estimate of the true
  Fisher; log-probabilities of the data labels give the empirical Fisher, which is not a curvature
  matrix in general (Kunstner, Hennig & Balles 2019; Martens 2020).
- :class:`DiagonalFisher`: the diagonal of the same matrix, O(nP) memory.

Example:
    >>> model = torch.nn.Linear(3, 1); x = torch.randn(16, 3)
    >>> F = DenseFisher(lambda: model(x).squeeze(-1))      # Gaussian model: Gauss–Newton
    >>> F.matrix(list(model.parameters())).shape
    torch.Size([4, 4])
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..core.validate import check_callable


def per_sample_jacobian(values: torch.Tensor, params: list[torch.Tensor]) -> torch.Tensor:
    """J with J[i] = ∇_θ values[i], flattened over all params: shape (n, P)."""
    if values.ndim != 1:
        raise ValueError(f"fn must return a 1-D tensor of per-sample terms, got shape {tuple(values.shape)}")
    n = values.shape[0]
    eye = torch.eye(n, dtype=values.dtype, device=values.device)
    try:
        rows = torch.autograd.grad(values, params, grad_outputs=eye, is_grads_batched=True, allow_unused=True)
        rows = [torch.zeros(n, *p.shape, dtype=p.dtype, device=p.device) if r is None else r for r, p in zip(rows, params)]
        return torch.cat([r.reshape(n, -1) for r in rows], dim=1)
    except RuntimeError:  # an op without a batching rule: one backward per sample
        out = []
        for i in range(n):
            gs = torch.autograd.grad(values[i], params, retain_graph=True, allow_unused=True)
            out.append(torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for g, p in zip(gs, params)]))
        return torch.stack(out)


class DenseFisher:
    """F = JᵀJ/n with J the per-sample Jacobian of ``fn()``; solves (F + δI)d = g densely."""

    def __init__(self, fn: Callable[[], torch.Tensor]):
        check_callable(fn, "fn")  # fn() -> per-sample terms
        self.fn = fn

    def matrix(self, params: list[torch.Tensor]) -> torch.Tensor:
        with torch.enable_grad():
            J = per_sample_jacobian(self.fn(), params)
        return J.T @ J / J.shape[0]

    def precondition(self, params, grads, damping: float) -> list[torch.Tensor]:
        F = self.matrix(params)
        g = torch.cat([gi.reshape(-1) for gi in grads])
        A = F + damping * torch.eye(F.shape[0], dtype=F.dtype, device=F.device)
        d = torch.linalg.solve(A, g)
        return list(torch.split(d, [p.numel() for p in params]))

    def __repr__(self):
        return "DenseFisher(fn)"


class DiagonalFisher(DenseFisher):
    """diag(F) only: d = g / (diag F + δ). A structured approximation through the same hook."""

    def precondition(self, params, grads, damping: float) -> list[torch.Tensor]:
        with torch.enable_grad():
            J = per_sample_jacobian(self.fn(), params)
        diag = (J * J).mean(0)
        g = torch.cat([gi.reshape(-1) for gi in grads])
        return list(torch.split(g / (diag + damping), [p.numel() for p in params]))

    def __repr__(self):
        return "DiagonalFisher(fn)"
