"""Benchmark: terrainlab's root finders (core.root_finders, used by nn.DEQ) against torchdeq 0.1.0 on the same contractive layer.

Layer z ↦ tanh(W z + U x), W symmetric with eigenvalues spread over [−0.98, 0.98] (slow contraction),
d = 128, batch 256, float32 on the CPU, one thread. Both libraries stop on the same rule: every sample's
relative residual ‖f(z) − z‖/‖f(z)‖ ≤ 1e−3. Reported per solver: batched layer evaluations (counted by
wrapping the layer), wall time (median over repeats run in alternation in one process), the true
relative error ‖z − z_ref‖_F/‖z_ref‖_F against a 6000-step float64 Picard run, and — in fresh
subprocesses — the extra peak resident memory of one solve against max_iter (with an unattainable
tolerance, so every iteration is run).

    python bench/deq.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch

D, B, TOL = 128, 256, 1e-3


def problem(dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(D, D, generator=g, dtype=torch.float64))
    W = (Q * torch.linspace(-0.98, 0.98, D, dtype=torch.float64)) @ Q.T
    U = torch.randn(D, D, generator=g, dtype=torch.float64) / D**0.5 * 0.1
    x = torch.randn(B, D, generator=g, dtype=torch.float64)
    ux = x @ U.T
    return W.to(dtype), ux.to(dtype)


def layer(W, ux):
    def f(z):
        return torch.tanh(z @ W.T + ux)

    return f


class Counted:
    def __init__(self, f):
        self.f, self.n = f, 0

    def __call__(self, z):
        self.n += 1
        return self.f(z)


def runners(max_iter=1000, tol=TOL):
    from torchdeq.solver import anderson_solver, broyden_solver, fixed_point_iter

    # core's root finders (terrainlab.nn re-exports them)
    from terrainlab.core import Anderson, Broyden, Picard

    def tl(solver):
        solver = solver.replace(tol=tol, max_iter=max_iter)

        def run(f, z0):
            r = solver.solve(f, z0)
            return r.fz, int(r.iterations.max()), r.status

        return run

    def td(fn, **kw):
        def run(f, z0):
            z, _, info = fn(f, z0, max_iter=max_iter, tol=tol, stop_mode="rel", **kw)
            return z, int(info["nstep"].max()), "-"

        return run

    return {
        ("picard", "terrainlab"): tl(Picard()),
        ("picard", "torchdeq"): td(fixed_point_iter),
        ("anderson", "terrainlab"): tl(Anderson(m=6)),
        ("anderson", "torchdeq"): td(anderson_solver, m=6),
        ("broyden", "terrainlab"): tl(Broyden(m=16)),
        ("broyden", "torchdeq"): td(broyden_solver),
    }


def reference(W, ux):
    W64, ux64 = W.double(), ux.double()
    f = layer(W64, ux64)
    z = torch.zeros(B, D, dtype=torch.float64)
    for _ in range(6000):
        z = f(z)
    return z


def peak_rss_mb() -> float:
    """Peak resident memory of this process image (VmHWM; ru_maxrss would be inherited across fork)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_child(impl: str, solver: str, max_iter: int) -> None:
    """Run one solve with an unattainable tolerance; print the extra peak RSS in MB."""
    torch.set_num_threads(1)
    W, ux = problem()
    f = layer(W, ux)
    runners(max_iter=2, tol=1e-30)[(solver, impl)](f, torch.zeros(B, D))  # warm-up: imports, pools
    run = runners(max_iter=max_iter, tol=1e-30)[(solver, impl)]
    base = peak_rss_mb()
    run(f, torch.zeros(B, D))
    print(json.dumps({"extra_peak_mb": peak_rss_mb() - base}))


