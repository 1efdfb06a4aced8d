"""ch11.full_finetune_delta_is_low_rank — is the update of full fine-tuning, ΔW = W_ft − W_pre, low-rank?

LoRA's premise (Hu et al. 2021, *LoRA*, §4 and §7; after Aghajanyan et al. 2020, *Intrinsic
Dimensionality Explains the Effectiveness of Language Model Fine-Tuning*): the weight change of
adaptation has a low "intrinsic rank", so ΔW ≈ (α/r)·B A with small r loses little. The book states it
as a fact about fine-tuning. Here it is measured (an empirical claim) on the setting of
``ch11.lora_rank_sweep``: the MLP 64 → 64 → 64 → 10 pretrained on the digits
(:mod:`~terrainlab.atlas.chapters._lora_digits`, shared) is fully fine-tuned (every weight, full-batch
Adam) on the far task (pixels permuted, one permutation per seed, 3 seeds) and on the near task (one-pixel
shift; deterministic), and for each hidden layer (``fc1``, ``fc2``, 64 × 64) ΔW is measured by
:func:`terrainlab.nn.delta_w_spectrum`: its singular values, entropy effective rank (Roy & Vetterli
2007) and the energy ‖ΔW‖² held by the top r = 8 singular values.

fc1's ΔW has some exactly zero singular values: the digits have pixels that are blank in every image, so
their weight columns get no gradient. That is rank deficiency of the data, not of the adaptation; the
effective-rank and energy statistics are barely moved by it (zeros carry no energy).

Control inside the experiment: a Gaussian random matrix G of the same shape and Frobenius norm (seeded),
the "no structure" reference, whose spectrum is spread (effective rank near full). Its top-8 energy share
must read "not low-rank" (mean + 2 SE below ``ENERGY_MIN``), else the measurement cannot tell the two
apart and the verdict is inconclusive.

Verdict (:func:`decide_delta_low_rank`), on the far task with :func:`~terrainlab.atlas.stats.side_of`
(mean ± 2 SE over seeds; statistics averaged over the two layers per seed): fails when the top-8 share of
‖ΔW‖²_F is below ``ENERGY_MIN`` = 0.8; inconclusive when 0.8 is inside its interval; when above, holds if
also ρ = erank(ΔW)/erank(G) is below ``LOW`` = 0.5 (few directions in count too), holds-with-correction
if not (the energy is concentrated but a long tail of small directions remains).
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from terrainlab.atlas import Context, Result, experiment
from terrainlab.atlas.stats import mean_se, side_of
from terrainlab.nn import delta_w_spectrum
from terrainlab.plotting import BLACK, BLUE, SKY, VERMILLION, figure

from .. import _lora_digits as L

LOW = 0.5  # ρ = erank(ΔW) / erank(Gaussian) below this: low-rank in count too
ENERGY_MIN = 0.8  # a rank-TOP_R update must carry this share of ‖ΔW‖²_F for ΔW to count as low-rank
N_SEEDS = 3
STEPS = (60, 20)  # full fine-tuning steps (full, quick), as in ch11.lora_rank_sweep
LR = 1e-2
LAYERS = ("fc1", "fc2")
TOP_R = 8


def decide_delta_low_rank(energy_mean: float, energy_se: float, rho_mean: float, rho_se: float,
                          control_energy_mean: float, control_energy_se: float,
                          energy_min: float = ENERGY_MIN, low: float = LOW) -> str:
    """The verdict on "the full fine-tuning update is low-rank" from the share of ‖ΔW‖² in the top
    ``TOP_R`` singular values (mean and SE over seeds), the effective-rank ratio ρ = erank(ΔW)/erank(G),
    and the control's top-``TOP_R`` share (a Gaussian of the same shape and norm): inconclusive when the
    control's share is not below ``energy_min`` (± 2 SE) or ``energy_min`` lies inside ΔW's interval;
    fails when ΔW's share is below ``energy_min``; holds when it is above and ρ is below ``low``;
    holds-with-correction when it is above but ρ is not below ``low`` (low-rank in energy, not in count:
    a long tail of small directions).

    >>> decide_delta_low_rank(0.9, 0.01, 0.2, 0.01, 0.4, 0.01), decide_delta_low_rank(0.9, 0.01, 0.7, 0.01, 0.4, 0.01)
    ('holds', 'holds-with-correction')
    """
    if not (isinstance(low, (int, float)) and 0 < low < 1):
        raise ValueError(f"low must be a number in (0, 1), got {low!r}")
    if not (isinstance(energy_min, (int, float)) and 0 < energy_min < 1):
        raise ValueError(f"energy_min must be a number in (0, 1), got {energy_min!r}")
    for name, v in (("energy_mean", energy_mean), ("rho_mean", rho_mean),
                    ("control_energy_mean", control_energy_mean)):
        if not isinstance(v, (int, float)) or v < 0:
            raise ValueError(f"{name} must be a non-negative number, got {v!r}")
    if side_of(control_energy_mean, control_energy_se, energy_min) != "below":
        return "inconclusive"
    side = side_of(energy_mean, energy_se, energy_min)
    if side == "inside":
        return "inconclusive"
    if side == "below":
        return "fails"
    return "holds" if side_of(rho_mean, rho_se, low) == "below" else "holds-with-correction"


def measure(base, task: str, seed: int, steps: int, data) -> dict:
    """Fully fine-tune a copy of ``base`` on ``task``; per hidden layer ΔW's spectrum, its Gaussian
    references (G and G′, same shape and Frobenius norm, from ``seed``) and the ratios."""
    Xtr, ytr, Xte, yte = data
    model = copy.deepcopy(base)
    L.train(model, L.task_inputs(task, Xtr, seed), ytr, steps, LR)
    g = torch.Generator().manual_seed(20_000 + seed)
    out = {"acc": L.accuracy(model, L.task_inputs(task, Xte, seed), yte), "layers": {}}
    for name in LAYERS:
        w0 = getattr(base, name).weight.detach()
        spec = delta_w_spectrum(w0, getattr(model, name).weight.detach())
        refs = []
        for _ in range(2):
            G = torch.randn(w0.shape, generator=g, dtype=torch.float64)
            refs.append(delta_w_spectrum(torch.zeros_like(G), G * spec.frobenius / torch.linalg.norm(G)))
        out["layers"][name] = {"spec": spec, "gauss": refs[0], "rho": spec.effective_rank / refs[0].effective_rank,
                               "control_rho": refs[1].effective_rank / refs[0].effective_rank}
    out["rho"] = float(np.mean([v["rho"] for v in out["layers"].values()]))
    out["control_rho"] = float(np.mean([v["control_rho"] for v in out["layers"].values()]))
    out["energy"] = float(np.mean([v["spec"].energy_top(TOP_R) for v in out["layers"].values()]))
    out["control_energy"] = float(np.mean([v["gauss"].energy_top(TOP_R) for v in out["layers"].values()]))
    return out


@experiment(
    id="ch11.full_finetune_delta_is_low_rank",
    chapter=11,
    title="Full fine-tuning's ΔW against a Gaussian of the same norm: how low is its effective rank?",
    claim="The weight update of full fine-tuning, ΔW = W_ft − W_pre, has low (intrinsic) rank — the premise "
    "of LoRA.",
)
def full_finetune_delta_is_low_rank(ctx: Context) -> Result:
    base, meta = L.pretrained(ctx)
    data = L.data()
    steps = STEPS[1 if ctx.quick else 0]
    seeds = [ctx.seed + i for i in range(N_SEEDS)]
    far = [measure(base, "far", s, steps, data) for s in seeds]
    near = measure(base, "near", ctx.seed, steps, data)
    rho, crho = mean_se([m["rho"] for m in far]), mean_se([m["control_rho"] for m in far])
    en, cen = mean_se([m["energy"] for m in far]), mean_se([m["control_energy"] for m in far])
    verdict = decide_delta_low_rank(*en, *rho, *cen)
    n_full = min(base.fc1.weight.shape)
    erank = {n: mean_se([m["layers"][n]["spec"].effective_rank for m in far]) for n in LAYERS}
    erank_g = {n: mean_se([m["layers"][n]["gauss"].effective_rank for m in far]) for n in LAYERS}
    energy = {n: mean_se([m["layers"][n]["spec"].energy_top(TOP_R) for m in far]) for n in LAYERS}
    energy_g = {n: mean_se([m["layers"][n]["gauss"].energy_top(TOP_R) for m in far]) for n in LAYERS}
    stable = {n: mean_se([m["layers"][n]["spec"].stable_rank for m in far]) for n in LAYERS}

    fig, (ax, ax2) = figure("double", height=3.0, ncols=2)
    k = np.arange(1, n_full + 1)
    for i, m in enumerate(far):
        for name, ls in (("fc1", "-"), ("fc2", "--")):
            lay = m["layers"][name]
            s = lay["spec"].singular_values.numpy()
            ax.semilogy(k, s / s[0], color=VERMILLION, ls=ls, lw=0.9, label=f"ΔW {name}, far" if i == 0 else None)
            if i == 0:
                sg = lay["gauss"].singular_values.numpy()
                ax.semilogy(k, sg / sg[0], color=SKY, ls=ls, lw=0.9, label=f"control: Gaussian, {name}")
                ax2.plot(k, lay["spec"].energy.numpy(), color=VERMILLION, ls=ls, lw=0.9, label=f"ΔW {name}, far")
                ax2.plot(k, lay["gauss"].energy.numpy(), color=SKY, ls=ls, lw=0.9, label=f"Gaussian, {name}")
    for name, ls in (("fc1", "-"), ("fc2", "--")):
        s = near["layers"][name]["spec"].singular_values.numpy()
        ax.semilogy(k, s / s[0], color=BLUE, ls=ls, lw=0.9, label=f"ΔW {name}, near")
    ax.set_ylim(1e-4, 2)  # fc1's exact zeros (input pixels that are blank in every image) fall below
    ax.set_xlabel("index i")
    ax.set_ylabel("σ_i / σ_1")
    ax.set_title("Singular values of ΔW vs a Gaussian of equal norm")
    ax.legend(frameon=False, fontsize=6)
    ax2.axvline(TOP_R, color=BLACK, lw=0.6, ls=":")
    ax2.set_xlabel("r")
    ax2.set_ylabel("energy in the top r (Σσ² share)")
    ax2.set_title(f"Energy in the top r (dotted: r = {TOP_R})")
    ax2.legend(frameon=False, fontsize=6)
    ctx.savefig(fig, "full_finetune_delta_spectrum")

    numbers = {"claim_kind": "empirical", "seeds": seeds, "n_seeds": N_SEEDS, "finetune_steps": steps,
               "low": LOW, "top_r": TOP_R, "matrix_shape": list(base.fc1.weight.shape),
               "rho_mean": rho[0], "rho_se": rho[1], "rho_side_of_low": side_of(*rho, LOW),
               "far_finetuned_acc_mean": mean_se([m["acc"] for m in far])[0],
               "near_rho": near["rho"], "near_finetuned_acc": near["acc"],
               "control_setting": "a second Gaussian matrix of the same shape and norm",
               f"energy_top{TOP_R}_mean": en[0], f"energy_top{TOP_R}_se": en[1], "energy_min": ENERGY_MIN,
               "energy_side_of_min": side_of(*en, ENERGY_MIN), "near_energy_top8": near["energy"],
               f"control_energy_top{TOP_R}_mean": cen[0], f"control_energy_top{TOP_R}_se": cen[1],
               "control_rho_mean": crho[0], "control_rho_se": crho[1],
               "control_side_of_min": side_of(*cen, ENERGY_MIN),
               "control_verdict": decide_delta_low_rank(*cen, *crho, 0.0, 0.0)}
    for n in LAYERS:
        numbers[f"{n}_erank_mean"], numbers[f"{n}_erank_se"] = erank[n]
        numbers[f"{n}_gauss_erank_mean"], numbers[f"{n}_gauss_erank_se"] = erank_g[n]
        numbers[f"{n}_energy_top{TOP_R}_mean"], numbers[f"{n}_energy_top{TOP_R}_se"] = energy[n]
        numbers[f"{n}_gauss_energy_top{TOP_R}_mean"] = energy_g[n][0]
        numbers[f"{n}_stable_rank_mean"], numbers[f"{n}_stable_rank_se"] = stable[n]
        numbers[f"near_{n}_erank"] = near["layers"][n]["spec"].effective_rank
        numbers[f"near_{n}_energy_top{TOP_R}"] = near["layers"][n]["spec"].energy_top(TOP_R)
    layer_txt = "; ".join(
        f"{n}: erank {erank[n][0]:.1f} ± {erank[n][1]:.1f} vs Gaussian {erank_g[n][0]:.1f}, top-{TOP_R} energy "
        f"{energy[n][0]:.3f} vs {energy_g[n][0]:.3f}, stable rank {stable[n][0]:.2f}" for n in LAYERS)
    return Result(
        verdict=verdict,
        numbers=numbers,
        threshold=f"far task, mean ± 2 SE over {N_SEEDS} seeds: share of ‖ΔW‖² in the top {TOP_R} singular "
        f"values against {ENERGY_MIN} (fails below, inconclusive inside); above it, holds if ρ = "
        f"erank(ΔW)/erank(Gaussian of equal shape and norm) < {LOW}, else holds-with-correction; "
        f"inconclusive when the control (the Gaussian) is not below {ENERGY_MIN}",
        explanation=(
            f"Full fine-tuning ({steps} full-batch Adam steps, lr {LR}) of the pretrained digits MLP on the "
            f"far task (held-out accuracy {numbers['far_finetuned_acc_mean']:.3f}): top-{TOP_R} energy "
            f"{en[0]:.3f} ± {en[1]:.3f}, ρ = {rho[0]:.3f} ± {rho[1]:.3f}. Per 64 × 64 layer: {layer_txt}. Near task: top-{TOP_R} energy {near['energy']:.3f}, ρ = "
            f"{near['rho']:.3f}. Control (Gaussian of equal shape and norm): top-{TOP_R} energy {cen[0]:.3f} ± "
            f"{cen[1]:.3f}; a second Gaussian against it reads ρ = {crho[0]:.3f} ± {crho[1]:.3f}."
        ),
        corrected=(
            f"ΔW of full fine-tuning is low-rank in energy, not in count: the top {TOP_R} of 64 singular values "
            f"carry {en[0]:.2f} of ‖ΔW‖² (a Gaussian's: {cen[0]:.2f}; stable rank "
            f"{np.mean([stable[n][0] for n in LAYERS]):.1f}), but the entropy effective rank is {rho[0]:.2f} "
            "of a Gaussian's: a long tail of small directions that a rank-8 update drops."
        ) if verdict == "holds-with-correction" else (
            f"ΔW of full fine-tuning is not low-rank here: the top {TOP_R} singular values carry only "
            f"{en[0]:.2f} of ‖ΔW‖² (a Gaussian's: {cen[0]:.2f})."
        ) if verdict == "fails" else None,
    )
