"""Throwaway experiments for the runner tests (imported by name in worker processes).

Each experiment appends a line "<pid> <time>" to OUT/markers/<id>.txt when it starts, so tests can
prove what was (re)computed. Not collected by pytest (no ``test_`` prefix).
"""

from __future__ import annotations

import os
import time

from terrainlab.atlas import Context, Result, experiment

SCRIPT_CLAIM = 'Steps <script>alert("x")</script> & "quotes" stay text'


def mark(ctx: Context) -> None:
    d = ctx.out_dir / "markers"
    d.mkdir(parents=True, exist_ok=True)
    with open(d / f"{ctx.exp_id}.txt", "a", encoding="utf-8") as f:
        f.write(f"{os.getpid()} {time.time()}\n")


@experiment(id="ch90.fixture_ok", chapter=90, title="A fixture that holds", claim=SCRIPT_CLAIM)
def fixture_ok(ctx: Context) -> Result:
    mark(ctx)
    from terrainlab.plotting import figure, style

    with style():
        fig, ax = figure("single")
        ax.plot([0, 1, 2], [0, 1, 4], label="θ²")
        ax.set_xlabel("θ")
        ax.set_ylabel("L")
        ax.set_title("fixture <b>figure</b>")
        ax.legend()
        ctx.savefig(fig, "curve")
    return Result(
        verdict="holds",
        numbers={"slope": 1.02, "quick": ctx.quick, "seed": ctx.seed, "series": list(range(20))},
        threshold="|slope − 1| ≤ 0.15",
        explanation="Measured slope <1.02> & close to 1.",
    )


@experiment(id="ch90.fixture_raises", chapter=90, title="A fixture that raises", claim="raises")
def fixture_raises(ctx: Context) -> Result:
    mark(ctx)
    raise RuntimeError("boom from the fixture")


@experiment(id="ch91.fixture_fails", chapter=91, title="A fixture that fails", claim="η = 0.5 is critical")
def fixture_fails(ctx: Context) -> Result:
    mark(ctx)
    return Result(
        verdict="fails",
        numbers={"period": 2, "residual": float("nan"), "nested": {"a": [1.5, 2.5]}},
        threshold="period == 1",
        explanation="A period-2 orbit.",
        corrected="η = 0.25 <is> critical & η = 0.5 is the edge of stability",
    )


@experiment(id="ch91.fixture_crash", chapter=91, title="A fixture that crashes", claim="crashes")
def fixture_crash(ctx: Context) -> Result:
    mark(ctx)
    print("about to crash", flush=True)
    os._exit(3)


@experiment(id="ch92.fixture_slow", chapter=92, title="A slow fixture", claim="waits")
def fixture_slow(ctx: Context) -> Result:
    """Waits until OUT/release exists (at most 60 s): tests kill or time out the run meanwhile."""
    mark(ctx)
    t0 = time.time()
    while not (ctx.out_dir / "release").exists() and time.time() - t0 < 60:
        time.sleep(0.05)
    return Result(
        verdict="inconclusive", numbers={"waited": time.time() - t0}, threshold="none", explanation="waited"
    )


@experiment(id="ch91.fixture_killed", chapter=91, title="A fixture killed by a signal", claim="killed")
def fixture_killed(ctx: Context) -> Result:
    mark(ctx)
    import signal

    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")


def _count_build(ctx: Context) -> dict:
    """A tiny shared artifact whose build appends a line to OUT/shared_builds.txt."""
    with open(ctx.out_dir / "shared_builds.txt", "a", encoding="utf-8") as f:
        f.write(f"{ctx.exp_id} {os.getpid()}\n")
    import torch

    return {"state_dict": {"w": torch.arange(3.0)}, "meta": {"steps": 3}}


def _uses_shared(ctx: Context) -> Result:
    mark(ctx)
    art = ctx.shared("fixture_model", build=lambda: _count_build(ctx), version=1)
    return Result(verdict="holds", numbers={"w_sum": float(art["state_dict"]["w"].sum())},
                  threshold="w_sum == 3", explanation="read a shared artifact")


@experiment(id="ch93.fixture_shared_a", chapter=93, title="Uses a shared artifact (a)", claim="shares")
def fixture_shared_a(ctx: Context) -> Result:
    return _uses_shared(ctx)


@experiment(id="ch93.fixture_shared_b", chapter=93, title="Uses a shared artifact (b)", claim="shares")
def fixture_shared_b(ctx: Context) -> Result:
    return _uses_shared(ctx)
