"""Adapting nn.Modules and callables to the core field contract F(h, t)."""

from __future__ import annotations

import inspect

import torch.nn as nn


def takes_time(f) -> bool:
    """True when ``f`` accepts a second positional argument (the time t)."""
    target = f.forward if isinstance(f, nn.Module) else f
    try:
        params = list(inspect.signature(target).parameters.values())
    except (TypeError, ValueError):
        return False
    pos = [
        p
        for p in params
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    optional = [
        p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is not p.empty
    ]
    return len(pos) >= 2 or (len(pos) == 1 and any(p.name in ("t", "time") for p in optional))


def as_field(f, time_arg: bool | None = None):
    """Wrap ``f`` as F(h, t): modules that take only h ignore t (autonomous fields)."""
    if not callable(f):
        raise ValueError(f"field must be an nn.Module or a callable, got {type(f).__name__}")
    use_t = takes_time(f) if time_arg is None else bool(time_arg)
    if use_t:
        return lambda h, t: f(h, t)
    return lambda h, t: f(h)
