"""Benchmark: terrainlab.nn.NeuralODE (core.integrate: adaptive Dopri5 with a PI controller, or a
fixed grid through core.rollout) against torchdiffeq 0.2.5.

Field: MLP 64→256→256→64 (tanh), float32 on the CPU, one thread, 4096 states, t ∈ [0, 1].
Compared at equal settings, in alternation in one process (medians over repeats):

- dopri5 with rtol = 1e-5, atol = 1e-6 (both use an RMS error norm over the whole state and the
  same initial-step heuristic; terrainlab uses a PI controller, torchdiffeq an I controller);
- fixed-grid RK4 with step 0.05 (terrainlab: classical RK4 from the core; torchdiffeq: its "rk4",
  the 3/8 rule — both 4 evaluations per step);
- gradients of Σy(1)² by direct backprop and by the adjoint method (1024 states).

Reported: wall time, field evaluations (NFE, counted by wrapping the field), the error against a
float64 dopri5 run at rtol 1e-10, and the overhead per evaluation = wall / (NFE × one bare evaluation).

    python bench/ode.py [--quick]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
import torch.nn as nn


class Counted(nn.Module):
    def __init__(self, f):
        super().__init__()
        self.f, self.n = f, 0

    def forward(self, y):
        self.n += 1
        return self.f(y)


class TD(nn.Module):
    """torchdiffeq calls func(t, y)."""

    def __init__(self, f):
        super().__init__()
        self.f = f

    def forward(self, t, y):
        return self.f(y)


def mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, 256), nn.Tanh(), nn.Linear(256, 256), nn.Tanh(), nn.Linear(256, 64))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from torchdiffeq import odeint, odeint_adjoint

    from terrainlab.core import RK4, Dopri5
    from terrainlab.nn import NeuralODE

    N = 1024 if args.quick else 4096
    repeats = 3 if args.quick else 5
    f = mlp()
    y0 = torch.randn(N, 64, generator=torch.Generator().manual_seed(1))
    t01 = torch.tensor([0.0, 1.0])
    ref = NeuralODE(copy.deepcopy(f).double(), rtol=1e-10, atol=1e-12).solve(y0.double()).y1

    cf = Counted(f)
    tl_dopri = NeuralODE(cf, solver=Dopri5(), rtol=1e-5, atol=1e-6)
    tl_rk4 = NeuralODE(cf, solver=RK4(), step_size=0.05)
    td_f = TD(cf)
    cases = {
        ("dopri5", "terrainlab"): lambda: tl_dopri(y0),
        ("dopri5", "torchdiffeq"): lambda: odeint(td_f, y0, t01, rtol=1e-5, atol=1e-6, method="dopri5")[-1],
        ("rk4 h=0.05", "terrainlab"): lambda: tl_rk4(y0),
        ("rk4 h=0.05", "torchdiffeq"): lambda: odeint(td_f, y0, t01, method="rk4", options={"step_size": 0.05})[-1],
    }
    res = {k: {"t": []} for k in cases}
    bare = []
    with torch.no_grad():
        for _ in range(repeats):
            for key, fn in cases.items():
                cf.n = 0
                t = time.perf_counter()
                y1 = fn()
                res[key]["t"].append(time.perf_counter() - t)
                res[key]["nfe"] = cf.n
                res[key]["err"] = float((y1.double() - ref).abs().max() / ref.abs().max())
            t = time.perf_counter()
            for _ in range(10):
                f(y0)
            bare.append((time.perf_counter() - t) / 10)
    t_eval = statistics.median(bare)
    print(f"machine: CPU, 1 thread; states {N}; one bare field evaluation {t_eval * 1e3:.2f} ms (median)")
    print("| method | library | NFE | wall (ms) | overhead / eval | max rel. error | wall ratio tl/td |")
    print("|---|---|---|---|---|---|---|")
    for method in ("dopri5", "rk4 h=0.05"):
        ta = statistics.median(res[(method, "terrainlab")]["t"])
        tb = statistics.median(res[(method, "torchdiffeq")]["t"])
        for lib, tt in (("terrainlab", ta), ("torchdiffeq", tb)):
            r = res[(method, lib)]
            ratio = f"{ta / tb:.2f}" if lib == "terrainlab" else ""
            print(f"| {method} | {lib} | {r['nfe']} | {tt * 1e3:.1f} | {tt / (r['nfe'] * t_eval):.2f}× | "
                  f"{r['err']:.1e} | {ratio} |")

    print("\nwork vs tolerance (one run each; atol = rtol/10):")
    print("| rtol | library | NFE | max rel. error |")
    print("|---|---|---|---|")
    with torch.no_grad():
        for rtol in (1e-3, 1e-5, 1e-7):
            for lib in ("terrainlab", "torchdiffeq"):
                cf.n = 0
                if lib == "terrainlab":
                    y1 = NeuralODE(cf, rtol=rtol, atol=rtol / 10)(y0)
                else:
                    y1 = odeint(td_f, y0, t01, rtol=rtol, atol=rtol / 10, method="dopri5")[-1]
                err = float((y1.double() - ref).abs().max() / ref.abs().max())
                print(f"| {rtol:g} | {lib} | {cf.n} | {err:.1e} |")

    # gradients: direct backprop and adjoint, smaller batch
    Ng = 256 if args.quick else 1024
    yg = y0[:Ng]
    fg = mlp()
    cg = Counted(fg)
    grad_cases = {
        ("direct", "terrainlab"): lambda y: NeuralODE(cg, rtol=1e-5, atol=1e-6)(y),
        ("direct", "torchdiffeq"): lambda y: odeint(TD(cg), y, t01, rtol=1e-5, atol=1e-6, method="dopri5")[-1],
        ("adjoint", "terrainlab"): lambda y: NeuralODE(cg, rtol=1e-5, atol=1e-6, adjoint=True)(y),
        ("adjoint", "torchdiffeq"): lambda y: odeint_adjoint(TD(cg), y, t01, rtol=1e-5, atol=1e-6, method="dopri5",
                                                            adjoint_params=tuple(fg.parameters()))[-1],
    }
    gres = {k: {"t": []} for k in grad_cases}
    grads = {}
    for _ in range(max(2, repeats - 2)):
        for key, fn in grad_cases.items():
            fg.zero_grad()
            y = yg.clone().requires_grad_(True)
            cg.n = 0
            t = time.perf_counter()
            out = fn(y)
            nf = cg.n
            out.pow(2).sum().backward()
            gres[key]["t"].append(time.perf_counter() - t)
            gres[key]["nfe_fwd"], gres[key]["nfe_total"] = nf, cg.n
            grads[key] = fg[0].weight.grad.clone()
    gref = grads[("direct", "terrainlab")]
    print(f"\ngradient of Σ y(1)² ({Ng} states), dopri5 rtol 1e-5:")
    print("| backward | library | NFE forward | NFE forward + backward | wall (ms) | grad rel. diff vs tl direct | wall ratio tl/td |")
    print("|---|---|---|---|---|---|---|")
    for mode in ("direct", "adjoint"):
        ta = statistics.median(gres[(mode, "terrainlab")]["t"])
        tb = statistics.median(gres[(mode, "torchdiffeq")]["t"])
        for lib, tt in (("terrainlab", ta), ("torchdiffeq", tb)):
            r = gres[(mode, lib)]
            d = float((grads[(mode, lib)] - gref).norm() / gref.norm())
            ratio = f"{ta / tb:.2f}" if lib == "terrainlab" else ""
            print(f"| {mode} | {lib} | {r['nfe_fwd']} | {r['nfe_total']} | {tt * 1e3:.1f} | {d:.1e} | {ratio} |")


if __name__ == "__main__":
    main()
