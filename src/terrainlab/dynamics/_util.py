"""Small shared helpers: calling maps/fields uniformly, the states/geometry checks every tool of
the toolkit shares (built on :mod:`terrainlab.core.validate`), simplex coordinates."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..core import Euclidean, Simplex
from ..core.fields import as_field
from ..core.geometry import simplex_tangent_basis as _helmert
from ..core.validate import check_callable, check_instance, check_positive, check_tensor

KINDS = ("field", "map")


def state_fn(fn: Callable, t: float = 0.0) -> Callable[[torch.Tensor], torch.Tensor]:
    """g(s) = F(s, t) for a field or map written ``F(s, t)``, ``F(s, t=…)`` or ``T(s)``.

    The signature is read once by the core adapter :func:`terrainlab.core.fields.as_field`.
    """
    F = as_field(check_callable(fn, "fn"))
    return lambda s: F(s, t)


def check_eta(eta, name: str = "eta") -> None:
    """``eta`` is None (not given) or a finite number > 0."""
    if eta is not None:
        check_positive(eta, name)


def check_states(s, name: str = "inits") -> torch.Tensor:
    """A floating tensor of states (..., d) with d ≥ 1 and at least one state → (N, d)."""
    check_tensor(s, name, min_ndim=1)
    if s.shape[-1] == 0 or s.numel() == 0:
        raise ValueError(f"{name} must have shape (..., d) with d >= 1 and at least one state, got {tuple(s.shape)}")
    return s.reshape(-1, s.shape[-1])


def check_geometry(geometry):
    geometry = Euclidean() if geometry is None else geometry
    return check_instance(geometry, "geometry", (Euclidean, Simplex), "None, Euclidean() or Simplex(...)")


def simplex_tangent_basis(K: int, dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
    """An orthonormal basis (K × (K−1) columns) of the simplex tangent space {v : Σv = 0}.

    Built from the Helmert contrasts: column j is (1, …, 1, −j, 0, …, 0)/√(j(j+1)) with j ones, so
    Bᵀ B = I and 1ᵀ B = 0 exactly (up to rounding).

    Example:
        >>> B = simplex_tangent_basis(3)
        >>> torch.allclose(B.T @ B, torch.eye(2, dtype=B.dtype)), float(B.sum(0).abs().max()) < 1e-12
        (True, True)
    """
    return _helmert(K, dtype=dtype, device=device)


class Coords:
    """Working coordinates y for a geometry: y = s (Euclidean) or s = c + B y (simplex, c = uniform)."""

    def __init__(self, geometry, d: int, dtype, device):
        self.simplex = isinstance(geometry, Simplex)
        self.d = d
        if self.simplex:
            if d < 2:
                raise ValueError("states on the simplex need d >= 2 coordinates")
            self.B = simplex_tangent_basis(d, dtype, device)
            self.c = torch.full((d,), 1.0 / d, dtype=dtype, device=device)
            self.m = d - 1
        else:
            self.B = None
            self.m = d

    def to_y(self, s: torch.Tensor) -> torch.Tensor:
        return (s - self.c) @ self.B if self.simplex else s

    def to_s(self, y: torch.Tensor) -> torch.Tensor:
        return self.c + y @ self.B.T if self.simplex else y

    def tangent(self, v: torch.Tensor) -> torch.Tensor:
        """Tangent-vector coordinates Bᵀ v (identity in Euclidean space)."""
        return v @ self.B if self.simplex else v
