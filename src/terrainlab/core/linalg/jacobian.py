"""A map's Jacobian as a matrix-free operator: J v and Jᵀ w from one reverse-mode graph.

J v is the gradient of ⟨Jᵀu, v⟩ with respect to the dummy cotangent u (the "double-vjp" trick,
Townsend 2017), so one graph serves every product and no forward-mode AD is needed. Used by
:class:`~terrainlab.core.root_finders.NewtonKrylov` (the Newton matrix I − J) and by the Lipschitz
estimates of :mod:`terrainlab.nn`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["linearize"]


def linearize(f: Callable[[torch.Tensor], torch.Tensor], z: torch.Tensor):
    """Linearise f at z with reverse-mode autograd only: returns (f(z), jvp, vjp) where
    jvp(v) = J v and vjp(w) = Jᵀ w, J = ∂f/∂z. Works inside ``torch.no_grad()``.

    Example:
        >>> A = torch.tensor([[1.0, 2.0], [0.0, 3.0]])
        >>> fz, jvp, vjp = linearize(lambda z: z @ A.T, torch.ones(1, 2))
        >>> jvp(torch.tensor([[1.0, 0.0]])).tolist(), vjp(torch.tensor([[1.0, 0.0]])).tolist()
        ([[1.0, 0.0]], [[1.0, 2.0]])
    """
    with torch.enable_grad():
        z_ = z.detach().requires_grad_(True)
        out = f(z_)
        u = torch.zeros_like(out, requires_grad=True)
        (g,) = torch.autograd.grad(out, z_, u, create_graph=True, allow_unused=True)
    if g is None:  # f does not depend on z
        g = torch.zeros_like(z_)

    def jvp(v):
        if not g.requires_grad:
            return torch.zeros_like(out)
        (jv,) = torch.autograd.grad(g, u, v, retain_graph=True, allow_unused=True)
        return torch.zeros_like(out) if jv is None else jv

    def vjp(w):
        (jw,) = torch.autograd.grad(out, z_, w, retain_graph=True, allow_unused=True)
        return torch.zeros_like(z_) if jw is None else jw

    return out.detach(), jvp, vjp
