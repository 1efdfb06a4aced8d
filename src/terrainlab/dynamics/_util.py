"""Small shared helpers: calling maps/fields uniformly, argument checks, simplex coordinates."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable

import torch

from ..core import Euclidean, Simplex
from ..core.geometry import simplex_tangent_basis as _helmert

KINDS = ("field", "map")


def state_fn(fn: Callable, t: float = 0.0) -> Callable[[torch.Tensor], torch.Tensor]:
    """Return g(s) calling ``fn(s)`` when ``fn`` can take one positional argument, else ``fn(s, t)``.

    Fields follow the core contract ``F(state, t)``; maps are ``T(state)``. Both ``as_map(F, η)`` and
    ``gradient_field(L)`` accept a single argument, so they are called as ``fn(s)``.
    """
    if not callable(fn):
        raise ValueError(f"fn must be callable, got {type(fn).__name__}")
    try:
        sig = inspect.signature(fn)
        required = [
            p
            for p in sig.parameters.values()
            if p.default is inspect.Parameter.empty
            and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        two = len(required) >= 2
    except (TypeError, ValueError):  # builtins without a signature
        two = False
    if two:
        return lambda s: fn(s, t)
    return fn


def as_field(fn: Callable) -> Callable:
    """A callable ``F(s, t)`` from a field written as ``F(s, t)`` or ``F(s)``."""
    g = state_fn(fn)
    if g is fn:
        return lambda s, t=0.0: fn(s)
    return fn


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind must be 'field' or 'map', got {kind!r}")


def check_eta(eta, name: str = "eta", allow_none: bool = True) -> None:
    if eta is None and allow_none:
        return
    if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not (eta > 0) or not math.isfinite(eta):
        raise ValueError(f"{name} must be a finite number > 0, got {eta!r}")


def check_int(x, name: str, minimum: int = 1) -> None:
    if isinstance(x, bool) or not isinstance(x, int) or x < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {x!r}")


def check_positive(x, name: str) -> None:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not (x > 0) or not math.isfinite(x):
        raise ValueError(f"{name} must be a finite number > 0, got {x!r}")


def check_states(s, name: str = "inits") -> torch.Tensor:
    """A floating tensor of states (..., d) → (N, d)."""
    if not torch.is_tensor(s):
        raise ValueError(f"{name} must be a tensor of states with shape (..., d), got {type(s).__name__}")
    if not torch.is_floating_point(s):
        raise ValueError(f"{name} must be floating point, got {s.dtype}")
    if s.ndim == 0 or s.shape[-1] == 0 or s.numel() == 0:
        raise ValueError(f"{name} must have shape (..., d) with d >= 1 and at least one state, got {tuple(s.shape)}")
    return s.reshape(-1, s.shape[-1])


def check_geometry(geometry):
    geometry = Euclidean() if geometry is None else geometry
    if not isinstance(geometry, (Euclidean, Simplex)):
        raise ValueError(f"geometry must be None, Euclidean() or Simplex(...), got {geometry!r}")
    return geometry


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
