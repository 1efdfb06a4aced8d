"""Landscape benchmark: terrainlab.landscape.plane vs loss-landscapes' random_plane, one process.

    python bench/landscape.py [--quick] [--repeats R]

A 51×51 filter-normalised random plane (2,601 loss evaluations over the whole batch) for
(a) an MLP 64→128→10 (tanh) and (b) an MLP 64→256→10 (ReLU) on scikit-learn's digits (1,797
samples) and (c) a small CNN on one
CIFAR-size batch of random data (32×3×32×32). The two tools are alternated within each repeat and
medians reported. loss-landscapes is external (and imported only here). On CUDA terrainlab runs
the same plane on the GPU; loss-landscapes is tried there too and its failure is reported.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import _models  # noqa: E402
from _models import ce  # noqa: E402

from terrainlab.landscape import plane, random_direction  # noqa: E402

F = torch.nn.functional


def mlp_relu_digits():
    x, y = _models.digits()
    return "MLP 64-256-10 ReLU on digits (B=1797)", _models.mlp(256, torch.nn.ReLU), x, y


def mlp_digits():
    x, y = _models.digits()
    return "MLP 64-128-10 on digits (B=1797)", _models.mlp(128), x, y


def small_cnn():
    return ("small CNN on a CIFAR-size batch (B=32)", *_models.small_cnn())


def run_anchor(net, x, y, steps):
    import loss_landscapes
    import loss_landscapes.metrics

    metric = loss_landscapes.metrics.Loss(F.cross_entropy, x, y)
    t0 = time.perf_counter()
    Z = loss_landscapes.random_plane(net, metric, distance=1, steps=steps, normalization="filter",
                                     deepcopy_model=True)
    return time.perf_counter() - t0, Z


def run_ours(net, x, y, steps, seed=0):
    t0 = time.perf_counter()
    g = torch.Generator().manual_seed(seed)
    d1 = random_direction(net, generator=g)
    d2 = random_direction(net, generator=g)
    a = torch.linspace(-1, 1, steps)
    res = plane(net, ce, [(x, y)], d1, d2, a, a)
    return time.perf_counter() - t0, res


def bare_floor(net, x, y, steps, seed=0):
    """The sequential floor: set the parameters in place and run one no-grad forward per grid
    point (what any per-point tool must at least do), one device sync at the end."""
    params = [p for p in net.parameters()]
    theta = torch.nn.utils.parameters_to_vector(params).detach().clone()
    g = torch.Generator(device=theta.device).manual_seed(seed)
    d1 = torch.randn(theta.shape, generator=g, device=theta.device)
    d2 = torch.randn(theta.shape, generator=g, device=theta.device)
    a = torch.linspace(-1, 1, steps, device=theta.device)
    out = torch.empty(steps, steps, device=theta.device)
    t0 = time.perf_counter()
    with torch.no_grad():
        for i in range(steps):
            for j in range(steps):
                torch.nn.utils.vector_to_parameters(theta + 1e-3 * (a[i] * d1 + a[j] * d2), params)
                out[i, j] = ce(net, (x, y))
        torch.nn.utils.vector_to_parameters(theta, params)
    torch.cuda.synchronize()
    return time.perf_counter() - t0


def timed_ours(net, x, y, steps, **kw):
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    g = torch.Generator().manual_seed(0)
    d1 = random_direction(net, generator=g)
    d2 = random_direction(net, generator=g)
    a = torch.linspace(-1, 1, steps)
    res = plane(net, ce, [(x, y)], d1, d2, a, a, **kw)
    torch.cuda.synchronize()
    return time.perf_counter() - t0, res


def cuda_section(steps, repeats, lines):
    """On the GPU: terrainlab's plane (vmap over chunks of points, and the per-point loop) against the
    sequential floor, for the digits MLP and for ResNet-18 (torchvision, eval-mode BN, B=256);
    loss-landscapes is tried on the same CUDA model and its outcome reported."""
    probs = [mlp_digits()]
    try:
        import torchvision

        torch.manual_seed(0)
        r18 = torchvision.models.resnet18(num_classes=10).eval()
        g = torch.Generator().manual_seed(1)
        probs.append(("ResNet-18 (eval BN, B=256, 3×32×32)", r18, torch.randn(256, 3, 32, 32, generator=g),
                      torch.randint(0, 10, (256,), generator=g)))
    except ImportError:
        lines.append("\n(ResNet-18 skipped: torchvision not installed.)\n")
    lines.append(f"\n### CUDA ({torch.cuda.get_device_name()}, torch {torch.__version__}), {steps}×{steps} plane, "
                 f"medians of {repeats}\n\n| problem | terrainlab vmap | terrainlab loop | sequential floor | "
                 "vmap vs floor | loss-landscapes |\n|---|---|---|---|---|---|\n")
    for name, net, x, y in probs:
        net, x, y = net.cuda(), x.cuda(), y.cuda()
        timed_ours(net, x, y, 5, strategy="vmap")  # warm-up (CUDA context, cuDNN plans)
        timed_ours(net, x, y, 5, strategy="loop")
        tv, tl, tf = [], [], []
        for _ in range(repeats):
            t, res = timed_ours(net, x, y, steps, strategy="vmap")
            tv.append(t)
            tl.append(timed_ours(net, x, y, steps, strategy="loop")[0])
            tf.append(bare_floor(net, x, y, steps))
        with torch.no_grad():
            l0 = float(ce(net, (x, y)))
        c = steps // 2
        centre_ok = abs(float(res.losses[c, c]) - l0) < 1e-4 * max(1.0, l0)
        try:
            ta, _ = run_anchor(net, x, y, steps)
            anchor = f"{ta:.2f} s"
        except Exception as e:  # noqa: BLE001 - reporting the anchor's failure is the point
            anchor = f"fails: {type(e).__name__}: {str(e)[:70]}"
        mv, ml, mf = (statistics.median(t) for t in (tv, tl, tf))
        print(f"CUDA {name}: vmap {mv:.2f} s (chunk {res.chunk_size}), loop {ml:.2f} s, floor {mf:.2f} s, "
              f"centre ok {centre_ok}; loss-landscapes {anchor}", flush=True)
        lines.append(f"| {name} | {mv:.2f} s (chunk {res.chunk_size}) | {ml:.2f} s | {mf:.2f} s | {mf / mv:.1f}× | "
                     f"{anchor.replace('|', '/')} |\n")
        if name.startswith("ResNet"):  # how the chunk size matters when each point is a whole ResNet
            sweep = []
            for chunk in (4, 16, 64, 256):
                try:
                    t, _ = timed_ours(net, x, y, 21, strategy="vmap", chunk_size=chunk)
                    sweep.append(f"chunk {chunk}: {t:.2f} s")
                except torch.cuda.OutOfMemoryError:
                    sweep.append(f"chunk {chunk}: out of memory")
                    torch.cuda.empty_cache()
            print("ResNet-18 21×21 vmap " + ", ".join(sweep), flush=True)
            lines.append(f"\nResNet-18, 21×21 plane, vmap by chunk size: {', '.join(sweep)}.\n")


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--out", default=None)
    ap.add_argument("--cuda-only", action="store_true", help="skip the CPU problems")
    a = ap.parse_args(argv)
    repeats = a.repeats or (1 if a.quick else 3)
    steps = 21 if a.quick else 51
    import os

    lines = [f"Machine: {os.cpu_count()}-core host, {torch.get_num_threads()} torch thread(s), load average "
             f"{os.getloadavg()[0]:.1f} at start; torch {torch.__version__}; {steps}×{steps} plane; medians of "
             f"{repeats} alternated repeats.\n"]
    if not a.cuda_only:
        lines.append("\n| problem | loss-landscapes | terrainlab | speed-up | strategy | affine head |\n"
                     "|---|---|---|---|---|---|\n")
    problems = [] if a.cuda_only else [mlp_digits()] if a.quick else [mlp_digits(), mlp_relu_digits(), small_cnn()]
    for name, net, x, y in problems:
        ta, to = [], []
        for _ in range(repeats):
            t, _ = run_anchor(net, x, y, steps)
            ta.append(t)
            t, res = run_ours(net, x, y, steps)
            to.append(t)
        # sanity: our plane's centre is the model's loss
        with torch.no_grad():
            l0 = float(ce(net, (x, y)))
        c = steps // 2
        assert abs(float(res.losses[c, c]) - l0) < 1e-4 * max(1.0, l0), "centre of the plane is not L(θ)"
        ma, mo = statistics.median(ta), statistics.median(to)
        print(f"{name}: loss-landscapes {ma:.2f} s, terrainlab {mo:.2f} s → {ma / mo:.1f}× "
              f"(strategy {res.strategy}, affine head {res.affine_head})", flush=True)
        lines.append(f"| {name} | {ma:.2f} s | {mo:.2f} s | {ma / mo:.1f}× | {res.strategy} | {res.affine_head} |\n")
    if torch.cuda.is_available():
        cuda_section(steps, repeats, lines)
    else:
        lines.append("\nCUDA: no device in this run (terrainlab's code path is device-agnostic; the GPU "
                     "check is run separately when a device is available).\n")
    if a.out:
        with open(a.out, "w") as f:
            f.writelines(lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
