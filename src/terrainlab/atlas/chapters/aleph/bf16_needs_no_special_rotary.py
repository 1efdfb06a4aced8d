"""aleph.bf16_needs_no_special_rotary — does hub attention need "a deviant rotary to stabilise at BF16"?

The forum reply says BF16 needs a deviant rotary (position) embedding to stabilise. aleph.md §3 says what the
published code actually does to stay bf16-stable, with no rotary involved: the address computed in fp32 with
max-subtraction before exp, τ folded into the fp32 codebook, the prefix sums, carried state and denominators
accumulated in fp32, a clamp floor that is not 0 in half precision, and bf16 autocast over fp32 master
weights (:mod:`terrainlab.aleph.attention`, ``discipline=True``; ``discipline=False`` keeps logits, sums and
the recurrent state in the compute dtype and exponentiates without max-subtraction).

Measured (``N_SEEDS`` seeds ctx.seed + i, each a model and an input sequence x ~ N(0, I); one head,
d_model = d_head = 16, K = 8, D_addr = 4, τ = 0.1, **no position embedding of any kind**): the attention
output under ``torch.autocast("cpu", bfloat16)`` over float32 weights against a float64 oracle — the same
weights in float64 through the chunked scan, which equals the cumulative-sum oracle
(:func:`~terrainlab.aleph.attention.linear_attention_naive`) to ~1e-16 (checked here on a prefix). The
error at position t is ‖o_t − o⁶⁴_t‖/‖o⁶⁴_t‖, averaged over each octave of positions [2^j, 2^{j+1}), on

- the disciplined hub: the chunked scan over T tokens (65,536; quick 4,096) and the recurrent decoding
  state (:func:`~terrainlab.aleph.attention.linear_attention_step`, float32 state) over T_rec tokens
  (8,192; quick 2,048);
- the undisciplined hub (the control): the same two forms with bf16 logits, sums and state, and the
  address at τ = ``SMALL_TAU`` with and without max-subtraction;
- an elu+1 linear attention (Katharopoulos et al. 2020, φ(x) = elu(x) + 1, own projections of width 2K)
  through the same chunked scan with the discipline on and off: whether the stability comes from the
  signed address or from the accumulation.

Verdict (:func:`decide_bf16`), from the disciplined hub (the worse of scan and recurrent state per seed):
its error in the last octave and the log–log slope of the octave errors against position from ``L_MIN``
on (mean ± 2 SE over seeds) against ``ERR_MAX`` = ``ERR_EPS`` × bf16 ε (2⁻⁷) and ``SLOPE_MAX``. The
control must read the other way: the undisciplined recurrent state's error or slope lies above them, or
the undisciplined address overflows at small τ — else inconclusive. Both below: the claim **fails** (bf16
stays at its rounding level over 64k positions without any rotary; what it needs is the fp32 accumulation
and the max-subtracted softmax). Either above: inconclusive (consistent with the claim, but whether a
rotary would cure it is not measured here); a threshold inside mean ± 2 SE: inconclusive.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from matplotlib.ticker import NullLocator

from terrainlab.aleph.attention import (
    AlephAttention,
    HubState,
    linear_attention_chunked,
    linear_attention_naive,
    linear_attention_step,
)
from terrainlab.atlas import Context, Result, experiment
from terrainlab.atlas.chapters._digits import one_thread
from terrainlab.atlas.stats import mean_se, side_of
from terrainlab.core.validate import check_int
from terrainlab.plotting import BLACK, BLUE, GREEN, ORANGE, PURPLE, SKY, VERMILLION, figure

N_SEEDS = 3
BF16_EPS = torch.finfo(torch.bfloat16).eps  # 2⁻⁷
ERR_EPS = 2.0  # the error may be at most this many bf16 ε in the last octave
ERR_MAX = ERR_EPS * BF16_EPS
SLOPE_MAX = 0.1  # log–log slope of the octave errors vs position below this: not growing
SMALL_TAU = 0.01  # |u| up to 100: exp(u) overflows bf16 and fp32 without max-subtraction
D_MODEL, K, D_ADDR, TAU = 16, 8, 4, 0.1
J_MIN = 6  # first octave drawn: positions [64, 128)


def sizes(quick: bool) -> dict:
    """Sequence lengths of the full and the quick run: scan T, recurrent T_rec, the first position the
    verdict reads (L_MIN) and the small-τ check's length."""
    if quick:
        return {"T": 4096, "T_rec": 2048, "L_MIN": 256, "T_small_tau": 2048}
    return {"T": 65536, "T_rec": 8192, "L_MIN": 1024, "T_small_tau": 8192}


