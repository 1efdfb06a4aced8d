"""Geometry of the probability simplex Δ^{K−1} = {p ≥ 0, Σp = 1}: landings, tangent spaces, the
Fisher metric, natural gradients.

The three ways a step p − η·g lands (all batched over leading dimensions):

- projected:  proj_Δ(p − η g), the sort-based Euclidean projection (core ``project_simplex``);
- mirror:     p ∝ p·exp(−η g), exponentiated gradient = mirror descent with the negative entropy
              (Kivinen & Warmuth 1997; Beck & Teboulle 2003);
- logit:      softmax(z − η ∇_z), gradient descent on the logits z = log p, whose gradient is the
              Euclidean gradient pulled back through softmax, ∇_z = p ⊙ (g − ⟨p, g⟩).

The Fisher–Rao metric of the categorical family in p-coordinates is G(p) = diag(1/p) on the tangent
space {Σv = 0} (Rao 1945; Amari 2016); the natural gradient of a function with Euclidean gradient g
is G⁻¹g projected to the tangent space, p ⊙ (g − ⟨p, g⟩) (Amari 1998) — the replicator field.
"""

from __future__ import annotations

import math

import torch

from terrainlab.core.geometry import project_simplex, simplex_tangent_basis

__all__ = [
    "project_simplex",
    "projected_step",
    "mirror_step",
    "logit_step",
    "natural_gradient",
    "natural_gradient_step",
    "tangent_basis",
    "tangent_project",
    "fisher_metric",
    "fisher_metric_tangent",
    "uniform",
    "sample_dirichlet",
    "to_xy",
    "from_xy",
    "simplex_grid",
]


def _check_p(p, name="p"):
    if not torch.is_tensor(p) or not torch.is_floating_point(p) or p.ndim == 0:
        raise ValueError(f"{name} must be a floating-point tensor (..., K) of probabilities")


def _check_eta(eta):
    if torch.is_tensor(eta):
        if not bool((eta > 0).all()):
            raise ValueError("eta must be > 0")
        return
    if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not eta > 0 or not math.isfinite(eta):
        raise ValueError(f"eta must be a finite number > 0, got {eta!r}")


def projected_step(p: torch.Tensor, g: torch.Tensor, eta) -> torch.Tensor:
    """proj_Δ(p − η g) (Euclidean projected gradient step). ``eta`` may be a tensor broadcasting
    against p[..., :1] (one step size per row)."""
    _check_p(p)
    _check_eta(eta)
    return project_simplex(p - eta * g)


def mirror_step(p: torch.Tensor, g: torch.Tensor, eta) -> torch.Tensor:
    """Exponentiated gradient p' ∝ p·exp(−η g): the mirror-descent step with the negative entropy,
    argmin_{q∈Δ} ⟨g, q⟩ + (1/η)·KL(q‖p) (Nemirovski & Yudin 1983; Beck & Teboulle 2003).
    Coordinates at 0 stay at 0; the step never leaves the simplex. ``g`` must be finite."""
    _check_p(p)
    _check_eta(eta)
    # multiplicative form p·exp(−η(g − min g)): no logarithm, exponent ≤ 0 (no overflow), zeros stay 0
    q = p * torch.exp(-eta * (g - g.amin(-1, keepdim=True)))
    return q / q.sum(-1, keepdim=True)


def logit_step(p: torch.Tensor, g: torch.Tensor, eta) -> torch.Tensor:
    """Gradient descent on the logits: p' = softmax(log p − η ∇_z), ∇_z = p ⊙ (g − ⟨p, g⟩) where g
    is the Euclidean gradient with respect to p."""
    _check_p(p)
    _check_eta(eta)
    tiny = torch.finfo(p.dtype).tiny
    gz = p * (g - (p * g).sum(-1, keepdim=True))
    return torch.softmax(torch.log(p.clamp(min=tiny)) - eta * gz, dim=-1)


