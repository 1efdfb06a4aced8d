"""ch09.scale_smoothness — does the ruggedness κ fall as a power of model size (the book's ch09 Theorem 4)?

Theorem 4 states κ^(N) = O(N^{−α}) for a model of size N. Measured: one-hidden-layer MLPs 64 → N → 10
(tanh) on scikit-learn's digits (1,200 train — 600 in quick mode — / 597 held out, :func:`digits_split`), N log-spaced from 8 to
512, several seeds per width, each trained by full-batch Adam (lr 10⁻²) until its training cross-entropy
first falls below ``LOSS_TARGET`` (a matched point of convergence: with cross-entropy on separable data the
logits keep growing, so "at convergence" must be pinned to a loss), at most ``MAX_STEPS`` steps.

κ of one network (:func:`terrainlab.seq.belief_path_ruggedness`): for each held-out input with logits z,
the tangent Hessian of the answer energy −log p_y in logit coordinates, diag(p) − ppᵀ on Σv = 0 (K−1 = 9
eigenvalues), is evaluated along the temperature path p_s = softmax(s·z), s = 0, 0.1, …, 1 — the straight
path in logit space from the uniform belief to the network's output belief — and κ is the coefficient of
variation of the 11 × 9 eigenvalues pooled over that path (the book's Def. 1); the network's κ is the mean
over the held-out inputs. The same quantity is also recorded when the training loss first crosses
``LOSS_EARLY`` (an earlier matched point), and at the output belief alone (s = 1).

Fit: log κ = c − α log N by least squares over every (N, seed) point, with two 95 % percentile bootstrap
intervals for α (:func:`terrainlab.seq.fit_power_law`, seeded): seeds resampled within each width (seed
noise), and whole widths resampled (a cluster bootstrap that also widens when the points leave the line).
The verdict uses their union. Rule: CI of α above 0 ⇒ holds (κ falls as a power of N on this task); CI below 0 ⇒ fails (κ grows with N);
CI inside ±``NULL_BAND`` ⇒ fails (no trend); otherwise inconclusive.

Control inside the experiment: the same widths and seeds at random initialisation with a mean-field readout
(output weights N(0, ¼)/N, so the logits scale as N^{−1/2}; to first order in the logit scale κ is
proportional to it, hence κ ∝ N^{−1/2} by construction, up to second-order terms), pushed through the same κ and fitting code. The
fit must recover α = ½ (within ``CONTROL_TOL``, CI above 0), else the verdict is inconclusive.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from terrainlab.atlas import Context, Result, experiment
from terrainlab.atlas.chapters._digits import default_init_, one_thread
from terrainlab.atlas.chapters.ch06.resnet_is_euler import digits_split
from terrainlab.plotting import BLACK, BLUE, ORANGE, SKY, VERMILLION, figure
from terrainlab.seq.smoothness import belief_path_ruggedness, fit_power_law

LOSS_TARGET = 0.01  # training cross-entropy at which a network counts as converged
LOSS_EARLY = 0.1  # an earlier matched point, reported
MAX_STEPS = 3000
NULL_BAND = 0.05  # |α| CI inside ±NULL_BAND: no trend
CONTROL_ALPHA = 0.5
CONTROL_TOL = 0.1  # the control's fitted α must lie within CONTROL_ALPHA ± CONTROL_TOL
N_BOOT = 2000


def _mlp(width: int, generator: torch.Generator, *, mean_field: bool = False) -> nn.Sequential:
    """64 → width → 10 with tanh, PyTorch's default uniform(±1/√fan_in) init drawn from ``generator``;
    ``mean_field``: readout weights N(0, ¼)/width instead (logits of size N^{−1/2}), readout bias 0."""
    net = nn.Sequential(nn.Linear(64, width), nn.Tanh(), nn.Linear(width, 10))
    default_init_((net[0], net[2]), generator)
    with torch.no_grad():
        if mean_field:
            net[2].weight.copy_(0.5 * torch.randn(net[2].weight.shape, generator=generator) / width)
            net[2].bias.zero_()
    return net


def _kappa(net, X) -> dict:
    with torch.no_grad():
        r = belief_path_ruggedness(net(X).double())
    return {"kappa": float(r.kappa.mean()), "kappa_output": float(np.nanmean(r.kappa_output.numpy())),
            "trace": float(r.trace.mean())}


def train_to_target(width: int, seed: int, Xtr, ytr, Xte, yte, *, loss_target: float = LOSS_TARGET,
                    loss_early: float = LOSS_EARLY, max_steps: int = MAX_STEPS, lr: float = 1e-2) -> dict:
    """Train one MLP full-batch until its training loss first falls below ``loss_target``; κ (and the
    trace) on the held-out inputs at initialisation, at ``loss_early`` and at ``loss_target``."""
    net = _mlp(width, torch.Generator().manual_seed(seed))
    out = {"init": _kappa(net, Xte)}
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    steps, loss = 0, float("inf")
    for steps in range(max_steps + 1):
        loss_t = nn.functional.cross_entropy(net(Xtr), ytr)
        loss = float(loss_t.detach())
        if "early" not in out and loss < loss_early:
            out["early"] = _kappa(net, Xte)
        if loss < loss_target or steps == max_steps:
            break
        opt.zero_grad()
        loss_t.backward()
        opt.step()
    out["final"] = _kappa(net, Xte)
    out.setdefault("early", out["final"])
    with torch.no_grad():
        out["test_accuracy"] = float((net(Xte).argmax(1) == yte).double().mean())
    out.update(steps=steps, train_loss=loss, reached_target=loss < loss_target)
    return out


def _alpha(widths, kappas, seed: int) -> dict:
    """α = −slope of the log-log fit, with two bootstrap intervals (negated and reordered): seeds
    resampled within widths (``ci_seeds``), whole widths resampled (``ci_widths``, which also sees lack of
    fit), and their union ``ci``, the one the verdict uses."""
    x, y = torch.tensor(widths, dtype=torch.float64), torch.tensor(kappas, dtype=torch.float64)
    out = {}
    for key, how, off in (("ci_seeds", "within", 0), ("ci_widths", "levels", 1)):
        fit = fit_power_law(x, y, n_boot=N_BOOT, resample=how, generator=torch.Generator().manual_seed(2 * seed + off))
        out[key] = [-fit.ci[1], -fit.ci[0]]
    out["ci"] = [min(out["ci_seeds"][0], out["ci_widths"][0]), max(out["ci_seeds"][1], out["ci_widths"][1])]
    return {"alpha": -fit.slope, "intercept": fit.intercept, "residual_std": fit.residual_std, **out}


def decide_scale_smoothness(alpha_lo: float, alpha_hi: float, control_alpha: float, control_lo: float,
                            null_band: float = NULL_BAND, control_alpha_true: float = CONTROL_ALPHA,
                            control_tol: float = CONTROL_TOL) -> str:
    """inconclusive unless the control's fit recovers its built-in exponent (|α̂ − ``control_alpha_true``| ≤
    ``control_tol`` with its CI above 0); then holds if the trained networks' α CI lies above 0, fails if it
    lies below 0 (κ grows with N) or inside ±``null_band`` (no trend), inconclusive otherwise."""
    if not (abs(control_alpha - control_alpha_true) <= control_tol and control_lo > 0):
        return "inconclusive"
    if alpha_lo > 0:
        return "holds"
    if alpha_hi < 0 or (-null_band <= alpha_lo and alpha_hi <= null_band):
        return "fails"
    return "inconclusive"


@experiment(
    id="ch09.scale_smoothness",
    chapter=9,
    title="Width sweep 8…512 on digits: does the ruggedness κ fall as N^(−α)?",
    claim="Theorem 4 (scale–smoothness): the ruggedness of a model of size N obeys κ^(N) = O(N^{−α}) for some "
    "α > 0 — larger models have smoother terrains.",
)
def scale_smoothness(ctx: Context) -> Result:
    with one_thread():
        return _scale_smoothness(ctx)


def _scale_smoothness(ctx: Context) -> Result:
    if ctx.quick:
        widths_grid = [int(round(v)) for v in np.geomspace(8, 512, 5)]
        n_seeds = 2
    else:
        widths_grid = [8, 16, 32, 64, 128, 256, 512]
        n_seeds = 3
    Xtr, ytr, Xte, yte = digits_split(ctx.seed)
    n_train = 600 if ctx.quick else len(ytr)
    Xtr, ytr = Xtr[:n_train], ytr[:n_train]
    runs, ctrl = [], []
    for N in widths_grid:
        for s in range(n_seeds):
            seed = 1000 * ctx.seed + 10 * N + s
            r = train_to_target(N, seed, Xtr, ytr, Xte, yte)
            r.update(width=N, seed=seed)
            runs.append(r)
            ctrl.append(_kappa(_mlp(N, torch.Generator().manual_seed(seed + 500), mean_field=True), Xte)["kappa"])
    W = [r["width"] for r in runs]
    k_final = [r["final"]["kappa"] for r in runs]
    fit = _alpha(W, k_final, ctx.seed + 1)
    fit_early = _alpha(W, [r["early"]["kappa"] for r in runs], ctx.seed + 2)
    fit_out = _alpha(W, [r["final"]["kappa_output"] for r in runs], ctx.seed + 3)
    fit_init = _alpha(W, [r["init"]["kappa"] for r in runs], ctx.seed + 4)
    fit_ctrl = _alpha(W, ctrl, ctx.seed + 5)
    verdict = decide_scale_smoothness(fit["ci"][0], fit["ci"][1], fit_ctrl["alpha"], fit_ctrl["ci"][0])

    Wa = np.asarray(W, dtype=float)
    grid = np.geomspace(min(widths_grid), max(widths_grid), 50)
    rng = np.random.default_rng(0)
    jit = np.exp(rng.uniform(-0.06, 0.06, len(Wa)))

    def fit_line(ax, f, ys, color, label):
        ax.plot(grid, np.exp(f["intercept"]) * grid ** (-f["alpha"]), color=color, lw=1.2, label=label)
        # the slope's interval, pivoted at the data's centre (log-mean of N and of κ)
        lx0, ly0 = np.mean(np.log(Wa)), np.mean(np.log(ys))
        lo = np.exp(ly0 - np.outer([f["ci"][1], f["ci"][0]], np.log(grid) - lx0))
        ax.fill_between(grid, lo.min(0), lo.max(0), color=color, alpha=0.15, lw=0)

    fig, axes = figure("double", height=2.9, ncols=3)
    ax = axes[0]
    ax.scatter(Wa * jit, k_final, s=9, color=VERMILLION, zorder=3, label=f"trained to loss {LOSS_TARGET:g}")
    fit_line(ax, fit, k_final, VERMILLION, f"fit α = {fit['alpha']:+.3f} [{fit['ci'][0]:+.3f}, {fit['ci'][1]:+.3f}]")
    k_early = [r["early"]["kappa"] for r in runs]
    ax.scatter(Wa * jit, k_early, s=7, color=ORANGE, marker="s", zorder=3, label=f"at loss {LOSS_EARLY:g}")
    fit_line(ax, fit_early, k_early, ORANGE, f"fit α = {fit_early['alpha']:+.3f}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("hidden width N")
    ax.set_ylabel("κ along softmax(s·z), s ∈ [0, 1]")
    ax.set_title("(a) trained MLPs: κ against width")
    ax.legend(frameon=False, fontsize=5.5, loc="upper left")
    ax = axes[1]
    ax.scatter(Wa * jit, ctrl, s=9, color=BLUE, zorder=3, label="init, mean-field readout")
    fit_line(ax, fit_ctrl, ctrl, BLUE, f"fit α = {fit_ctrl['alpha']:+.3f} [{fit_ctrl['ci'][0]:+.3f}, "
             f"{fit_ctrl['ci'][1]:+.3f}]")
    ref = np.exp(np.mean(np.log(ctrl)) + 0.5 * np.mean(np.log(Wa))) * grid ** -0.5
    ax.plot(grid, ref, color=BLACK, ls="--", lw=0.8, label="N^(−1/2), built in")
    k_init = [r["init"]["kappa"] for r in runs]
    ax.scatter(Wa * jit, k_init, s=7, color=SKY, marker="^", label=f"init, default readout (α = "
               f"{fit_init['alpha']:+.2f})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("hidden width N")
    ax.set_ylabel("κ (same definition)")
    ax.set_title("(b) control: the fit finds a slope built in")
    ax.legend(frameon=False, fontsize=5.5, loc="upper right", bbox_to_anchor=(1.0, 0.8))
    ax = axes[2]
    tr = [r["final"]["trace"] for r in runs]
    ax.scatter(Wa * jit, tr, s=9, color=VERMILLION, label="Hessian trace 1 − Σp² (held out)")
    ax.scatter(Wa * jit, [1 - r["test_accuracy"] for r in runs], s=9, color=BLACK, marker="x",
               label="test error")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("hidden width N")
    ax.set_title("(c) at the matched training loss")
    ax.legend(frameon=False, fontsize=5.5, loc="upper right")
    ctx.savefig(fig, "scale_smoothness")

    per_width = {}
    for N in widths_grid:
        sel = [r for r in runs if r["width"] == N]
        per_width[str(N)] = {
            "kappa": [r["final"]["kappa"] for r in sel],
            "kappa_early": [r["early"]["kappa"] for r in sel],
            "kappa_init": [r["init"]["kappa"] for r in sel],
            "trace": [r["final"]["trace"] for r in sel],
            "test_accuracy": [r["test_accuracy"] for r in sel],
            "steps": [r["steps"] for r in sel],
        }
    kmean = {N: float(np.mean(v["kappa"])) for N, v in per_width.items()}
    n_reached = sum(r["reached_target"] for r in runs)
    trend = "grows" if fit["ci"][1] < 0 else ("falls" if fit["ci"][0] > 0 else "shows no resolved trend")
    return Result(
        verdict=verdict,
        numbers={
            "claim_kind": "empirical",
            "widths": widths_grid,
            "seeds_per_width": n_seeds,
            "n_train": n_train,
            "loss_target": LOSS_TARGET,
            "reached_target": f"{n_reached}/{len(runs)}",
            "alpha": fit["alpha"],
            "alpha_ci95": fit["ci"],
            "alpha_ci95_seeds_resampled": fit["ci_seeds"],
            "alpha_ci95_widths_resampled": fit["ci_widths"],
            "alpha_fit_residual_std": fit["residual_std"],
            "alpha_at_loss_early": fit_early["alpha"],
            "alpha_at_loss_early_ci95": fit_early["ci"],
            "alpha_output_belief_only": fit_out["alpha"],
            "alpha_output_belief_only_ci95": fit_out["ci"],
            "alpha_random_init_default_readout": fit_init["alpha"],
            "alpha_random_init_default_readout_ci95": fit_init["ci"],
            "control_alpha_true": CONTROL_ALPHA,
            "control_alpha": fit_ctrl["alpha"],
            "control_alpha_ci95": fit_ctrl["ci"],
            "kappa_mean_per_width": kmean,
            "per_width": per_width,
        },
        threshold=f"95% bootstrap CI of α (log κ = c − α log N; union of the intervals with seeds resampled within widths "
        f"and with whole widths resampled) above 0 ⇒ holds; below 0 "
        f"or inside ±{NULL_BAND} ⇒ fails; otherwise inconclusive — decided only if the control (random init, "
        f"mean-field readout, κ ∝ N^(−1/2) by construction) is fitted at α within {CONTROL_ALPHA} ± {CONTROL_TOL} "
        "with its CI above 0.",
        explanation=(
            f"{len(runs)} MLPs (widths {widths_grid[0]}–{widths_grid[-1]}, {n_seeds} seeds each; {n_reached} reached "
            f"training loss {LOSS_TARGET:g}) give κ = {kmean[str(widths_grid[0])]:.2f} at N = {widths_grid[0]} and "
            f"{kmean[str(widths_grid[-1])]:.2f} at N = {widths_grid[-1]}: the fitted exponent is α = "
            f"{fit['alpha']:+.3f} (95% CI [{fit['ci'][0]:+.3f}, {fit['ci'][1]:+.3f}]; seeds resampled "
            f"[{fit['ci_seeds'][0]:+.3f}, {fit['ci_seeds'][1]:+.3f}], widths resampled [{fit['ci_widths'][0]:+.3f}, "
            f"{fit['ci_widths'][1]:+.3f}]), so κ {trend} with width. At "
            f"the earlier matched loss {LOSS_EARLY:g} α = {fit_early['alpha']:+.3f} [{fit_early['ci'][0]:+.3f}, "
            f"{fit_early['ci'][1]:+.3f}]; with κ taken at the output belief alone α = {fit_out['alpha']:+.3f}. The "
            f"same code fits the mean-field control at α = {fit_ctrl['alpha']:+.3f} [{fit_ctrl['ci'][0]:+.3f}, "
            f"{fit_ctrl['ci'][1]:+.3f}] (built in, to first order in the logit scale: {CONTROL_ALPHA}), and the untrained networks with PyTorch's "
            f"default readout at α = {fit_init['alpha']:+.3f}. κ measures the spread of the Hessian spectrum, which "
            "is set by how confident the network is on held-out inputs, not by its size."
        ),
        corrected=(
            "κ^(N) = O(N^{−α}) is a hypothesis, not a theorem, and on digits it does not hold for trained MLPs: at a "
            f"matched training loss the ruggedness of the answer belief grows slowly with width (α = "
            f"{fit['alpha']:+.3f}, CI [{fit['ci'][0]:+.3f}, {fit['ci'][1]:+.3f}]). A power-law fall of κ appears only "
            "where it is built in (a readout whose logits shrink like N^{−1/2}); whether κ falls with N depends on "
            "how confident the trained model is, so any scale–smoothness law has to be measured per task."
        ) if verdict == "fails" and fit["ci"][1] < 0 else (
            "κ^(N) = O(N^{−α}) is a hypothesis, not a theorem: on digits the trained MLPs' κ shows no trend with "
            f"width (α = {fit['alpha']:+.3f}, CI [{fit['ci'][0]:+.3f}, {fit['ci'][1]:+.3f}])."
        ) if verdict == "fails" else None,
    )
