"""Smoke test of bench/aleph.py: its measuring functions run at a tiny size and return sane numbers."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[2] / "bench" / "aleph.py"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCH.parent))
    try:
        spec = importlib.util.spec_from_file_location("bench_aleph", BENCH)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        yield mod
    finally:
        sys.path.remove(str(BENCH.parent))


def test_contenders_compute_the_same_kind_of_output(bench):
    x = bench.make_inputs(48, heads=2, d_head=8, K_=4, d_addr=4)
    outs = {n: bench.forward_fn(n, x, chunk=16)() for n in bench.CONTENDERS}
    for n, o in outs.items():
        assert o.shape == (1, 2, 48, 8), n
        assert torch.isfinite(o).all(), n
    # the hub contender is the scan of the hub's own features; SDPA's two backends agree
    assert torch.allclose(outs["hub"], outs["hub scan"], atol=1e-5)
    assert torch.allclose(outs["sdpa"], outs["sdpa math"], atol=1e-5)
    bench.fwd_bwd_fn("hub", x, "cpu", chunk=16)()
    assert x["book"].grad is not None and x["v"].grad is not None


def test_saved_bytes_are_linear_for_the_hub_and_quadratic_for_the_math_backend(bench):
    small, big = (bench.make_inputs(T, heads=2, d_head=8, K_=4, d_addr=4) for T in (64, 256))
    hub = [bench.saved_bytes("hub", x, chunk=16) for x in (small, big)]
    math_ = [bench.saved_bytes("sdpa math", x) for x in (small, big)]
    assert hub[1] == pytest.approx(4 * hub[0], rel=0.05)
    assert math_[1] > 10 * math_[0]


def test_memory_and_timing_passes_and_the_report(bench, capsys):
    res = bench.forward_backward([64, 128], repeats=1, level_budget_s=1.0, fresh_memory=False, verbose=False)
    assert set(res) == set(bench.CONTENDERS)
    for n in bench.CONTENDERS:
        for T in (64, 128):
            assert res[n][T]["skip"] is None and res[n][T]["time"] > 0 and res[n][T]["saved"] > 0
    summary = bench.report_forward_backward(res, [64, 128])
    assert set(summary["ratios"]) == {64, 128}
    assert "crossover" in capsys.readouterr().out
    # a memory limit below the first measurement stops a contender at the next length with a prediction
    mem = bench.memory_pass([64, 128], contenders=("sdpa math",), limit=1.0)
    assert mem["sdpa math"][128]["skip"].startswith("out of memory (predicted")


def test_decoding_and_chunk_sweep(bench):
    dec = bench.decoding([8, 32], window=2, repeats=1, d_model=16, heads=2, verbose=False)
    assert dec[8]["hub_bytes"] == dec[32]["hub_bytes"]          # the hub's state does not grow
    assert dec[32]["softmax_bytes"] == 4 * dec[8]["softmax_bytes"]  # the KV cache does
    sw = bench.chunk_sweep(64, chunks=(16, 32), repeats=1)
    assert set(sw) == {16, 32} and all(t > 0 for t in sw.values())
    with pytest.raises(ValueError, match="chunks"):
        bench.chunk_sweep(64, chunks=(0,), repeats=1)


def test_helpers(bench):
    assert bench.loglog_slope([1, 2, 4], [3, 6, 12]) == pytest.approx(1.0)
    assert bench.crossover([1, 2, 4, 8], [2.0, 1.5, 0.5, 0.25])[0] == 4
    first, at = bench.crossover([1, 2, 4], [2.0, 0.5, 0.4])
    assert first == 2 and at == pytest.approx(math.sqrt(2))
    assert bench.crossover([1, 2], [2.0, 1.5]) == (None, None)
    with pytest.raises(ValueError, match="T"):
        bench.make_inputs(0)
    with pytest.raises(ValueError, match="name"):
        bench.forward_fn("nope", {})
