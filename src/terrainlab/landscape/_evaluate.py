"""The evaluator behind every slice: loss at many points θ = origin + Σ c_k d_k of one model.

For a batch of points the data-set loss L(θ) = Σ_b (n_b/N) loss_fn(model_θ, batch_b) is evaluated
with ``torch.func.functional_call`` vectorised over a chunk of points by ``torch.func.vmap``: one
batched forward per data batch and chunk instead of one forward per point. The chunk size is
chosen from ``memory_budget`` (bytes; default 32 MiB on CPU, a quarter of the free memory (≥ 1 GiB)
on CUDA) and an estimate of per-point memory (θ plus the activations of one forward on the largest
batch, measured with forward hooks), or given as ``chunk_size``. On the CPU the default strategy is
a loop over points on a private copy of the model (measured fastest there, ``bench/landscape.py``).
If a model cannot be vmapped (e.g. BatchNorm in training mode updating running statistics in
place) evaluation falls back to the loop and the result says ``vectorized=False``. With an affine
first layer the evaluator uses :mod:`._affine`. The user's module is never modified.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.func import functional_call, vmap

from terrainlab.core.validate import (
    check_callable,
    check_choice,
    check_floating_dtype,
    check_instance,
    check_int,
    check_positive,
    check_tensor,
)
from terrainlab.params import (
    MODES,
    FunctionalModel,
    ParamSpec,
    batch_size,
    cast_batch,
    check_data,
    module_state,
    temporary_mode,
)

from ._affine import AffineProxy, HeadCache, Recorder, affine_head


class Evaluator:
    def __init__(self, model, loss_fn, data, params, dtype, mode, chunk_size, memory_budget,
                 affine=True, strategy="auto"):
        check_instance(model, "model", nn.Module, "a torch.nn.Module")
        check_callable(loss_fn, "loss_fn")
        check_floating_dtype(dtype, "dtype")
        if chunk_size is not None:
            check_int(chunk_size, "chunk_size", minimum=1)
        if memory_budget is not None:
            check_positive(memory_budget, "memory_budget")
        check_choice(strategy, "strategy", ("auto", "vmap", "loop"))
        check_choice(mode, "mode", MODES)
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
        if strategy == "auto":
            strategy = "loop" if self.device.type == "cpu" and chunk_size is None else "vmap"
        self.strategy = strategy
        self.head = affine_head(model) if affine else None
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
            check_tensor(d, name, shape=(size,))  # one entry per selected parameter
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
            cache = HeadCache(work, self.head)
            for _, b in batches:
                rec = Recorder(work, None)
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
        rec = Recorder(self.model, self._state(origin))
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
                        m = AffineProxy(self.model, self._state(th), self.head, x_in, z)
                        return self.loss_fn(m, batch).reshape(())

                    return vmap(one)(pts, coeffs)
                return vmap(lambda th: self._loss_one(th, batch, self.fixed))(pts)
            except RuntimeError:
                self.vectorized = False
                self.used_affine = False
        return torch.stack([self._loss_one(p, batch, {k: v.clone() for k, v in self.fixed.items()}) for p in pts])
