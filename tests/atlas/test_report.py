"""The HTML report escapes every text; results.json validation catches what it must."""

from __future__ import annotations

import base64
import copy
import hashlib
import os
import re

import pytest

from terrainlab.atlas._io import file_mode
from terrainlab.atlas.report import (
    SCRIPT,
    claim_kind,
    fmt_value,
    key_numbers,
    number_rows,
    render_html,
    write_html,
)
from terrainlab.atlas.schema import totals, validate_results

EVIL = 'Steps <script>alert("x")</script> & friends'


def entry(**kw) -> dict:
    e = {
        "id": "ch05.energy",
        "chapter": 5,
        "title": "Energy <b>terrain</b>",
        "claim": EVIL,
        "module": "terrainlab.atlas.chapters.ch05.energy",
        "status": "ok",
        "verdict": "holds-with-correction",
        "numbers": {"slope<1>": 0.98765, "ratio": 1e-7, "series": list(range(30)), "flag": True},
        "threshold": "|slope − 1| ≤ 0.15 & <no tags>",
        "explanation": "because <i>math</i> & more",
        "corrected": "η < 2/λ & not <= 2/λ",
        "figures": ["figures/ch05.energy/map.svg", "figures/ch05.energy/map.png"],
        "seconds": 1.25,
        "cached": False,
        "error": None,
    }
    e.update(kw)
    return e


def results(*entries) -> dict:
    entries = list(entries) or [entry()]
    return {
        "schema": 1,
        "generated": "2026-11-28T18:00:00+00:00",
        "version": "0.1.0",
        "quick": True,
        "seed": 0,
        "only": None,
        "wall_seconds": 3.0,
        "totals": totals(entries),
        "experiments": entries,
    }


def test_html_escapes_all_text():
    err = entry(
        id="ch06.<bad>&id",
        chapter=6,
        status="error",
        verdict="error",
        error="Traceback ...\nValueError: <script>x</script> & y",
        figures=[],
        claim="",
    )
    page = render_html(results(entry(), err))
    # one script, ours (the filter), allowed by the page's Content-Security-Policy; none injected
    assert page.lower().count("<script") == 1 and f"<script>{SCRIPT}</script>" in page
    digest = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
    assert f"script-src &#x27;sha256-{digest}&#x27;" in page
    assert "innerHTML" not in SCRIPT and "insertAdjacentHTML" not in SCRIPT and "eval" not in SCRIPT
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; friends" in page
    assert "Energy &lt;b&gt;terrain&lt;/b&gt;" in page and "<b>terrain</b>" not in page
    assert "because &lt;i&gt;math&lt;/i&gt; &amp; more" in page
    assert "η &lt; 2/λ &amp; not &lt;= 2/λ" in page
    assert "ValueError: &lt;script&gt;x&lt;/script&gt; &amp; y" in page
    assert "slope&lt;1&gt;" in page
    assert "ch06.&lt;bad&gt;&amp;id" in page and "<bad>" not in page
    # every tag in the page is one of ours
    tags = set(re.findall(r"<\s*([a-zA-Z0-9]+)", page))
    allowed = {"html", "head", "meta", "title", "style", "body", "header", "div", "h1", "h2", "h3",
               "sub", "i", "b", "main", "table", "tr", "th", "td", "a", "code", "span", "article",
               "blockquote", "figure", "img", "figcaption", "p", "pre", "footer", "nav", "form",
               "fieldset", "legend", "label", "input", "button", "output", "section", "details",
               "summary", "script", "br"}
    assert tags <= allowed, tags - allowed
    # no external resources: every src/href is relative or an in-page anchor
    for url in re.findall(r'(?:src|href)="([^"]*)"', page):
        assert not re.match(r"^[a-z]+:|^//", url), url


