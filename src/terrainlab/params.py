"""A model as a function of one flat parameter vector: shared by every world that needs θ ↦ L(θ).

The curvature operators, the landscape slicer and anyone else who treats a ``torch.nn.Module`` as
a function of its weights use this one module (it lived in ``terrainlab.curvature.params``).

A :class:`ParamSpec` fixes *which* parameters of a module form the vector θ (a filter: all trainable
parameters, a list of names, a name predicate, or a list of tensors), in which order, and their
shapes. It flattens a module's current values to one vector, splits a vector back into a
``{name: tensor}`` dict for :func:`torch.func.functional_call`, and writes a vector into a module.

Example:
    >>> net = torch.nn.Linear(3, 2)
    >>> spec = ParamSpec.from_module(net, params=lambda name, p: name.endswith("weight"))
    >>> spec.names, spec.numel
    (('weight',), 6)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call

from terrainlab.core.validate import check_choice, check_instance

ParamFilter = None | Callable[[str, torch.Tensor], bool] | Iterable


@dataclass(frozen=True)
class ParamSpec:
    """The ordered selection of parameters that make up the flat vector θ."""

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]

    @property
    def numel(self) -> int:
        n = 0
        for s in self.shapes:
            k = 1
            for d in s:
                k *= d
            n += k
        return n

    @property
    def sizes(self) -> tuple[int, ...]:
        out = []
        for s in self.shapes:
            k = 1
            for d in s:
                k *= d
            out.append(k)
        return tuple(out)

    @classmethod
    def from_module(cls, module: nn.Module, params: ParamFilter = None) -> ParamSpec:
        """Select parameters of ``module``.

        ``params`` is ``None`` (every parameter with ``requires_grad``), a predicate
        ``(name, tensor) -> bool``, an iterable of names, or an iterable of the module's parameter
        tensors. Selecting by module prefix ("layer1.") is a predicate:
        ``lambda n, p: n.startswith("layer1.")``.
        """
        check_instance(module, "model", nn.Module, "a torch.nn.Module")
        named = list(module.named_parameters())
        if params is None:
            chosen = [(n, p) for n, p in named if p.requires_grad]
        elif callable(params):
            chosen = [(n, p) for n, p in named if params(n, p)]
        else:
            items = list(params)
            if all(isinstance(x, str) for x in items):
                known = dict(named)
                missing = [x for x in items if x not in known]
                if missing:
                    raise ValueError(f"params names not found in model: {missing}")
                wanted = set(items)
                chosen = [(n, p) for n, p in named if n in wanted]
            elif all(isinstance(x, torch.Tensor) for x in items):
                ids = {id(x) for x in items}
                chosen = [(n, p) for n, p in named if id(p) in ids]
                if len(chosen) != len(ids):
                    raise ValueError("params tensors must all be parameters of model")
            else:
                raise ValueError(
                    "params must be None, a predicate (name, tensor) -> bool, "
                    "a list of parameter names or a list of parameter tensors"
                )
        if not chosen:
            raise ValueError("params selects no parameters of the model")
        return cls(tuple(n for n, _ in chosen), tuple(tuple(p.shape) for _, p in chosen))

    # ---------------------------------------------------------------- conversions
    def flatten(self, tensors: Mapping[str, torch.Tensor] | Iterable[torch.Tensor]) -> torch.Tensor:
        """Concatenate tensors (a dict by name, or a sequence in spec order) into one vector."""
        if isinstance(tensors, Mapping):
            seq = [tensors[n] for n in self.names]
        else:
            seq = list(tensors)
        return torch.cat([t.reshape(-1) for t in seq])

    def unflatten(self, vec: torch.Tensor) -> dict[str, torch.Tensor]:
        """Split a vector of length ``numel`` (or a batch ``(..., numel)``) into a dict by name."""
        if vec.shape[-1] != self.numel:
            raise ValueError(f"vector must have last dimension {self.numel}, got {vec.shape[-1]}")
        lead = vec.shape[:-1]
        parts = torch.split(vec, self.sizes, dim=-1)
        return {n: p.reshape(*lead, *s) for n, p, s in zip(self.names, parts, self.shapes)}

    def state(self, fixed: Mapping[str, torch.Tensor], vec: torch.Tensor) -> dict[str, torch.Tensor]:
        """``fixed`` (buffers and unselected parameters, e.g. from :func:`module_state`) with the
        selected parameters taken from ``vec``: the state ``functional_call`` evaluates at θ = vec."""
        state = dict(fixed)
        state.update(self.unflatten(vec))
        return state

    def vector(self, module: nn.Module, dtype: torch.dtype | None = None) -> torch.Tensor:
        """The module's current θ as a detached vector (a copy)."""
        named = dict(module.named_parameters())
        v = torch.cat([named[n].detach().reshape(-1) for n in self.names])
        return v.to(dtype) if dtype is not None else v.clone()

    @torch.no_grad()
    def assign(self, module: nn.Module, vec: torch.Tensor) -> None:
        """Write a vector into the module's selected parameters (in place)."""
        named = dict(module.named_parameters())
        for n, t in self.unflatten(vec).items():
            named[n].copy_(t)


