"""ch04.dropout_rescaling — does dropout's (1 − p) rescaling make the test-time network equal the expected
training-time network?

The book: drop a fraction p of the units while training and multiply activations by (1 − p) at test
time (Hinton et al. 2012; Srivastava et al. 2014, the "weight scaling inference rule"); PyTorch's
``nn.Dropout`` is inverted dropout, which instead scales the kept units by 1/(1 − p) during training and
does nothing at test time. Both rest on one identity: for a unit with value x and a Bernoulli keep-mask
m with P(m = 1) = 1 − p,

    E[m·x/(1 − p)] = x,   Var[m·x/(1 − p)] = p/(1 − p)·x²,

so the *mean* of every linear function of the dropped layer equals its test-time value, while the
variance grows by p/(1 − p)·x² per unit, and after a nonlinearity f the mean E[f(z)] ≠ f(E[z]) (Jensen;
for ReLU, a convex f, E[f(z)] ≥ f(E[z])).

Measured on a real trained layer: a digits MLP 64 → 64 ReLU → Dropout(p = 0.5) → 32 ReLU → 10, trained
with that dropout (Adam, full batch), 3 seeds (init, training masks and measuring masks from ctx.seed + i).
On held-out digits, ``masks`` train-mode passes through ``nn.Dropout`` per input give
(a) the pre-activation z = W₂·dropout(h) + b₂: its mean over masks against the eval-mode z, as the
    ratio r = ‖mean − eval‖/noise, noise = √(Σ Var/M) the Monte Carlo error the mean would have if it
    were unbiased (r ≈ 1 when unbiased; the error falls as 1/√M, drawn);
(b) the same ratio after the ReLU, a = relu(z), and the relative Jensen gap ‖E a − a_eval‖/‖a_eval‖;
(c) the per-unit variance of dropout(h) against p/(1 − p)·h², and that every kept unit equals h/(1 − p).

Claim kind: empirical — (a) is an identity, but whether the trained layer's units sit where the ReLU bends
(so that (b) shows a gap at all) is measured; a layer whose pre-activations never change sign under the
masks would show none.

Control: p = 0 on the same trained nets — nothing is dropped, so the post-ReLU mean must equal the eval
output (gap 0, ratio 0). If the control shows a gap, the measurement cannot tell and the verdict is
inconclusive.

Verdict rule (``decide_dropout``): with ``BIAS_RATIO`` = 3 and each ratio's mean ± 2 SE over the seeds:
inconclusive if the control's ratio is ≥ 3 or either ratio straddles 3; fails if the linear ratio is
above 3 (the mean is not preserved even before the nonlinearity); holds if both are below 3 (the
rescaling makes the whole network's mean equal the test network); holds-with-correction if the linear
mean is preserved but the post-ReLU mean is not.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from terrainlab.atlas import Context, Result, experiment
from terrainlab.atlas.chapters._digits import default_init_, one_thread
from terrainlab.atlas.chapters.ch02._mlp import digits_split, train
from terrainlab.atlas.stats import mean_se, side_of
from terrainlab.plotting import OKABE_ITO, figure, style

P = 0.5  # the dropout probability (PyTorch's default)
BIAS_RATIO = 3.0  # ‖mean − eval‖ over the unbiased Monte Carlo noise above this: a bias
N_SEEDS = 3
N_TRAIN = 500
ROUNDOFF = 1e-12  # relative floor of the Monte Carlo noise in bias_ratio
WIDTHS = (64, 64, 32, 10)


def decide_dropout(lin_ratio: float, lin_ratio_se: float, nl_ratio: float, nl_ratio_se: float,
                   control_ratio: float, threshold: float = BIAS_RATIO) -> str:
    """Ratios ‖mean over masks − eval output‖ / (unbiased Monte Carlo noise), mean ± SE over seeds, for the
    linear pre-activation (``lin_*``) and after the ReLU (``nl_*``), read against ``threshold`` at 2 SE.
    inconclusive if the p = 0 control's ratio is ≥ threshold or a ratio straddles it; fails if the linear
    mean is biased; holds if neither is; holds-with-correction if only the post-ReLU mean is.

    >>> decide_dropout(1.0, 0.1, 20.0, 2.0, 0.0), decide_dropout(1.0, 0.1, 1.1, 0.1, 0.0)
    ('holds-with-correction', 'holds')
    """
    for name, v in (("lin_ratio", lin_ratio), ("lin_ratio_se", lin_ratio_se), ("nl_ratio", nl_ratio),
                    ("nl_ratio_se", nl_ratio_se), ("control_ratio", control_ratio)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0:
            raise ValueError(f"{name} must be a non-negative number, got {v!r}")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not threshold > 0:
        raise ValueError(f"threshold must be a positive number, got {threshold!r}")
    if control_ratio >= threshold:
        return "inconclusive"
    lin, nl = side_of(lin_ratio, lin_ratio_se, threshold), side_of(nl_ratio, nl_ratio_se, threshold)
    if "inside" in (lin, nl):
        return "inconclusive"
    if lin == "above":
        return "fails"
    return "holds" if nl == "below" else "holds-with-correction"


def bias_ratio(samples: torch.Tensor, target: torch.Tensor) -> float:
    """‖mean of ``samples`` over dim 0 − ``target``‖ / √(Σ Var/M): about 1 when the samples are unbiased
    draws around ``target``. The noise is floored at ``ROUNDOFF``·‖target‖ (float64 round-off of a mean),
    so identical samples (p = 0: no noise) give a ratio near 0, not 0/0.

    >>> bias_ratio(torch.ones(4, 3, dtype=torch.float64), torch.ones(3, dtype=torch.float64))
    0.0
    """
    if samples.ndim < 1 or samples.shape[0] < 2 or samples.shape[1:] != target.shape:
        raise ValueError(f"samples must be (M ≥ 2, *target.shape), got {tuple(samples.shape)} for "
                         f"target {tuple(target.shape)}")
    err = float((samples.mean(0) - target).norm())
    noise = max(math.sqrt(float(samples.var(0).sum()) / samples.shape[0]), ROUNDOFF * float(target.norm()))
    if noise == 0.0:
        return 0.0 if err == 0.0 else math.inf
    return err / noise


def make_net(seed: int, p: float = P) -> nn.Sequential:
    """64 → 64 ReLU → Dropout(p) → 32 ReLU → 10, PyTorch's default init drawn from ``seed``."""
    if not (isinstance(p, (int, float)) and 0 <= p < 1):
        raise ValueError(f"p must be in [0, 1), got {p!r}")
    net = nn.Sequential(nn.Linear(WIDTHS[0], WIDTHS[1]), nn.ReLU(), nn.Dropout(p), nn.Linear(WIDTHS[1], WIDTHS[2]),
                        nn.ReLU(), nn.Linear(WIDTHS[2], WIDTHS[3]))
    default_init_([m for m in net if isinstance(m, nn.Linear)], torch.Generator().manual_seed(seed))
    return net