def test_html_structure_badges_and_figures():
    hold = entry(id="ch03.a", chapter=3, verdict="holds", corrected=None, claim="claim A")
    fail = entry(id="ch03.b", chapter=3, verdict="fails", corrected=None, claim="claim B")
    page = render_html(results(hold, fail, entry()))
    # the one equation and the verdict counts
    assert "S<sub>t+1</sub> = S<sub>t</sub> + η · F(S<sub>t</sub>, x)" in page
    assert re.search(r"<b>2</b><span class=\"badge\" style=\"background:#009E73", page) is None
    assert re.search(r"<b>1</b><span class=\"badge\" style=\"background:#009E73", page)
    assert re.search(r"<b>1</b><span class=\"badge\" style=\"background:#D55E00", page)
    assert re.search(r"<b>1</b><span class=\"badge\" style=\"background:#E69F00", page)
    # the table links to the sections, sections are grouped by chapter in order
    assert 'href="#exp-ch03.a"' in page and 'id="exp-ch03.a"' in page
    assert page.index('id="chapter-3"') < page.index('id="chapter-5"')
    # the navigation: one link per chapter, each to a section with that id
    nav = page[page.index('<nav class="bar"'): page.index("</nav>")]
    assert re.findall(r'href="#(chapter-\d+)"', nav) == ["chapter-3", "chapter-5"]
    assert '<section class="chapter" id="chapter-3">' in page
    # PNG inline, SVG linked; the corrected statement only where there is one
    assert '<img src="figures/ch05.energy/map.png"' in page
    assert 'href="figures/ch05.energy/map.svg"' in page
    assert page.count('class="corrected"') == 1
    assert "… (30 values)" in page


def test_write_html_is_atomic_and_complete(tmp_path):
    path = write_html(tmp_path, results())
    assert path == tmp_path / "index.html"
    assert os.stat(path).st_mode & 0o777 == file_mode()  # 0644 under umask 022, not mkstemp's 0600
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert [p.name for p in tmp_path.iterdir()] == ["index.html"]


def test_formatting_of_numbers():
    assert fmt_value(0.123456) == "0.1235" and fmt_value(1e-7) == "1.000e-07"
    assert fmt_value(None) == "—" and fmt_value(True) == "true" and fmt_value(7) == "7"
    assert fmt_value({"a": [1, 2]}) == "{a: [1, 2]}"
    assert len(fmt_value("x" * 1000)) == 160
    assert key_numbers({"a": 1.5, "b": [1, 2], "c": "nan", "d": 2, "e": 3}) == "a = 1.5; c = nan; d = 2"


def test_validate_results_accepts_valid_and_rejects_broken():
    good = results(entry(), entry(id="ch05.x", status="error", verdict="error", error="boom"))
    validate_results(good)

    def broken(mutate):
        r = copy.deepcopy(good)
        mutate(r)
        return r

    cases = {
        "results.generated": lambda r: r.pop("generated"),
        "results.experiments[0].verdict": lambda r: r["experiments"][0].update(verdict="maybe"),
        "results.experiments[1].verdict": lambda r: r["experiments"][1].update(verdict="holds"),
        "results.experiments[1].error": lambda r: r["experiments"][1].update(error=None),
        "results.experiments[0].numbers.bad": lambda r: r["experiments"][0]["numbers"].update(bad=float("nan")),
        "results.experiments[0].seconds": lambda r: r["experiments"][0].update(seconds=-1.0),
        "results.experiments[0].chapter": lambda r: r["experiments"][0].update(chapter="5"),
        "results.experiments[0].figures[0]": lambda r: r["experiments"][0].update(figures=["/etc/x.png"]),
        "results.experiments[1].id": lambda r: r["experiments"][1].update(id="ch05.energy"),
        "results.totals.holds-with-correction": lambda r: r["totals"].update({"holds-with-correction": 5}),
        "results.totals.seconds": lambda r: r["totals"].update(seconds=99.0),
        "results.quick": lambda r: r.update(quick=1),
        "results.schema": lambda r: r.update(schema=2),
        "results.experiments[0].threshold": lambda r: r["experiments"][0].update(threshold=""),
    }
    for where, mutate in cases.items():
        with pytest.raises(ValueError, match=re.escape(where)):
            validate_results(broken(mutate))
    with pytest.raises(ValueError, match="results"):
        validate_results([])


