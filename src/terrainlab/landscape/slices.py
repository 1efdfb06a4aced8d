"""Loss along lines and planes through parameter space, and along the segment between two models.

:func:`line` gives L(θ₀ + α d) on a vector of α, :func:`plane` L(θ₀ + α d₁ + β d₂) on a grid, with
the data-set loss L(θ) = Σ_b (n_b/N) loss_fn(model_θ, batch_b). The points are evaluated in chunks
by the evaluator in :mod:`._evaluate` (vmapped or looped, see there; an affine first layer is
computed once per batch, :mod:`._affine`). The user's module is never modified: points are
evaluated on copies (buffers included); ``mode`` works as for the curvature operators. Figures
live in :mod:`.plot`.

:func:`interpolate` evaluates the segment between two models and reports the loss barrier
B = max_α [L((1−α)θ_a + αθ_b) − ((1−α)L(θ_a) + αL(θ_b))] (Frankle, Dziugaite, Roy & Carbin 2020).

Example (a filter-normalised random plane through a small classifier):
    >>> import torch
    >>> from terrainlab.landscape import plane, random_direction
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
    >>> x, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
    >>> def loss_fn(model, batch):
    ...     return torch.nn.functional.cross_entropy(model(batch[0]), batch[1])
    >>> g = torch.Generator().manual_seed(0)
    >>> d1 = random_direction(net, generator=g); d2 = random_direction(net, generator=g)
    >>> res = plane(net, loss_fn, [(x, y)], d1, d2, torch.linspace(-1, 1, 21), torch.linspace(-1, 1, 21))
    >>> res.losses.shape
    torch.Size([21, 21])
    >>> abs(float(res.losses[10, 10]) - float(loss_fn(net, (x, y)).detach())) < 1e-5  # θ₀
    True
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from terrainlab.core.validate import check_int
from terrainlab.params import ParamFilter, ParamSpec

from ._evaluate import Evaluator


@dataclass(frozen=True)
class LineResult:
    alphas: torch.Tensor
    losses: torch.Tensor
    n_points: int
    chunk_size: int
    vectorized: bool
    seconds: float
    affine_head: bool = False
    strategy: str = "vmap"


@dataclass(frozen=True)
class PlaneResult:
    """``losses[i, j]`` is the loss at origin + alphas[i]·d1 + betas[j]·d2."""

    alphas: torch.Tensor
    betas: torch.Tensor
    losses: torch.Tensor
    n_points: int
    chunk_size: int
    vectorized: bool
    seconds: float
    affine_head: bool = False
    strategy: str = "vmap"


@dataclass(frozen=True)
class InterpolationResult:
    alphas: torch.Tensor
    losses: torch.Tensor
    barrier: float
    barrier_alpha: float
    loss_a: float
    loss_b: float
    seconds: float


def line(
    model: nn.Module,
    loss_fn: Callable,
    data,
    direction: torch.Tensor,
    alphas,
    *,
    origin: torch.Tensor | None = None,
    params: ParamFilter = None,
    dtype: torch.dtype | None = None,
    mode: str = "keep",
    chunk_size: int | None = None,
    memory_budget: int | None = None,
    affine_head: bool = True,
    strategy: str = "auto",
) -> LineResult:
    """L(origin + α d) for every α in ``alphas`` (origin = the model's θ by default)."""
    t0 = time.perf_counter()
    ev = Evaluator(model, loss_fn, data, params, dtype, mode, chunk_size, memory_budget, affine_head,
                    strategy)
    dirs = ev.directions(direction=direction)
    a = torch.as_tensor(alphas, dtype=torch.float64).reshape(-1)
    losses, chunk = ev.evaluate(ev.origin(origin), dirs, a.to(dtype=ev.dtype)[:, None])
    return LineResult(a, losses, a.numel(), chunk, ev.vectorized, time.perf_counter() - t0, ev.used_affine, ev.strategy)


def plane(
    model: nn.Module,
    loss_fn: Callable,
    data,
    d1: torch.Tensor,
    d2: torch.Tensor,
    alphas,
    betas,
    *,
    origin: torch.Tensor | None = None,
    params: ParamFilter = None,
    dtype: torch.dtype | None = None,
    mode: str = "keep",
    chunk_size: int | None = None,
    memory_budget: int | None = None,
    affine_head: bool = True,
    strategy: str = "auto",
) -> PlaneResult:
    """L(origin + α d1 + β d2) on the grid alphas × betas; ``losses[i, j]`` ↔ (alphas[i], betas[j])."""
    t0 = time.perf_counter()
    ev = Evaluator(model, loss_fn, data, params, dtype, mode, chunk_size, memory_budget, affine_head,
                    strategy)
    dirs = ev.directions(d1=d1, d2=d2)
    a = torch.as_tensor(alphas, dtype=torch.float64).reshape(-1)
    b = torch.as_tensor(betas, dtype=torch.float64).reshape(-1)
    A, B = torch.meshgrid(a, b, indexing="ij")
    C = torch.stack([A.reshape(-1), B.reshape(-1)], dim=1)
    losses, chunk = ev.evaluate(ev.origin(origin), dirs, C)
    return PlaneResult(a, b, losses.reshape(a.numel(), b.numel()), C.shape[0], chunk, ev.vectorized,
                       time.perf_counter() - t0, ev.used_affine, ev.strategy)


def interpolate(
    model_a: nn.Module,
    model_b: nn.Module,
    loss_fn: Callable,
    data,
    *,
    n_points: int = 21,
    params: ParamFilter = None,
    dtype: torch.dtype | None = None,
    mode: str = "keep",
    chunk_size: int | None = None,
) -> InterpolationResult:
    """Loss along (1−α)θ_a + αθ_b, α ∈ [0, 1], and the barrier above the linear interpolation of
    the end losses. Buffers (BatchNorm statistics) and unselected parameters are model_a's."""
    check_int(n_points, "n_points", minimum=2)
    t0 = time.perf_counter()
    spec_a = ParamSpec.from_module(model_a, params)
    spec_b = ParamSpec.from_module(model_b, params)
    if spec_a != spec_b:
        raise ValueError("model_a and model_b must have the same selected parameter names and shapes")
    ta = spec_a.vector(model_a, dtype)
    tb = spec_b.vector(model_b, dtype).to(ta)
    alphas = torch.linspace(0, 1, n_points, dtype=torch.float64)
    res = line(model_a, loss_fn, data, tb - ta, alphas, origin=ta, params=params, dtype=dtype,
               mode=mode, chunk_size=chunk_size)
    la, lb = float(res.losses[0]), float(res.losses[-1])
    gap = res.losses - ((1 - alphas) * la + alphas * lb)
    i = int(torch.argmax(gap))
    return InterpolationResult(alphas, res.losses, float(gap[i]), float(alphas[i]), la, lb,
                               time.perf_counter() - t0)
