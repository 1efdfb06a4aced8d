"""The :class:`Terrain` record: a batched torch loss L(θ) with the metadata needed to plot and audit it.

A terrain is a function L: R^d → R evaluated on a batch of states of shape ``(..., d)`` and returning
losses of shape ``(...)``. Its steepest-descent field F(θ) = −∇L(θ) drives gradient descent, which is
explicit Euler θ_{t+1} = θ_t + η·F(θ_t) (Cauchy 1847).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.func import grad, hessian, vmap

from terrainlab.core import gradient_field

Box = tuple[tuple[float, float], ...]


def check_box(box, dim: int, name: str = "box") -> Box:
    """Validate a plotting / search box ((lo_1, hi_1), …, (lo_d, hi_d)) and return it as floats."""
    try:
        pairs = tuple((float(lo), float(hi)) for lo, hi in box)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{name} must be a sequence of {dim} (lo, hi) pairs of numbers, got {box!r}"
        ) from exc
    if len(pairs) != dim:
        raise ValueError(f"{name} must have {dim} (lo, hi) pairs (one per dimension), got {len(pairs)}")
    for i, (lo, hi) in enumerate(pairs):
        if not (math.isfinite(lo) and math.isfinite(hi)) or not lo < hi:
            raise ValueError(f"{name}[{i}] must be finite with lo < hi, got ({lo}, {hi})")
    return pairs


@dataclass(frozen=True)
class Terrain:
    """A loss landscape L(θ) for θ ∈ R^dim, as a batched, differentiable torch function.

    Attributes:
        name: catalogue name, e.g. ``"bumpy_bowl"``.
        fn: batched loss, states ``(..., dim)`` → losses ``(...)``. Pure torch (no ``.item()``, no
            numpy), so it works on any device and dtype and composes with ``torch.func``.
        dim: state dimension d.
        box: plotting box ((lo, hi), …), one pair per dimension; also the default search box of
            :func:`terrainlab.terrains.critical_points`.
        formula: the formula as text.
        minima: known minimisers in closed form (or to the literature's precision, see ``notes``);
            ``()`` when the terrain has none, ``None`` when they are not known in closed form.
        notes: where the terrain comes from and anything a user should know (degeneracy, …).

    Example:
        >>> from terrainlab.terrains import bowl
        >>> T = bowl()
        >>> T(torch.tensor([[1.0, 2.0]]))
        tensor([5.])
        >>> T.grad(torch.tensor([1.0, 2.0]))
        tensor([2., 4.])
    """

    name: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    dim: int
    box: Box
    formula: str
    minima: tuple[tuple[float, ...], ...] | None = None
    notes: str = ""

    def __post_init__(self):
        if not callable(self.fn):
            raise ValueError(f"fn must be callable, got {type(self.fn).__name__}")
        if isinstance(self.dim, bool) or not isinstance(self.dim, int) or self.dim < 1:
            raise ValueError(f"dim must be an int >= 1, got {self.dim!r}")
        object.__setattr__(self, "box", check_box(self.box, self.dim))
        if self.minima is not None:
            mins = tuple(tuple(float(v) for v in m) for m in self.minima)
            if any(len(m) != self.dim for m in mins):
                raise ValueError(f"minima must be points of dimension {self.dim}, got {self.minima!r}")
            object.__setattr__(self, "minima", mins)

    # -- evaluation -----------------------------------------------------------------------------
    def check(self, theta, name: str = "theta") -> torch.Tensor:
        """Raise ``ValueError`` unless ``theta`` is a floating tensor of shape ``(..., dim)``."""
        if not torch.is_tensor(theta):
            raise ValueError(f"{name} must be a torch tensor of shape (..., {self.dim}), got {type(theta).__name__}")
        if not torch.is_floating_point(theta):
            raise ValueError(f"{name} must be floating point (float32/float64), got {theta.dtype}")
        if theta.ndim < 1 or theta.shape[-1] != self.dim:
            raise ValueError(
                f"{name} must have shape (..., {self.dim}) for terrain {self.name!r}, got {tuple(theta.shape)}"
            )
        return theta

    def __call__(self, theta: torch.Tensor) -> torch.Tensor:
        """L(θ) for a batch θ of shape ``(..., dim)``; returns shape ``(...)``."""
        return self.fn(self.check(theta))

    def grad(self, theta: torch.Tensor) -> torch.Tensor:
        """∇L(θ), batched (shape of θ), by ``torch.func.grad`` of Σ_b L(θ_b)."""
        self.check(theta)
        return grad(lambda t: self.fn(t).sum())(theta)

    def hessian(self, theta: torch.Tensor) -> torch.Tensor:
        """∇²L(θ), batched: θ of shape ``(..., dim)`` gives ``(..., dim, dim)`` (``torch.func``)."""
        self.check(theta)
        lead = theta.shape[:-1]
        flat = theta.reshape(-1, self.dim)
        H = vmap(hessian(self.fn))(flat)
        return H.reshape(*lead, self.dim, self.dim)

    def field(self):
        """The steepest-descent field F(θ) = −∇L(θ) (``terrainlab.core.gradient_field``)."""
        return gradient_field(self.fn)

    def grid(self, n: int = 101, box=None, dtype=torch.float64, device=None):
        """A plotting grid over ``box`` (default ``self.box``) for 1-D or 2-D terrains.

        Returns ``(axes, L)``: for 1-D ``axes = (x,)`` and L of shape (n,); for 2-D
        ``axes = (X, Y)`` with ``indexing="xy"`` (shape (n, n)) and L of the same shape.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 2:
            raise ValueError(f"n must be an int >= 2, got {n!r}")
        if self.dim > 2:
            raise ValueError(f"grid is for 1-D or 2-D terrains, {self.name!r} has dim {self.dim}")
        b = check_box(self.box if box is None else box, self.dim)
        lin = [torch.linspace(lo, hi, n, dtype=dtype, device=device) for lo, hi in b]
        if self.dim == 1:
            with torch.no_grad():
                return (lin[0],), self.fn(lin[0][:, None])
        X, Y = torch.meshgrid(lin[0], lin[1], indexing="xy")
        with torch.no_grad():
            L = self.fn(torch.stack([X, Y], dim=-1))
        return (X, Y), L
