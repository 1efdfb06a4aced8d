"""Benchmark: terrainlab.belief on large batches of beliefs (CPU; any device torch offers).

1. Euclidean projection onto the simplex (core ``project_simplex``, batched sort-based) on
   N beliefs with K = 1000, against the same algorithm written in NumPy (vectorised; no maintained
   Python library offers simplex projection / mirror steps on batches, so NumPy is the reference).
2. A mirror (exponentiated-gradient) step ``exponentiated_gradient_step`` (core ``Simplex("mirror")``)
   on the same batch, against NumPy.
3. A basin map of the 3-simplex: 10⁵ Dirichlet(1) starts of the ch08 multi-well reasoning field
   (natural-gradient field, Euler η = 0.5) through ``terrainlab.dynamics.basin_map``, against a plain
   NumPy Euler loop of the same field; target < 5 s.

Timings alternate terrainlab and the reference in one process, several repeats, and report medians
and ratios. The default batch is 10⁵ × 1000 (float32, 400 MB per tensor): 10⁶ × 1000 needs ~20 GB of
working memory for the sort and did not fit comfortably on the shared machine (``--full`` runs it in
chunks of 10⁵ rows and reports the total). ``--quick`` uses 10⁴ × 1000 and 2·10⁴ starts.

Usage: OMP_NUM_THREADS=1 python bench/belief.py [--quick | --full] [--repeats R]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np
import torch

from terrainlab.belief import (
    GradientField,
    MultiWellEnergy,
    exponentiated_gradient_step,
    project_simplex,
)
from terrainlab.dynamics import basin_map, dirichlet_starts


def np_project_simplex(v: np.ndarray) -> np.ndarray:
    u = -np.sort(-v, axis=-1)
    css = np.cumsum(u, axis=-1) - 1
    ks = np.arange(1, v.shape[-1] + 1, dtype=v.dtype)
    rho = (u - css / ks > 0).sum(-1, keepdims=True)
    tau = np.take_along_axis(css, rho - 1, axis=-1) / rho
    return np.maximum(v - tau, 0)


def np_mirror_step(p: np.ndarray, g: np.ndarray, eta: float) -> np.ndarray:
    z = np.log(p) - eta * g
    z -= z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


ANCHORS = np.array([[0.72, 0.14, 0.14], [0.12, 0.76, 0.12], [0.10, 0.10, 0.80]])
WEIGHTS = np.array([0.7, 0.2, 0.1])
TAU = 0.1


def np_basin_labels(p: np.ndarray, eta: float, steps: int) -> np.ndarray:
    """Reference: Euler on F(p) = Σ_j π_j(p) a_j − p (the natural-gradient multi-well field)."""
    negH = (ANCHORS * np.log(ANCHORS)).sum(-1)
    for _ in range(steps):
        d = negH - np.log(np.maximum(p, 1e-12)) @ ANCHORS.T
        z = np.log(WEIGHTS) - d / TAU
        z -= z.max(-1, keepdims=True)
        pi = np.exp(z)
        pi /= pi.sum(-1, keepdims=True)
        p = p + eta * (pi @ ANCHORS - p)
    dist = ((p[:, None, :] - ANCHORS[None]) ** 2).sum(-1)
    return dist.argmin(-1)


def timeit(fn, repeats):
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def alternate(fns: dict, repeats: int) -> dict:
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            t = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--full", action="store_true", help="10^6 x 1000 in chunks of 10^5")
    ap.add_argument("--repeats", type=int, default=None)
    args = ap.parse_args(argv)
    N = 10_000 if args.quick else 100_000
    K = 1000
    reps = args.repeats or (3 if args.quick else 5)
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}")
    g = torch.Generator().manual_seed(0)
    v = torch.randn(N, K, generator=g) * 0.05 + 1.0 / K
    vn = v.numpy()
    p = torch.softmax(torch.randn(N, K, generator=g), -1)
    gr = torch.randn(N, K, generator=g)
    pn, gn = p.numpy(), gr.numpy()
    # correctness first
    assert np.allclose(project_simplex(v[:100]).numpy(), np_project_simplex(vn[:100]), atol=1e-6)
    assert np.allclose(exponentiated_gradient_step(p[:100], gr[:100], 0.3).numpy(),
                       np_mirror_step(pn[:100], gn[:100], 0.3), atol=1e-6)
    res = alternate({"terrainlab project_simplex": lambda: project_simplex(v),
                     "numpy project_simplex": lambda: np_project_simplex(vn)}, reps)
    res.update(alternate({"terrainlab mirror_step": lambda: exponentiated_gradient_step(p, gr, 0.3),
                          "numpy mirror_step": lambda: np_mirror_step(pn, gn, 0.3)}, reps))
    print(f"\n[1-2] {N} beliefs x K = {K} (float32), median of {reps}")
    for k, t in res.items():
        print(f"  {k:32s} {t:8.3f} s   ({t / N * 1e6:.2f} us per belief)")
    print(f"  ratio numpy/terrainlab projection: {res['numpy project_simplex'] / res['terrainlab project_simplex']:.2f}")
    print(f"  ratio numpy/terrainlab mirror:     {res['numpy mirror_step'] / res['terrainlab mirror_step']:.2f}")
    if args.full:
        t = time.perf_counter()
        for _ in range(10):
            project_simplex(torch.randn(100_000, K, generator=g))
        print(f"  10^6 x 1000 projection in 10 chunks: {time.perf_counter() - t:.2f} s (incl. sampling)")

    # basin map
    n_starts = 20_000 if args.quick else 100_000
    dt = torch.float64
    E = MultiWellEnergy(torch.tensor(ANCHORS, dtype=dt), WEIGHTS.tolist(), TAU)
    F = GradientField(E, natural=True)
    att = torch.tensor(ANCHORS, dtype=dt)  # the attractors sit at the anchors to ~1e-4; refine:
    for _ in range(200):
        att = att + 0.5 * F(att)
    starts = dirichlet_starts(3, n_starts, torch.Generator().manual_seed(1), dtype=dt)
    steps = 60

    def tl():
        return basin_map(F, starts, att, eta=0.5, steps=steps, check_every=10)

    def ref():
        return np_basin_labels(starts.numpy().copy(), 0.5, steps)

    r = tl()
    lab_ref = ref()
    agree = float((r.labels.numpy() == lab_ref).mean())
    bt = alternate({"terrainlab basin_map": tl, "numpy Euler loop": ref}, max(reps - 2, 2))
    print(f"\n[3] basin map, {n_starts} starts on the 3-simplex, Euler eta = 0.5, <= {steps} steps (float64)")
    print(f"  terrainlab basin_map  {bt['terrainlab basin_map']:.3f} s  (steps run: {r.n_steps}, status {r.status}; "
          f"fractions {[round(float(f), 4) for f in r.fractions]})")
    print(f"  numpy Euler loop      {bt['numpy Euler loop']:.3f} s  ({steps} steps, no stop checks)")
    print(f"  label agreement {agree:.4f}; ratio numpy/terrainlab {bt['numpy Euler loop'] / bt['terrainlab basin_map']:.2f}; "
          f"target < 5 s: {'met' if bt['terrainlab basin_map'] < 5 else 'missed'}")


if __name__ == "__main__":
    main()
