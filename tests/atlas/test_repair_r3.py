"""Issue 17 §1, two repaired entries: ch03.optimizer_comparison (tuned optimizers, seeds, standard
errors, controls) and ch04.lr_schedules (a reproduction, kept out of the tally); the tally itself."""

from __future__ import annotations

import copy
import json
import re

import pytest

from terrainlab.atlas import discover, run_one
from terrainlab.atlas.chapters.ch03.optimizer_comparison import (
    compare_tuned,
    decide_optimizer_comparison,
)
from terrainlab.atlas.chapters.ch04.lr_schedules import PANELS, book_formula, decide_lr_schedules
from terrainlab.atlas.report import render_html
from terrainlab.atlas.schema import is_reproduction, totals, validate_results
from terrainlab.cli import main


# ------------------------------------------------------------------ decide functions, every verdict
def test_decide_optimizer_comparison_each_way():
    # Adam closer than both rivals by > 2 SE
    assert decide_optimizer_comparison([-1.1, -0.17], [0.05, 0.05]) == "holds"
    # a rival closer by > 2 SE
    assert decide_optimizer_comparison([-1.1, 0.3], [0.05, 0.1]) == "fails"
    # within 2 SE of a rival
    assert decide_optimizer_comparison([-1.1, -0.19], [0.13, 0.14]) == "inconclusive"
    # a tuned η at the edge of its grid, or a control that does not come out its known way
    assert decide_optimizer_comparison([-1.1, -0.17], [0.05, 0.05], interior=False) == "inconclusive"
    assert decide_optimizer_comparison([-1.1, -0.17], [0.05, 0.05], control_win="inconclusive") == "inconclusive"
    assert decide_optimizer_comparison([-1.1, 0.3], [0.05, 0.1], control_lose="holds") == "inconclusive"
    with pytest.raises(ValueError, match="gaps"):
        compare_tuned([-1.0], [0.1, 0.1])
    with pytest.raises(ValueError, match="ses"):
        compare_tuned([-1.0], [-0.1])


def test_tuning_extends_the_grid_until_the_best_is_interior(monkeypatch):
    import torch

    from terrainlab.atlas.chapters.ch03 import optimizer_comparison as oc
    from terrainlab.core.fields import linear_field
    from terrainlab.optim import GradientDescentScheme

    bowl = linear_field(-2.0 * torch.eye(2, dtype=torch.float64))  # L = ‖θ‖²: GD exact at η = ½
    starts = torch.tensor([[1.0, -0.5], [-2.0, 0.3]], dtype=torch.float64)
    zero = torch.zeros(2, dtype=torch.float64)
    t = oc.tune(bowl, zero, GradientDescentScheme(), starts, 1e-4, 1e-3)  # best far above the first grid
    assert t["interior"] and t["extended"] == 3 and 0.1 < t["eta"] < 0.9 and t["objective"] == -12
    monkeypatch.setattr(oc, "MAX_EXTEND", 1)
    t = oc.tune(bowl, zero, GradientDescentScheme(), starts, 1e-4, 1e-3)
    assert not t["interior"] and t["extended"] == 1  # reported, and the verdict would be inconclusive


def test_decide_lr_schedules_each_way():
    assert decide_lr_schedules(4e-17, 0.0105) == "holds"
    assert decide_lr_schedules(1e-3, 0.0105) == "fails"
    assert decide_lr_schedules(0.0, 0.0) == "inconclusive"  # the control cannot see a wrong panel
    with pytest.raises(ValueError, match="kind"):
        book_formula({"kind": "exponential"}, 3)
    assert book_formula(PANELS["warmup 20 + cosine"], 20) == pytest.approx(0.1)


# ------------------------------------------------------------------ the tally leaves reproductions out
def _entry(eid, verdict, kind=None, status="ok"):
    numbers = {"x": 1.0} if kind is None else {"claim_kind": kind, "x": 1.0}
    return {"id": eid, "chapter": 4, "title": eid, "claim": "c", "module": "m", "status": status,
            "verdict": verdict, "numbers": numbers if status == "ok" else {},
            "threshold": "t" if status == "ok" else None, "explanation": None, "corrected": None,
            "figures": [], "seconds": 1.0, "cached": False, "error": None if status == "ok" else "boom"}


def _results(entries):
    return {"schema": 1, "generated": "2026-12-04T19:00:00+00:00", "version": "0.1.0", "quick": True,
            "seed": 0, "only": None, "wall_seconds": 1.0, "totals": totals(entries), "experiments": entries}