def test_number_rows_intervals_nesting_and_labels():
    rows = dict(number_rows({
        "claim_kind": "empirical",                      # a label, not a number
        "alpha": 0.51234, "alpha_ci95": [0.4, 0.6],      # value with its interval
        "gap": 2.0, "gap_se": 0.25,                      # value ± standard error
        "drop_mean_se": [1.5, 0.1],                      # [mean, se]
        "diff_ci95": [-0.1, 0.3],                        # an interval alone
        "auc": {"value": 0.9, "ci": [0.8, 0.95]},
        "rate": {"mean": 3.0, "se": 0.5},
        "control_gru": {"alpha": 0.1, "n": 4, "deep": {"x": 1, "y": [1, 2]}},
        "lone_se": 0.2,                                  # no "lone" sibling: shown as is
    }))
    assert "claim_kind" not in rows and "alpha_ci95" not in rows and "gap_se" not in rows
    assert rows["alpha"] == "0.5123 [0.4, 0.6]" and rows["gap"] == "2 ± 0.25"
    assert rows["drop_mean_se"] == "1.5 ± 0.1" and rows["diff_ci95"] == "[-0.1, 0.3]"
    assert rows["auc"] == "0.9 [0.8, 0.95]" and rows["rate"] == "3 ± 0.5"
    assert rows["control_gru.alpha"] == "0.1" and rows["control_gru.n"] == "4"
    assert rows["control_gru.deep"] == "{x: 1, y: [1, 2]}" and rows["lone_se"] == "0.2"
    # a nested "claim_kind" is data, kept
    assert dict(number_rows({"sub": {"claim_kind": "x"}})) == {"sub.claim_kind": "x"}


def test_claim_kind_cards_filter_and_control():
    kinds = {
        "ch03.e": ("empirical", "empirical"),
        "ch03.m": ("mathematical", "theorem-check"),
        "ch03.t": ("theorem-check", "theorem-check"),
        "ch03.r": ("reproduction", "reproduction"),
        "ch03.x": ("<b>odd</b>", "unlabelled"),
    }
    es = [entry(id=i, chapter=3, numbers={"claim_kind": raw, "v": 1}) for i, (raw, _) in kinds.items()]
    es.append(entry(id="ch04.none", chapter=4, numbers={"v": 1, "control_v": 0.0, "control_w": 2},
                    figures=["figures/ch04.none/main.png", "figures/ch04.none/main_control.png"]))
    for e, (_raw, want) in zip(es, kinds.values()):
        assert claim_kind(e) == want
    assert claim_kind(es[-1]) == "unlabelled" and claim_kind(entry(kind="mathematical")) == "theorem-check"
    page = render_html(results(*es))
    for i, (_raw, want) in kinds.items():
        assert re.search(rf'<article class="card" id="exp-{re.escape(i)}" data-verdict="[a-z-]+" data-kind="{want}"', page)
    assert "&lt;b&gt;odd&lt;/b&gt;" in page and "<b>odd</b>" not in page  # the raw label, escaped
    # the filter offers every verdict and kind, with counts, and starts hidden until the script runs
    form = page[page.index('<form class="filter"'): page.index("</form>")]
    assert 'id="filter" hidden' in form
    assert len(re.findall(r'name="verdict" value="', form)) == 5
    assert re.findall(r'name="kind" value="([a-z-]+)"', form) == ["empirical", "theorem-check", "reproduction", "unlabelled"]
    assert re.search(r'value="theorem-check" checked>[^&]*&nbsp;2<', form)
    assert re.search(r'value="unlabelled" checked>[^&]*&nbsp;2<', form)
    # table rows carry the same data attributes as the cards (the filter hides both)
    assert page.count('<tr data-verdict="') == 6 and page.count('<article class="card"') == 6
    # the control: its numbers in their own table, its figure marked
    card = page[page.index('id="exp-ch04.none"'):]
    card = card[: card.index("</article>")]
    assert '<table class="numbers control">' in card and "control_v" in card.split('class="numbers control"')[1]
    assert '<span class="tag">control</span> main_control' in card
    assert "control_v" not in card.split('class="numbers control"')[0]
