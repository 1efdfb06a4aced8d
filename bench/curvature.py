"""Curvature benchmark: terrainlab vs PyHessian and hessian-eigenthings, in one process.

    python bench/curvature.py [--quick] [--repeats R]

Problems: (a) MLP 64→32→10 (tanh, 2,410 parameters) on scikit-learn's digits (1,797 samples)
after 200 GD steps; (b) small CNN (≈2.7k parameters) on one CIFAR-size batch of random data
(32×3×32×32); (c) ResNet-18 on a GPU when CUDA and torchvision are present (skipped otherwise).
``--sections block`` runs only the block-product comparison on the small CNN (terrainlab's
``matmat`` against its own column loop and against curvlinops' ``HessianLinearOperator``: Hutch++,
``to_dense`` and SLQ), which needs only curvlinops.
Reference: the dense float64 Hessian (terrainlab ``to_dense``) → exact top eigenvalues and trace.
For top-1, top-5 and trace we report products (HVPs), wall time (median of R runs, the tools
alternated within each repeat) and error against the reference; for eigenvalues also whether
each reported value is within 1e-3 relative of a true eigenvalue. Anchors run with their documented
defaults at tol 1e-3 (PyHessian: power iteration with deflation, maxIter 100; hessian-eigenthings:
``lanczos(op, k, tol=1e-3)``, which takes 2k Lanczos steps and no restarts).
The anchors are GPL / external: they are imported here only, never by terrainlab.
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

from terrainlab.curvature import HessianOperator, eigs, spectral_density, trace  # noqa: E402

F = torch.nn.functional


def mlp_digits():
    x, y = _models.digits()
    net = _models.mlp(32)
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    for _ in range(200):
        opt.zero_grad()
        ce(net, (x, y)).backward()
        opt.step()
    return "MLP on digits (2,410 params, B=1797)", net, x, y


def small_cnn():
    net, x, y = _models.small_cnn()
    n = sum(p.numel() for p in net.parameters())
    return f"small CNN ({n:,} params, B=32, 3×32×32)", net, x, y


def small_cnn_trained():
    """The same CNN after 150 Adam steps on its batch (memorised: the curvature of a trained net)."""
    net, x, y = _models.small_cnn()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(150):
        opt.zero_grad()
        ce(net, (x, y)).backward()
        opt.step()
    n = sum(p.numel() for p in net.parameters())
    return f"small CNN after 150 Adam steps on its batch ({n:,} params, B=32)", net, x, y


def resnet18_cuda():
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=10).cuda().eval()  # eval-mode BN
    g = torch.Generator().manual_seed(1)
    x = torch.randn(256, 3, 32, 32, generator=g).cuda()
    y = torch.randint(0, 10, (256,), generator=g).cuda()
    return "ResNet-18 (11.2M params, eval-mode BN, B=256, CUDA)", net, x, y


PROBLEMS = {"mlp": mlp_digits, "cnn": small_cnn, "cnn-trained": small_cnn_trained, "resnet18": resnet18_cuda}


class Counter:
    def __init__(self):
        self.n = 0


def run_pyhessian(net, x, y, what, k=1, tol=1e-3, vectors=False):
    import pyhessian  # noqa: F401  (the package re-exports the class under the module's name)

    ph = sys.modules["pyhessian.hessian"]
    cnt = Counter()
    orig = ph.hessian_vector_product

    def counted(*a, **kw):
        cnt.n += 1
        return orig(*a, **kw)

    ph.hessian_vector_product = counted
    try:
        t0 = time.perf_counter()
        hc = ph.hessian(net, F.cross_entropy, data=(x, y), cuda=x.is_cuda)
        if what == "eig":
            vals, vecs = hc.eigenvalues(maxIter=100, tol=tol, top_n=k)
            out = torch.tensor(vals, dtype=torch.float64)
            if vectors:
                out = (out, [torch.cat([t.reshape(-1) for t in v]) for v in vecs])
        else:
            out = float(sum(hc.trace(maxIter=100, tol=1e-3)) / cnt.n)
        dt = time.perf_counter() - t0
    finally:
        ph.hessian_vector_product = orig
        net.zero_grad(set_to_none=True)
    return out, cnt.n, dt


def run_heg(net, x, y, what, k=1):
    import hessian_eigenthings as he

    t0 = time.perf_counter()
    op = he.HessianOperator(net, [(x, y)], he.supervised_loss(F.cross_entropy))
    cnt = Counter()
    orig = op.matvec

    def counted(v):
        cnt.n += 1
        return orig(v)

    op.matvec = counted
    if what == "eig":
        r = he.lanczos(op, k=k, tol=1e-3, seed=0)
        out = r.eigenvalues.double().cpu()
    else:
        out = float(he.trace(op, num_matvecs=100, method="hutchinson", seed=0).estimate)
    return out, cnt.n, time.perf_counter() - t0


def run_ours(net, x, y, what, k=1, method="hutchinson", n_matvec=100, seed=0, dtype=None):
    t0 = time.perf_counter()
    H = HessianOperator(net, ce, [(x, y)], dtype=dtype)
    if what == "eig":
        r = eigs(H, k=k, which="LA", tol=1e-3, generator=torch.Generator().manual_seed(0))
        out = r.eigenvalues.double().cpu()
        extra = (bool(r.converged.all()), float((r.residuals / r.eigenvalues.abs().double().cpu()).max()))
    else:
        r = trace(H, method, n_matvec=n_matvec, generator=torch.Generator().manual_seed(seed))
        out, extra = r.estimate, r.std_error
    return out, H.n_matvec, time.perf_counter() - t0, extra


def eig_errors(vals, ref_top, ref_all):
    """Max relative error against the true top-k (sorted) and count of values that are not within
    1e-3 relative of *any* eigenvalue ('wrong eigenvalues')."""
    v = torch.sort(vals.double(), descending=True).values
    k = v.numel()
    err = float(((v - ref_top[:k]).abs() / ref_top[:k].abs()).max())
    wrong = int(sum(float((ref_all - e).abs().min()) > 1e-3 * abs(float(e)) for e in v))
    return err, wrong, bool(torch.all(vals[:-1] >= vals[1:])) if k > 1 else True


def hvp_backends(net, x, y, reps=15):
    """Median time per product of each HVP path, alternated."""
    cfg = (("double_backward", False), ("double_backward", True), ("func", False))
    ops = {f"{b}{' (cached graph)' if c else ''}": HessianOperator(net, ce, [(x, y)], backend=b, cache_graph=c)
           for b, c in cfg}
    v = torch.randn(next(iter(ops.values())).size)
    times = {k: [] for k in ops}
    for op in ops.values():
        op.matvec(v)
    for _ in range(reps):
        for k, op in ops.items():
            t0 = time.perf_counter()
            op.matvec(v)
            if op.device.type == "cuda":
                torch.cuda.synchronize()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(t) for k, t in times.items()}


def reference(net, x, y, dense: bool):
    """Exact (dense float64) top eigenvalues / trace for small models; for large ones a tightly
    converged Lanczos (k=8, tol 1e-4, certified) and a 600-product Krylov-Hutch++ trace (with its SE)."""
    if dense:
        Hd = HessianOperator(net, ce, [(x, y)], dtype=torch.float64).to_dense()
        ev = torch.linalg.eigvalsh(Hd)
        return ev.flip(0), ev, float(Hd.trace()), "dense float64 Hessian"
    H = HessianOperator(net, ce, [(x, y)])
    # float32 products: a 1e-4 residual is about as tight as they allow (1e-5 did not converge
    # within 2,000 products on ResNet-18); it pins the eigenvalues to ~(1e-4·λ)²/gap.
    r = eigs(H, k=8, which="LA", tol=1e-4, max_matvec=1000, generator=torch.Generator().manual_seed(1))
    t = trace(H, "krylov-hutch++", n_matvec=600, generator=torch.Generator().manual_seed(1))
    top = r.eigenvalues.double().cpu()
    return top, top, t.estimate, (f"Lanczos k=8 tol 1e-4 (converged {bool(r.converged.all())}), "
                                  f"Krylov-Hutch++ 600 products (SE {t.std_error:.3g})")


def bench_problem(name, net, x, y, repeats, lines, dense=True):
    print(f"\n=== {name} ===", flush=True)
    t0 = time.perf_counter()
    ref_top, ev, ref_tr, how = reference(net, x, y, dense)
    print(f"reference ({how}, {time.perf_counter() - t0:.1f} s): top-5 "
          f"{[round(float(e), 6) for e in ref_top[:5]]}, trace {ref_tr:.6f}")
    gap = HessianOperator(net, ce, [(x, y)]).rounding_error(generator=torch.Generator().manual_seed(5))
    print(f"float32 product vs float64 product: relative difference {gap:.1e}")
    hv = hvp_backends(net, x, y)
    print("HVP per product: " + ", ".join(f"{k} {1e3 * v:.2f} ms" for k, v in hv.items()))
    lines.append(f"\n### {name}\n")
    lines.append(f"Reference ({how}): top-5 {', '.join(f'{float(e):.6f}' for e in ref_top[:5])}; "
                 f"trace {ref_tr:.4f}.\n")
    lines.append("HVP backends (ms per product): " + ", ".join(f"{k} {1e3 * v:.2f}" for k, v in hv.items()) + "\n")
    lines.append(f"Rounding floor (`rounding_error()`): a float32 product is {gap:.1e} (relative) off the float64 one.\n")
    lines.append("\n| task | tool | HVPs | wall (median) | max rel. error | wrong eigenvalues | notes |\n|---|---|---|---|---|---|---|\n")
    for k in (1, 5):
        tools = ("terrainlab", "PyHessian", "hessian-eigenthings")
        if gap > 1e-4:  # float32 products themselves are off by more than the tolerance's tenth
            tools = ("terrainlab", "terrainlab float64", "PyHessian", "hessian-eigenthings")
        times = {t: [] for t in tools}
        counts = {t: [] for t in tools}
        errs = {t: [] for t in tools}
        wrongs = {t: [] for t in tools}
        notes = {t: "" for t in tools}
        last = {}
        for _ in range(repeats):
            for tool in tools:
                if tool.startswith("terrainlab"):
                    o, n, dt, extra = run_ours(net, x, y, "eig", k,
                                               dtype=torch.float64 if tool.endswith("float64") else None)
                    notes[tool] = f"all converged={extra[0]}, max residual/|λ| {extra[1]:.1e}"
                elif tool == "PyHessian":
                    o, n, dt = run_pyhessian(net, x, y, "eig", k)
                else:
                    o, n, dt = run_heg(net, x, y, "eig", k)
                err, wrong, sorted_ok = eig_errors(o, ref_top, ev)
                if not tool.startswith("terrainlab") and k > 1 and not sorted_ok:
                    notes[tool] = "list not sorted"
                times[tool].append(dt)
                counts[tool].append(n)
                errs[tool].append(err)
                wrongs[tool].append(wrong)
                last[tool] = o
        med = {t: statistics.median(v) for t, v in times.items()}
        for tool in tools:
            n = statistics.median(counts[tool])
            err = statistics.median(errs[tool])
            wrong = max(wrongs[tool])
            ratio = med[tool] / med["terrainlab"]
            print(f"top-{k} {tool:20s} HVPs {n:6.1f}  {1e3 * med[tool]:8.1f} ms ({ratio:4.1f}× ours)  "
                  f"err {err:.1e}  wrong ≤{wrong}  last values {[round(float(v), 5) for v in last[tool]]} "
                  f"{notes[tool]}")
            lines.append(f"| top-{k} | {tool} | {n:g} | {1e3 * med[tool]:.1f} ms ({ratio:.1f}×) | {err:.1e} | "
                         f"{wrong}/{k} | {notes[tool]} |\n")
    pyhessian_equal_accuracy(net, x, y, repeats, lines)
    trace_section(net, x, y, ref_tr, repeats, lines, seeds=1 if x.is_cuda else 3)


def pyhessian_equal_accuracy(net, x, y, repeats, lines):
    """Top-1 time to an answer whose residual is ≤ 1e-3·|λ| (terrainlab's certificate): PyHessian's
    tol is tightened (1e-3, 1e-4, …) until the vector it returns meets it; the residual is checked
    with one extra product outside the timing."""
    H = HessianOperator(net, ce, [(x, y)])
    for tol in (1e-3, 1e-4, 1e-5, 1e-6):
        ts, ns, ok = [], [], []
        for _ in range(repeats):
            (vals, vecs), n, dt = run_pyhessian(net, x, y, "eig", 1, tol=tol, vectors=True)
            v = vecs[0].to(H.dtype)
            v = v / v.norm()
            lam = float(vals[0])
            ok.append(float((H.matvec(v) - lam * v).norm()) <= 1e-3 * abs(lam))
            ts.append(dt)
            ns.append(n)
        t_ours = statistics.median(run_ours(net, x, y, "eig", 1)[2] for _ in range(repeats))
        med = statistics.median(ts)
        frac = sum(ok) / len(ok)
        print(f"top-1 PyHessian tol {tol:g}: HVPs {statistics.median(ns):g}, {1e3 * med:.1f} ms "
              f"({med / t_ours:.1f}× terrainlab's certified top-1), residual ≤ 1e-3·|λ| in {sum(ok)}/{len(ok)}")
        if frac == 1.0 or tol == 1e-6:
            lines.append(f"| top-1 | PyHessian at equal accuracy (tol {tol:g}: residual ≤ 1e-3·λ in {sum(ok)}/{len(ok)}) | "
                         f"{statistics.median(ns):g} | {1e3 * med:.1f} ms ({med / t_ours:.1f}×) | – | – | "
                         "terrainlab's top-1 re-timed alongside |\n")
            return


TRACE_GRID = (9, 12, 15, 18, 21, 24, 27, 30, 33, 36, 39, 42, 45, 49, 54, 60, 70, 80, 99)


def _mean_se(net, x, y, method, m, seeds):
    return statistics.mean(run_ours(net, x, y, "trace", method=method, n_matvec=m, seed=s)[3] for s in range(seeds))


def trace_section(net, x, y, ref_tr, repeats, lines, seeds):
    """Products each deflated estimator needs to reach the standard error of Hutchinson with 99
    (SEs averaged over ``seeds`` seeds), then their wall time and error at that budget."""
    se_h = _mean_se(net, x, y, "hutchinson", 99, seeds)
    matched = {}
    for method in ("hutch++", "krylov-hutch++"):
        matched[method] = next((m for m in TRACE_GRID if _mean_se(net, x, y, method, m, seeds) <= se_h), None)
    runs = {
        "terrainlab Hutchinson (99)": lambda r: run_ours(net, x, y, "trace", method="hutchinson", n_matvec=99, seed=r),
        "terrainlab Hutch++ (matched SE)": lambda r: run_ours(net, x, y, "trace", method="hutch++",
                                                              n_matvec=matched["hutch++"] or 99, seed=r),
        "terrainlab Krylov-Hutch++ (matched SE)": lambda r: run_ours(
            net, x, y, "trace", method="krylov-hutch++", n_matvec=matched["krylov-hutch++"] or 99, seed=r),
        "PyHessian": lambda r: run_pyhessian(net, x, y, "trace"),
        "hessian-eigenthings Hutchinson (100)": lambda r: run_heg(net, x, y, "trace"),
    }
    times, counts, errs, ses = ({t: [] for t in runs} for _ in range(4))
    for r in range(repeats):
        for tool, fn in runs.items():
            out = fn(r)
            times[tool].append(out[2])
            counts[tool].append(out[1])
            errs[tool].append(abs(out[0] - ref_tr) / abs(ref_tr))
            if len(out) == 4:
                ses[tool].append(out[3])
    base = statistics.median(times["terrainlab Hutchinson (99)"])
    for tool in runs:
        med = statistics.median(times[tool])
        n = statistics.median(counts[tool])
        err = statistics.median(errs[tool])
        if ses[tool]:
            note = f"SE {statistics.median(ses[tool]):.3g}"
        elif tool == "PyHessian":
            note = "stops when the running mean changes < 1e-3; no SE"
        else:
            note = "100 probes; no SE returned here"
        print(f"trace {tool:40s} HVPs {n:6.1f} {1e3 * med:8.1f} ms ({med / base:4.2f}× Hutchinson) "
              f"median rel. err {err:.1e} {note}")
        lines.append(f"| trace | {tool} | {n:g} | {1e3 * med:.1f} ms ({med / base:.2f}×) | {err:.1e} | – | {note} |\n")
    for method, m in matched.items():
        got = f"{m} products ({m / 99:.2f} of Hutchinson's)" if m else "more than 99 products (not reached)"
        lines.append(f"\n{method} reached the standard error of Hutchinson with 99 products "
                     f"({se_h:.3g}, mean over {seeds} seed(s)) with {got}.")
    lines.append("\n")


def _alternate(fns: dict, repeats: int, warm_up: bool = True) -> dict:
    """Median seconds of each callable, the callables alternated within every repeat."""
    for f in fns.values() if warm_up else ():
        f()
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def block_section(net, x, y, repeats, lines, n_batches=(1, 4)):
    """Block products (issue 16): terrainlab's ``matmat`` (k vectors in one pass over the data)
    against its own column loop (``block_size=1``) and curvlinops' ``HessianLinearOperator``
    (vmapped forward-over-reverse on blocks), on the same data, one process, alternated."""
    try:
        import curvlinops
    except ImportError:
        print("block products vs curvlinops: skipped (pip install curvlinops-for-pytorch)")
        lines.append("\nBlock products vs curvlinops: skipped (curvlinops not installed).\n")
        return

    params = [p for p in net.parameters() if p.requires_grad]
    n = sum(p.numel() for p in params)
    eye = torch.eye(n)
    lines.append("\n### Block products on the small CNN: terrainlab `matmat` vs column loop vs curvlinops\n")
    lines.append(f"curvlinops-for-pytorch {getattr(curvlinops, '__version__', '3.0.1')}; medians of {repeats} "
                 "alternated repeats; ratios are terrainlab-with-blocks / the other.\n\n"
                 "| data | task | products | terrainlab blocks | terrainlab column loop | curvlinops | "
                 "blocks / loop | blocks / curvlinops |\n|---|---|---|---|---|---|---|---|\n")
    for nb in n_batches:
        data = [(x[i::nb], y[i::nb]) for i in range(nb)]
        ours = HessianOperator(net, ce, data)  # block_size 32: one pass per 32 columns
        loop = HessianOperator(net, ce, data, block_size=1)  # every product its own pass
        cl = curvlinops.HessianLinearOperator(net, torch.nn.CrossEntropyLoss(), params, data,
                                              check_deterministic=False)
        # correctness first: the three give the same block product
        V = torch.randn(n, 8, generator=torch.Generator().manual_seed(0))
        ref = loop.matmat(V)
        for name, got in (("blocks", ours.matmat(V)), ("curvlinops", cl @ V)):
            err = float((got - ref).abs().max() / ref.abs().max())
            print(f"{nb} batch(es): {name} vs column loop, max rel. difference {err:.1e}")

        def hutchpp(op):
            return lambda: trace(op, "hutch++", n_matvec=99, generator=torch.Generator().manual_seed(0))

        def cl_dense(width=32):
            return lambda: torch.cat([cl @ eye[:, i:i + width] for i in range(0, n, width)], dim=1)

        tasks = {
            "Hutch++ (99)": (99, {"blocks": hutchpp(ours), "loop": hutchpp(loop),
                                   "curvlinops": lambda: curvlinops.hutchpp_trace(cl, 99)}),
            "Krylov-Hutch++ (99)": (99, {"blocks": lambda: trace(ours, n_matvec=99, generator=torch.Generator().manual_seed(0)),
                                          "loop": lambda: trace(loop, n_matvec=99, generator=torch.Generator().manual_seed(0)),
                                          "curvlinops": None}),
            "SLQ (5 probes × 40 steps)": (200, {
                "blocks": lambda: spectral_density(ours, n_probes=5, lanczos_steps=40, generator=torch.Generator().manual_seed(0)),
                "loop": lambda: spectral_density(loop, n_probes=5, lanczos_steps=40, generator=torch.Generator().manual_seed(0)),
                "curvlinops": None}),
            f"to_dense ({n}²)": (n, {"blocks": ours.to_dense, "loop": loop.to_dense, "curvlinops": cl_dense()}),
        }
        for task, (prods, fns) in tasks.items():
            fns = {k: f for k, f in fns.items() if f is not None}
            dense = task.startswith("to_dense")  # n products each: fewer repeats, warm already
            med = _alternate(fns, max(1, repeats // 2) if dense else repeats, warm_up=not dense)
            cl_t = med.get("curvlinops")
            cells = [f"{1e3 * med['blocks']:.0f} ms", f"{1e3 * med['loop']:.0f} ms",
                     f"{1e3 * cl_t:.0f} ms" if cl_t else "–", f"{med['blocks'] / med['loop']:.2f}",
                     f"{med['blocks'] / cl_t:.2f}" if cl_t else "–"]
            print(f"{nb} batch(es) {task:28s} " + "  ".join(cells))
            lines.append(f"| {nb} batch(es) of {x.shape[0] // nb} | {task} | {prods} | " + " | ".join(cells) + " |\n")
    lines.append("\n")


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--out", default=None, help="write the markdown table here")
    ap.add_argument("--sections", default="all", choices=("all", "block"),
                    help="'block': only the block-product comparison with curvlinops on the small CNN")
    ap.add_argument("--block-batches", default="1,4",
                    help="block section: split the CNN's batch into these numbers of batches")
    ap.add_argument("--problems", default=None,
                    help=f"comma-separated subset of {','.join(PROBLEMS)} (default: all; resnet18 only with CUDA)")
    a = ap.parse_args(argv)
    repeats = a.repeats or (1 if a.quick else 5)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    import os

    lines = [f"Machine: {os.cpu_count()}-core host, {torch.get_num_threads()} torch thread(s), load average "
             f"{os.getloadavg()[0]:.1f} at start, torch {torch.__version__}"
             + (f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ", no GPU")
             + f"; medians of {repeats} alternated repeats (ResNet-18: {max(1, repeats // 2)}).\n"]
    if a.sections == "block":
        _, net, x, y = small_cnn()
        block_section(net, x, y, repeats, lines, tuple(int(b) for b in a.block_batches.split(",")))
        names = []
    else:
        names = a.problems.split(",") if a.problems else (["mlp"] if a.quick else list(PROBLEMS))
    for name in names:
        if name not in PROBLEMS:
            raise SystemExit(f"--problems: unknown {name!r}; expected some of {', '.join(PROBLEMS)}")
        if name == "resnet18":
            if not torch.cuda.is_available():
                print("\nResNet-18: skipped (no CUDA device)")
                lines.append("\nResNet-18: skipped (no CUDA device in this run).\n")
                continue
            lines.append(f"\nGPU: {torch.cuda.get_device_name()}, torch {torch.__version__}\n")
            label, net, x, y = resnet18_cuda()
            bench_problem(label, net, x, y, max(1, repeats // 2), lines, dense=False)
            continue
        label, net, x, y = PROBLEMS[name]()
        bench_problem(label, net, x, y, repeats, lines)
        if name == "cnn":
            block_section(net, x, y, repeats, lines, tuple(int(b) for b in a.block_batches.split(",")))
    if a.out:
        with open(a.out, "w") as f:
            f.writelines(lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
