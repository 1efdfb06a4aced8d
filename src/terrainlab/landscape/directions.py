"""Directions in parameter space for landscape slices.

* :func:`random_direction` — Gaussian direction, filter-normalised (Li, Xu, Taylor, Studer &
  Goldstein 2018, "Visualizing the loss landscape of neural nets"): for every weight tensor with
  ≥ 2 dimensions, each filter (index along dim 0: an output unit of ``Linear``, an output channel of
  ``Conv``) of the direction is rescaled to the norm of the same filter of θ,
  d_f ← d_f · ‖θ_f‖ / ‖d_f‖. Biases and normalisation parameters (every tensor with ≤ 1 dimension:
  biases, BatchNorm/LayerNorm weight and bias) are treated by ``bias=``:
  ``"zero"`` (default, Li et al.'s ``ignore='biasbn'``: the direction is 0 there, so those values
  stay fixed in the slice), ``"filter"`` (each scalar is its own filter: d_i ← ±|θ_i|), or
  ``"random"`` (left unnormalised). Buffers (running statistics) are never part of a direction.
  With filter normalisation the slice is invariant to rescaling a ReLU layer's weights and bias by
  c > 0 and the next layer's weights by 1/c, because the direction rescales the same way.
* :func:`hessian_directions` — top eigenvectors of a curvature operator (:func:`eigs`).
* :func:`pca_directions` — principal directions of a trajectory θ_0 … θ_T around its end point.
* :func:`project` — coordinates of points in the affine plane origin + span(directions), by least
  squares, so a trajectory is drawn in the *same* coordinates as the surface.

Example:
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    >>> d = random_direction(net, generator=torch.Generator().manual_seed(0))
    >>> d.shape
    torch.Size([58])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from terrainlab.core.validate import check_choice, check_floating_dtype, check_int, check_tensor
from terrainlab.curvature.algorithms import EigResult, eigs
from terrainlab.params import ParamFilter, ParamSpec

_NORMS = ("filter", "layer", "none")
_BIAS = ("zero", "filter", "random")


def random_direction(
    model: nn.Module,
    *,
    params: ParamFilter = None,
    normalization: str = "filter",
    bias: str = "zero",
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """A random direction as a flat vector over the selected parameters (spec order).

    ``normalization``: "filter" (per filter, see module docstring), "layer" (per tensor,
    d ← d·‖θ‖/‖d‖) or "none". ``bias`` applies to tensors with ≤ 1 dimension.
    The Gaussian draw is made in float64 on the CPU from ``generator`` so the same seed gives the
    same raw direction on every device and dtype.
    """
    check_choice(normalization, "normalization", _NORMS)
    check_choice(bias, "bias", _BIAS)
    check_floating_dtype(dtype, "dtype")
    spec = ParamSpec.from_module(model, params)
    named = dict(model.named_parameters())
    parts = []
    for name in spec.names:
        t = named[name].detach()
        out_dtype = dtype or t.dtype
        th = t.to(device="cpu", dtype=torch.float64)
        d = torch.randn(th.shape, generator=generator, dtype=torch.float64)
        if th.ndim <= 1:
            if bias == "zero":
                d = torch.zeros_like(th)
            elif bias == "filter":
                d = d / d.abs().clamp_min(1e-300) * th.abs()
        elif normalization == "filter":
            tf = th.reshape(th.shape[0], -1)
            df = d.reshape(d.shape[0], -1)
            df = df * (tf.norm(dim=1, keepdim=True) / (df.norm(dim=1, keepdim=True) + 1e-10))
            d = df.reshape(th.shape)
        elif normalization == "layer":
            d = d * (th.norm() / (d.norm() + 1e-10))
        parts.append(d.reshape(-1).to(device=t.device, dtype=out_dtype))
    return torch.cat(parts)


def hessian_directions(op, k: int = 2, tol: float = 1e-4, **eigs_kwargs) -> tuple[torch.Tensor, EigResult]:
    """The top-k (largest algebraic) eigenvectors of ``op`` as rows of a (k, size) tensor."""
    res = eigs(op, k=k, which="LA", tol=tol, **eigs_kwargs)
    return res.eigenvectors.T.contiguous(), res


@dataclass(frozen=True)
class PCADirections:
    """Principal directions of a trajectory: ``directions`` (k, size) orthonormal rows,
    ``explained_variance_ratio`` (k,) of the centred trajectory's squared Frobenius norm,
    ``origin`` the point they are taken around (the final point by default)."""

    directions: torch.Tensor
    explained_variance_ratio: torch.Tensor
    origin: torch.Tensor


def pca_directions(trajectory, k: int = 2, origin: torch.Tensor | None = None) -> PCADirections:
    """PCA of θ_t − origin over the trajectory (a (T, size) tensor or a list of vectors)."""
    M = torch.stack(list(trajectory)) if not isinstance(trajectory, torch.Tensor) else trajectory
    check_tensor(M, "trajectory", ndim=2)
    if M.shape[0] < 2:
        raise ValueError("trajectory must hold at least 2 parameter vectors of equal length")
    check_int(k, "k", minimum=1, maximum=min(M.shape))
    o = M[-1] if origin is None else origin.to(M)
    C = (M - o).double()
    _, S, Vh = torch.linalg.svd(C, full_matrices=False)
    total = (S**2).sum().clamp_min(1e-300)
    return PCADirections(
        directions=Vh[:k].to(M.dtype), explained_variance_ratio=(S[:k] ** 2 / total), origin=o.clone()
    )


def project(points, origin: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """Least-squares coordinates c with points ≈ origin + c @ directions; returns (T, k)."""
    P = torch.stack(list(points)) if not isinstance(points, torch.Tensor) else points
    D = torch.as_tensor(directions)
    if D.ndim == 1:
        D = D[None]
    A = D.double().T  # (size, k)
    B = (P - origin).double().T  # (size, T)
    sol = torch.linalg.lstsq(A, B).solution  # (k, T)
    return sol.T