def natural_gradient(p: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """The Fisher-natural gradient on the simplex, G(p)⁻¹g restricted to {Σv = 0}:
    p ⊙ (g − ⟨p, g⟩) (Amari 1998). Sums to zero; vanishes where p does."""
    _check_p(p)
    return p * (g - (p * g).sum(-1, keepdim=True))


def natural_gradient_step(p: torch.Tensor, g: torch.Tensor, eta) -> torch.Tensor:
    """p − η·p ⊙ (g − ⟨p, g⟩), followed by a Euclidean projection to guard against overshooting the
    boundary (the step itself preserves Σp = 1)."""
    _check_eta(eta)
    return project_simplex(p - eta * natural_gradient(p, g))


#: Orthonormal basis of the tangent space {v : Σv = 0} of Δ^{K−1} (K × (K−1), Helmert contrasts).
tangent_basis = simplex_tangent_basis


def tangent_project(v: torch.Tensor) -> torch.Tensor:
    """Orthogonal projection onto {Σv = 0}: v − mean(v)."""
    if not torch.is_tensor(v) or v.ndim == 0:
        raise ValueError("v must be a tensor (..., K)")
    return v - v.mean(-1, keepdim=True)


def fisher_metric(p: torch.Tensor) -> torch.Tensor:
    """The Fisher–Rao metric of the categorical family in p-coordinates, diag(1/p) (..., K, K); it
    equals the Hessian of KL(·‖p) at p, and of p ↦ KL(p*‖p) at p = p*."""
    _check_p(p)
    return torch.diag_embed(1.0 / p)


def fisher_metric_tangent(p: torch.Tensor) -> torch.Tensor:
    """Bᵀ diag(1/p) B, the Fisher metric in the orthonormal tangent coordinates (..., K−1, K−1)."""
    _check_p(p)
    B = tangent_basis(p.shape[-1], dtype=p.dtype, device=p.device)
    return B.T @ fisher_metric(p) @ B


def uniform(K: int, *batch, dtype=None, device=None) -> torch.Tensor:
    """The uniform belief (1/K, …, 1/K), with optional batch dimensions."""
    if isinstance(K, bool) or not isinstance(K, int) or K < 1:
        raise ValueError(f"K must be an int >= 1, got {K!r}")
    return torch.full((*batch, K), 1.0 / K, dtype=dtype or torch.get_default_dtype(), device=device)


def sample_dirichlet(n: int, K: int, alpha: float = 1.0, *, generator: torch.Generator | None = None,
                     dtype=None, device=None) -> torch.Tensor:
    """n samples of Dirichlet(α·1) (α = 1: uniform on the simplex), reproducible with ``generator``:
    :func:`terrainlab.dynamics.dirichlet_starts` in the default dtype."""
    from terrainlab.dynamics import dirichlet_starts

    return dirichlet_starts(K, n, generator, alpha=alpha, dtype=dtype or torch.get_default_dtype(), device=device)


_SQ3 = math.sqrt(3.0)


def to_xy(p: torch.Tensor) -> torch.Tensor:
    """Barycentric coordinates on Δ² to the plane: vertex e1 at (0, 0), e2 at (1, 0), e3 at
    (½, √3/2). Shape (..., 3) → (..., 2)."""
    if p.shape[-1] != 3:
        raise ValueError(f"p must have last dimension 3 for plotting, got {p.shape[-1]}")
    x = p[..., 1] + 0.5 * p[..., 2]
    y = (_SQ3 / 2) * p[..., 2]
    return torch.stack([x, y], -1)


def from_xy(xy: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`to_xy` (points outside the triangle get negative coordinates)."""
    p3 = xy[..., 1] * 2 / _SQ3
    p2 = xy[..., 0] - 0.5 * p3
    return torch.stack([1 - p2 - p3, p2, p3], -1)


def simplex_grid(n: int, *, margin: float = 0.0, dtype=None) -> torch.Tensor:
    """All points (i, j, k)/n with i + j + k = n on Δ² (optionally only those with every coordinate
    ≥ ``margin``), shape (M, 3). Useful for maps of a function over the simplex."""
    if not (isinstance(n, int) and n >= 1):
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    dtype = dtype or torch.get_default_dtype()
    i, j = torch.meshgrid(torch.arange(n + 1), torch.arange(n + 1), indexing="ij")
    keep = i + j <= n
    i, j = i[keep], j[keep]
    P = torch.stack([i, j, n - i - j], -1).to(dtype) / n
    if margin > 0:
        P = P[(P >= margin).all(-1)]
    return P
