"""Atlas experiments on token-time dynamics (s12 h1): ch07.gpt_is_hidden_state_euler and
ch06.repetition_is_a_limit_cycle — decide functions both ways, one quick run each on the smoke zoo."""

import math

import pytest

from terrainlab.atlas import VERDICTS, discover, run_one
from terrainlab.atlas.chapters.ch07.gpt_is_hidden_state_euler import (
    R2_BAR,
    decide_hidden_state_euler,
)


def test_decide_hidden_state_euler():
    # GPT well below the bar the GRU clears
    assert decide_hidden_state_euler(0.72, 0.25, 0.96, 0.89) == "fails"
    # GPT close to the bar but h_{t-1} adds little over the token
    assert decide_hidden_state_euler(0.85, 0.2, 0.96, 0.89) == "fails"
    # GPT clears the same bar
    assert decide_hidden_state_euler(0.95, 0.8, 0.96, 0.89) == "holds"
    # the control misses the bar: the measurement says nothing
    assert decide_hidden_state_euler(0.72, 0.25, 0.85, 0.89) == "inconclusive"
    assert decide_hidden_state_euler(0.72, 0.25, 0.96, 0.3) == "inconclusive"
    # just under the bar with a large share: not clearly below
    assert decide_hidden_state_euler(R2_BAR - 0.05, 0.7, 0.96, 0.89) == "inconclusive"
    assert decide_hidden_state_euler(float("nan"), 0.7, 0.96, 0.89) == "inconclusive"


@pytest.fixture(scope="module")
def registered():
    errors = discover()
    bad = {k: v for k, v in errors.items() if "hidden_state_euler" in k or "repetition_is" in k}
    assert not bad, bad


def test_gpt_is_hidden_state_euler_quick(registered, seq_zoo_out):
    res, figs = run_one("ch07.gpt_is_hidden_state_euler", seq_zoo_out, quick=True)
    assert res.verdict in VERDICTS
    assert figs and all((seq_zoo_out / f).exists() for f in figs)
    n = res.numbers
    assert n["sequences"] == 343 and n["train_prompts"] == 240
    for key in ("gpt", "control_gru"):
        r = n[key]
        for k in ("r2_token_position", "r2_prev_state", "r2_prev_state_train"):
            assert r[k] <= 1.0 and math.isfinite(r[k])
        assert r["n_train_rows"] == 240 * 23 and r["n_test_rows"] == 103 * 23
        assert r["token_step_last_layer"] > 0
    assert len(n["gpt"]["depth_step_per_layer"]) == 2 and len(n["gpt"]["token_step_per_layer"]) == 3
    assert n["splits"] == 3 and len(n["gpt"]["r2_prev_state_per_split"]) == 3
    assert math.isfinite(n["gpt"]["r2_prev_column_all_layers"]) and "r2_prev_column_all_layers" not in n["control_gru"]
    # the GRU's recurrence is found even in a barely trained model
    assert n["control_gru"]["r2_prev_state"] > 0.8


def test_decide_repetition():
    from terrainlab.atlas.chapters.ch06.repetition_is_a_limit_cycle import decide_repetition

    assert decide_repetition(0.95, 0.0, 0.95, 0.95) == "holds"
    # the trained window does not loop within N tokens, a shorter one does (and sampling there does not)
    assert decide_repetition(0.0, 0.0, 0.98, 0.98) == "holds-with-correction"
    # short windows loop only where sampling loops too
    assert decide_repetition(0.0, 0.0, 0.2, 1.0) == "inconclusive"
    assert decide_repetition(0.3, 0.05, 0.6, 0.6) == "fails"
    # the sampled control loops at the trained window: the detector does not separate them
    assert decide_repetition(0.95, 0.5, 0.95, 0.95) == "inconclusive"
    assert decide_repetition(float("nan"), 0.0, 0.9, 0.9) == "inconclusive"


def test_repetition_is_a_limit_cycle_quick(registered, seq_zoo_out):
    res, figs = run_one("ch06.repetition_is_a_limit_cycle", seq_zoo_out, quick=True)
    assert res.verdict in VERDICTS
    assert figs and all((seq_zoo_out / f).exists() for f in figs)
    n = res.numbers
    assert n["claim_kind"] == "theorem-check" and n["runs"] == 24 and n["tokens_decoded"] == 200
    assert set(n["by_window"]) == {"4", "8", "24"}
    for w in n["by_window"].values():
        for k in ("greedy_cycle_fraction", "sampled_cycle_fraction", "greedy_cycle_fraction_prompts"):
            assert 0.0 <= w[k] <= 1.0
        assert w["distinct_loops"] == len(w["periods"]) or w["distinct_loops"] >= len(w["periods"])
        assert sum(w["loop_basins"]) <= w["greedy_cycle_fraction"] + 1e-9
        assert all(1 <= p <= n["max_period"] for p in w["periods"])
    g = n["control_gru"]
    assert 0.0 <= g["token_cycle_fraction"] <= 1.0 and 0.0 <= g["state_fixed_point_fraction"] <= 1.0
    assert all(r >= 0 for r in g["floquet_radius_per_loop"])
    assert len(g["floquet_radius_per_loop"]) == len(g["floquet_loop_periods"]) == len(g["loops"])