def measure_seed(seed: int, Xtr, ytr, Xte, *, steps: int, masks: int, p: float = P) -> dict:
    """Train one net with dropout p (its masks from ``seed``), then on ``Xte`` draw ``masks`` train-mode
    dropout masks through ``nn.Dropout(p)`` and, for p and the p = 0 control, measure the bias ratios of
    the pre-activation z and of relu(z), the Jensen gap, the per-unit variance and the kept-unit scale.
    The global random state is the same afterwards (``torch.random.fork_rng``)."""
    if not (isinstance(masks, int) and masks >= 10):
        raise ValueError(f"masks must be an int ≥ 10, got {masks!r}")
    with torch.random.fork_rng(devices=[]):  # nn.Linear's own init and nn.Dropout draw from the global state
        net = make_net(seed, p)
        torch.manual_seed(seed)
        net.train()
        loss = train(net, Xtr, ytr, steps=steps)
        net.eval().double()
        x = Xte.double()
        with torch.no_grad():
            h = net[1](net[0](x))  # eval-mode input of the dropout, (n, 64)
            z_eval = net[3](h)
            a_eval = torch.relu(z_eval)
            out = {"train_loss": loss}
            for name, q in (("main", p), ("control", 0.0)):
                torch.manual_seed(seed + 10_000)
                drop = nn.Dropout(q).train()
                hm = drop(h.expand(masks, *h.shape))  # (M, n, 64): one mask per pass and input
                z = net[3](hm)
                a = torch.relu(z)
                gap = float((a.mean(0) - a_eval).norm() / a_eval.norm())
                out[name] = {"lin_ratio": bias_ratio(z, z_eval), "nl_ratio": bias_ratio(a, a_eval),
                             "jensen_gap": gap, "mean_shift": float((a.mean(0) - a_eval).mean()),
                             "a_mean": a.mean(0).numpy().ravel()}
                if name == "main":
                    kept = hm != 0
                    scale_err = float((hm - h / (1 - q)).abs()[kept].max())
                    var_pred = q / (1 - q) * h**2
                    var_meas = hm.var(0)
                    sel = h != 0
                    Ms = np.unique(np.logspace(1, math.log10(masks), 8).astype(int))
                    curve = [(float((z[:m].mean(0) - z_eval).norm() / z_eval.norm()),
                              float((a[:m].mean(0) - a_eval).norm() / a_eval.norm())) for m in Ms]
                    out[name] |= {"kept_scale_max_err": scale_err,
                                  "dropped_fraction": float(1 - kept.double().mean() / (h != 0).double().mean()),
                                  "var_ratio": float(var_meas[sel].sum() / var_pred[sel].sum()),
                                  "h2": (h**2)[sel].numpy(), "var_meas": var_meas[sel].numpy(),
                                  "Ms": Ms, "curve": np.array(curve),
                                  "a_eval": a_eval.numpy().ravel()}
    return out


