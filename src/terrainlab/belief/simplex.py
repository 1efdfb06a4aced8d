"""Geometry of the probability simplex Δ^{K−1} = {p ≥ 0, Σp = 1}: gradient steps, tangent spaces,
the Fisher metric, natural gradients.

A gradient step p − η·g lands on the simplex by one of the three rules of the core geometry
``Simplex(projection="euclid" | "mirror" | "logit")`` (all batched over leading dimensions); the
functions here are its validated, named entries:

- :func:`projected_step`   ``"euclid"``: proj_Δ(p − η g), the sort-based Euclidean projection;
- :func:`exponentiated_gradient_step`  ``"mirror"``: p ∝ p·exp(−η g), mirror descent with the
  negative entropy (Kivinen & Warmuth 1997; Beck & Teboulle 2003);
- :func:`logit_step`       ``"logit"``: softmax(z − η ∇_z), gradient descent on the logits z = log p,
  whose gradient is the Euclidean gradient pulled back through softmax, ∇_z = p ⊙ (g − ⟨p, g⟩).

The Fisher–Rao metric of the categorical family in p-coordinates is G(p) = diag(1/p) on the tangent
space {Σv = 0} (Rao 1945; Amari 2016); the natural gradient of a function with Euclidean gradient g
is G⁻¹g projected to the tangent space, p ⊙ (g − ⟨p, g⟩) (Amari 1998) — the replicator field.

Every public function validates its beliefs (``core.validate.check_simplex``: one reduction, one
host synchronisation) at entry; the core ``Simplex.land``/``descend`` kernels behind them do not, so
loops that step many times (``rollout``) pay nothing per step.
"""

from __future__ import annotations

import math

import torch

from terrainlab.core.geometry import Simplex, project_simplex, simplex_tangent_basis
from terrainlab.core.validate import check_int, check_positive, check_simplex, check_tensor

from ._deprecated import deprecated_alias

try:  # inside torch.func transforms (grad, vmap, hessian) values are not concrete: no checks there
    from torch._C._functorch import is_functorch_wrapped_tensor as _traced
except ImportError:  # pragma: no cover - older/newer torch without the private hook
    def _traced(x) -> bool:
        return False

__all__ = [
    "project_simplex",
    "projected_step",
    "exponentiated_gradient_step",
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
    """``p`` holds probability vectors along its last dimension (ValueError naming ``name``).
    Skipped for tensors traced by ``torch.func`` (the caller validated the concrete input)."""
    check_tensor(p, name, min_ndim=1)
    if not _traced(p):
        check_simplex(p, name)
    return p


def _check_eta(eta):
    if torch.is_tensor(eta):
        if not _traced(eta) and not bool(((eta > 0) & torch.isfinite(eta)).all()):
            raise ValueError("eta must hold finite step sizes > 0")
        return
    check_positive(eta, "eta")


def projected_step(p: torch.Tensor, g: torch.Tensor, eta) -> torch.Tensor:
    """proj_Δ(p − η g), the Euclidean projected gradient step: ``Simplex("euclid").descend``.
    ``eta`` may be a tensor broadcasting against p[..., :1] (one step size per row)."""
    _check_p(p)
    _check_eta(eta)
    return Simplex("euclid").descend(p, g, eta)


def exponentiated_gradient_step(p: torch.Tensor, g: torch.Tensor, eta) -> torch.Tensor:
    """Exponentiated gradient p' ∝ p·exp(−η g): the mirror-descent step with the negative entropy,
    argmin_{q∈Δ} ⟨g, q⟩ + (1/η)·KL(q‖p) (Nemirovski & Yudin 1983; Kivinen & Warmuth 1997; Beck &
    Teboulle 2003): ``Simplex("mirror").descend``. Coordinates at 0 stay at 0; the step never leaves
    the simplex. ``g`` must be finite.

    This is the simplex-belief step. ``terrainlab.optim.mirror_step(psi, θ, g, lr)`` is mirror
    descent in parameter space for any Bregman generator ψ; with ``NegativeEntropy()`` it computes
    the same update on the interior of the simplex.
    """
    _check_p(p)
    _check_eta(eta)
    return Simplex("mirror").descend(p, g, eta)


mirror_step = deprecated_alias(
    exponentiated_gradient_step, "mirror_step",
    "the name collided with terrainlab.optim.mirror_step, parameter-space mirror descent for any generator")


def logit_step(p: torch.Tensor, g: torch.Tensor, eta) -> torch.Tensor:
    """Gradient descent on the logits: p' = softmax(log p − η ∇_z), ∇_z = p ⊙ (g − ⟨p, g⟩) where g
    is the Euclidean gradient with respect to p: ``Simplex("logit").descend``."""
    _check_p(p)
    _check_eta(eta)
    return Simplex("logit").descend(p, g, eta)


def natural_gradient(p: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """The Fisher-natural gradient on the simplex, G(p)⁻¹g restricted to {Σv = 0}:
    p ⊙ (g − ⟨p, g⟩) (Amari 1998). Sums to zero; vanishes where p does."""
    _check_p(p)
    return p * (g - (p * g).sum(-1, keepdim=True))


def natural_gradient_step(p: torch.Tensor, g: torch.Tensor, eta) -> torch.Tensor:
    """p − η·p ⊙ (g − ⟨p, g⟩), followed by a Euclidean projection to guard against overshooting the
    boundary (the step itself preserves Σp = 1)."""
    _check_eta(eta)
    return Simplex("euclid").land(p, -eta * natural_gradient(p, g))


#: Orthonormal basis of the tangent space {v : Σv = 0} of Δ^{K−1} (K × (K−1), Helmert contrasts).
tangent_basis = simplex_tangent_basis


def tangent_project(v: torch.Tensor) -> torch.Tensor:
    """Orthogonal projection onto {Σv = 0}: v − mean(v)."""
    check_tensor(v, "v", min_ndim=1)
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
    return B.T @ torch.diag_embed(1.0 / p) @ B


def uniform(K: int, *batch, dtype=None, device=None) -> torch.Tensor:
    """The uniform belief (1/K, …, 1/K), with optional batch dimensions."""
    check_int(K, "K", minimum=1)
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
    check_int(n, "n", minimum=1)
    dtype = dtype or torch.get_default_dtype()
    i, j = torch.meshgrid(torch.arange(n + 1), torch.arange(n + 1), indexing="ij")
    keep = i + j <= n
    i, j = i[keep], j[keep]
    P = torch.stack([i, j, n - i - j], -1).to(dtype) / n
    if margin > 0:
        P = P[(P >= margin).all(-1)]
    return P
