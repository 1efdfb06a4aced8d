"""Argument checks shared by every world: one message style, the argument always named.

Each ``check_*`` raises ``ValueError("<name> must be …, got …")`` and returns the (possibly
normalised) value, so call sites read ``tol = check_positive(tol, "tol")``. Statuses, not
exceptions, are for what a *run* does (see :mod:`terrainlab.core.status`); these are for what a
*caller* passed.

Example:
    >>> check_positive(0.1, "eta")
    0.1
    >>> check_int(0, "max_iter", minimum=1)
    Traceback (most recent call last):
    ...
    ValueError: max_iter must be an int >= 1, got 0
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch

_NUM = (int, float)


def _is_number(x) -> bool:
    return isinstance(x, _NUM) and not isinstance(x, bool)


def check_number(x, name: str, *, minimum: float | None = None, maximum: float | None = None,
                 strict_min: bool = False, strict_max: bool = False, finite: bool = True):
    """A real number (not bool), optionally finite and within [minimum, maximum] (or open ends)."""
    lo = "" if minimum is None else (f" > {minimum}" if strict_min else f" >= {minimum}")
    hi = "" if maximum is None else (f" < {maximum}" if strict_max else f" <= {maximum}")
    what = f"{'a finite' if finite else 'a'} number{lo}{' and' if lo and hi else ''}{hi}"
    ok = _is_number(x) and not (isinstance(x, float) and math.isnan(x))
    if ok and finite and not math.isfinite(x):
        ok = False
    if ok and minimum is not None:
        ok = x > minimum if strict_min else x >= minimum
    if ok and maximum is not None:
        ok = x < maximum if strict_max else x <= maximum
    if not ok:
        raise ValueError(f"{name} must be {what}, got {x!r}")
    return x


def check_positive(x, name: str, *, finite: bool = True):
    """A number > 0 (finite unless ``finite=False``, which admits ``inf``)."""
    return check_number(x, name, minimum=0, strict_min=True, finite=finite)


def check_nonnegative(x, name: str, *, finite: bool = True):
    """A number >= 0."""
    return check_number(x, name, minimum=0, finite=finite)


def check_probability(x, name: str, *, open_left: bool = False, open_right: bool = False):
    """A number in [0, 1] (or with open ends)."""
    return check_number(x, name, minimum=0, maximum=1, strict_min=open_left, strict_max=open_right)


def check_int(x, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """An int (not bool) within [minimum, maximum]."""
    ok = isinstance(x, int) and not isinstance(x, bool)
    if ok and minimum is not None and x < minimum:
        ok = False
    if ok and maximum is not None and x > maximum:
        ok = False
    if not ok:
        bounds = " and ".join(
            b for b in ((f">= {minimum}" if minimum is not None else ""), (f"<= {maximum}" if maximum is not None else "")) if b
        )
        raise ValueError(f"{name} must be an int{(' ' + bounds) if bounds else ''}, got {x!r}")
    return x


def check_choice(x, name: str, choices: Iterable):
    """One of ``choices`` (compared with ``==``)."""
    choices = tuple(choices)
    if x not in choices:
        raise ValueError(f"{name} must be one of {', '.join(repr(c) for c in choices)}, got {x!r}")
    return x


def check_callable(x, name: str) -> Callable:
    if not callable(x):
        raise ValueError(f"{name} must be callable, got {type(x).__name__}")
    return x


def check_instance(x, name: str, types, what: str):
    """An instance of ``types``; ``what`` says in words what was expected (``"a scheme object"``)."""
    if not isinstance(x, types):
        raise ValueError(f"{name} must be {what}, got {x!r}")
    return x


def check_tensor(x, name: str, *, floating: bool = True, ndim: int | tuple[int, ...] | None = None,
                 min_ndim: int | None = None, nonempty: bool = False, finite: bool = False,
                 shape: tuple | None = None) -> torch.Tensor:
    """A tensor; by default floating point (real or complex). ``shape`` may hold ``None`` wildcards."""
    if not torch.is_tensor(x):
        raise ValueError(f"{name} must be a tensor, got {type(x).__name__}")
    if floating and not (torch.is_floating_point(x) or torch.is_complex(x)):
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if ndim is not None:
        dims = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.ndim not in dims:
            want = " or ".join(str(d) for d in dims)
            raise ValueError(f"{name} must have {want} dimension(s), got shape {tuple(x.shape)}")
    if min_ndim is not None and x.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimension(s), got shape {tuple(x.shape)}")
    if shape is not None and (
        len(shape) != x.ndim or any(s is not None and s != d for s, d in zip(shape, x.shape))
    ):
        want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name} must have shape {want}, got {tuple(x.shape)}")
    if nonempty and x.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(x.shape)}")
    if finite and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return x


def check_floating_dtype(x, name: str, *, allow_none: bool = True):
    """A floating-point ``torch.dtype`` (``torch.float32``, ``torch.float64``, …), or None if allowed."""
    if x is None and allow_none:
        return x
    if not (isinstance(x, torch.dtype) and x.is_floating_point):
        raise ValueError(f"{name} must be a floating-point torch.dtype{' (or None)' if allow_none else ''}, got {x!r}")
    return x


def check_same_dtype(x: torch.Tensor, name: str, ref: torch.Tensor, ref_name: str) -> torch.Tensor:
    """``x`` has the dtype of ``ref`` (no silent promotion between float32 and float64)."""
    if x.dtype != ref.dtype:
        raise ValueError(f"{name} must have the dtype of {ref_name} ({ref.dtype}), got {x.dtype}")
    return x


def check_simplex(p, name: str, *, atol: float | None = None) -> torch.Tensor:
    """Rows of ``p`` are probability vectors: finite, ≥ −atol, summing to 1 within atol.

    The default ``atol`` is ``1e3·eps`` of the dtype (≈ 1e-13 in float64, 1e-4 in float32).
    """
    check_tensor(p, name, min_ndim=1, nonempty=True)
    atol = 1e3 * torch.finfo(p.dtype).eps if atol is None else atol
    # fast path, one host sync: a NaN or ±inf entry makes its row sum non-finite or the minimum −inf,
    # so finite row sums within atol of 1 and a minimum ≥ −atol prove every condition below
    if bool(((p.sum(-1) - 1).abs().amax() <= atol * max(1, p.shape[-1])) & (p.amin() >= -atol)):
        return p
    if not bool(torch.isfinite(p).all()):
        raise ValueError(f"{name} must be finite probability vectors (no NaN or inf)")
    if bool((p < -atol).any()):
        raise ValueError(f"{name} must be probability vectors (entries >= 0), got a minimum of {float(p.min()):.3g}")
    err = float((p.sum(-1) - 1).abs().max())
    if err > atol * max(1, p.shape[-1]):
        raise ValueError(f"{name} must be probability vectors (rows summing to 1), got a row sum off by {err:.3g}")
    return p
