"""bench/core.py — rollout overhead against bare field evaluations and torchdiffeq's fixed grid.

MLP field 64→256→256→64 (tanh), 4096 states, t ∈ [0, 1] with step 0.05 (20 steps). For Euler and
RK4: terrainlab.rollout (record="last") vs the same number of bare field evaluations in a Python
loop vs torchdiffeq.odeint(method="euler"/"rk4", step_size=0.05). All in one process, alternated,
medians of several rounds; prints ratios. Run: python bench/core.py [--quick]
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _timing import alternate, table  # noqa: E402

from terrainlab.core import RK4, Euler, rollout  # noqa: E402


class MLPField(torch.nn.Module):
    def __init__(self, d=64, h=256):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(d, h), torch.nn.Tanh(), torch.nn.Linear(h, h), torch.nn.Tanh(), torch.nn.Linear(h, d)
        )

    def forward(self, t, x):  # torchdiffeq's convention
        return self.net(x)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    torch.manual_seed(0)
    dev = torch.device(args.device)
    f = MLPField().to(dev)
    field = lambda x, t: f.net(x)  # noqa: E731 - terrainlab's F(state, t)
    eta, steps = 0.05, 20
    try:
        from torchdiffeq import odeint
    except ImportError:  # pragma: no cover - anchor is optional
        odeint = None
    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)
    rows = []
    sizes = (64, 1024) if args.quick else (64, 4096)
    for n, (name, scheme, stages, tdq) in [
        (n, c) for n in sizes for c in (("euler", Euler(), 1, "euler"), ("rk4", RK4(), 4, "rk4"))
    ]:
        x0 = torch.randn(n, 64, device=dev)

        def bare():
            x = x0
            for _ in range(steps * stages):
                x = f.net(x)
            sync()

        def ours():
            rollout(field, x0, eta=eta, steps=steps, scheme=scheme, record="last")
            sync()

        contenders = {"bare evals": bare, "terrainlab": ours}
        if odeint is not None:
            t = torch.linspace(0, 1, 2, device=dev)

            def anchor():
                odeint(f, x0, t, method=tdq, options={"step_size": eta})
                sync()

            contenders["torchdiffeq"] = anchor
        with torch.no_grad():
            med = alternate(contenders, repeats=5 if args.quick else 9)
        base = med["bare evals"]
        for k, v in med.items():
            rows.append([n, name, k, steps * stages, f"{v * 1e3:.3f}", f"{v / base:.3f}"])
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}, device {dev}")
    print(table(rows, ["states", "scheme", "contender", "field evals", "median ms", "ratio to bare"]))


if __name__ == "__main__":
    main()
