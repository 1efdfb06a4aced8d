"""terrainlab.aleph.cantor: exact ternary digits and staircase values, the float failure level per format, bad input."""

import math
from fractions import Fraction

import pytest
import torch

from terrainlab.aleph.cantor import (
    LOG3_2,
    FailureLevels,
    cantor_positions,
    cantor_staircase,
    cantor_staircase_exact,
    first_wrong_level,
    first_wrong_levels,
    round_to_bits,
    significand_bits,
    ternary_digits,
    ternary_digits_emulated,
    ternary_digits_exact,
)

DTYPES = (torch.bfloat16, torch.float16, torch.float32, torch.float64)


def test_exact_digits_of_known_points():
    d = ternary_digits_exact([Fraction(1, 4), Fraction(3, 4), Fraction(1, 3), Fraction(2, 3), 0, 1], 12).tolist()
    assert d[0] == [0, 2] * 6  # 1/4 = 0.0202…₃
    assert d[1] == [2, 0] * 6  # 3/4 = 0.2020…₃
    assert d[2] == [1] + [0] * 11  # 1/3 = 0.1₃ (the expansion not ending in 2s)
    assert d[3] == [2] + [0] * 11
    assert d[4] == [0] * 12 and d[5] == [2] * 12  # 1 = 0.222…₃
    # a float is taken at its exact binary value: 0.5 = 0.1111…₃
    assert ternary_digits_exact([0.5], 8).tolist() == [[1] * 8]


def test_float64_digits_of_exact_binary_points():
    x = torch.tensor([0.25, 0.75, 0.5, 0.0, 1.0], dtype=torch.float64)
    assert ternary_digits(x, 20).tolist() == ternary_digits_exact([0.25, 0.75, 0.5, 0, 1], 20).tolist()


def test_staircase_known_values_exact_and_float():
    assert cantor_staircase_exact(Fraction(1, 4)) == Fraction(1, 3)
    assert cantor_staircase_exact(Fraction(3, 4)) == Fraction(2, 3)
    assert cantor_staircase_exact(Fraction(1, 3)) == Fraction(1, 2) == cantor_staircase_exact(Fraction(1, 2))
    assert cantor_staircase_exact(0) == 0 and cantor_staircase_exact(1) == 1
    assert cantor_staircase_exact(Fraction(1, 10)) == Fraction(1, 5)  # 1/10 = 0.00220022…₃ → 0.00110011…₂
    assert cantor_staircase_exact(Fraction(1, 9)) == Fraction(1, 4)
    c = cantor_staircase(torch.tensor([0.25, 0.75, 1 / 3, 0.5], dtype=torch.float64))
    assert torch.allclose(c, torch.tensor([1 / 3, 2 / 3, 0.5, 0.5], dtype=torch.float64), rtol=0, atol=1e-15)


def test_staircase_monotone_and_self_similar():
    grid = [Fraction(k, 729) for k in range(730)] + [Fraction(k, 1000) for k in range(1001)]
    grid.sort()
    vals = [cantor_staircase_exact(x) for x in grid]
    assert all(a <= b for a, b in zip(vals, vals[1:]))
    assert all(cantor_staircase_exact(x / 3) == cantor_staircase_exact(x) / 2 for x in grid[::50])  # c(x/3) = c(x)/2
    for dtype in (torch.float64, torch.float32):
        c = cantor_staircase(torch.linspace(0, 1, 20001, dtype=dtype))
        assert bool((c.diff() >= 0).all())


def test_round_to_bits_matches_torch_casts():
    g = torch.Generator().manual_seed(3)
    _, pos = cantor_positions(50, 60, generator=g)
    for x in pos:
        assert float(round_to_bits(x, 53)) == float(x)  # Fraction → float is correctly rounded
        r = round_to_bits(x, 24)
        assert float(torch.tensor(float(r), dtype=torch.float64).float()) == r  # representable in float32
        half_ulp = Fraction(2) ** (math.floor(math.log2(x)) - 24)
        assert abs(x - r) <= half_ulp  # and the nearest one
    assert round_to_bits(Fraction(1, 3), 8) == Fraction(171, 512)
    assert round_to_bits(Fraction(1, 2**30), 8, min_exponent=-14) == 0  # below float16's subnormals
    assert float(round_to_bits(Fraction(1, 2**20), 11, min_exponent=-14)) == float(torch.tensor(2.0**-20).half())


def test_emulation_reproduces_torch_formats_digit_for_digit():
    g = torch.Generator().manual_seed(1)
    for kind in ("uniform", "cantor"):
        _, pos = cantor_positions(60, 90, kind=kind, generator=g)
        for dtype in DTYPES:
            p = significand_bits(dtype)
            ours = first_wrong_level(pos, dtype, 70)
            emulated = first_wrong_level(pos, p, 70)
            assert torch.equal(ours.first_wrong, emulated.first_wrong), (kind, dtype)
            x = torch.tensor([float(round_to_bits(f, p)) for f in pos], dtype=torch.float64).to(dtype)
            assert torch.equal(ternary_digits(x, 70), ternary_digits_emulated(pos, p, 70))