def octave_errors(err: np.ndarray, j_min: int = J_MIN) -> tuple[list[int], list[float]]:
    """Mean of ``err[..., p]`` (position t = p + 1) over each complete octave t ∈ [2^j, 2^{j+1}), j ≥ j_min:
    the octaves' lower ends and their mean errors (NaN where a value is not finite).

    >>> octave_errors(np.ones(15), j_min=1)
    ([2, 4, 8], [1.0, 1.0, 1.0])
    """
    err = np.asarray(err, dtype=float)
    if err.ndim < 1:
        raise ValueError(f"err must be an array over positions, got shape {err.shape}")
    starts, means = [], []
    j = j_min
    while 2 ** (j + 1) - 1 <= err.shape[-1]:
        starts.append(2 ** j)
        means.append(float(np.mean(err[..., 2 ** j - 1:2 ** (j + 1) - 1])))
        j += 1
    return starts, means


def loglog_slope(t, y) -> float:
    """Least-squares slope of log y against log t; NaN with any non-finite or non-positive y (an
    overflowed path has no slope).

    >>> round(loglog_slope([1, 10, 100], [1.0, 10.0, 100.0]), 12)
    1.0
    """
    t, y = np.asarray(t, dtype=float), np.asarray(y, dtype=float)
    if t.shape != y.shape or t.ndim != 1 or len(t) < 2:
        raise ValueError(f"t and y must be 1-d arrays of one length ≥ 2, got shapes {t.shape} and {y.shape}")
    if not (np.all(np.isfinite(y)) and np.all(y > 0) and np.all(t > 0)):
        return math.nan
    return float(np.polyfit(np.log(t), np.log(y), 1)[0])


def decide_bf16(err_mean: float, err_se: float, slope_mean: float, slope_se: float, *,
                control_err_mean: float, control_err_se: float, control_slope_mean: float,
                control_slope_se: float, control_nonfinite_fraction: float, err_max: float = ERR_MAX,
                slope_max: float = SLOPE_MAX) -> str:
    """The verdict on "BF16 needs a deviant rotary to stabilise", from the disciplined hub measured without
    any rotary. inconclusive unless the control degrades: the undisciplined error lies above ``err_max`` or
    its slope above ``slope_max`` (mean ± 2 SE), or its small-τ address overflowed
    (``control_nonfinite_fraction`` > 0). Then fails (no rotary needed) when the disciplined error lies below
    ``err_max`` and its slope below ``slope_max``; inconclusive otherwise (it degrades, or a threshold lies
    inside mean ± 2 SE: the instability without a rotary is consistent with the claim, but that a rotary
    would cure it is not measured)."""
    vals = {"err_mean": err_mean, "err_se": err_se, "slope_mean": slope_mean, "slope_se": slope_se,
            "control_err_mean": control_err_mean, "control_err_se": control_err_se,
            "control_slope_mean": control_slope_mean, "control_slope_se": control_slope_se,
            "control_nonfinite_fraction": control_nonfinite_fraction, "err_max": err_max, "slope_max": slope_max}
    for name, v in vals.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"{name} must be a number, got {v!r}")
    if not err_max > 0:
        raise ValueError(f"err_max must be > 0, got {err_max!r}")
    if not 0 <= control_nonfinite_fraction <= 1:
        raise ValueError(f"control_nonfinite_fraction must lie in [0, 1], got {control_nonfinite_fraction!r}")
    control_degrades = (side_of(control_err_mean, control_err_se, err_max) == "above"
                        or side_of(control_slope_mean, control_slope_se, slope_max) == "above"
                        or control_nonfinite_fraction > 0)
    if not control_degrades:
        return "inconclusive"
    stable = (side_of(err_mean, err_se, err_max) == "below" and side_of(slope_mean, slope_se, slope_max) == "below")
    return "fails" if stable else "inconclusive"