def test_tally_counts_claims_not_reproductions(tmp_path, capsys):
    es = [_entry("ch04.a", "holds", "empirical"), _entry("ch04.b", "fails"),
          _entry("ch04.r", "holds", " Reproduction "), _entry("ch04.e", "error", status="error")]
    assert [is_reproduction(e) for e in es] == [False, False, True, False]
    t = totals(es)
    assert (t["experiments"], t["claims"], t["reproductions"]) == (4, 3, 1)
    assert (t["holds"], t["fails"], t["error"]) == (1, 1, 1)
    assert sum(t[v] for v in ("holds", "holds-with-correction", "fails", "inconclusive", "error")) == t["claims"]
    res = _results(es)
    validate_results(res)
    # a file that counts the reproduction under its verdict is rejected, saying why
    bad = copy.deepcopy(res)
    bad["totals"].update(holds=2)
    with pytest.raises(ValueError, match=r"results\.totals\.holds: 2 ≠ 1 .*reproductions are not counted"):
        validate_results(bad)
    bad = copy.deepcopy(res)
    bad["totals"].update(reproductions=0)
    with pytest.raises(ValueError, match=r"results\.totals\.reproductions"):
        validate_results(bad)
    # a file written before the tally split (no claims/reproductions keys) still reads
    old = copy.deepcopy(res)
    del old["totals"]["claims"], old["totals"]["reproductions"]
    old["totals"].update(holds=2)
    validate_results(old)
    # the page shows the reproduction apart from the verdict counts
    page = render_html(res)
    assert re.search(r'<b>1</b><span class="badge" style="background:#009E73', page)
    assert re.search(r'<b>1</b><span class="kind k-reproduction"', page)
    assert "4 experiments · 3 claims + 1 reproduction (not in the tally)" in page
    assert re.search(r'<article class="card" id="exp-ch04.r" data-verdict="holds" data-kind="reproduction"', page)
    # and so does `terrainlab claims`
    (tmp_path / "results.json").write_text(json.dumps(res), encoding="utf-8")
    assert main(["claims", "--out", str(tmp_path)]) == 0
    out = " ".join(capsys.readouterr().out.split())  # the console may wrap the line
    assert "3 claims: 1 holds, 0 holds-with-correction, 1 fails, 0 inconclusive, 1 error; " \
           "1 reproduction (not in the tally)" in out
    assert main(["claims", "--out", str(tmp_path), "--json"]) == 0
    kinds = {c["id"]: c["kind"] for c in json.loads(capsys.readouterr().out)["claims"]}
    assert kinds["ch04.r"] == "reproduction" and kinds["ch04.b"] == "unlabelled"


# ------------------------------------------------------------------ quick end-to-end runs
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    discover()
    out = tmp_path_factory.mktemp("atlas_r3")
    ids = ("ch03.optimizer_comparison", "ch04.lr_schedules")
    return out, {eid: run_one(eid, out, quick=True) for eid in ids}


def test_optimizer_comparison_quick(runs):
    out, r = runs
    res, figs = r["ch03.optimizer_comparison"]
    n = res.numbers
    # quick: 5 seeds × 64 evaluation starts; Adam − heavy ball −0.17 ± 0.05, Adam − SGD −1.11 ± 0.05
    assert res.verdict == "holds", res.explanation
    assert n["claim_kind"] == "empirical" and len(n["seeds"]) == 5 and n["n_paired_starts"] == 320
    assert n["tuned_eta_interior"] and n["control_ill_conditioned_interior"] and n["control_bowl_interior"]
    assert n["gap_adam_minus_sgd_log10"] < -0.8 and n["gap_adam_minus_sgd_log10_se"] < 0.1
    assert -0.3 < n["gap_adam_minus_heavy_ball_log10"] < -2 * n["gap_adam_minus_heavy_ball_log10_se"]
    assert n["control_ill_conditioned_verdict"] == "holds" and n["control_bowl_verdict"] == "fails"
    assert n["control_bowl_gap_adam_minus_sgd_log10"] > 5  # GD at η ≈ ½ lands on the bowl's minimum
    assert all(0.1 < e < 1.0 for e in n["tuned_eta_per_seed"]["Adam"])  # interior, not the old edge 1.0
    assert figs and all((out / f).stat().st_size > 1000 for f in figs)


def test_lr_schedules_quick(runs):
    out, r = runs
    res, figs = r["ch04.lr_schedules"]
    n = res.numbers
    assert res.verdict == "holds", res.explanation
    assert n["claim_kind"] == "reproduction"
    assert max(n["max_abs_deviation_from_book_formula"].values()) < 1e-12
    assert n["control_linear_vs_cosine_max_abs_deviation"] > 1e-3
    assert "pytorch" not in json.dumps(n).lower()  # the library test lives in tests/optim
    assert figs and all((out / f).stat().st_size > 1000 for f in figs)
