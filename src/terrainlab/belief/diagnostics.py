"""Fixed points, basins and the book's three field diagnostics (ch08 §8.6), on top of
``terrainlab.dynamics`` (``find_fixed_points`` with the simplex tangent geometry, ``basin_map``).

- coverage: the fraction of the simplex (volume, Monte-Carlo with Dirichlet(1) starts, which are
  uniform on Δ^{K−1}) whose orbit reaches each attractor, with its standard error;
- separation: KL(p*_correct‖p*_wrong) for each wrong attractor, and the smallest KL from the correct
  attractor to the boundary of its basin, found by bisection along rays in the tangent plane
  ("the KL between two basins" as the book words it is not well defined);
- uniformity: the coefficient of variation of ‖F(p)‖ over the same samples.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from terrainlab.core import Euclidean, Simplex
from terrainlab.dynamics import basin_map, dirichlet_starts, find_fixed_points

from .divergences import kl
from .simplex import tangent_basis

__all__ = ["simplex_fixed_points", "FieldDiagnostics", "field_diagnostics", "basin_labels"]


def _geometry(proj):
    return Euclidean() if proj is None else Simplex(proj)


def simplex_fixed_points(field, K: int, *, n_starts: int = 300, eta: float | None = None,
                         generator: torch.Generator | None = None, margin: float = 0.02,
                         dtype=torch.float64, **kw):
    """All zeros of a reasoning field on the interior of Δ^{K−1}, classified on the tangent space
    (K−1 eigenvalues; flow class and, with ``eta``, the Euler-map class), from Dirichlet(1) starts
    shrunk toward the centre by ``margin``. Returns the dynamics ``FixedPointResult``."""
    s = dirichlet_starts(K, n_starts, generator, dtype=dtype)
    s = (1 - margin) * s + margin / K
    return find_fixed_points(field, s, geometry=Simplex("euclid"), eta=eta, **kw)


def basin_labels(field, starts, attractors, *, eta: float, steps: int = 2000, proj: str | None = "euclid",
                 **kw):
    """Label each start by the attractor its Euler orbit reaches (dynamics ``basin_map``);
    ``proj=None`` skips the landing (for fields whose Euler step stays on the simplex by itself,
    e.g. natural-gradient fields with η ≤ 1)."""
    return basin_map(field, starts, attractors, eta=eta, steps=steps, geometry=_geometry(proj), **kw)


@dataclass(frozen=True)
class FieldDiagnostics:
    """coverage: (A,) basin fractions (Dirichlet(1) samples = simplex volume), coverage_stderr;
    fraction_unlabelled; separation_kl: (A,) KL(attractor[correct]‖attractor[j]);
    boundary_kl: min over rays of KL(p*_correct‖p) at the correct basin's boundary (inf if no ray
    leaves the basin); boundary_point: where it is attained; uniformity_cv: std/mean of ‖F‖;
    n_samples, n_rays, seconds."""

    coverage: torch.Tensor
    coverage_stderr: torch.Tensor
    fraction_unlabelled: float
    separation_kl: torch.Tensor
    boundary_kl: float
    boundary_point: torch.Tensor | None
    uniformity_cv: float
    n_samples: int
    n_rays: int
    seconds: float


def field_diagnostics(field, attractors: torch.Tensor, *, correct: int = 0, eta: float,
                      n_samples: int = 4000, n_rays: int = 48, bisect_iters: int = 18,
                      steps: int = 2000, proj: str | None = "euclid",
                      generator: torch.Generator | None = None) -> FieldDiagnostics:
    """The three diagnostics of a reasoning field (see the module docstring). Rays (K = 3: evenly
    spaced angles; K > 3: random tangent directions) start at the correct attractor; each boundary
    is bracketed between the attractor and the simplex boundary and bisected ``bisect_iters``
    times, all rays in one batch per bisection step."""
    if not torch.is_tensor(attractors) or attractors.ndim != 2:
        raise ValueError("attractors must be an (A, K) tensor")
    A, K = attractors.shape
    if not 0 <= correct < A:
        raise ValueError(f"correct must index one of the {A} attractors, got {correct}")
    t0 = time.perf_counter()
    dt = attractors.dtype
    samples = dirichlet_starts(K, n_samples, generator, dtype=dt)
    res = basin_labels(field, samples, attractors, eta=eta, steps=steps, proj=proj)
    n = res.labels.shape[0]
    cov = torch.stack([(res.labels == j).to(dt).mean() for j in range(A)])
    se = torch.sqrt(cov * (1 - cov) / n)
    unl = float((res.labels < 0).to(dt).mean())
    pc = attractors[correct]
    sep = kl(pc.expand(A, K), attractors)
    # uniformity of the field strength
    norms = field(samples, 0.0).norm(dim=-1)
    norms = norms[torch.isfinite(norms)]
    cv = float(norms.std() / norms.mean())
    # rays in the tangent plane
    B = tangent_basis(K, dtype=dt)
    if K == 3:
        ang = torch.arange(n_rays, dtype=dt) * (2 * math.pi / n_rays)
        u = torch.stack([ang.cos(), ang.sin()], -1) @ B.T
    else:
        u = torch.randn(n_rays, K - 1, generator=generator, dtype=dt) @ B.T
        u = u / u.norm(dim=-1, keepdim=True)
    # largest s with pc + s u in the simplex (stay 1e-6 inside)
    neg = u < 0
    smax = torch.where(neg, (pc - 1e-6) / (-u).clamp(min=1e-300), torch.full_like(u, math.inf)).amin(-1)
    lo = torch.zeros(n_rays, dtype=dt)
    hi = smax.clone()
    end = basin_labels(field, pc + hi[:, None] * u, attractors, eta=eta, steps=steps, proj=proj).labels
    leaves = end != correct
    for _ in range(bisect_iters):
        mid = 0.5 * (lo + hi)
        lab = basin_labels(field, pc + mid[:, None] * u, attractors, eta=eta, steps=steps, proj=proj).labels
        inside = lab == correct
        lo = torch.where(inside, mid, lo)
        hi = torch.where(inside, hi, mid)
    pts = pc + (0.5 * (lo + hi))[:, None] * u
    bkl = kl(pc.expand(n_rays, K), pts)
    bkl = torch.where(leaves, bkl, torch.full_like(bkl, math.inf))
    i = int(bkl.argmin())
    bmin = float(bkl[i])
    return FieldDiagnostics(cov, se, unl, sep, bmin, pts[i] if math.isfinite(bmin) else None, cv,
                            n, n_rays, time.perf_counter() - t0)