def _rel_err(o: torch.Tensor, ref: torch.Tensor) -> np.ndarray:
    """‖o_t − ref_t‖/‖ref_t‖ per position, averaged over batch and heads: shape (T,). NaN where o is not
    finite."""
    e = (o.double() - ref).norm(dim=-1) / ref.norm(dim=-1)
    return e.reshape(-1, e.shape[-1]).mean(0).numpy()


def _elu_features(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """φ(x) = elu(xW) + 1 (Katharopoulos et al. 2020), shape (B, 1, T, F) (one head)."""
    return (torch.nn.functional.elu(x @ w) + 1)[:, None]


def _recurrent(phi_q: torch.Tensor, phi_k: torch.Tensor, v: torch.Tensor, state: HubState,
               discipline: bool) -> torch.Tensor:
    """Decode token by token with :func:`linear_attention_step`: (B, H, T, ·) → outputs (B, H, T, d)."""
    outs = []
    for t in range(phi_k.shape[-2]):
        o, state = linear_attention_step(phi_q[..., t, :], phi_k[..., t, :], v[..., t, :], state,
                                         discipline=discipline)
        outs.append(o)
    return torch.stack(outs, -2)


def _twin(model: AlephAttention, *, tau: float, discipline: bool) -> AlephAttention:
    """The same weights in a module built with another τ and discipline."""
    twin = AlephAttention(model.d_model, model.n_heads, K=model.K, D_addr=model.D_addr, tau=tau,
                          d_head=model.d_head, chunk=model.chunk, discipline=discipline,
                          dtype=model.q_proj.weight.dtype)
    twin.load_state_dict(model.state_dict())
    return twin


def measure_seed(seed: int, T: int, T_rec: int, T_small: int) -> dict:
    """Per-position relative errors of every scan path of the module docstring for one seed (model and input),
    and the inputs of its recurrent forms (``rec_inputs``, for :func:`measure_recurrent`)."""
    check_int(T, "T", minimum=2)
    check_int(T_rec, "T_rec", minimum=2)
    check_int(T_small, "T_small", minimum=2)
    if T_rec > T or T_small > T:
        raise ValueError(f"T_rec and T_small must not exceed T={T}, got {T_rec}, {T_small}")
    g = torch.Generator().manual_seed(seed)
    disc = AlephAttention(D_MODEL, 1, K=K, D_addr=D_ADDR, tau=TAU, generator=g, dtype=torch.float32)
    raw = _twin(disc, tau=TAU, discipline=False)
    w_q = torch.randn(D_MODEL, 2 * K, generator=g) / math.sqrt(D_MODEL)
    w_k = torch.randn(D_MODEL, 2 * K, generator=g) / math.sqrt(D_MODEL)
    x = torch.randn(1, T, D_MODEL, generator=g)
    oracle = copy.deepcopy(disc).double()
    x64 = x.double()
    out = {}
    with torch.no_grad():
        q64, k64, v64 = oracle.features(x64)
        ref = linear_attention_chunked(q64, k64, v64, oracle.chunk)
        n = min(T, 2048)
        naive = linear_attention_naive(q64[..., :n, :], k64[..., :n, :], v64[..., :n, :])
        out["oracle_chunked_vs_naive"] = float((ref[..., :n, :] - naive).abs().max() / naive.abs().max())
        e64q, e64k = _elu_features(x64, w_q.double()), _elu_features(x64, w_k.double())
        ref_elu = linear_attention_chunked(e64q, e64k, v64, oracle.chunk)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            qd, kd, vd = disc.features(x)
            qr, kr, vr = raw.features(x)
            eq, ek = _elu_features(x, w_q), _elu_features(x, w_k)
        out["v_dtype"] = str(vd.dtype)
        out["scan_on"] = _rel_err(linear_attention_chunked(qd, kd, vd, disc.chunk, discipline=True), ref)
        out["scan_off"] = _rel_err(linear_attention_chunked(qr, kr, vr, raw.chunk, discipline=False), ref)
        out["elu_on"] = _rel_err(linear_attention_chunked(eq, ek, vd, disc.chunk, discipline=True), ref_elu)
        out["elu_off"] = _rel_err(linear_attention_chunked(eq, ek, vd, disc.chunk, discipline=False), ref_elu)
        s = slice(0, T_rec)
        # the recurrent forms run for all seeds at once (measure_recurrent): their inputs and empty states
        out["rec_inputs"] = {"on": (qd[..., s, :], kd[..., s, :], vd[..., s, :]),
                             "off": (qr[..., s, :], kr[..., s, :], vr[..., s, :]), "ref": ref[..., s, :],
                             "init_on": disc.init_state, "init_off": raw.init_state}
        # small τ: the same weights, |u| up to 1/τ = 100
        xs = x[:, :T_small]
        small = {}
        for name, on in (("on", True), ("off", False)):
            m = _twin(disc, tau=SMALL_TAU, discipline=on)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                q, k, v = m.features(xs)
            o = linear_attention_chunked(q, k, v, m.chunk, discipline=m.discipline)
            small[name] = o
        m64 = _twin(oracle, tau=SMALL_TAU, discipline=True)
        ref_small = linear_attention_chunked(*m64.features(x64[:, :T_small]), m64.chunk)
        out["small_tau_on"] = _rel_err(small["on"], ref_small)
        out["small_tau_off_nonfinite"] = float((~torch.isfinite(small["off"])).any(-1).double().mean())
        out["small_tau_on_nonfinite"] = float((~torch.isfinite(small["on"])).any(-1).double().mean())
    return out


def bf16_accumulation_probe(n: int = 4096) -> dict:
    """n ones summed in bf16 three ways: ``torch.cumsum`` and a GEMM (which accumulate in fp32 and round the
    result) and one at a time in a bf16 running sum (which stops at 256, where the bf16 spacing is 2).

    >>> bf16_accumulation_probe(1024)
    {'cumsum': 1024.0, 'matmul': 1024.0, 'sequential': 256.0}
    """
    check_int(n, "n", minimum=1)
    ones = torch.ones(1, n, dtype=torch.bfloat16)
    run = torch.zeros((), dtype=torch.bfloat16)
    for _ in range(n):
        run = run + ones[0, 0]
    return {"cumsum": float(torch.cumsum(ones, 1)[0, -1]), "matmul": float(ones @ ones.T),
            "sequential": float(run)}


def measure_recurrent(runs: list[dict]) -> None:
    """Decode every seed's first T_rec tokens token by token, the seeds as the rows of one batch, with the
    discipline (float32 state) and without it (bf16 state); adds per-seed errors ``rec_on``, ``rec_off`` and
    the state dtypes to each run (and drops its ``rec_inputs``)."""
    if not runs or any("rec_inputs" not in r for r in runs):
        raise ValueError("runs must be a non-empty list of measure_seed results holding 'rec_inputs'")
    ins = [r.pop("rec_inputs") for r in runs]
    n = len(ins)
    ref = torch.cat([i["ref"] for i in ins])
    for name, on in (("on", True), ("off", False)):
        q, k, v = (torch.cat([i[name][j] for i in ins]) for j in range(3))
        state = ins[0]["init_" + name](n, dtype=torch.bfloat16)   # float32 S, z under the discipline; bf16 without
        o = _recurrent(q, k, v, state, on)
        for b, r in enumerate(runs):
            r["rec_" + name] = _rel_err(o[b:b + 1], ref[b:b + 1])
            r["state_dtype_" + name] = str(state.S.dtype)


def _stats(per_seed: list[np.ndarray], l_min: int) -> dict:
    """Octave errors per seed; last-octave error and slope from l_min on, mean ± SE over seeds."""
    octs = [octave_errors(e) for e in per_seed]
    starts = octs[0][0]
    sel = [i for i, s in enumerate(starts) if s >= l_min]
    last = [o[1][-1] for o in octs]
    slopes = [loglog_slope([starts[i] for i in sel], [o[1][i] for i in sel]) for o in octs]
    err_m, err_se = mean_se(last)
    sl_m, sl_se = mean_se(slopes)
    curve = np.mean([o[1] for o in octs], axis=0)
    return {"starts": starts, "curve": curve.tolist(), "last": last, "err_mean": err_m, "err_se": err_se,
            "slopes": slopes, "slope_mean": sl_m, "slope_se": sl_se}


@experiment(
    id="aleph.bf16_needs_no_special_rotary",
    chapter=13,
    title="BF16 hub attention without any rotary: error against a float64 oracle over 64k positions, with and "
    "without the fp32 discipline, and an elu+1 control",
    claim="The forum reply: \"BF16 needs a deviant rotary to stabilise\" — aleph-routed attention is kept stable "
    "in bfloat16 by a special (deviant) rotary position embedding.",
)
def bf16_needs_no_special_rotary(ctx: Context) -> Result:
    with one_thread():
        return _run(ctx)


def _run(ctx: Context) -> Result:
    sz = sizes(ctx.quick)
    seeds = [ctx.seed + i for i in range(N_SEEDS)]
    runs = [measure_seed(s, sz["T"], sz["T_rec"], sz["T_small_tau"]) for s in seeds]
    measure_recurrent(runs)
    paths = ("scan_on", "rec_on", "scan_off", "rec_off", "elu_on", "elu_off", "small_tau_on")
    st = {p: _stats([r[p] for r in runs], sz["L_MIN"]) for p in paths}
    # the disciplined hub: the worse of its two forms, per seed
    worst_last = [max(a, b) for a, b in zip(st["scan_on"]["last"], st["rec_on"]["last"])]
    worst_slope = [max(a, b) for a, b in zip(st["scan_on"]["slopes"], st["rec_on"]["slopes"])]
    err_m, err_se = mean_se(worst_last)
    sl_m, sl_se = mean_se(worst_slope)
    c = st["rec_off"]
    overflow = float(np.mean([r["small_tau_off_nonfinite"] for r in runs]))
    verdict = decide_bf16(err_m, err_se, sl_m, sl_se, control_err_mean=c["err_mean"], control_err_se=c["err_se"],
                          control_slope_mean=c["slope_mean"], control_slope_se=c["slope_se"],
                          control_nonfinite_fraction=overflow)
    control_degrades = (side_of(c["err_mean"], c["err_se"], ERR_MAX) == "above"
                        or side_of(c["slope_mean"], c["slope_se"], SLOPE_MAX) == "above" or overflow > 0)
    oracle_err = max(r["oracle_chunked_vs_naive"] for r in runs)
    acc = bf16_accumulation_probe()

    fig, (ax, ax2) = figure("double", height=3.2, ncols=2, gridspec_kw={"width_ratios": [2.2, 1]})
    styles = {"scan_on": ("o-", BLUE, "hub, discipline on: chunked scan"),
              "rec_on": ("o--", SKY, "hub, discipline on: recurrent state (fp32)"),
              "scan_off": ("s-", ORANGE, "control: hub, discipline off: chunked scan"),
              "rec_off": ("s--", VERMILLION, "control: hub, discipline off: recurrent state (bf16)"),
              "elu_on": ("^-", GREEN, "elu+1 linear attention, discipline on"),
              "elu_off": ("v:", PURPLE, "elu+1 linear attention, discipline off")}
    for p, (fmt, col, lab) in styles.items():
        ax.loglog(st[p]["starts"], st[p]["curve"], fmt, color=col, ms=3, lw=1.0, label=lab)
    ax.axhline(ERR_MAX, color=BLACK, lw=0.8, ls="--", label=f"threshold {ERR_EPS:g}·ε_bf16")
    ax.axhline(BF16_EPS, color=BLACK, lw=0.6, ls=":", label="ε_bf16 = 2⁻⁷")
    ax.axvline(sz["L_MIN"], color=BLACK, lw=0.5, alpha=0.4)
    ax.set_xlabel("position t (octave [t, 2t); no position embedding)")
    ax.set_ylabel("relative error vs float64 oracle")
    ax.set_title(f"bf16 autocast, no rotary: error over position ({N_SEEDS} seeds, mean)")
    ax.legend(frameon=False, fontsize=5.5, loc="upper left")
    small = st["small_tau_on"]
    ax2.loglog(small["starts"], small["curve"], "o-", color=BLUE, ms=3, label="hub, discipline on")
    ax2.axhline(ERR_MAX, color=BLACK, lw=0.8, ls="--", label=f"threshold {ERR_EPS:g}·ε_bf16")
    ax2.set_ylim(ax.get_ylim())
    ax2.text(0.04, 0.96, f"control: hub, discipline off —\n{100 * overflow:.1f} % of positions non-finite\n"
             "(exp(±u) overflows without max-subtraction)", transform=ax2.transAxes, fontsize=6,
             color=VERMILLION, va="top")
    ax2.set_xlabel("position t")
    ax2.set_ylabel("relative error vs float64 oracle")
    ax2.set_title(f"Small temperature τ = {SMALL_TAU:g} (|u| ≤ {1 / SMALL_TAU:g})")
    ax2.legend(frameon=False, fontsize=6, loc="lower left")
    for a in (ax, ax2):
        for axis in (a.xaxis, a.yaxis):
            axis.set_minor_locator(NullLocator())  # minor log ticks triple the saving time
    ctx.savefig(fig, "bf16_error_vs_position")

    def pair(p):
        return {"err_last_octave": st[p]["err_mean"], "err_last_octave_se": st[p]["err_se"],
                "slope": st[p]["slope_mean"], "slope_se": st[p]["slope_se"]}

    numbers = {
        "claim_kind": "empirical",
        "seeds": seeds,
        "n_seeds": N_SEEDS,
        "context_length_scan": sz["T"],
        "context_length_recurrent": sz["T_rec"],
        "slope_from_position": sz["L_MIN"],
        "bf16_eps": BF16_EPS,
        "err_max": ERR_MAX,
        "compute_dtype": runs[0]["v_dtype"],
        "oracle_chunked_vs_naive_max_rel_err": oracle_err,
        "octave_starts": st["scan_on"]["starts"],
        "disciplined_err_last_octave": err_m,
        "disciplined_err_last_octave_se": err_se,
        "disciplined_slope": sl_m,
        "disciplined_slope_se": sl_se,
        "scan_on": pair("scan_on"),
        "scan_on_octave_errors": st["scan_on"]["curve"],
        "recurrent_on": pair("rec_on"),
        "recurrent_on_state_dtype": runs[0]["state_dtype_on"],
        "small_tau_on": pair("small_tau_on"),
        "small_tau_on_nonfinite_fraction": float(np.mean([r["small_tau_on_nonfinite"] for r in runs])),
        "control_recurrent_off": pair("rec_off"),
        "control_recurrent_off_state_dtype": runs[0]["state_dtype_off"],
        "control_recurrent_off_octave_errors": st["rec_off"]["curve"],
        "control_scan_off": pair("scan_off"),
        "control_scan_off_octave_errors": st["scan_off"]["curve"],
        "control_small_tau_off_nonfinite_fraction": overflow,
        "control_elu_on": pair("elu_on"),
        "control_elu_off": pair("elu_off"),
        "control_degrades": control_degrades,
        "bf16_sum_of_4096_ones": acc,
    }
    so, ro = st["scan_off"], st["rec_off"]
    return Result(
        verdict=verdict,
        numbers=numbers,
        threshold=f"fails (no rotary needed) when the disciplined hub's error in the last octave lies below "
        f"{ERR_EPS:g}·ε_bf16 = {ERR_MAX:.4g} and the log–log slope of its octave errors from position "
        f"{sz['L_MIN']} on below {SLOPE_MAX} (the worse of scan and recurrent state per seed; mean ± 2 SE over "
        f"{N_SEEDS} seeds); inconclusive when either lies above or inside, or when the control (the "
        f"undisciplined recurrent bf16 state, or the undisciplined address at τ = {SMALL_TAU:g}) does not "
        "degrade",
        explanation=(
            f"No position embedding at all. Disciplined hub in bf16 autocast: the chunked scan over {sz['T']} "
            f"positions has relative error {st['scan_on']['err_mean']:.4f} ± {st['scan_on']['err_se']:.4f} in the "
            f"last octave (ε_bf16 = {BF16_EPS:.4f}), slope {st['scan_on']['slope_mean']:.3f} ± "
            f"{st['scan_on']['slope_se']:.3f}; the recurrent fp32 state over {sz['T_rec']} tokens "
            f"{st['rec_on']['err_mean']:.4f} ± {st['rec_on']['err_se']:.4f}, slope {st['rec_on']['slope_mean']:.3f} ± "
            f"{st['rec_on']['slope_se']:.3f}. Control: the recurrent state kept in bf16 stagnates (once a "
            f"component of z_t reaches 256, where the bf16 spacing is 2, every increment φ_f(k_t) ≤ 1 rounds "
            f"away; S likewise): error "
            f"{ro['err_mean']:.3f} ± {ro['err_se']:.3f} in the last octave, slope {ro['slope_mean']:.2f} ± "
            f"{ro['slope_se']:.2f}; at τ = {SMALL_TAU:g} the address without max-subtraction overflows "
            f"({100 * overflow:.0f} % of positions non-finite) where the disciplined one stays at "
            f"{st['small_tau_on']['err_mean']:.4f}. The undisciplined chunked scan does not degrade "
            f"({so['err_mean']:.4f} ± {so['err_se']:.4f}, slope {so['slope_mean']:.3f} ± {so['slope_se']:.3f}): "
            f"torch's bf16 cumsum and GEMMs accumulate in fp32 internally and round only their results (4096 ones "
            f"in bf16 sum to {acc['cumsum']:g} by cumsum and {acc['matmul']:g} by a GEMM, but to "
            f"{acc['sequential']:g} added one at a time), so only the per-token recurrent state shows the "
            "stagnation. elu+1 linear attention behaves the same with the "
            f"discipline on ({st['elu_on']['err_mean']:.4f}) and off ({st['elu_off']['err_mean']:.4f}): the "
            "stability comes from where the sums are accumulated, not from the signed address, and no rotary "
            f"enters anywhere. Float64 oracle: chunked scan = cumulative-sum oracle to {oracle_err:.1e}."
        ),
        corrected="BF16 hub attention needs no rotary to stay stable: with the address in fp32 and max-subtracted "
        "before exp, and the running sums and decoding state accumulated in fp32, its error stays at bf16 "
        "rounding level over 64k positions. What breaks bf16 is a bf16 recurrent state (increments lost below "
        "half an ulp) and exp without max-subtraction at small τ (overflow)." if verdict == "fails" else None,
    )

