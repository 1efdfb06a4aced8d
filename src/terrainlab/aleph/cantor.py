"""Ternary digits and the Devil's staircase in floating point and exactly: where each float format goes wrong.

The forum reply says "Cantor's fractals need more than fp64" (../shared/aleph.md §6: an abandoned ancestor of
aleph routing warped positions through the Devil's staircase). This module measures the grain of truth in it.

**Ternary digits** (Cantor 1884, "De la puissance des ensembles parfaits de points", Acta Math. 4). A position
x ∈ [0, 1] has the expansion x = Σ_{i≥1} d_i 3^{-i}, d_i ∈ {0, 1, 2}, read off level by level by the natural
iteration::

    x_0 = x,   y_i = 3 x_{i−1},   d_i = min(⌊y_i⌋, 2),   x_i = y_i − d_i            (i = 1, 2, …)

(the ``min`` keeps x = 1 = 0.222…₃ inside the recursion; every other x gets the expansion that does not end in
2s: 1/3 = 0.1000…₃). The Cantor set C is the set of x with an expansion free of the digit 1.

**The Devil's staircase** (Cantor function), with N the first level whose digit is 1 (N = ∞ if none)::

    c(x) = Σ_{i<N} (d_i / 2) · 2^{-i}  +  2^{-N}                   e.g. c(1/4) = c(0.0202…₃) = 0.0101…₂ = 1/3

continuous, non-decreasing, constant on every removed middle third, c(0) = 0, c(1) = 1.

**Where a float format goes wrong.** In a binary format with a p-bit significand the position is first rounded
(relative error ≤ 2^{-p}), then every product 3x is rounded again (y − ⌊y⌋ is exact in binary floating point,
so the multiplication is the only other error). An error e in x_{i−1} becomes 3e in x_i: errors grow ×3 per
level, so after n levels the error is 3ⁿ·E, with E = δ₀ + ε₁/3 + ε₂/9 + … the accumulated rounding errors (each
a fraction of 2^{-p}). Digit n goes wrong when y_n = 3x_{n−1} lies within the error 3ⁿE of a digit boundary 1 or
2, which for a uniformly placed orbit has probability 2·3^{n−1}|E|; summing the hazard,
P(first wrong level > n) ≈ exp(−(3ⁿ − 1)|E|), so the first wrong level is

    n* ≈ log₃(1/|E|) + O(1) = p · log₃2 + O(1),   log₃2 = 0.6309…

(the O(1) is positive, ≈ +1.4 measured: log₃(1/|E|) is large when the rounding errors happen to be small).

bfloat16 (p = 8) ≈ 5, float16 (11) ≈ 7, float32 (24) ≈ 15, float64 (53) ≈ 33, x87 extended (64) ≈ 40,
binary128 (113) ≈ 71 ternary levels, plus about one level (the O(1) term), with a spread of a few levels from
where the orbit happens to pass a boundary. No fixed width holds an unbounded depth: depth D needs p ≳ D·log₂3
bits. Exact rational arithmetic (Python integers; :func:`ternary_digits_exact`) never goes wrong.

The staircase value inherits this as a conditioning: c is Hölder continuous with exponent log₃2
(|c(x) − c(x′)| ≤ C·|x − x′|^{log₃2}), so the rounding of x alone (δ ≈ 2^{-p}) can move c by ≈ 2^{-p·log₃2} at
points of the Cantor set — in float64 about 2^{-33}, not 2^{-52} — whatever arithmetic follows.

Functions: :func:`ternary_digits` (float path, any torch floating dtype), :func:`ternary_digits_exact` (exact
path), :func:`ternary_digits_emulated` (a p-bit binary float with round-to-nearest-even emulated exactly with
integers, for widths torch lacks: 64, 113), :func:`round_to_bits`, :func:`cantor_staircase` /
:func:`cantor_staircase_exact`, :func:`cantor_positions` (random positions given by their exact digits) and
:func:`first_wrong_level` (→ :class:`FailureLevels`, frozen).

Example:
    >>> from fractions import Fraction
    >>> ternary_digits_exact([Fraction(1, 4), Fraction(3, 4)], 6).tolist()
    [[0, 2, 0, 2, 0, 2], [2, 0, 2, 0, 2, 0]]
    >>> cantor_staircase_exact(Fraction(1, 4)), cantor_staircase_exact(Fraction(3, 4))
    (Fraction(1, 3), Fraction(2, 3))
    >>> _, pos = cantor_positions(200, 80, generator=torch.Generator().manual_seed(0))
    >>> r = first_wrong_level(pos, torch.float32, 40)
    >>> r.bits, round(r.predicted, 2), 12 <= r.median <= 18
    (24, 15.14, True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import torch
from torch import Tensor

from terrainlab.core.validate import check_choice, check_int

__all__ = [
    "LOG3_2",
    "FailureLevels",
    "cantor_positions",
    "cantor_staircase",
    "cantor_staircase_exact",
    "first_wrong_level",
    "first_wrong_levels",
    "round_to_bits",
    "significand_bits",
    "ternary_digits",
    "ternary_digits_emulated",
    "ternary_digits_exact",
]

LOG3_2 = math.log(2) / math.log(3)  # ternary digits per bit: 0.6309…
POSITION_KINDS = ("uniform", "cantor")


def significand_bits(dtype: torch.dtype) -> int:
    """p, the significand width of a floating torch dtype including the hidden bit (bfloat16 8, float16 11,
    float32 24, float64 53).

    >>> [significand_bits(d) for d in (torch.bfloat16, torch.float16, torch.float32, torch.float64)]
    [8, 11, 24, 53]
    """
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise ValueError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
    return 1 - int(round(math.log2(torch.finfo(dtype).eps)))  # eps = 2^(1 − p)


def _as_fraction(x, name: str) -> Fraction:
    if type(x) is Fraction and 0 <= x <= 1:
        return x
    if isinstance(x, bool) or not isinstance(x, (int, float, Fraction)):
        raise ValueError(f"{name} must hold ints, floats or fractions.Fraction in [0, 1], got {x!r}")
    if isinstance(x, float) and not math.isfinite(x):
        raise ValueError(f"{name} must hold finite numbers in [0, 1], got {x!r}")
    f = Fraction(x)
    if not 0 <= f <= 1:
        raise ValueError(f"{name} must lie in [0, 1], got {x!r}")
    return f


def _positions(positions, name: str = "positions") -> list[Fraction]:
    if torch.is_tensor(positions):
        if not torch.is_floating_point(positions) or positions.ndim != 1:
            raise ValueError(f"{name} must be a 1-D floating tensor or a sequence of numbers, got {positions!r}")
        positions = positions.double().tolist()
    if isinstance(positions, (int, float, Fraction)) or not isinstance(positions, Sequence) or not len(positions):
        raise ValueError(f"{name} must be a non-empty sequence of numbers in [0, 1], got {positions!r}")
    return [_as_fraction(x, name) for x in positions]


def ternary_digits(x: Tensor, levels: int) -> Tensor:
    """The first ``levels`` ternary digits of every entry of the 1-D floating tensor ``x``, computed in
    ``x.dtype`` by the natural iteration y = 3x, d = min(⌊y⌋, 2), x ← y − d. Returns int64 of shape
    (len(x), levels). The error of the float product 3x grows ×3 per level (module docstring).

    >>> ternary_digits(torch.tensor([0.25, 0.75, 1.0], dtype=torch.float64), 4).tolist()
    [[0, 2, 0, 2], [2, 0, 2, 0], [2, 2, 2, 2]]
    """
    if not torch.is_tensor(x) or not torch.is_floating_point(x):
        raise ValueError(f"x must be a floating-point tensor, got {type(x).__name__ if not torch.is_tensor(x) else x.dtype}")
    if x.ndim != 1:
        raise ValueError(f"x must be 1-D, got shape {tuple(x.shape)}")
    check_int(levels, "levels", minimum=1)
    if not bool(((x >= 0) & (x <= 1)).all()):
        raise ValueError("x must lie in [0, 1] (no NaN)")
    digits = []
    three = torch.tensor(3.0, dtype=x.dtype)
    two = torch.tensor(2.0, dtype=x.dtype)
    for _ in range(levels):
        y = x * three  # rounded to x.dtype: the one inexact operation
        d = torch.minimum(torch.floor(y), two)
        x = y - d  # exact: the fractional part of a binary float is a binary float
        digits.append(d)
    return torch.stack(digits, dim=1).to(torch.int64)


def ternary_digits_exact(positions, levels: int) -> Tensor:
    """The first ``levels`` ternary digits of each position (ints, floats taken at their exact binary value, or
    fractions.Fraction in [0, 1]) by the same iteration in exact integer arithmetic: for x = a/b,
    d = min(⌊3a/b⌋, 2), a ← 3a − d·b. Never wrong. Returns int64 of shape (len(positions), levels).

    >>> ternary_digits_exact([Fraction(1, 3), 1], 4).tolist()
    [[1, 0, 0, 0], [2, 2, 2, 2]]
    """
    xs = _positions(positions)
    check_int(levels, "levels", minimum=1)
    out = []
    for f in xs:
        a, b = f.numerator, f.denominator
        row = []
        for _ in range(levels):
            a *= 3
            d = min(a // b, 2)
            a -= d * b
            row.append(d)
        out.append(row)
    return torch.tensor(out, dtype=torch.int64)


def _round_int(n: int, bits: int) -> int:
    """n ≥ 0 rounded to ``bits`` significant bits, ties to even."""
    s = n.bit_length() - bits
    if s <= 0:
        return n
    q = n >> s
    r = n - (q << s)
    half = 1 << (s - 1)
    if r > half or (r == half and q & 1):
        q += 1
    return q << s


def round_to_bits(x, bits: int, *, min_exponent: int | None = None) -> Fraction:
    """The binary floating-point number with a ``bits``-bit significand nearest to x ∈ [0, 1] (ties to even),
    exactly, as a Fraction. ``min_exponent`` e_min (optional) bounds the quantum below by 2^(e_min − bits + 1),
    i.e. gradual underflow into subnormals as in IEEE 754 (float32: e_min = −126).

    >>> round_to_bits(Fraction(1, 3), 8), float(round_to_bits(Fraction(1, 3), 24)) == float(torch.tensor(1 / 3, dtype=torch.float32))
    (Fraction(171, 512), True)
    """
    f = _as_fraction(x, "x")
    check_int(bits, "bits", minimum=2)
    if min_exponent is not None:
        check_int(min_exponent, "min_exponent", maximum=0)
    if f == 0:
        return f
    a, b = f.numerator, f.denominator
    e = a.bit_length() - b.bit_length()  # 2^(e−1) < a/b < 2^(e+1)
    if a << max(-e, 0) < b << max(e, 0):
        e -= 1  # now 2^e ≤ a/b < 2^(e+1)
    if min_exponent is not None:
        e = max(e, min_exponent)
    k = bits - 1 - e  # quantum 2^-k
    num, den = (a << k, b) if k >= 0 else (a, b << -k)
    q, r = divmod(num, den)
    if 2 * r > den or (2 * r == den and q & 1):
        q += 1
    return Fraction(q, 1 << k) if k >= 0 else Fraction(q << -k)


def ternary_digits_emulated(positions, bits: int, levels: int) -> Tensor:
    """The float path of :func:`ternary_digits` for a binary format with a ``bits``-bit significand (unbounded
    exponent, round to nearest even), emulated exactly with integers: the position is rounded by
    :func:`round_to_bits`, then every product 3x is rounded to ``bits`` significant bits. With bits = 8, 24, 53
    it reproduces bfloat16, float32, float64 digit for digit (tested); it reaches widths torch lacks (x87
    extended 64, IEEE binary128 113). Returns int64 of shape (len(positions), levels)."""
    xs = _positions(positions)
    check_int(bits, "bits", minimum=2)
    check_int(levels, "levels", minimum=1)
    return torch.tensor([_emulated_row(f, bits, levels) for f in xs], dtype=torch.int64)


def _emulated_row(f: Fraction, bits: int, levels: int, reference: list[int] | None = None) -> list[int]:
    """The digits of one position in the emulated ``bits``-bit format; with ``reference``, stop after the first
    digit that differs from it (the row is then shorter than ``levels``)."""
    r = round_to_bits(f, bits)
    n, den = r.numerator, r.denominator  # den = 2^E: every later value is a multiple of 2^-E
    shift = den.bit_length() - 1
    row = []
    for i in range(levels):
        y = _round_int(3 * n, bits)
        d = min(y >> shift, 2)
        n = y - (d << shift)
        row.append(d)
        if reference is not None and d != reference[i]:
            break
    return row


def cantor_staircase(x: Tensor, levels: int | None = None) -> Tensor:
    """The Devil's staircase c(x) = Σ_{i<N} (d_i/2)·2^{-i} + 2^{-N} (N the first level with digit 1), computed
    entirely in ``x.dtype`` from the float digits of :func:`ternary_digits`'s iteration, over ``levels`` levels
    (default p + 2 for the dtype's p-bit significand: deeper terms are below its resolution).

    >>> cantor_staircase(torch.tensor([0.0, 0.25, 1 / 3, 0.75, 1.0], dtype=torch.float64)).tolist()
    [0.0, 0.3333333333333333, 0.5, 0.6666666666666666, 1.0]
    """
    if not torch.is_tensor(x) or not torch.is_floating_point(x):
        raise ValueError(f"x must be a floating-point tensor, got {type(x).__name__ if not torch.is_tensor(x) else x.dtype}")
    if levels is None:
        levels = significand_bits(x.dtype) + 2
    check_int(levels, "levels", minimum=1)
    if not bool(((x >= 0) & (x <= 1)).all()):
        raise ValueError("x must lie in [0, 1] (no NaN)")
    shape = x.shape
    x = x.reshape(-1)
    three = torch.tensor(3.0, dtype=x.dtype)
    two = torch.tensor(2.0, dtype=x.dtype)
    c = torch.zeros_like(x)
    active = torch.ones_like(x, dtype=torch.bool)
    scale = torch.tensor(0.5, dtype=x.dtype)
    for _ in range(levels):
        y = x * three
        d = torch.minimum(torch.floor(y), two)
        x = y - d
        c = torch.where(active & (d > 0), c + scale, c)
        active = active & (d != 1)
        scale = scale / 2
    return c.reshape(shape)


def cantor_staircase_exact(x, *, max_levels: int = 100_000) -> Fraction:
    """c(x) exactly, as a Fraction, for x (int, float, Fraction) in [0, 1]: the ternary orbit of a rational is
    eventually periodic, so the digits are followed until the first digit 1 or until the state a/b repeats,
    and the periodic tail is summed as a geometric series. ValueError if neither happens within ``max_levels``
    levels (a denominator with a very long ternary period)."""
    f = _as_fraction(x, "x")
    check_int(max_levels, "max_levels", minimum=1)
    a, b = f.numerator, f.denominator
    seen: dict[int, int] = {}
    bits: list[int] = []  # binary digits of c: d_i / 2 before the first 1
    for i in range(max_levels):
        if a in seen:
            j = seen[a]
            head = sum(Fraction(bt, 1 << (k + 1)) for k, bt in enumerate(bits[:j]))
            cycle = sum(Fraction(bt, 1 << (k + 1)) for k, bt in enumerate(bits[j:], start=j))
            return head + cycle / (1 - Fraction(1, 1 << (i - j)))
        seen[a] = i
        a *= 3
        d = min(a // b, 2)
        a -= d * b
        if d == 1:
            return sum(Fraction(bt, 1 << (k + 1)) for k, bt in enumerate(bits)) + Fraction(1, 1 << (i + 1))
        bits.append(d // 2)
    raise ValueError(f"max_levels={max_levels} reached before the ternary expansion of x={x!r} closed a period")


def cantor_positions(n: int, levels: int, *, kind: str = "uniform", generator: torch.Generator | None = None
                     ) -> tuple[Tensor, list[Fraction]]:
    """``n`` random positions given by their exact ternary digits: ``kind="uniform"`` draws every digit from
    {0, 1, 2} (uniform on [0, 1) to resolution 3^-levels), ``kind="cantor"`` from {0, 2} (the Cantor measure:
    points of the Cantor set). Returns (digits, int64 (n, levels); positions, Fraction Σ d_i 3^-i).
    The positions are not dyadic, so every binary format must round them."""
    check_int(n, "n", minimum=1)
    check_int(levels, "levels", minimum=1)
    check_choice(kind, "kind", POSITION_KINDS)
    d = torch.randint(0, 3 if kind == "uniform" else 2, (n, levels), generator=generator, dtype=torch.int64)
    if kind == "cantor":
        d = 2 * d
    den = 3**levels
    positions = [Fraction(int("".join(map(str, row)), 3), den) for row in d.tolist()]
    return d, positions


@dataclass(frozen=True)
class FailureLevels:
    """Where one float format first gets a ternary digit wrong, per position.

    ``first_wrong[j]`` is the first level (1-based) at which the format's digits of position j differ from the
    exact digits, or 0 when all ``levels`` digits agree. ``survival[ℓ−1]`` is the share of positions whose
    digits 1…ℓ are all right. ``predicted`` = bits · log₃2."""

    label: str
    bits: int
    levels: int
    first_wrong: Tensor
    survival: Tensor

    @property
    def predicted(self) -> float:
        return self.bits * LOG3_2

    @property
    def failed(self) -> Tensor:
        return self.first_wrong > 0

    @property
    def fraction_failed(self) -> float:
        return float(self.failed.double().mean())

    def _levels(self) -> Tensor:
        return self.first_wrong[self.failed].double()

    @property
    def mean(self) -> float:
        """Mean first wrong level over the positions that failed (NaN if none did)."""
        v = self._levels()
        return float(v.mean()) if v.numel() else math.nan

    @property
    def median(self) -> float:
        """Median first wrong level, a position that never failed counting as level ∞ (NaN if most never did)."""
        if self.fraction_failed <= 0.5:
            return math.nan
        v = torch.where(self.failed, self.first_wrong.double(), torch.tensor(math.inf, dtype=torch.float64))
        return float(v.sort().values[(v.numel() - 1) // 2])

    def quantile(self, q: float) -> float:
        """The q-quantile of the first wrong level over the positions that failed (NaN if none did)."""
        v = self._levels()
        return float(torch.quantile(v, q)) if v.numel() else math.nan


def first_wrong_level(positions, dtype: torch.dtype | int | None, levels: int, *,
                      exact_digits: Tensor | None = None) -> FailureLevels:
    """For each position (a sequence of ints, floats or Fractions in [0, 1], taken exactly), the first level at
    which the digits of a float format differ from the exact digits (:class:`FailureLevels`).

    ``dtype``: a floating torch dtype (the position is rounded to it exactly, with its subnormal range, then
    :func:`ternary_digits` runs in it), an int p (a p-bit format emulated by :func:`ternary_digits_emulated`),
    or None (the exact path itself — the control, which never fails). ``exact_digits`` (optional, int64
    (n, ≥ levels)) are the reference digits when already known (e.g. from :func:`cantor_positions`)."""
    xs = _positions(positions)
    check_int(levels, "levels", minimum=1)
    if exact_digits is None:
        exact_digits = ternary_digits_exact(xs, levels)
    if not torch.is_tensor(exact_digits) or exact_digits.ndim != 2 or exact_digits.shape[0] != len(xs) \
            or exact_digits.shape[1] < levels:
        raise ValueError(f"exact_digits must be an int tensor of shape ({len(xs)}, >= {levels})")
    ref = exact_digits[:, :levels].to(torch.int64)
    if dtype is None:
        label, bits = "exact", 0
        digits = ternary_digits_exact(xs, levels)
    elif isinstance(dtype, torch.dtype):
        bits = significand_bits(dtype)
        label = str(dtype).removeprefix("torch.")
        e_min = int(round(math.log2(torch.finfo(dtype).tiny)))
        rounded = [float(round_to_bits(f, bits, min_exponent=e_min)) for f in xs]  # exact in float64
        digits = ternary_digits(torch.tensor(rounded, dtype=torch.float64).to(dtype), levels)
    elif isinstance(dtype, int) and not isinstance(dtype, bool) and dtype >= 2:
        bits, label = dtype, f"{dtype}-bit (emulated)"
        first = []
        for f, r in zip(xs, ref.tolist()):  # stop each position at its first wrong digit
            row = _emulated_row(f, bits, levels, r)
            first.append(len(row) if row[-1] != r[len(row) - 1] else 0)
        return _failure_levels(label, bits, levels, torch.tensor(first, dtype=torch.int64))
    else:
        raise ValueError(f"dtype must be a floating torch.dtype, an int number of significand bits >= 2, or None, "
                         f"got {dtype!r}")
    wrong = digits != ref
    any_wrong = wrong.any(dim=1)
    first = torch.where(any_wrong, wrong.to(torch.int64).argmax(dim=1) + 1, torch.zeros_like(any_wrong, dtype=torch.int64))
    return _failure_levels(label, bits, levels, first)


def first_wrong_levels(positions, dtypes=(torch.bfloat16, torch.float32, torch.float64), levels: int = 64, *,
                       exact_digits: Tensor | None = None) -> dict[str, FailureLevels]:
    """:func:`first_wrong_level` for several formats at once (torch dtypes and/or emulated widths; None for the
    exact control), the exact digits computed once; keyed by each result's label.

    >>> _, pos = cantor_positions(100, 80, generator=torch.Generator().manual_seed(1))
    >>> r = first_wrong_levels(pos, (torch.bfloat16, torch.float64, None), 60)
    >>> {k: (v.bits, v.fraction_failed) for k, v in r.items()}
    {'bfloat16': (8, 1.0), 'float64': (53, 1.0), 'exact': (0, 0.0)}
    """
    xs = _positions(positions)
    check_int(levels, "levels", minimum=1)
    if isinstance(dtypes, (torch.dtype, int)) or dtypes is None or not isinstance(dtypes, Sequence) or not dtypes:
        raise ValueError(f"dtypes must be a non-empty sequence of formats, got {dtypes!r}")
    if exact_digits is None:
        exact_digits = ternary_digits_exact(xs, levels)
    out = {}
    for fmt in dtypes:
        r = first_wrong_level(xs, fmt, levels, exact_digits=exact_digits)
        out[r.label] = r
    return out


def _failure_levels(label: str, bits: int, levels: int, first: Tensor) -> FailureLevels:
    lv = torch.arange(1, levels + 1)
    alive = (first[:, None] == 0) | (first[:, None] > lv[None, :])  # digits 1…ℓ all right
    return FailureLevels(label=label, bits=bits, levels=levels, first_wrong=first,
                         survival=alive.double().mean(dim=0))
