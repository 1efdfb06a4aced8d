"""Benchmark: terrainlab diffusion samplers against diffusers' schedulers, same score network.

Trains one small ε-network (terrainlab ScoreMLP) on scikit-learn's two moons with the linear VP
schedule (β(t) ∈ [0.1, 20], the continuous limit of DDPM's 1e-4 … 0.02, T = 1000), then samples
with terrainlab's samplers and with diffusers' DDPM, DDIM, Euler and DPM-Solver++ schedulers
driving the *same* network (diffusers timestep τ is shown to the network as t = (τ + 1)/1000, the
time whose continuous ᾱ(t) matches the discrete ᾱ_τ).

Reports (1) quality — MMD² (unbiased, RBF kernel sum over bandwidths 0.1/0.3/1) and sliced W₂ to
a large reference sample of the data — against score evaluations (NFE), and (2) per-step
overhead: wall time of a sampler divided by the wall time of the same number of bare network
calls on the same batch, measured in alternation in one process, medians of repeats.

Usage:  python bench/diffusion.py [--quick]
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import time

import torch

from terrainlab.core import RK4, Euler, Heun
from terrainlab.diffusion import (
    ScoreMLP,
    VPSchedule,
    as_score,
    mmd_rbf,
    sample_pf_ode,
    sample_reverse_sde,
    sliced_wasserstein,
    train_dsm,
    two_moons,
)

BANDWIDTHS = (0.1, 0.3, 1.0)


def diffusers_samplers():
    import diffusers as d

    common = dict(num_train_timesteps=1000, beta_schedule="linear", beta_start=1e-4, beta_end=0.02)
    return {
        "diffusers DDPM": lambda: d.DDPMScheduler(**common, clip_sample=False),
        "diffusers DDIM": lambda: d.DDIMScheduler(**common, clip_sample=False),
        "diffusers DDIM (trailing)": lambda: d.DDIMScheduler(**common, clip_sample=False, timestep_spacing="trailing"),
        "diffusers Euler": lambda: d.EulerDiscreteScheduler(**common),
        "diffusers DPM-Solver++(2M)": lambda: d.DPMSolverMultistepScheduler(
            **common, algorithm_type="dpmsolver++", solver_order=2),
    }


def run_diffusers(make, net, x_T, nfe, generator):
    """The standard diffusers loop; returns (samples, network calls)."""
    sch = make()
    sch.set_timesteps(nfe)
    x = x_T * sch.init_noise_sigma
    calls = 0
    for tau in sch.timesteps:
        inp = sch.scale_model_input(x, tau)
        t = (torch.full((x.shape[0],), float(tau), dtype=x.dtype) + 1) / 1000
        eps = net(inp, t)
        calls += 1
        kw = {"generator": generator} if "generator" in sch.step.__code__.co_varnames else {}
        x = sch.step(eps, tau, x, **kw).prev_sample
    return x, calls


def terrainlab_samplers(score, sched):
    """name -> f(x_T, budget, generator) -> SampleResult, each within ``budget`` score evaluations
    (the final Tweedie denoising step, like diffusers' last x₀ step, is counted)."""
    return {
        "terrainlab PF-ODE Euler": lambda x, b, g: sample_pf_ode(score, x, sched, b - 1, scheme=Euler(),
                                                                  warp="log_snr", denoise=True),
        "terrainlab PF-ODE Heun": lambda x, b, g: sample_pf_ode(score, x, sched, (b - 1) // 2, scheme=Heun(),
                                                                 warp="log_snr", denoise=True),
        "terrainlab PF-ODE Heun (karras)": lambda x, b, g: sample_pf_ode(score, x, sched, (b - 1) // 2,
                                                                          scheme=Heun(), warp="karras",
                                                                          denoise=True),
        "terrainlab PF-ODE RK4": lambda x, b, g: sample_pf_ode(score, x, sched, max((b - 1) // 4, 1),
                                                                scheme=RK4(), warp="log_snr", denoise=True),
        "terrainlab reverse SDE (EM)": lambda x, b, g: sample_reverse_sde(score, x, sched, b - 1, generator=g,
                                                                          warp="log_snr", denoise=True),
    }


def quality(x, ref, g):
    ok = torch.isfinite(x).all(1)
    if not bool(ok.all()):
        return float("nan"), float("nan")
    return (mmd_rbf(x[:3000], ref[:3000], bandwidth=list(BANDWIDTHS)),
            sliced_wasserstein(x, ref, n_projections=512, generator=g))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    torch.manual_seed(0)
    quick = args.quick
    sched = VPSchedule()
    data = two_moons(20000, noise=0.05, seed=0)
    ref = two_moons(20000, noise=0.05, seed=1)
    net = ScoreMLP(2, hidden=128, depth=3)
    g = torch.Generator().manual_seed(0)
    tr = train_dsm(net, data, sched, steps=800 if quick else 4000, batch_size=512, lr=3e-3, generator=g)
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch thread(s); "
          "2-core CPU shared with other jobs (loaded)")
    print(f"trained ScoreMLP(128x3) by DSM: {tr.steps} steps, {tr.seconds:.1f} s, final loss {tr.final_loss:.3f}")
    score = as_score(net, sched)
    n = 2000 if quick else 5000
    floor = quality(two_moons(n, noise=0.05, seed=2), ref, torch.Generator().manual_seed(9))
    print(f"\nnoise floor (a fresh data sample of {n}): MMD² {floor[0]:.5f}, SW₂ {floor[1]:.4f}\n")

    budgets = [10, 20, 50] if quick else [10, 20, 50, 100]
    ours, theirs = terrainlab_samplers(score, sched), diffusers_samplers()
    table = {}
    with torch.no_grad():
        xT = torch.randn(n, 2, generator=torch.Generator().manual_seed(3))
        for b in budgets:
            for name, f in ours.items():
                r = f(xT, b, torch.Generator().manual_seed(4))
                table[(name, b)] = (*quality(r.samples, ref, torch.Generator().manual_seed(9)), r.n_score_evals)
            for name, make in theirs.items():
                x, calls = run_diffusers(make, net, xT, b, torch.Generator().manual_seed(4))
                table[(name, b)] = (*quality(x, ref, torch.Generator().manual_seed(9)), calls)
    names = list(ours) + list(theirs)
    print("quality vs score evaluations (MMD² ×1e3 / sliced W₂ ×1e2; lower is better; NFE actually used)")
    print(f"{'sampler':34s}" + "".join(f"{'NFE ≤ ' + str(b):>22s}" for b in budgets))
    for name in names:
        cells = []
        for b in budgets:
            m, s, k = table[(name, b)]
            cells.append(f"{1e3 * m:7.3f} / {1e2 * s:6.2f} ({k:3d})")
        print(f"{name:34s}" + "".join(f"{c:>22s}" for c in cells))
    print("\nbest at each budget (by sliced W₂; MMD² in brackets):")
    for b in budgets:
        best_o = min(ours, key=lambda nm: table[(nm, b)][1])
        best_t = min(theirs, key=lambda nm: table[(nm, b)][1])
        o, t = table[(best_o, b)], table[(best_t, b)]
        print(f"  NFE ≤ {b:3d}: {best_o} SW {1e2 * o[1]:.2f} [{1e3 * o[0]:.3f}]  vs  "
              f"{best_t} SW {1e2 * t[1]:.2f} [{1e3 * t[0]:.3f}]   ratio SW ours/theirs = {o[1] / t[1]:.2f}")

    # ---- per-step overhead against bare network calls
    for B in ([512, 4096] if quick else [256, 16384]):
        overhead(net, score, sched, theirs, B, nfe=20, reps=3 if quick else 7)


def overhead(net, score, sched, theirs, B, nfe, reps):
    xb = torch.randn(B, 2, generator=torch.Generator().manual_seed(5))
    tb = torch.full((B,), 0.5)

    def bare():
        for _ in range(nfe):
            net(xb, tb)

    cases = {
        f"bare network x{nfe}": bare,
        f"terrainlab PF-ODE Euler ({nfe} steps)": lambda: sample_pf_ode(score, xb, sched, nfe, scheme=Euler()),
        f"terrainlab PF-ODE Heun ({nfe // 2} steps)": lambda: sample_pf_ode(score, xb, sched, nfe // 2,
                                                                            scheme=Heun()),
        f"terrainlab reverse SDE ({nfe} steps)": lambda: sample_reverse_sde(
            score, xb, sched, nfe, generator=torch.Generator().manual_seed(0)),
        f"diffusers DDIM ({nfe})": lambda: run_diffusers(theirs["diffusers DDIM"], net, xb, nfe, None),
        f"diffusers Euler ({nfe})": lambda: run_diffusers(theirs["diffusers Euler"], net, xb, nfe, None),
        f"diffusers DPM-Solver++ ({nfe})": lambda: run_diffusers(theirs["diffusers DPM-Solver++(2M)"], net, xb,
                                                                 nfe, None),
        f"diffusers DDPM ({nfe})": lambda: run_diffusers(theirs["diffusers DDPM"], net, xb, nfe,
                                                         torch.Generator()),
    }
    times = {k: [] for k in cases}
    with torch.no_grad():
        for f in cases.values():
            f()                                   # warm-up
        for r in range(reps):
            order = list(cases.items())
            if r % 2:
                order.reverse()
            for k, f in order:
                t0 = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - t0)
    base = statistics.median(times[f"bare network x{nfe}"])
    print(f"\nper-step overhead, batch {B}, {nfe} network evaluations, median of {reps} alternated repeats")
    print(f"{'case':40s}{'median ms':>12s}{'ratio to bare':>16s}{'overhead µs/eval':>18s}")
    for k, v in times.items():
        med = statistics.median(v)
        print(f"{k:40s}{1e3 * med:12.1f}{med / base:16.2f}{1e6 * (med - base) / nfe:18.0f}")
    if math.isfinite(base):
        print("(ratio 1.00 = no overhead beyond the network calls themselves)")


if __name__ == "__main__":
    main()