@experiment(
    id="ch04.dropout_rescaling",
    chapter=4,
    title="Dropout's (1 − p) rescaling: exact for the mean of a linear layer, not for its variance, not past a ReLU",
    claim="Dropout drops a fraction p of the units while training; multiplying the activations by (1 − p) at "
    "test time (PyTorch: scaling kept units by 1/(1 − p) while training) makes the test-time network "
    "equal the expected training-time network.",
)
def dropout_rescaling(ctx: Context) -> Result:
    steps, masks, n_test = (30, 1200, 12) if ctx.quick else (300, 2000, 30)
    Xtr, ytr, Xte, _ = digits_split(N_TRAIN, n_test)
    with one_thread():
        runs = [measure_seed(ctx.seed + i, Xtr, ytr, Xte, steps=steps, masks=masks) for i in range(N_SEEDS)]
    m = [r["main"] for r in runs]
    c = [r["control"] for r in runs]
    lin, lin_se = mean_se([r["lin_ratio"] for r in m])
    nl, nl_se = mean_se([r["nl_ratio"] for r in m])
    gap, gap_se = mean_se([r["jensen_gap"] for r in m])
    shift, shift_se = mean_se([r["mean_shift"] for r in m])
    var_ratio, var_se = mean_se([r["var_ratio"] for r in m])
    control_ratio = max(max(r["lin_ratio"], r["nl_ratio"]) for r in c)
    control_gap = max(r["jensen_gap"] for r in c)
    verdict = decide_dropout(lin, lin_se, nl, nl_se, control_ratio)
    slopes = [float(np.polyfit(np.log(r["Ms"]), np.log(r["curve"][:, 0]), 1)[0]) for r in m]
    slope, slope_se = mean_se(slopes)

    with style():
        fig, axes = figure("double", height=2.6, ncols=3)
        r0 = m[0]
        ax = axes[0]
        ax.loglog(r0["Ms"], r0["curve"][:, 0], "o-", ms=3, color=OKABE_ITO[4], label="pre-activation z (linear)")
        ax.loglog(r0["Ms"], r0["curve"][:, 1], "s-", ms=3, color=OKABE_ITO[5], label="after ReLU")
        ax.loglog(r0["Ms"], r0["curve"][0, 0] * np.sqrt(r0["Ms"][0] / r0["Ms"]), ":", color="0.4", label="∝ 1/√M")
        ax.set_xlabel("masks M")
        ax.set_ylabel("‖mean over masks − eval‖ / ‖eval‖")
        ax.set_title(f"mean error: linear slope {slope:.2f}, ReLU plateaus", fontsize=7)
        ax.legend(frameon=False, fontsize=6)
        ax = axes[1]
        ax.plot(r0["h2"], r0["var_meas"], ".", ms=2, color=OKABE_ITO[0], alpha=0.5, label="per unit and input")
        hi = float(r0["h2"].max())
        ax.plot([0, hi], [0, P / (1 - P) * hi], "--", color="k", lw=0.7, label="p/(1 − p)·h²")
        ax.plot([0, hi], [0, 0], ":", color=OKABE_ITO[4], lw=1.0, label="eval mode: 0")
        ax.set_xlabel("h² (eval activation squared)")
        ax.set_ylabel("variance of dropout(h) over masks")
        ax.set_title(f"variance grows: {var_ratio:.3f} × p/(1 − p)·h²", fontsize=7)
        ax.legend(frameon=False, fontsize=6)
        ax = axes[2]
        ax.plot(r0["a_eval"], r0["a_mean"] - r0["a_eval"], ".", ms=2, color=OKABE_ITO[5], alpha=0.5, label=f"p = {P}")
        ax.plot(r0["a_eval"], c[0]["a_mean"] - r0["a_eval"], ".", ms=1, color=OKABE_ITO[4],
                label=f"control p = 0 (gap {control_gap:.0e})")
        ax.axhline(0, color="k", lw=0.6, ls="--")
        ax.set_xlabel("eval-mode relu(z)")
        ax.set_ylabel("mean train-mode relu(z) − eval")
        ax.set_title(f"after ReLU the mean rises (Jensen): gap {gap:.3f}", fontsize=7)
        ax.legend(frameon=False, fontsize=6)
    ctx.savefig(fig, "dropout_rescaling")

    return Result(
        verdict=verdict,
        numbers={
            "claim_kind": "empirical", "p": P, "seeds": [ctx.seed + i for i in range(N_SEEDS)], "masks": masks,
            "train_steps": steps, "train_loss": [r["train_loss"] for r in runs], "n_test_inputs": n_test,
            "linear_bias_ratio_mean": lin, "linear_bias_ratio_se": lin_se,
            "relu_bias_ratio_mean": nl, "relu_bias_ratio_se": nl_se,
            "relu_jensen_gap_mean": gap, "relu_jensen_gap_se": gap_se,
            "relu_mean_shift_mean": shift, "relu_mean_shift_se": shift_se,
            "linear_error_slope_vs_masks_mean": slope, "linear_error_slope_vs_masks_se": slope_se,
            "variance_over_p_over_1mp_h2_mean": var_ratio, "variance_over_p_over_1mp_h2_se": var_se,
            "kept_unit_scale_max_err": max(r["kept_scale_max_err"] for r in m),
            "dropped_fraction": [r["dropped_fraction"] for r in m],
            "control": "p = 0 on the same trained nets (nothing dropped)",
            "control_max_bias_ratio": control_ratio, "control_relu_gap": control_gap,
            "control_verdict": "no gap" if control_ratio < BIAS_RATIO else "gap",
        },
        threshold=(f"bias ratio ‖mean over masks − eval‖/√(ΣVar/M) (≈ 1 if unbiased), mean ± 2 SE over {N_SEEDS} seeds "
                   f"against {BIAS_RATIO:g}: holds if below for the pre-activation and after the ReLU; "
                   "holds-with-correction if only the pre-activation; fails if the pre-activation is above; "
                   "inconclusive if either straddles it or the p = 0 control is above"),
        explanation=(
            f"Every kept unit equals h/(1 − p) (max error {max(r['kept_scale_max_err'] for r in m):.0e}) and the "
            f"share dropped is {np.mean([r['dropped_fraction'] for r in m]):.3f}. Over {masks} masks per input the "
            f"mean pre-activation of the next linear layer differs from the eval one by {lin:.2f} ± {lin_se:.2f} "
            f"Monte Carlo noise units (unbiased ≈ 1; the relative error falls with slope {slope:.2f} ± {slope_se:.2f} "
            f"in log M): the rescaling preserves the mean exactly there. After the ReLU the ratio is {nl:.1f} ± "
            f"{nl_se:.1f}: the mean activation is {shift:+.4f} ± {shift_se:.4f} above the eval one (relative gap "
            f"{gap:.3f} ± {gap_se:.3f}, Jensen). The variance over masks is {var_ratio:.3f} ± {var_se:.3f} × "
            f"p/(1 − p)·h² — not preserved. Control p = 0: largest ratio {control_ratio:.1e}, gap {control_gap:.1e}."
        ),
        corrected=(
            "Scaling by (1 − p) at test time (or 1/(1 − p) while training) matches the expected training-time "
            "value of each unit and of any linear function of the dropped layer — the next pre-activation — "
            "exactly; it does not match the variance (it grows by p/(1 − p)·x² per unit), and after a "
            "nonlinearity the expected training-time activation differs from the test-time one (Jensen), so "
            "the test network is only an approximation of the average over dropout masks."
        ) if verdict in ("holds-with-correction", "fails") else None,
    )
