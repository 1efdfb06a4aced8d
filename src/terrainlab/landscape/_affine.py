"""Affine first layer: evaluate a Sequential's first Linear/Conv once per batch, not once per point.

When the model is an ``nn.Sequential`` whose first parametrised child is a plain ``Linear`` /
``ConvNd`` applied to the input ``loss_fn`` passes in, that layer's output is *affine* in the slice
coordinates (the layer is linear in its weight and bias jointly):

    z(θ₀ + Σ c_k d_k) = z(θ₀) + Σ c_k A(u; d_k).

It is computed once per batch (1 + r layer evaluations instead of one per point); every point then
starts from z₀ + Σ c_k z_k. Exact up to floating-point rounding; results say ``affine_head=True``
when it was used. Any other model takes the general path.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call

_AFFINE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def affine_head(model) -> int | None:
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


class HeadCache(nn.Module):
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


class Recorder:
    def __init__(self, module, state):
        self._module, self._state, self.calls = module, state, []

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        if self._state is None:
            return self._module(*args, **kwargs)
        return functional_call(self._module, self._state, args, kwargs, strict=False)

    def __getattr__(self, name):
        return getattr(self._module, name)


class AffineProxy:
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