def fresh_memory(impl, solver, max_iter):
    out = subprocess.run(
        [sys.executable, __file__, "--memory-child", impl, solver, str(max_iter)],
        capture_output=True, text=True, timeout=600,
    )
    if out.returncode != 0:
        return float("nan")
    return json.loads(out.stdout.strip().splitlines()[-1])["extra_peak_mb"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--memory-child", nargs=3)
    args = ap.parse_args()
    if args.memory_child:
        impl, solver, mi = args.memory_child
        memory_child(impl, solver, int(mi))
        return
    torch.set_num_threads(1)
    repeats = 3 if args.quick else 7
    W, ux = problem()
    f = layer(W, ux)
    z_ref = reference(W, ux)
    run = runners()
    stats = {k: {"times": []} for k in run}
    # bare layer evaluations, for the per-iteration overhead
    bare = []
    for _rep in range(repeats):
        for key, fn in run.items():
            cf = Counted(f)
            t = time.perf_counter()
            z, nstep, status = fn(cf, torch.zeros(B, D))
            stats[key]["times"].append(time.perf_counter() - t)
            stats[key].update(
                evals=cf.n, nstep=nstep, status=status,
                err=float((z.double() - z_ref).norm() / z_ref.norm()),
            )
        z = torch.zeros(B, D)
        t = time.perf_counter()
        for _ in range(50):
            z = f(z)
        bare.append((time.perf_counter() - t) / 50)
    t_eval = statistics.median(bare)
    rows = []
    for solver in ("picard", "anderson", "broyden"):
        a, b = stats[(solver, "terrainlab")], stats[(solver, "torchdeq")]
        ta, tb = statistics.median(a["times"]), statistics.median(b["times"])
        rows.append((solver, a, b, ta, tb))
    print(f"one bare layer evaluation: {t_eval * 1e3:.3f} ms (median)")
    hdr = "| solver | library | layer evals | reported iters | wall (ms) | overhead / eval | true rel. error | wall ratio tl/td |"
    print(hdr)
    print("|" + "---|" * 8)
    lines = [hdr, "|" + "---|" * 8]
    for solver, a, b, ta, tb in rows:
        for name, s, t in (("terrainlab", a, ta), ("torchdeq", b, tb)):
            ratio = f"{ta / tb:.2f}" if name == "terrainlab" else ""
            line = (f"| {solver} | {name} | {s['evals']} | {s['nstep']} | {t * 1e3:.1f} | "
                    f"{t / (s['evals'] * t_eval):.2f}× | {s['err']:.1e} | {ratio} |")
            print(line)
            lines.append(line)
    print("\nwork vs tolerance (layer evaluations / true relative error), one run each:")
    tols = (1e-3, 1e-4, 1e-5)
    tol_hdr = "| solver | library | " + " | ".join(f"tol {t:g}" for t in tols) + " |"
    print(tol_hdr)
    print("|" + "---|" * (2 + len(tols)))
    for solver in ("picard", "anderson", "broyden"):
        for impl in ("terrainlab", "torchdeq"):
            cells = []
            for tol in tols:
                cf = Counted(f)
                z, _, _ = runners(max_iter=3000, tol=tol)[(solver, impl)](cf, torch.zeros(B, D))
                cells.append(f"{cf.n} / {float((z.double() - z_ref).norm() / z_ref.norm()):.1e}")
            print(f"| {solver} | {impl} | " + " | ".join(cells) + " |")

    iters = [10, 100, 400] if args.quick else [10, 100, 400, 1000]
    mem_hdr = "| solver | library | " + " | ".join(f"max_iter {m}" for m in iters) + " |"
    print("\nextra peak RSS of one solve (MB), fresh process each:")
    print(mem_hdr)
    print("|" + "---|" * (2 + len(iters)))
    mem_lines = [mem_hdr, "|" + "---|" * (2 + len(iters))]
    for solver in ("anderson", "broyden"):
        for impl in ("terrainlab", "torchdeq"):
            vals = [fresh_memory(impl, solver, m) for m in iters]
            line = f"| {solver} | {impl} | " + " | ".join(f"{v:.1f}" for v in vals) + " |"
            print(line)
            mem_lines.append(line)
    return lines, mem_lines, t_eval


if __name__ == "__main__":
    main()
