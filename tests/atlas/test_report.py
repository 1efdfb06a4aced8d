"""The HTML report escapes every text; results.json validation catches what it must."""

from __future__ import annotations

import copy
import re

import pytest

from terrainlab.atlas.report import fmt_value, key_numbers, render_html, write_html
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
    assert "<script" not in page.lower()  # no script of ours, none injected
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
               "blockquote", "figure", "img", "figcaption", "p", "pre", "footer"}
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
    # PNG inline, SVG linked; the corrected statement only where there is one
    assert '<img src="figures/ch05.energy/map.png"' in page
    assert 'href="figures/ch05.energy/map.svg"' in page
    assert page.count('class="corrected"') == 1
    assert "… (30 values)" in page


def test_write_html_is_atomic_and_complete(tmp_path):
    path = write_html(tmp_path, results())
    assert path == tmp_path / "index.html"
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
