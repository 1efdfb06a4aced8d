"""Benchmark: terrainlab.dynamics against anchors, in one process, in alternation.

1. Fixed points of a 64-unit torch.nn.GRUCell hidden update (input held fixed) from 4096 starts:
   terrainlab ``find_fixed_points`` (dense Levenberg–Marquardt and matrix-free CG) against
   torchdeq's Broyden solver (an anchor DEQ root finder) and the Golub & Sussillo (2018) recipe —
   Adam on q(h) = ½‖F(h) − h‖² — written here in plain PyTorch (fixed-point-finder itself is
   TensorFlow-first and not installable here).
2. The Lorenz-63 Lyapunov spectrum over 1e5 RK4 steps (dt = 0.01): terrainlab ``lyapunov_spectrum``
   (batched Jacobians over time, and the step-by-step "sequential" path) against a hand-written NumPy
   Benettin with the analytic Jacobian (the textbook reference implementation).

Prints medians and ratios; ``--quick`` shrinks everything. Run: python bench/dynamics.py [--quick]
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import time

import numpy as np
import torch

from terrainlab.dynamics import find_fixed_points, lyapunov_spectrum

torch.set_num_threads(1)


def make_gru(H: int = 64, seed: int = 0):
    torch.manual_seed(seed)
    cell = torch.nn.GRUCell(8, H)
    with torch.no_grad():
        cell.bias_ih.zero_()
        cell.bias_hh.zero_()
        cell.weight_hh.mul_(4.0)  # strong recurrence: several attractors and saddles
    x = torch.zeros(1, 8)
    return cell, (lambda h: cell(x.expand(h.shape[0], -1), h))


def starts(T, n: int, H: int, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    h = 2 * torch.rand(n, H, generator=g) - 1
    with torch.no_grad():
        for _ in range(10):  # sampled from the network's own trajectories (Sussillo & Barak 2013)
            h = T(h)
    return h


def n_distinct(points: torch.Tensor, tol: float = 1e-3) -> int:
    reps = []
    for p in points:
        if not reps or float(torch.stack(reps).sub(p).norm(dim=-1).min()) > tol:
            reps.append(p)
    return len(reps)


def run_terrainlab(T, h0, method):
    res = find_fixed_points(T, h0, kind="map", bound=1.0, method=method, max_iter=100)
    return {"converged": res.n_converged, "distinct": int((~res.is_slow).sum()), "n_vjp": res.n_vjp,
            "n_jvp": res.n_jvp, "n_fn": res.n_fn_evals * h0.shape[0],
            "classes": {k: res.kinds.count(k) for k in set(res.kinds)}}


def run_torchdeq(T, h0, tol=1e-5):
    from torchdeq.solver.broyden import broyden_solver

    with torch.no_grad():
        z, _, info = broyden_solver(T, h0.clone(), max_iter=100, tol=tol, stop_mode="abs")
        r = (T(z) - z).norm(dim=-1)
    ok = r <= 1e-5
    return {"converged": int(ok.sum()), "distinct": n_distinct(z[ok]), "n_vjp": 0, "n_jvp": 0,
            "n_fn": int(info.get("nstep", torch.tensor(100)).max()) * h0.shape[0] if isinstance(info, dict) else -1}


def run_adam_q(T, h0, iters=1000, lr=1e-2):
    h = h0.clone().requires_grad_(True)
    opt = torch.optim.Adam([h], lr=lr)
    for _ in range(iters):
        opt.zero_grad()
        q = 0.5 * ((T(h) - h) ** 2).sum()
        q.backward()
        opt.step()
    with torch.no_grad():
        r = (T(h) - h).norm(dim=-1)
    ok = r <= 1e-5
    return {"converged": int(ok.sum()), "distinct": n_distinct(h.detach()[ok]), "n_vjp": iters * h0.shape[0],
            "n_jvp": 0, "n_fn": iters * h0.shape[0], "median_residual": float(r.median())}


def lorenz(s, t=0.0):
    x, y, z = s[..., 0], s[..., 1], s[..., 2]
    return torch.stack([10 * (y - x), x * (28 - z) - y, x * y - 8 / 3 * z], -1)


def lorenz_numpy(steps: int, dt: float = 0.01, transient: int = 1000):
    """Textbook Benettin: RK4 on the state and on the variational equation with the analytic
    Jacobian, QR every step."""
    s, b = 10.0, 8 / 3

    def f(u):
        return np.array([s * (u[1] - u[0]), u[0] * (28 - u[2]) - u[1], u[0] * u[1] - b * u[2]])

    def J(u):
        return np.array([[-s, s, 0.0], [28 - u[2], -1.0, -u[0]], [u[1], u[0], -b]])

    u = np.array([1.0, 1.0, 25.0])
    Q = np.eye(3)
    acc = np.zeros(3)
    for i in range(transient + steps):
        k1, K1 = f(u), J(u) @ Q
        u2 = u + 0.5 * dt * k1
        k2, K2 = f(u2), J(u2) @ (Q + 0.5 * dt * K1)
        u3 = u + 0.5 * dt * k2
        k3, K3 = f(u3), J(u3) @ (Q + 0.5 * dt * K2)
        u4 = u + dt * k3
        k4, K4 = f(u4), J(u4) @ (Q + dt * K3)
        u = u + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        V = Q + dt / 6 * (K1 + 2 * K2 + 2 * K3 + K4)
        Q, R = np.linalg.qr(V)
        if i >= transient:
            acc += np.log(np.abs(np.diag(R)))
    return np.sort(acc / (steps * dt))[::-1]


def timed(fn, *a, **k):
    t0 = time.perf_counter()
    out = fn(*a, **k)
    return time.perf_counter() - t0, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n_starts = 512 if args.quick else 4096
    reps = 1 if args.quick else 3
    lz_steps = 5000 if args.quick else 100_000
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, 1 thread "
          "(2-core CPU shared with other jobs: timings are noisy, compare ratios)")

    cell, T = make_gru()
    h0 = starts(T, n_starts, 64)
    contenders = {
        "terrainlab dense LM": lambda: run_terrainlab(T, h0, "dense"),
        "terrainlab matrix-free": lambda: run_terrainlab(T, h0, "matrix-free"),
        "torchdeq broyden": lambda: run_torchdeq(T, h0),
        "adam on q (Golub-Sussillo recipe)": lambda: run_adam_q(T, h0, iters=300 if args.quick else 1000),
    }
    times = {k: [] for k in contenders}
    outs = {}
    for _ in range(reps):  # alternate
        for k, fn in contenders.items():
            try:
                dt, out = timed(fn)
            except Exception as exc:  # an anchor failing is a result, not a crash
                dt, out = math.nan, {"error": repr(exc)[:200]}
            times[k].append(dt)
            outs[k] = out
    base = statistics.median(times["terrainlab dense LM"])
    print(f"\n## GRU-64 fixed points from {n_starts} starts (median of {reps})")
    print("| method | wall s | ratio to terrainlab dense | starts converged (‖F(h)−h‖ ≤ 1e-5) | distinct points | VJPs | JVPs |")
    print("|---|---|---|---|---|---|---|")
    for k in contenders:
        m = statistics.median(times[k])
        o = outs[k]
        print(f"| {k} | {m:.2f} | {m / base:.2f} | {o.get('converged', '-')} | {o.get('distinct', '-')} | "
              f"{o.get('n_vjp', '-')} | {o.get('n_jvp', '-')} |" + (f" {o['error']}" if "error" in o else ""))
    print("terrainlab classes:", outs["terrainlab dense LM"].get("classes"))

    print(f"\n## Lorenz-63 Lyapunov spectrum, {lz_steps} RK4 steps, dt = 0.01 (reference (0.906, 0, -14.57))")
    s0 = torch.tensor([[1.0, 1.0, 25.0]], dtype=torch.float64)
    t_b, rb = timed(lyapunov_spectrum, lorenz, s0, kind="field", eta=0.01, steps=lz_steps, transient=1000)
    t_n, rn = timed(lorenz_numpy, lz_steps)
    seq_steps = min(lz_steps, 3000)
    t_s, rs = timed(lyapunov_spectrum, lorenz, s0, kind="field", eta=0.01, steps=seq_steps, transient=0,
                    method="sequential")
    t_s_scaled = t_s * lz_steps / seq_steps
    print("| method | wall s | ratio to numpy reference | exponents | tangent products |")
    print("|---|---|---|---|---|")
    print(f"| terrainlab batched | {t_b:.1f} | {t_b / t_n:.2f} | {[round(v, 3) for v in rb.mean.tolist()]} | {rb.n_jvp} VJP rows |")
    # step by step: with k = d = 3 tangents the one-step Jacobian is formed by 3 VJPs per step
    # (cheaper than 3 forward-mode tangents when d <= k)
    print(f"| terrainlab sequential (step by step, d VJPs/step), {seq_steps} steps scaled to {lz_steps} | "
          f"{t_s_scaled:.1f} | {t_s_scaled / t_n:.2f} | (short run) {[round(v, 3) for v in rs.mean.tolist()]} | "
          f"{rs.n_jvp * lz_steps // seq_steps} tangent rows |")
    print(f"| numpy analytic-Jacobian Benettin | {t_n:.1f} | 1.00 | {[round(float(v), 3) for v in rn]} | - |")
    err = [abs(a - b) / abs(b) for a, b in zip(rb.mean.tolist(), (0.906, 1.0, -14.57))]
    print(f"terrainlab batched relative error vs (0.906, -, -14.57): λ1 {err[0]:.3%}, λ3 {err[2]:.3%}, "
          f"λ2 = {rb.mean[1]:.4f}; drift diagnostic {rb.drift.max().item():.4f}")


if __name__ == "__main__":
    main()
