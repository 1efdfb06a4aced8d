"""Seed statistics for verdicts: mean ± standard error, and where a threshold lies against mean ± 2 SE.

An experiment whose randomness matters runs several seeds, reports ``x_mean`` and ``x_se`` and calls
the claim *inconclusive* when its threshold lies inside the ±2 SE interval (issue 17 §2). These two
functions are the one place that arithmetic is written.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence

__all__ = ["gate_on_control", "mean_se", "side_of"]


def mean_se(values: Sequence[float]) -> tuple[float, float]:
    """Sample mean and its standard error s/√n (s with Bessel's correction, n − 1).

    The error is 0.0 for a single value (nothing to estimate it from: report n with it) and NaN when any
    value is not finite, so a diverged seed cannot hide inside an average.

    >>> mean_se([1.0, 2.0, 3.0])
    (2.0, 0.5773502691896257)
    >>> mean_se([4.0])
    (4.0, 0.0)
    """
    v = [float(x) for x in values]
    if not v:
        raise ValueError("values must hold at least one number, got an empty sequence")
    n = len(v)
    mean = sum(v) / n
    if not all(math.isfinite(x) for x in v):
        return mean, math.nan
    if n == 1:
        return mean, 0.0
    var = sum((x - mean) ** 2 for x in v) / (n - 1)
    return mean, math.sqrt(var / n)


def side_of(mean: float, se: float, threshold: float, k: float = 2.0) -> str:
    """Where ``threshold`` lies against the interval mean ± k·se: ``"above"`` when the whole interval
    is above it (mean − k·se > threshold), ``"below"`` when it is below (mean + k·se < threshold),
    ``"inside"`` otherwise — including a NaN mean or error (nothing can be decided).

    >>> side_of(1.0, 0.1, 0.5), side_of(1.0, 0.3, 0.5), side_of(0.0, 0.1, 0.5)
    ('above', 'inside', 'below')
    """
    if not (isinstance(k, (int, float)) and k >= 0):
        raise ValueError(f"k must be a non-negative number of standard errors, got {k!r}")
    if not all(math.isfinite(x) for x in (mean, se, threshold)):
        return "inside"
    if mean - k * se > threshold:
        return "above"
    if mean + k * se < threshold:
        return "below"
    return "inside"


def gate_on_control(verdict: str, control_verdict: str, expected: str | Collection[str]) -> str:
    """The tested setting's verdict stands only when the control — the setting measured the same way where
    the verdict must come out the other way — reads ``expected`` (one verdict or a collection of them);
    otherwise the measurement cannot tell the two settings apart and the answer is ``"inconclusive"``.

    >>> gate_on_control("fails", "holds", "holds"), gate_on_control("fails", "fails", "holds")
    ('fails', 'inconclusive')
    >>> gate_on_control("holds", "inconclusive", {"fails", "inconclusive"})
    'holds'
    """
    allowed = {expected} if isinstance(expected, str) else set(expected)
    if not allowed:
        raise ValueError("expected must name at least one verdict the control has to read, got an empty collection")
    return verdict if control_verdict in allowed else "inconclusive"