def module_state(
    module: nn.Module, dtype: torch.dtype | None = None, exclude: Iterable[str] = ()
) -> dict[str, torch.Tensor]:
    """Detached copies of all parameters and buffers (cast to ``dtype`` if floating point).

    Used as the fixed part of ``functional_call``; the copies mean running statistics of
    BatchNorm layers in the *user's* module are never updated by an evaluation.
    """
    skip = set(exclude)
    out = {}
    for n, t in list(module.named_parameters()) + list(module.named_buffers()):
        if n in skip:
            continue
        t = t.detach()
        if dtype is not None and t.is_floating_point():
            t = t.to(dtype)
        out[n] = t.clone()
    return out


class FunctionalModel:
    """A stand-in for ``module`` whose calls run ``functional_call(module, state, ...)``.

    ``loss_fn(model, batch)`` receives this object; calling it evaluates the module at the given
    parameter values without touching the module's own tensors. Attribute access is forwarded to
    the module so loss functions that read e.g. ``model.num_classes`` keep working.
    """

    def __init__(self, module: nn.Module, state: Mapping[str, torch.Tensor]):
        self._module = module
        self._state = state

    def __call__(self, *args, **kwargs):
        return functional_call(self._module, self._state, args, kwargs, strict=False)

    def __getattr__(self, name):
        return getattr(self._module, name)


def cast_batch(batch, dtype: torch.dtype | None, device: torch.device | None):
    """Move a batch (tensor / tuple / list / dict, nested) to ``device`` and floating tensors to
    ``dtype``. Integer tensors (class labels) keep their dtype."""
    if isinstance(batch, torch.Tensor):
        t = batch
        if device is not None and t.device != device:
            t = t.to(device)
        if dtype is not None and t.is_floating_point() and t.dtype != dtype:
            t = t.to(dtype)
        return t
    if isinstance(batch, tuple):
        return tuple(cast_batch(b, dtype, device) for b in batch)
    if isinstance(batch, list):
        return [cast_batch(b, dtype, device) for b in batch]
    if isinstance(batch, dict):
        return {k: cast_batch(v, dtype, device) for k, v in batch.items()}
    return batch


def batch_size(batch) -> int:
    """Number of samples in a batch: the leading dimension of its first tensor."""
    if isinstance(batch, torch.Tensor):
        if batch.ndim == 0:
            raise ValueError("a batch tensor must have a leading sample dimension")
        return int(batch.shape[0])
    if isinstance(batch, (tuple, list)):
        for b in batch:
            try:
                return batch_size(b)
            except ValueError:
                continue
    if isinstance(batch, dict):
        for b in batch.values():
            try:
                return batch_size(b)
            except ValueError:
                continue
    raise ValueError("cannot infer the batch size: the batch holds no tensor with a sample dimension")


def check_data(data) -> list:
    """Data must be re-iterable (a list of batches, a DataLoader); one-shot iterators are refused
    because every matrix-vector product passes over the data again."""
    if isinstance(data, (torch.Tensor, dict)):
        raise ValueError("data must be an iterable of batches, e.g. [(x, y)], not a single batch")
    try:
        it = iter(data)
    except TypeError as e:
        raise ValueError(f"data must be an iterable of batches, got {type(data).__name__}") from e
    if it is data:
        raise ValueError("data must be re-iterable (a list or DataLoader), not a one-shot iterator")
    return data


MODES = ("keep", "bn_eval", "eval")


@contextlib.contextmanager
def temporary_mode(module: nn.Module, mode: str):
    """Run a block with ``mode`` ("keep", "bn_eval": BatchNorm layers in eval, "eval": all in
    eval); every submodule's ``training`` flag is restored on exit, even after an exception."""
    check_choice(mode, "mode", MODES)
    if mode == "keep":
        yield
        return
    saved = [(m, m.training) for m in module.modules()]
    try:
        for m, _ in saved:
            if mode == "eval" or isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.training = False
        yield
    finally:
        for m, t in saved:
            m.training = t
