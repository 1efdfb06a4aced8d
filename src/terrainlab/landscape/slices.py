"""Loss along lines and planes through parameter space, evaluated in vectorised chunks.

For a grid of points θ(α, β) = θ₀ + α d₁ + β d₂ the data-set loss
L(θ) = Σ_b (n_b/N) loss_fn(model_θ, batch_b) is evaluated with ``torch.func.functional_call``
vectorised over a chunk of points by ``torch.func.vmap``: one batched forward per data batch and
chunk instead of one forward per point. The chunk size is chosen from ``memory_budget`` (bytes)
(default 32 MiB on CPU, 1 GiB on accelerators) and an estimate of per-point memory (θ plus the activations of one forward on the largest batch,
measured with forward hooks), or given as ``chunk_size``. If a model cannot be vmapped (e.g.
BatchNorm in training mode updating running statistics in place), evaluation falls back to a loop
over points and the result says ``vectorized=False``.

Affine first layer (``affine_head=True``, default): when the model is an ``nn.Sequential`` whose
first parametrised child is a plain ``Linear``/``ConvNd`` applied to the input ``loss_fn`` passes
in, that layer's output is *affine* in the plane coordinates, z(θ₀ + Σ c_k d_k) =
z(θ₀) + Σ c_k A(u; d_k) (the layer is linear in its weight and bias jointly). It is computed once
per batch (1 + r layer evaluations instead of one per point); every point then starts from
z₀ + Σ c_k z_k. This is exact up to floating-point rounding; results say ``affine_head=True``
when it was used. Any other model takes the general path. The user's module is never modified: points
are evaluated on copies (buffers included); ``mode`` works as for the curvature operators.

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

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call, vmap

from terrainlab.curvature.params import (
    FunctionalModel,
    ParamFilter,
    ParamSpec,
    batch_size,
    cast_batch,
    check_data,
    module_state,
    temporary_mode,
)


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


class _Evaluator:
    def __init__(self, model, loss_fn, data, params, dtype, mode, chunk_size, memory_budget,
                 affine=True, strategy="auto"):
        if not isinstance(model, nn.Module):
            raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not callable(loss_fn):
            raise ValueError("loss_fn must be callable as loss_fn(model, batch)")
        if chunk_size is not None and not (isinstance(chunk_size, int) and chunk_size >= 1):
            raise ValueError(f"chunk_size must be a positive int or None, got {chunk_size!r}")
        if memory_budget is not None and not memory_budget > 0:
            raise ValueError(f"memory_budget must be positive (bytes), got {memory_budget!r}")
        self.model, self.loss_fn = model, loss_fn
        self.data = check_data(data)
        self.spec = ParamSpec.from_module(model, params)
        first = dict(model.named_parameters())[self.spec.names[0]]
        self.dtype = dtype or first.dtype
        self.device = first.device
        self.cast = dtype
        self.mode = mode
        self.fixed = module_state(model, dtype, exclude=self.spec.names)
        self.n = sum(batch_size(b) for b in self.data)
        self.chunk_size = chunk_size
        # CPU: small chunks keep activations in cache (measured fastest, bench/landscape.py);
        # CUDA: a quarter of the memory free now (batching points is what pays there).
        if memory_budget is None:
            memory_budget = 2**25 if self.device.type == "cpu" else 2**30
            if self.device.type == "cuda":
                memory_budget = max(memory_budget, torch.cuda.mem_get_info(self.device)[0] // 4)
        self.memory_budget = memory_budget
        self.vectorized = True
        if strategy not in ("auto", "vmap", "loop"):
            raise ValueError(f"strategy must be 'auto', 'vmap' or 'loop', got {strategy!r}")
        if strategy == "auto":
            strategy = "loop" if self.device.type == "cpu" and chunk_size is None else "vmap"
        self.strategy = strategy
        self.head = _affine_head(model) if affine else None
        self.used_affine = False

    def origin(self, given: torch.Tensor | None = None) -> torch.Tensor:
        """θ₀: the model's current selected parameters, or ``given`` on the evaluation device/dtype."""
        if given is None:
            return self.spec.vector(self.model, self.dtype)
        return given.to(device=self.device, dtype=self.dtype)

    def directions(self, **named: torch.Tensor) -> torch.Tensor:
        """Check each direction (shape (numel,) over the selected parameters) and stack them as
        the rows of an (r, numel) matrix on the evaluation device/dtype."""
        size = self.spec.numel
        for name, d in named.items():
            if not isinstance(d, torch.Tensor) or d.shape != (size,):
                raise ValueError(f"{name} must be a tensor of shape ({size},) over the selected parameters")
        return torch.stack([d.to(device=self.device, dtype=self.dtype) for d in named.values()])

    def _per_point_bytes(self, batch) -> int:
        total = [0]

        def hook(_m, _i, out):
            if isinstance(out, torch.Tensor):
                total[0] += out.numel() * out.element_size()

        hs = [m.register_forward_hook(hook) for m in self.model.modules() if not list(m.children())]
        try:
            with torch.no_grad():
                self._loss_one(self.origin(), batch, dict(self.fixed))
        finally:
            for h in hs:
                h.remove()
        return 2 * self.spec.numel * torch.finfo(self.dtype).bits // 8 + 2 * total[0]

    def _loss_one(self, theta, batch, fixed):
        m = FunctionalModel(self.model, self.spec.state(fixed, theta))
        return self.loss_fn(m, batch).reshape(())

    def evaluate(self, origin: torch.Tensor, dirs: torch.Tensor, coeffs: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Loss at the points origin + coeffs @ dirs (coeffs: (n_points, r), dirs: (r, size))."""
        n_points = coeffs.shape[0]
        out = torch.zeros(n_points, dtype=torch.float64)
        origin = origin.to(device=self.device, dtype=self.dtype)
        dirs = dirs.to(device=self.device, dtype=self.dtype)
        coeffs = coeffs.to(device=self.device, dtype=self.dtype)
        batches = [(batch_size(b), cast_batch(b, self.cast, self.device)) for b in self.data]
        chunk = self.chunk_size
        if chunk is None:
            big = max(range(len(batches)), key=lambda i: batches[i][0])
            per = max(self._per_point_bytes(batches[big][1]), 1)
            chunk = int(max(1, min(n_points, self.memory_budget // per)))
        if self.strategy == "loop":
            with temporary_mode(self.model, self.mode), torch.no_grad():
                try:
                    return self._evaluate_loop(origin, dirs, coeffs, batches), 1
                except (RuntimeError, TypeError, AttributeError):
                    self.strategy = "vmap"  # e.g. a module that cannot be deep-copied
        with temporary_mode(self.model, self.mode), torch.no_grad():
            heads = [self._head_outputs(origin, dirs, b) for _, b in batches]
            for i in range(0, n_points, chunk):
                j = min(n_points, i + chunk)
                c = coeffs[i:j]
                pts = origin + c @ dirs
                acc = torch.zeros(j - i, dtype=torch.float64)
                for (n_b, b), hd in zip(batches, heads):
                    acc += (n_b / self.n) * self._chunk_losses(pts, c, b, hd).double().cpu()
                out[i:j] = acc
        return out, chunk

    def _evaluate_loop(self, origin, dirs, coeffs, batches) -> torch.Tensor:
        """One point at a time on a private deep copy whose selected parameters alias one flat
        vector: θ = origin + c @ dirs is written with a single ``addmv`` per point (no autograd,
        no per-tensor copies); with an affine head the first layer is replaced by the cached
        z₀ + Σ c_k z_k for the recorded input."""
        work = copy.deepcopy(self.model)
        if self.cast is not None:
            work.to(self.cast)
        named = dict(work.named_parameters())
        flat = origin.clone()
        for n, v in self.spec.unflatten(flat).items():
            named[n].requires_grad_(False)
            named[n].data = v
        cache = None
        if self.head is not None:
            cache = _HeadCache(work, self.head)
            for _, b in batches:
                rec = _Recorder(work, None)
                self.loss_fn(rec, b)
                if len(rec.calls) == 1 and not rec.calls[0][1] and len(rec.calls[0][0]) == 1:
                    cache.add(rec.calls[0][0][0], self.spec, dirs)
            cache.install(work)
            self.used_affine = bool(cache.z)
        # accumulate on the model's device: writing each loss into a host tensor would force one
        # device synchronisation per point on an accelerator
        out = torch.zeros(coeffs.shape[0], dtype=torch.float64, device=self.device)
        dT = dirs.T.contiguous()
        weights = [n_b / self.n for n_b, _ in batches]
        for i in range(coeffs.shape[0]):
            c = coeffs[i]
            torch.addmv(origin, dT, c, out=flat)
            if cache is not None:
                cache.c = c
            tot = 0.0
            for w, (_, b) in zip(weights, batches):
                tot = tot + w * self.loss_fn(work, b).reshape(()).double()
            out[i] = tot
        self.vectorized = False
        return out.cpu()

    def _head_outputs(self, origin, dirs, batch):
        """For an affine first layer z = A(u; W, b) (Linear/Conv, linear in (W, b) jointly), the
        pre-activation at origin + Σ c_k d_k is z_0 + Σ c_k A(u; d_k^W, d_k^b): computed once per
        batch, it replaces one layer evaluation per point by an axpy (exact up to rounding)."""
        if self.head is None or not self.vectorized:
            return None
        idx = self.head
        rec = _Recorder(self.model, self._state(origin))
        self.loss_fn(rec, batch)
        if len(rec.calls) != 1:
            return None
        args, kwargs = rec.calls[0]
        if kwargs or len(args) != 1 or not isinstance(args[0], torch.Tensor):
            return None
        x_in = args[0]
        u = x_in
        for m in list(self.model)[:idx]:
            u = m(u)
        layer = self.model[idx]
        names = [n for n, _ in layer.named_parameters()]
        full0 = self._state(origin)
        z0 = functional_call(layer, {n: full0[f"{idx}.{n}"] for n in names}, (u,))
        zs = []
        for d in dirs:
            dd = self.spec.unflatten(d)
            st = {n: dd.get(f"{idx}.{n}", torch.zeros_like(full0[f"{idx}.{n}"])) for n in names}
            zs.append(functional_call(layer, st, (u,)))
        self.used_affine = True
        return x_in, z0, torch.stack(zs)

    def _state(self, theta):
        return self.spec.state(self.fixed, theta)

    def _chunk_losses(self, pts, coeffs, batch, head):
        if self.vectorized:
            try:
                if head is not None:
                    x_in, z0, zs = head

                    def one(th, c):
                        z = z0 + torch.tensordot(c, zs, dims=1)
                        m = _AffineProxy(self.model, self._state(th), self.head, x_in, z)
                        return self.loss_fn(m, batch).reshape(())

                    return vmap(one)(pts, coeffs)
                return vmap(lambda th: self._loss_one(th, batch, self.fixed))(pts)
            except RuntimeError:
                self.vectorized = False
                self.used_affine = False
        return torch.stack([self._loss_one(p, batch, {k: v.clone() for k, v in self.fixed.items()}) for p in pts])


_AFFINE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _affine_head(model) -> int | None:
    """Index of the first parametrised child of an ``nn.Sequential`` if it is a plain Linear/ConvNd
    (no hooks, no parametrisations) and every child before it holds no parameters or buffers."""
    if not isinstance(model, nn.Sequential):
        return None
    for i, m in enumerate(model):
        if any(True for _ in m.parameters()) or any(True for _ in m.buffers()):
            plain = type(m) in _AFFINE and not m._forward_hooks and not m._forward_pre_hooks
            plain = plain and not hasattr(m, "parametrizations")
            return i if plain else None
    return None


class _HeadCache(nn.Module):
    """Replaces children 0..idx of a Sequential: on a recorded input it returns the cached affine
    first-layer output z₀ + Σ c_k z_k, on anything else it runs the original modules."""

    def __init__(self, work: nn.Sequential, idx: int):
        super().__init__()
        self.idx = idx
        self.prefix = list(work)[:idx]
        self.layer = work[idx]
        self.z: dict[int, tuple] = {}
        self.c = None

    def add(self, x, spec, dirs):
        u = x
        for m in self.prefix:
            u = m(u)
        z0 = self.layer(u)
        names = [n for n, _ in self.layer.named_parameters()]
        zs = []
        for d in dirs:
            dd = spec.unflatten(d)
            st = {n: dd.get(f"{self.idx}.{n}", torch.zeros_like(getattr(self.layer, n))) for n in names}
            zs.append(functional_call(self.layer, st, (u,)))
        zs = torch.stack(zs)
        self.z[id(x)] = (x, z0, zs, zs.reshape(zs.shape[0], -1).T)

    def install(self, work: nn.Sequential):
        for j in range(1, self.idx + 1):
            work[j] = nn.Identity()
        work[0] = self

    def forward(self, u):
        hit = self.z.get(id(u))
        if hit is not None and hit[0] is u:
            _, z0, _, zt = hit  # z0 + Σ_k c_k z_k in one gemv pass
            return torch.addmv(z0.reshape(-1), zt, self.c).reshape(z0.shape)
        for m in self.prefix:
            u = m(u)
        return self.layer(u)


class _Recorder:
    def __init__(self, module, state):
        self._module, self._state, self.calls = module, state, []

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        if self._state is None:
            return self._module(*args, **kwargs)
        return functional_call(self._module, self._state, args, kwargs, strict=False)

    def __getattr__(self, name):
        return getattr(self._module, name)


class _AffineProxy:
    """Model stand-in: called on the recorded input, it starts from the precomputed first-layer
    output z and runs the remaining children; any other call runs the full functional model."""

    def __init__(self, module, state, idx, x_in, z):
        self._module, self._state, self._idx, self._x, self._z = module, state, idx, x_in, z

    def __call__(self, *args, **kwargs):
        if len(args) == 1 and not kwargs and args[0] is self._x:
            h = self._z
            for j, m in enumerate(self._module):
                if j <= self._idx:
                    continue
                p = f"{j}."
                sub = {k[len(p):]: v for k, v in self._state.items() if k.startswith(p)}
                h = functional_call(m, sub, (h,)) if sub else m(h)
            return h
        return functional_call(self._module, self._state, args, kwargs, strict=False)

    def __getattr__(self, name):
        return getattr(self._module, name)


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
    ev = _Evaluator(model, loss_fn, data, params, dtype, mode, chunk_size, memory_budget, affine_head,
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
    ev = _Evaluator(model, loss_fn, data, params, dtype, mode, chunk_size, memory_budget, affine_head,
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
    if not (isinstance(n_points, int) and n_points >= 2):
        raise ValueError(f"n_points must be an int ≥ 2, got {n_points!r}")
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


def plot_plane(result: PlaneResult, ax=None, trajectory: torch.Tensor | None = None, levels: int = 30,
               log: bool = True, title: str | None = None, labels=("α", "β"), zlim=None):
    """Filled contour of a plane slice; ``trajectory`` (T, 2) coordinates from :func:`project` in
    the same (α, β) coordinates are drawn on top (start ○, end □). ``zlim=(lo, hi)`` fixes the
    colour scale (in loss units) so several planes can share it."""
    import numpy as np

    from terrainlab.plotting import BLACK, VERMILLION, figure, style

    if ax is None:
        fig, ax = figure("single", height=3.0)
    else:
        fig = ax.figure
    Z = result.losses.double().numpy().T  # rows ↔ betas for contourf(X=alphas, Y=betas)
    finite = np.isfinite(Z)
    zmax = float(np.nanpercentile(np.where(finite, Z, np.nan), 98)) if finite.any() else 1.0
    zmin = None
    if zlim is not None:
        zmin, zmax = float(zlim[0]), float(zlim[1])
    Zc = np.clip(np.where(finite, Z, zmax), zmin, zmax)
    if zlim is not None:
        lo, hi = (np.log10(max(zmin, 1e-12)), np.log10(max(zmax, 1e-12))) if log else (zmin, zmax)
        levels = np.linspace(lo, hi, levels if isinstance(levels, int) else len(levels))
    with style():
        if log:
            Zc = np.log10(np.maximum(Zc, 1e-12))
        cs = ax.contourf(result.alphas.numpy(), result.betas.numpy(), Zc, levels=levels, cmap="viridis")
        ax.contour(result.alphas.numpy(), result.betas.numpy(), Zc, levels=levels, colors="white",
                   linewidths=0.25, alpha=0.5)
        cb = fig.colorbar(cs, ax=ax)
        cb.set_label("log₁₀ loss" if log else "loss")
        if trajectory is not None:
            tr = torch.as_tensor(trajectory).double().numpy()
            ax.plot(tr[:, 0], tr[:, 1], color=VERMILLION, lw=1.0, marker=".", ms=2, label="trajectory")
            ax.plot(tr[0, 0], tr[0, 1], "o", mfc="none", color=BLACK, ms=5, label="start")
            ax.plot(tr[-1, 0], tr[-1, 1], "s", mfc="none", color=BLACK, ms=5, label="end")
            ax.legend(frameon=False, loc="upper right")
        ax.set_xlabel(labels[0])
        ax.set_ylabel(labels[1])
        if title:
            ax.set_title(title)
    return fig