@pytest.mark.parametrize("dtype", DTYPES)
def test_float_failure_level_near_p_log3_2(dtype):
    digits, pos = cantor_positions(400, 80, generator=torch.Generator().manual_seed(0))
    r = first_wrong_level(pos, dtype, 60, exact_digits=digits)
    p = significand_bits(dtype)
    assert r.bits == p and r.predicted == pytest.approx(p * LOG3_2)
    assert r.fraction_failed == 1.0  # every position goes wrong at a finite level
    # derived: n* ≈ p·log₃2 + log₃(1/c), c ≈ 1/4…1/2 → about one level above p·log₃2
    assert abs(r.median - p * LOG3_2) <= 2 and abs(r.mean - p * LOG3_2) <= 2
    assert 0 < r.mean - p * LOG3_2 < 2
    assert r.survival[0] >= r.survival[-1] and bool((r.survival.diff() <= 0).all())
    assert r.survival[-1] == 0


def test_wider_emulated_formats_fail_later_in_proportion():
    digits, pos = cantor_positions(150, 110, generator=torch.Generator().manual_seed(2))
    means = {p: first_wrong_level(pos, p, 100, exact_digits=digits).mean for p in (24, 53, 113)}
    slope = (means[113] - means[24]) / (113 - 24)
    assert abs(slope - LOG3_2) < 0.05
    assert abs(means[113] - 113 * LOG3_2) <= 2


def test_exact_path_never_fails_up_to_level_200():
    for kind in ("uniform", "cantor"):
        digits, pos = cantor_positions(100, 200, kind=kind, generator=torch.Generator().manual_seed(4))
        assert torch.equal(ternary_digits_exact(pos, 200), digits)
        r = first_wrong_level(pos, None, 200, exact_digits=digits)
        assert r.label == "exact" and r.fraction_failed == 0.0 and bool((r.survival == 1).all())
        assert math.isnan(r.mean) and math.isnan(r.median)
    # arbitrary rationals too (periodic expansions): exact digits against the base-3 expansion by long division
    xs = [Fraction(a, b) for a, b in ((1, 7), (5, 13), (22, 23), (1, 1000))]
    d = ternary_digits_exact(xs, 200)
    for x, row in zip(xs, d.tolist()):
        assert sum(Fraction(di, 3 ** (i + 1)) for i, di in enumerate(row)) <= x < \
            sum(Fraction(di, 3 ** (i + 1)) for i, di in enumerate(row)) + Fraction(1, 3**200)


def test_cantor_positions_kinds():
    d, pos = cantor_positions(30, 40, kind="cantor", generator=torch.Generator().manual_seed(0))
    assert set(d.unique().tolist()) <= {0, 2} and len(pos) == 30
    assert all(cantor_staircase_exact(x) == sum(Fraction(di // 2, 2 ** (i + 1)) for i, di in enumerate(row))
               for x, row in zip(pos[:5], d.tolist()))


def test_first_wrong_levels_several_formats_at_once():
    digits, pos = cantor_positions(80, 100, generator=torch.Generator().manual_seed(5))
    r = first_wrong_levels(pos, (torch.float32, 64, None), 90, exact_digits=digits)
    assert list(r) == ["float32", "64-bit (emulated)", "exact"]
    assert torch.equal(r["float32"].first_wrong, first_wrong_level(pos, torch.float32, 90).first_wrong)
    assert r["float32"].mean < r["64-bit (emulated)"].mean and r["exact"].fraction_failed == 0
    with pytest.raises(ValueError, match="dtypes"):
        first_wrong_levels(pos, torch.float32, 10)
    with pytest.raises(ValueError, match="dtypes"):
        first_wrong_levels(pos, (), 10)


def test_failure_levels_is_frozen():
    r = first_wrong_level([Fraction(1, 4)], torch.float32, 10)
    assert isinstance(r, FailureLevels)
    with pytest.raises(AttributeError):
        r.bits = 3


def test_bad_input():
    with pytest.raises(ValueError, match="dtype"):
        first_wrong_level([0.25], torch.int64, 10)
    with pytest.raises(ValueError, match="dtype"):
        first_wrong_level([0.25], "float32", 10)
    with pytest.raises(ValueError, match="dtype"):
        significand_bits(torch.int32)
    with pytest.raises(ValueError, match="levels"):
        first_wrong_level([0.25], torch.float32, 0)
    with pytest.raises(ValueError, match="levels"):
        ternary_digits(torch.tensor([0.25]), 0)
    with pytest.raises(ValueError, match="levels"):
        ternary_digits_exact([0.25], -1)
    with pytest.raises(ValueError, match="positions"):
        first_wrong_level([0.25, 1.5], torch.float32, 10)
    with pytest.raises(ValueError, match="positions"):
        ternary_digits_exact([Fraction(-1, 3)], 5)
    with pytest.raises(ValueError, match="positions"):
        first_wrong_level([], torch.float32, 10)
    with pytest.raises(ValueError, match="x"):
        ternary_digits(torch.tensor([0.5, 1.01]), 5)
    with pytest.raises(ValueError, match="x"):
        ternary_digits(torch.tensor([1, 0]), 5)
    with pytest.raises(ValueError, match="x"):
        cantor_staircase(torch.tensor([float("nan")]))
    with pytest.raises(ValueError, match="x"):
        cantor_staircase_exact(2)
    with pytest.raises(ValueError, match="max_levels"):
        cantor_staircase_exact(Fraction(1, 1_000_003), max_levels=10)
    with pytest.raises(ValueError, match="exact_digits"):
        first_wrong_level([0.25], torch.float32, 10, exact_digits=torch.zeros(1, 5, dtype=torch.int64))
    with pytest.raises(ValueError, match="kind"):
        cantor_positions(3, 5, kind="dyadic")
    with pytest.raises(ValueError, match="bits"):
        round_to_bits(Fraction(1, 3), 1)
