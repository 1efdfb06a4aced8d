"""Model checkpoints: written atomically, read back with ``torch.load(..., weights_only=True)``.

A checkpoint is one ``torch.save`` file holding ``{"format", "class", "config", "state_dict", "meta"}``:
the state dict (CPU tensors), the model's ``config`` (its constructor arguments, when it has one) and
a ``meta`` dict of plain values (numbers, strings, lists, dicts, tensors) — what the training run was.
Nothing in it needs pickled code, so it loads with ``weights_only=True``. The bytes land in a temporary
file that replaces the target in one ``os.replace`` (:func:`terrainlab.atlas._io.atomic_save`), so a killed
run leaves the old checkpoint or the new one, never half of one.

Example:
    >>> import tempfile, pathlib, torch
    >>> from terrainlab.seq import TinyGPT
    >>> m = TinyGPT(12, d_model=16, n_layers=1, n_heads=2, context=8, generator=torch.Generator().manual_seed(0))
    >>> path = save_checkpoint(pathlib.Path(tempfile.mkdtemp()) / "gpt.pt", m, {"steps": 10})
    >>> m2, meta = load_checkpoint(path, TinyGPT)
    >>> meta, all(torch.equal(a, b) for a, b in zip(m.parameters(), m2.parameters()))
    ({'steps': 10}, True)
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from ..core.validate import check_callable, check_instance

FORMAT = "terrainlab.seq.checkpoint/1"
_PLAIN = (str, int, float, bool, type(None))


def _check_plain(x, name: str) -> None:
    if isinstance(x, _PLAIN) or torch.is_tensor(x):
        return
    if isinstance(x, (list, tuple)):
        for i, v in enumerate(x):
            _check_plain(v, f"{name}[{i}]")
        return
    if isinstance(x, dict):
        for k, v in x.items():
            if not isinstance(k, str):
                raise ValueError(f"{name} must have string keys, got {k!r}")
            _check_plain(v, f"{name}[{k!r}]")
        return
    raise ValueError(f"{name} must hold only numbers, strings, None, tensors, lists and dicts "
                     f"(loadable with weights_only=True), got {type(x).__name__}")


def save_checkpoint(path: str | os.PathLike, model: nn.Module, meta: dict | None = None) -> Path:
    """Write ``model``'s weights, its ``config`` and ``meta`` to ``path`` atomically; returns the path."""
    from ..atlas._io import atomic_save  # the atlas's one atomic-write helper (imported when used)

    check_instance(model, "model", nn.Module, "an nn.Module")
    meta = {} if meta is None else meta
    check_instance(meta, "meta", dict, "a dict (or None)")
    _check_plain(meta, "meta")
    config = getattr(model, "config", None)
    if config is not None:
        _check_plain(config, "model.config")
    payload = {
        "format": FORMAT,
        "class": type(model).__name__,
        "config": config,
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "meta": meta,
    }
    return atomic_save(path, lambda tmp: torch.save(payload, tmp))


def load_checkpoint(path: str | os.PathLike, model_or_factory, *, map_location="cpu") -> tuple[nn.Module, dict]:
    """Read a checkpoint (``weights_only=True``) into a model; returns ``(model, meta)``.

    ``model_or_factory`` is a module (its weights are replaced in place; shapes must match) or a
    callable taking the stored config as keyword arguments (``TinyGPT``, ``GRULM``) that builds one.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path must be an existing checkpoint file, got {str(path)!r}")
    payload = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"path must be a terrainlab.seq checkpoint ({FORMAT}), got {str(path)!r}")
    if isinstance(model_or_factory, nn.Module):
        model = model_or_factory
    else:
        check_callable(model_or_factory, "model_or_factory")
        if payload["config"] is None:
            raise ValueError("model_or_factory must be a module: the checkpoint stores no config to build one")
        model = model_or_factory(**payload["config"])
        check_instance(model, "model_or_factory", nn.Module, "a module or a callable returning one")
    model.load_state_dict(payload["state_dict"], strict=True)
    return model, payload["meta"]
