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
    # the GRU's recurrence is found even in a barely trained model
    assert n["control_gru"]["r2_prev_state"] > 0.8
