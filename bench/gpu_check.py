"""GPU correctness check for the parameter-world instruments (run where CUDA is present).

    python bench/gpu_check.py

Each check computes the same quantity on the CPU and on the GPU (float64 where it is compared to
tight tolerances) and prints PASS / FAIL with the measured difference; the exit code is the
number of failures. Checks: Hessian, GGN and Fisher products; certified Lanczos eigenpairs and the
three trace estimators; the sharpness tracker through a few SGD steps; a filter-normalised plane
(vmap and loop strategies) and an interpolation; hub attention (terrainlab.aleph): the chunked scan and
the recurrent step on the GPU against the CPU in float64, and the bf16-autocast module against a float64
oracle (the discipline of aleph.md §3: GEMMs in bf16, reductions in float32). Nothing here is needed by CI, which has no GPU.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import _models  # noqa: E402
from _models import ce  # noqa: E402

from terrainlab.curvature import (  # noqa: E402
    FisherOperator,
    GGNOperator,
    HessianOperator,
    SharpnessTracker,
    eigs,
    trace,
)
from terrainlab.landscape import interpolate, plane, random_direction  # noqa: E402

FAILS: list[str] = []


def check(name: str, ok: bool, detail: str) -> None:
    print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}", flush=True)
    if not ok:
        FAILS.append(name)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double().cpu(), b.double().cpu()
    return float((a - b).norm() / b.norm().clamp_min(1e-300))


def main(argv=None) -> int:
    # ``--device cpu`` dry-runs the same checks CPU against CPU (to test this script without a GPU)
    dev = torch.device(argv[argv.index("--device") + 1] if argv and "--device" in argv else "cuda")
    if dev.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: nothing to check")
        return 0
    x, y = _models.digits()
    net = _models.mlp(32)
    gnet = _models.mlp(32).to(dev)
    data, gdata = [(x, y)], [(x.to(dev), y.to(dev))]
    v = torch.randn(sum(p.numel() for p in net.parameters()), generator=torch.Generator().manual_seed(0),
                    dtype=torch.float64)
    for cls, kw in ((HessianOperator, {"loss_fn": ce}), (GGNOperator, {"criterion": lambda out, b: torch.nn.functional.cross_entropy(out, b[1])}),
                    (FisherOperator, {"kind": "empirical"})):
        try:
            a = cls(net, data=data, dtype=torch.float64, **kw).matvec(v)
            b = cls(gnet, data=gdata, dtype=torch.float64, **kw).matvec(v.to(dev))
            check(f"{cls.__name__} product CPU = GPU (float64)", rel(b, a) < 1e-10 and b.device.type == dev.type,
                  f"relative difference {rel(b, a):.1e}, result on {b.device}")
        except Exception as e:  # noqa: BLE001 - a crash is a failed check, reported with its message
            check(f"{cls.__name__} product", False, f"{type(e).__name__}: {e}")
    Hc = HessianOperator(net, ce, data, dtype=torch.float64)
    Hg = HessianOperator(gnet, ce, gdata, dtype=torch.float64)
    rc = eigs(Hc, k=3, tol=1e-8, generator=torch.Generator().manual_seed(0))
    rg = eigs(Hg, k=3, tol=1e-8, generator=torch.Generator().manual_seed(0))
    check("eigs top-3 CPU = GPU, certified", bool(rg.converged.all()) and rel(rg.eigenvalues, rc.eigenvalues) < 1e-8,
          f"GPU {rg.eigenvalues.tolist()} vs CPU {rc.eigenvalues.tolist()}, residuals {rg.residuals.tolist()}")
    exact = float(Hc.to_dense().trace())
    for method in ("hutchinson", "hutch++", "krylov-hutch++"):
        t = trace(Hg, method, n_matvec=90, generator=torch.Generator().manual_seed(1))
        check(f"trace {method} on GPU within 4 SE", abs(t.estimate - exact) <= 4 * t.std_error,
              f"{t.estimate:.4f} ± {t.std_error:.4f} vs exact {exact:.4f}")
    opt = torch.optim.SGD(gnet.parameters(), lr=0.5)
    tr = SharpnessTracker(gnet, ce, gdata, optimizer=opt, every=2, max_matvec=20, tol=1e-3)
    for _ in range(6):
        tr.step()
        opt.zero_grad()
        ce(gnet, gdata[0]).backward()
        opt.step()
    check("SharpnessTracker on GPU", len(tr.records) == 3 and all(r.sharpness > 0 for r in tr.records),
          f"sharpness {[round(r.sharpness, 4) for r in tr.records]}, threshold {tr.records[0].threshold:.3f}")
    net = _models.mlp(64)
    gnet = _models.mlp(64).to(dev)
    g = torch.Generator().manual_seed(2)
    d1, d2 = random_direction(net, generator=g), random_direction(net, generator=g)
    a = torch.linspace(-1, 1, 9)
    ref = plane(net, ce, data, d1, d2, a, a, strategy="loop", dtype=torch.float64).losses
    for strategy in ("vmap", "loop"):
        got = plane(gnet, ce, gdata, d1.to(dev), d2.to(dev), a, a, strategy=strategy, dtype=torch.float64)
        check(f"plane on GPU ({strategy}) = CPU", rel(got.losses, ref) < 1e-10,
              f"relative difference {rel(got.losses, ref):.1e}, chunk {got.chunk_size}")
    other = _models.mlp(64)
    torch.nn.utils.vector_to_parameters(torch.nn.utils.parameters_to_vector(other.parameters()) * 0.5,
                                        other.parameters())
    ic = interpolate(net, other, ce, data, n_points=11)
    ig = interpolate(gnet, other.to(dev), ce, gdata, n_points=11)
    check("interpolate on GPU = CPU", rel(ig.losses, ic.losses) < 1e-5, f"relative difference {rel(ig.losses, ic.losses):.1e}")
    aleph_checks(dev)
    print(f"\n{len(FAILS)} failure(s)" + (f": {', '.join(FAILS)}" if FAILS else ""))
    return len(FAILS)


def aleph_checks(dev: torch.device) -> None:
    """Hub attention on ``dev``: the chunked scan and the recurrent step = the CPU's (float64), and the
    bf16-autocast module close to the float64 oracle with its output in bf16 (no silent promotion)."""
    from terrainlab.aleph.attention import AlephAttention

    g = torch.Generator().manual_seed(3)
    cpu = AlephAttention(64, 4, K=16, D_addr=8, generator=g).double()
    gpu = AlephAttention(64, 4, K=16, D_addr=8).double().to(dev)
    gpu.load_state_dict(cpu.state_dict())
    x = torch.randn(2, 300, 64, generator=g, dtype=torch.float64)
    try:
        torch.set_grad_enabled(False)
        ref = cpu(x)
        got = gpu(x.to(dev))
        check("aleph chunked scan on GPU = CPU (float64)", rel(got, ref) < 1e-10 and got.device.type == dev.type,
              f"relative difference {rel(got, ref):.1e}, result on {got.device}")
        state, steps = gpu.init_state(2, dtype=torch.float64), []
        for t in range(40):
            y, state = gpu.step(x[:, t].to(dev), state)
            steps.append(y)
        step_err = rel(torch.stack(steps, 1), ref[:, :40])
        check("aleph recurrent step on GPU = chunked scan on CPU (float64)", step_err < 1e-10,
              f"relative difference {step_err:.1e}, state {state.nbytes} bytes after {state.n_tokens} tokens")
        lp = AlephAttention(64, 4, K=16, D_addr=8).to(dev)
        lp.load_state_dict({k: v.float() for k, v in cpu.state_dict().items()})
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16):
            yb = lp(x.float().to(dev))
        err = rel(yb, ref)
        check("aleph bf16 autocast vs float64 oracle", err < 3e-2 and yb.dtype == torch.bfloat16,
              f"relative error {err:.1e}, output dtype {yb.dtype}")
    except Exception as e:  # noqa: BLE001 - a crash is a failed check, reported with its message
        check("aleph hub attention", False, f"{type(e).__name__}: {e}")
    finally:
        torch.set_grad_enabled(True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
