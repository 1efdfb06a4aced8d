"""aleph.cantor_precision — "Cantor's fractals need more than fp64": at which ternary level each float format goes
wrong, and what the remedy is.

The claim. The forum reply says Cantor's fractals need more than fp64 (../shared/aleph.md §6: the author's
abandoned ancestor line warped positions through the Devil's staircase and found the ternary digits going wrong at
some level in fp64, earlier in fp32 and bf16). Read literally — a wider float would do — it is tested here.

The equations (Cantor 1884; :mod:`terrainlab.aleph.cantor`). Digits by the natural iteration y_i = 3x_{i−1},
d_i = min(⌊y_i⌋, 2), x_i = y_i − d_i; the staircase c(x) = Σ_{i<N} (d_i/2)·2^{-i} + 2^{-N}, N the first level
with digit 1. In a binary format with a p-bit significand the position is rounded (error ≲ 2^{-p}) and each
product 3x again; an error grows ×3 per level, so the first wrong level is n* ≈ p·log₃2 + O(1) (log₃2 = 0.631):
bf16 ≈ 5, fp16 ≈ 7, fp32 ≈ 15, fp64 ≈ 33, x87 extended (64 bits) ≈ 40, binary128 (113 bits) ≈ 71.

What is measured. Positions with known exact digits (:func:`~terrainlab.aleph.cantor.cantor_positions`: 200
uniform ternary digits, so x is not dyadic and every format must round it), five seeds (three in --quick; ctx.seed + i). For each
format — bfloat16, float16, float32, float64 in torch, and 64- and 113-bit binary formats emulated exactly with
integers (checked digit for digit against the torch formats in tests/aleph/test_cantor.py) — the first level
(up to 100) whose digit differs from the exact digit, per position. Per seed: the mean first wrong level per
format and the least-squares slope of that mean against p; reported as mean ± SE over the seeds
(atlas.stats.mean_se). Also: the same for points of the Cantor set (digits in {0, 2}, the next seed), the
survival curve (share of positions whose first ℓ digits are all right), the share of positions already wrong at
the author's levels, and the staircase value c(x) at the Cantor-set points computed in each torch dtype against
the exact c, next to the exact c at the rounded position (:func:`staircase_errors`: the loss is the conditioning
of c, Hölder with exponent log₃2, not the arithmetic).

Control. The exact path — the same iteration in Python integers (x = a/b: d = min(⌊3a/b⌋, 2), a ← 3a − d·b) —
measured the same way to level 200 on the same positions: it must never go wrong. If it does (the comparison
would then not tell arithmetic error from a wrong reference), the verdict is inconclusive.

Verdict (:func:`decide_cantor_precision`; claim_kind "theorem-check": the error law is arithmetic and the verdict
cannot come out otherwise for correct code, but every level is measured): inconclusive if the control fails
anywhere; fails if float64 gets fewer than FAIL_SHARE of the positions wrong within 100 levels (fp64 would
suffice); holds if the widest format (113 bits) gets fewer than FAIL_SHARE wrong within 100 levels while fp64
does not (a wider float fixes it, as the reply says); holds-with-correction if every format fails and the slope
lies inside log₃2 ± SLOPE_TOL with its ±2 SE interval (the failure depth is proportional to the bits, so fp64
suffices to ≈ 33 levels, no float format to an unbounded depth, and the remedy is exact integer arithmetic,
not a wider float); otherwise inconclusive.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import torch

from terrainlab.aleph.cantor import (
    LOG3_2,
    cantor_positions,
    cantor_staircase,
    cantor_staircase_exact,
    first_wrong_level,
    round_to_bits,
    significand_bits,
)
from terrainlab.atlas import Context, Result, experiment
from terrainlab.atlas.chapters._digits import one_thread
from terrainlab.atlas.stats import mean_se, side_of
from terrainlab.plotting import BLACK, BLUE, GREEN, ORANGE, PURPLE, SKY, VERMILLION, figure

FORMATS = (  # (key, label, torch dtype or emulated significand bits)
    ("bfloat16", "bfloat16 (p = 8)", torch.bfloat16),
    ("float16", "float16 (p = 11)", torch.float16),
    ("float32", "float32 (p = 24)", torch.float32),
    ("float64", "float64 (p = 53)", torch.float64),
    ("ext64", "x87 extended (p = 64, emulated)", 64),
    ("binary128", "binary128 (p = 113, emulated)", 113),
)
COLOURS = (ORANGE, SKY, GREEN, BLUE, VERMILLION, PURPLE)
N_SEEDS = 5  # full run (quick: 3); the slope's SE from 3 seeds alone is a rough estimate
DIGITS = 200  # exact ternary digits per position (and the control's depth)
DEPTH = 100  # levels checked for every float format
REPORTED = {"bfloat16": 3, "float32": 12, "float64": 31}  # the author's levels (aleph.md §6), compared, not used
SLOPE_TOL = 0.05  # the fitted slope must lie in log₃2 ± this (both ends outside mean ± 2 SE)
FAIL_SHARE = 0.5  # a format "fails" when at least this share of positions goes wrong within DEPTH levels


def decide_cantor_precision(slope_mean: float, slope_se: float, fp64_fraction_failed: float,
                            widest_fraction_failed: float, control_fraction_failed: float, *,
                            slope_target: float = LOG3_2, slope_tol: float = SLOPE_TOL,
                            fail_share: float = FAIL_SHARE) -> str:
    """inconclusive when the control (exact arithmetic) got any position wrong; fails when float64 gets fewer than
    ``fail_share`` of the positions wrong (fp64 would suffice); holds when the widest format gets fewer than
    ``fail_share`` wrong (a wider float suffices, as claimed); holds-with-correction when every format fails and
    slope_mean ± 2·slope_se lies inside slope_target ± slope_tol (failure depth ∝ bits: no float suffices for an
    unbounded depth); inconclusive otherwise (a tolerance end inside the interval, or a slope off the law).

    >>> decide_cantor_precision(0.63, 0.002, 1.0, 1.0, 0.0)
    'holds-with-correction'
    """
    for name, v in (("fp64_fraction_failed", fp64_fraction_failed), ("widest_fraction_failed", widest_fraction_failed),
                    ("control_fraction_failed", control_fraction_failed)):
        if not (isinstance(v, (int, float)) and 0 <= v <= 1):
            raise ValueError(f"{name} must be a fraction in [0, 1], got {v!r}")
    if not isinstance(slope_mean, (int, float)):
        raise ValueError(f"slope_mean must be a number, got {slope_mean!r}")
    if not (isinstance(slope_se, (int, float)) and (slope_se >= 0 or math.isnan(slope_se))):
        raise ValueError(f"slope_se must be a non-negative number (or NaN), got {slope_se!r}")
    if not (isinstance(slope_tol, (int, float)) and slope_tol > 0):
        raise ValueError(f"slope_tol must be a positive number, got {slope_tol!r}")
    if not (isinstance(fail_share, (int, float)) and 0 < fail_share <= 1):
        raise ValueError(f"fail_share must be in (0, 1], got {fail_share!r}")
    if control_fraction_failed > 0:
        return "inconclusive"
    if fp64_fraction_failed < fail_share:
        return "fails"
    if widest_fraction_failed < fail_share:
        return "holds"
    lo = side_of(slope_mean, slope_se, slope_target - slope_tol)
    hi = side_of(slope_mean, slope_se, slope_target + slope_tol)
    return "holds-with-correction" if (lo, hi) == ("above", "below") else "inconclusive"


def _bits(fmt) -> int:
    """The significand bits p of a format given as a torch dtype or as an emulated width."""
    return significand_bits(fmt) if isinstance(fmt, torch.dtype) else int(fmt)


def staircase_errors(digits: torch.Tensor, positions: list, dtype: torch.dtype) -> dict:
    """log₂ of the error of the Devil's staircase c at points of the Cantor set (``digits`` in {0, 2}): computed in
    ``dtype`` (position rounded to it, :func:`~terrainlab.aleph.cantor.cantor_staircase` in it) against the exact
    c = Σ (d_i/2)·2^{-i}; and the exact c at the rounded position (the error the rounding of x alone causes:
    the conditioning of c, which is Hölder with exponent log₃2)."""
    n_levels = digits.shape[1]
    exact = torch.tensor([float(Fraction(int("".join(str(d // 2) for d in row), 2), 1 << n_levels))
                          for row in digits.tolist()], dtype=torch.float64)
    p = significand_bits(dtype)
    e_min = int(round(math.log2(torch.finfo(dtype).tiny)))
    rounded = [float(round_to_bits(f, p, min_exponent=e_min)) for f in positions]
    c_float = cantor_staircase(torch.tensor(rounded, dtype=torch.float64).to(dtype)).double()
    c_at_rounded = torch.tensor([float(cantor_staircase_exact(x)) for x in rounded], dtype=torch.float64)

    def log2_err(c):
        return torch.log2((c - exact).abs().clamp_min(2.0**-1074))

    f, r = log2_err(c_float), log2_err(c_at_rounded)
    return {"median": float(f.median()), "max": float(f.max()), "at_rounded_median": float(r.median()),
            "log2_eps": math.log2(torch.finfo(dtype).eps)}


def _slope(bits: list[int], levels: list[float]) -> tuple[float, float]:
    b, y = np.asarray(bits, dtype=float), np.asarray(levels, dtype=float)
    if not np.all(np.isfinite(y)):
        return math.nan, math.nan
    slope, intercept = np.polyfit(b, y, 1)
    return float(slope), float(intercept)


@experiment(
    id="aleph.cantor_precision",
    chapter=13,
    title="Cantor precision: the ternary level at which each float format goes wrong (∝ its bits)",
    claim="The forum reply: \"Cantor's fractals need more than fp64\" — the ternary digits of a Devil's-staircase "
    "position go wrong in fp64 (at level ≈ 31 in the author's material, 12 in fp32, 3 in bf16), so a format "
    "wider than fp64 is needed.",
)
def cantor_precision(ctx: Context) -> Result:
    with one_thread():  # hundreds of tiny tensor ops: one thread is fastest
        return _run(ctx)


def _run(ctx: Context) -> Result:
    n = 80 if ctx.quick else 500
    per_seed = {key: [] for key, _, _ in FORMATS}
    fraction_failed = {key: [] for key, _, _ in FORMATS}
    pooled = {key: [] for key, _, _ in FORMATS}
    survival = {key: [] for key, _, _ in FORMATS}
    slopes, intercepts = [], []
    control_failed, control_survival = [], []
    seeds = 3 if ctx.quick else N_SEEDS
    for i in range(seeds):
        digits, pos = cantor_positions(n, DIGITS, kind="uniform", generator=ctx.generator(i))
        for key, _, fmt in FORMATS:
            r = first_wrong_level(pos, fmt, DEPTH, exact_digits=digits)
            per_seed[key].append(r.mean)
            fraction_failed[key].append(r.fraction_failed)
            pooled[key].append(r.first_wrong)
            survival[key].append(r.survival)
        s, c = _slope([_bits(fmt) for _, _, fmt in FORMATS], [per_seed[k][-1] for k, _, _ in FORMATS])
        slopes.append(s)
        intercepts.append(c)
        ctrl = first_wrong_level(pos, None, DIGITS, exact_digits=digits)
        control_failed.append(ctrl.fraction_failed)
        control_survival.append(ctrl.survival)
    # the Cantor set's points (digits in {0, 2}): same formats, one seed
    cdigits, cpos = cantor_positions(n, DIGITS, kind="cantor", generator=ctx.generator(seeds))
    cantor = {key: first_wrong_level(cpos, fmt, DEPTH, exact_digits=cdigits) for key, _, fmt in FORMATS}
    cctrl = first_wrong_level(cpos, None, DIGITS, exact_digits=cdigits)
    stair = {key: staircase_errors(cdigits, cpos, fmt) for key, _, fmt in FORMATS if isinstance(fmt, torch.dtype)}

    slope_mean, slope_se = mean_se(slopes)
    intercept_mean, intercept_se = mean_se(intercepts)
    ff = {key: float(np.mean(v)) for key, v in fraction_failed.items()}
    control_fraction_failed = max(max(control_failed), cctrl.fraction_failed)
    verdict = decide_cantor_precision(slope_mean, slope_se, ff["float64"], ff["binary128"], control_fraction_failed)

    numbers: dict = {"claim_kind": "theorem-check", "positions_per_seed": n, "seeds": seeds,
                     "exact_digits_per_position": DIGITS, "levels_checked": DEPTH}
    summary = {}
    for key, _label, fmt in FORMATS:
        bits = _bits(fmt)
        m, se = mean_se(per_seed[key])
        allv = torch.cat(pooled[key]).double()
        allv = allv[allv > 0]
        q = {k: float(torch.quantile(allv, p)) for k, p in (("q05", 0.05), ("median", 0.5))} if allv.numel() else {}
        summary[key] = (m, se)
        cf = cantor[key].first_wrong[cantor[key].failed].double()
        if key in stair:  # the staircase value c(x) at Cantor-set points, computed in this dtype
            numbers.update({f"{key}_staircase_log2_error_median": stair[key]["median"],
                            f"{key}_staircase_log2_error_max": stair[key]["max"],
                            f"{key}_staircase_log2_error_exact_at_rounded_x_median": stair[key]["at_rounded_median"],
                            f"{key}_log2_eps": stair[key]["log2_eps"]})
        if key in REPORTED:  # share of positions already wrong at the author's level
            numbers[f"{key}_share_wrong_by_reported_level_{REPORTED[key]}"] = float((allv <= REPORTED[key]).double().mean())
        numbers.update({
            f"{key}_significand_bits": bits,
            f"{key}_predicted_p_log3_2": bits * LOG3_2,
            f"{key}_first_wrong_level_mean": m,
            f"{key}_first_wrong_level_se": se,
            f"{key}_first_wrong_level_median": q.get("median", math.nan),
            f"{key}_first_wrong_level_q05": q.get("q05", math.nan),
            f"{key}_first_wrong_level_sd": float(allv.std()) if allv.numel() > 1 else math.nan,
            f"{key}_first_wrong_level_min": int(allv.min()) if allv.numel() else 0,
            f"{key}_first_wrong_level_max": int(allv.max()) if allv.numel() else 0,
            f"{key}_fraction_failed": ff[key],
            f"{key}_cantor_points_first_wrong_level_mean": cantor[key].mean,
            f"{key}_cantor_points_first_wrong_level_sd": float(cf.std()) if cf.numel() > 1 else math.nan,
            f"{key}_cantor_points_first_wrong_level_min": int(cf.min()) if cf.numel() else 0,
        })
    offsets = [summary[k][0] - _bits(f) * LOG3_2 for k, _, f in FORMATS]
    numbers.update({
        "slope_levels_per_bit_mean": slope_mean,
        "slope_levels_per_bit_se": slope_se,
        "slope_per_seed": slopes,
        "log3_2": LOG3_2,
        "intercept_levels_mean": intercept_mean,
        "intercept_levels_se": intercept_se,
        "mean_offset_above_p_log3_2": float(np.mean(offsets)),
        "bits_needed_per_ternary_level_log2_3": 1 / LOG3_2,
        "control": "exact integer arithmetic (Python ints), same positions, 200 levels",
        "control_fraction_failed": control_fraction_failed,
        "control_levels_checked": DIGITS,
        "control_cantor_points_fraction_failed": cctrl.fraction_failed,
        "control_outcome": "never wrong" if control_fraction_failed == 0 else "wrong digits",
    })

    # ---- figure: survival per format with the p·log₃2 markers, the exact control flat at 1; level vs bits
    fig, (ax, ax2) = figure("double", height=3.0, ncols=2)
    lv = np.arange(1, DEPTH + 1)
    for (key, label, _fmt), col in zip(FORMATS, COLOURS):
        s = torch.stack(survival[key]).mean(0).numpy()
        ax.plot(lv, s, color=col, lw=1.2, label=label)
        ax.plot(lv, cantor[key].survival.numpy(), color=col, lw=0.8, ls=":")
    ax.vlines([_bits(f) * LOG3_2 for _, _, f in FORMATS], -0.03, 1.08, colors=COLOURS, lw=0.7, linestyles="--")
    cs = torch.stack(control_survival).mean(0).numpy()
    ax.plot(np.arange(1, DIGITS + 1), cs, color=BLACK, lw=1.6, label="control: exact integers (to level 200)")
    ax.set_xlim(0, 120)
    ax.set_ylim(-0.03, 1.08)
    ax.set_xlabel("ternary level ℓ")
    ax.set_ylabel("share of positions with digits 1…ℓ all right")
    ax.set_title("Digits still right (dashed: p·log₃2; dotted: Cantor-set points)")
    ax.legend(frameon=False, fontsize=5.5, loc="center right")

    bits = np.array([_bits(f) for _, _, f in FORMATS])
    means = np.array([summary[k][0] for k, _, _ in FORMATS])
    ses = np.array([summary[k][1] for k, _, _ in FORMATS])
    bgrid = np.linspace(0, 120, 50)
    ax2.plot(bgrid, bgrid * LOG3_2, color=BLACK, ls="--", lw=0.9, label="p·log₃2 (derived)")
    ax2.plot(bgrid, intercept_mean + slope_mean * bgrid, color=GREEN, lw=1.0,
             label=f"fit: slope {slope_mean:.4f} ± {slope_se:.1g} (log₃2 = {LOG3_2:.4f})")
    ax2.vlines(bits, means - 2 * ses, means + 2 * ses, colors=COLOURS, lw=1.0)  # ± 2 SE (smaller than the dots)
    ax2.scatter(bits, means, s=14, c=COLOURS, zorder=3)
    ax2.plot(bits, [cantor[k].mean for k, _, _ in FORMATS], "s", mfc="none", color=BLACK, ms=4,
             label="Cantor-set points (mean, one seed)")
    ax2.annotate("control (exact integers):\nno wrong digit to level 200", xy=(118, 112), ha="right", va="top",
                 fontsize=6)
    ax2.set_ylim(0, 120)
    ax2.set_xlabel("significand bits p")
    ax2.set_ylabel("first wrong ternary level (mean ± 2 SE)")
    ax2.set_title("Depth reached ∝ bits: a wider float only moves the wall")
    ax2.legend(frameon=False, fontsize=6, loc="lower right")
    ctx.savefig(fig, "cantor_precision")

    m64, se64 = summary["float64"]
    sd_c, sd_u = numbers["float64_cantor_points_first_wrong_level_sd"], numbers["float64_first_wrong_level_sd"]
    m32, _ = summary["float32"]
    m16, _ = summary["bfloat16"]
    m128, _ = summary["binary128"]
    return Result(
        verdict=verdict,
        numbers=numbers,
        threshold=(
            f"holds-with-correction: every format gets ≥ {FAIL_SHARE:.0%} of the positions wrong within {DEPTH} "
            f"levels and the slope of the mean first wrong level against significand bits, ± 2 SE over "
            f"{seeds} seeds, lies inside log₃2 ± {SLOPE_TOL} = [{LOG3_2 - SLOPE_TOL:.3f}, {LOG3_2 + SLOPE_TOL:.3f}]; "
            f"fails if float64 gets fewer than {FAIL_SHARE:.0%} wrong within {DEPTH} levels; holds if the 113-bit "
            "format does (a wider float suffices); inconclusive if the control (exact integers, 200 levels) "
            "gets any digit wrong, or the slope interval straddles a tolerance end or misses the band"
        ),
        explanation=(
            f"Theorem check on {n} positions × {seeds} seeds with {DIGITS} exact uniform ternary digits. Mean "
            f"first wrong level: bfloat16 {m16:.2f}, float32 {m32:.2f}, float64 {m64:.2f} ± {se64:.2f}, emulated "
            f"binary128 {m128:.2f} (p·log₃2 = 5.05, 15.14, 33.44, 71.30); every format goes wrong at a finite "
            f"level, on average {np.mean(offsets):.2f} levels beyond p·log₃2 (the O(1) term: with E the accumulated "
            f"rounding error, ~2^-p, P(first wrong level > n) ≈ exp(−3ⁿ|E|), so the level is ≈ log₃(1/|E|), "
            f"larger than p·log₃2 when the rounding errors happen to be small). The fitted slope {slope_mean:.5f} ± "
            f"{slope_se:.5f} levels per bit is within {abs(slope_mean - LOG3_2) / LOG3_2:.2%} of log₃2 = "
            f"{LOG3_2:.4f} (inside the ±{SLOPE_TOL} band; the O(1) offset per format runs from "
            f"{min(offsets):.2f} to {max(offsets):.2f}): a ternary level costs log₂3 = 1.585 bits. "
            f"The earliest failures come a few levels sooner (float64 5% quantile "
            f"{numbers['float64_first_wrong_level_q05']:.0f}, minimum {numbers['float64_first_wrong_level_min']}; "
            f"float32 {numbers['float32_first_wrong_level_q05']:.0f} / {numbers['float32_first_wrong_level_min']}; "
            f"bfloat16 {numbers['bfloat16_first_wrong_level_q05']:.0f} / {numbers['bfloat16_first_wrong_level_min']}). "
            f"The author's 31 / 12 / 3 (fp64 / fp32 / bf16, aleph.md §6) are such early failures, not the typical "
            f"level: by them {numbers['float64_share_wrong_by_reported_level_31']:.1%}, "
            f"{numbers['float32_share_wrong_by_reported_level_12']:.1%} and "
            f"{numbers['bfloat16_share_wrong_by_reported_level_3']:.1%} of our positions have gone wrong. Points of "
            f"the Cantor set (digits 0, 2; their orbit accumulates at the digit boundaries 1/3, 2/3) fail with a "
            f"{'wider' if sd_c > sd_u else 'narrower'} spread (float64 sd {sd_c:.2f} against {sd_u:.2f}, minimum "
            f"{numbers['float64_cantor_points_first_wrong_level_min']}) and mean {cantor['float64'].mean:.2f} against "
            f"{m64:.2f}. Either way the typical depth is p·log₃2 + O(1). The staircase value itself, at Cantor-set "
            f"points where c is not flat: computed in float64 it is off by a median 2^{stair['float64']['median']:.1f} "
            f"(float32 2^{stair['float32']['median']:.1f}), though their eps are 2^-52 (2^-23) — and the exact c at "
            f"the rounded position is off by as much (2^{stair['float64']['at_rounded_median']:.1f}): c is Hölder "
            "with exponent log₃2, so a position error δ becomes up to ≈ δ^0.63 (2^-33.4 for δ = 2^-53; measured "
            f"maximum 2^{stair['float64']['max']:.1f}) — the loss is the conditioning of the "
            "staircase, which no arithmetic at the rounded position can undo; only an exact position (a rational, "
            "e.g. an integer token index over its length) can. "
            "Control: the same iteration in exact integer arithmetic got "
            f"{control_fraction_failed:.0%} of the positions wrong through level {DIGITS} (uniform and Cantor-set)."
        ),
        corrected=(
            f"Every binary float format gets the ternary digits of a staircase position wrong at a finite level "
            f"≈ p·log₃2 + {np.mean(offsets):.1f} (measured slope {slope_mean:.3f} levels per significand bit): "
            f"fp64 first goes wrong at level {m64:.1f} on average (5% of positions wrong by level "
            f"{numbers['float64_first_wrong_level_q05']:.0f}, the earliest at {numbers['float64_first_wrong_level_min']}), "
            f"a 113-bit float at {m128:.1f}. A wider float only moves the wall (depth D needs ≈ 1.585·D bits); "
            "for an unbounded Cantor depth no float format suffices, and the remedy is exact integer/rational "
            "arithmetic, which never goes wrong. The staircase value c(x) computed in float64 is good to about "
            f"2^{stair['float64']['median']:.1f} (median; worst 2^{stair['float64']['max']:.1f}) on the Cantor set, "
            "not 2^-52, because c is Hölder-log₃2 in x: an exact position is needed, not only exact arithmetic."
        ) if verdict == "holds-with-correction" else (
            f"float64 keeps the ternary digits right to level {DEPTH} for most positions: fp64 suffices at this depth."
            if verdict == "fails" else None),
    )

