"""The atlas page in a real browser: Debian's chromium driven by Playwright for Python.

A ``--quick --only`` atlas run of two fast experiments (chapters 3 and 4) and a fixture experiment
(chapter 90, whose claim holds a ``<script>``), plus a hand-made error entry whose every text field
is hostile HTML, rendered by the report as the runner renders it. The page must: load every figure
(naturalWidth > 0), log no console error, land each chapter link on its section, hide what the
filter excludes, and show the hostile text literally without running any of it. A screenshot is
saved in the test's tmp folder.

Skipped, with the reason, only where /usr/bin/chromium or the ``playwright`` package is missing
(the set-up, ``make setup``, installs both: ``apt-get install chromium`` as root and the ``browser``
extra). Playwright's own browser download is never used.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from terrainlab.atlas.report import write_html
from terrainlab.atlas.schema import totals, validate_results
from terrainlab.cli import main

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
FAST = ["ch03.nearest_minimum", "ch04.elastic_net_kink", "ch90.fixture_ok"]
PWN = "<script>window.__pwned = 1; alert('pwned')</script>"
IMG = '<img src="nowhere.png" onerror="window.__pwned = 2">'
HOSTILE = {
    "id": "ch95.hostile<b>&id",
    "chapter": 95,
    "title": f"Title {IMG}",
    "claim": f"Claim {PWN} & <i>more</i>",
    "module": "tests.hostile",
    "status": "error",
    "verdict": "error",
    "numbers": {"claim_kind": f"<u>{PWN}</u>", f"key {IMG}": f"value {PWN}"},
    "threshold": f"threshold {IMG}",
    "explanation": f"explanation {PWN}",
    "corrected": f"corrected {IMG}",
    "figures": [],
    "seconds": 0.5,
    "cached": False,
    "error": f"Traceback (most recent call last):\nValueError: {PWN}",
}
# a labelled claim next to a measured one of the same chapter, for the kind filter
LABELLED = {
    "id": "ch04.labelled_theorem", "chapter": 4, "title": "A theorem check", "claim": "2 + 2 = 4",
    "module": "tests.labelled", "status": "ok", "verdict": "holds-with-correction",
    "numbers": {"claim_kind": "mathematical", "sum": 4, "sum_se": 0.0}, "threshold": "sum == 4",
    "explanation": "Measured 4.", "corrected": "2 + 2 = 4 in the integers", "figures": [],
    "seconds": 0.0, "cached": False, "error": None,
}


def _playwright():
    if not CHROMIUM.is_file():
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM} (the set-up runs "
                    "`apt-get install -y chromium` as root; install it to run the browser test)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the Python driver `playwright` is not installed (pip install -e '.[browser]')")
    return sync_playwright


@pytest.fixture
def atlas_page(tmp_path, fixtures):
    out = tmp_path / "atlas"
    code = main(["atlas", "--out", str(out), "--quick", "--jobs", "2", "--only", ",".join(FAST),
                 "--module", "_atlas_runner_fixtures"])
    assert code == 0
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    results["experiments"] += [dict(HOSTILE), dict(LABELLED)]
    results["totals"] = totals(results["experiments"])
    validate_results(results)
    write_html(out, results)
    return out / "index.html", results


def test_page_in_chromium(atlas_page, tmp_path):
    sync_playwright = _playwright()
    page_path, results = atlas_page
    exps = results["experiments"]
    assert {e["id"] for e in exps} == {*FAST, HOSTILE["id"], LABELLED["id"]}
    assert sum(len(e["figures"]) for e in exps) >= 6  # each ran experiment drew at least one figure
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=str(CHROMIUM), headless=True, args=FLAGS,
            viewport={"width": 1200, "height": 800},
        )
        try:
            page = ctx.new_page()
            problems, dialogs = [], []
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
                    if m.type in ("error", "assert") else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(page_path.as_uri())
            page.wait_for_load_state("load")
            _check_figures(page, exps)
            _check_chapter_links(page, sorted({e["chapter"] for e in exps}))
            _check_filter(page, exps)
            _check_hostile_text(page)
            page.evaluate("window.scrollTo(0, 0)")
            shot = tmp_path / "atlas-page.png"
            page.screenshot(path=str(shot), full_page=False)
            assert shot.stat().st_size > 10_000
            assert not dialogs, dialogs
            assert not problems, problems
        finally:
            ctx.close()


def _wait_until(page, expression, timeout=20.0):
    """Poll ``expression`` from Python until it is true.

    Not ``page.wait_for_function``: when its predicate is false at the first try, Playwright polls
    it inside the page with ``eval``, which the report's Content-Security-Policy (no
    'unsafe-eval', rightly) refuses -- the test then failed only where the page was slow.
    ``page.evaluate`` goes through the DevTools protocol and is not subject to the page's CSP.
    """
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"not true after {timeout} s: {expression}"
        time.sleep(0.05)


def _check_figures(page, exps):
    pngs = [f for e in exps for f in e["figures"] if f.endswith(".png")]
    n = page.evaluate("document.images.length")
    assert n == len(pngs) > 0
    # lazy images load when they come near the viewport: bring each one there
    for i in range(n):
        page.evaluate(f"document.images[{i}].scrollIntoView()")
    # an image inside a collapsed or off-screen block never comes near the viewport: load it now
    page.evaluate("for (const i of document.images) i.loading = 'eager'")
    _wait_until(page, "Array.from(document.images).every(i => i.complete)", timeout=60.0)  # a loaded CI host decodes the figures slowly
    widths = page.evaluate("Array.from(document.images).map(i => [i.getAttribute('src'), i.naturalWidth])")
    assert sorted(src for src, _ in widths) == sorted(pngs)
    assert all(w > 0 for _, w in widths), widths


def _check_chapter_links(page, chapters):
    links = page.eval_on_selector_all("nav.bar .chapters a[href^='#chapter-']",
                                      "as => as.map(a => a.getAttribute('href'))")
    assert links == [f"#chapter-{c}" for c in chapters]
    for href in reversed(links):  # from the bottom up, so every jump really scrolls
        page.evaluate("window.scrollTo(0, 0)")
        page.click(f"nav.bar a[href='{href}']")
        _wait_until(page, f"location.hash === '{href}'")
        where = page.evaluate(
            """(sel) => {
              const s = document.querySelector(sel), nav = document.querySelector('nav.bar');
              const r = s.getBoundingClientRect(), top = r.top, below = nav.getBoundingClientRect().bottom;
              const hit = document.elementFromPoint(r.left + 8, below + 12);
              const atEnd = window.scrollY + window.innerHeight >= document.documentElement.scrollHeight - 2;
              return {top, below, hitId: hit && hit.closest('section') ? hit.closest('section').id : null,
                      atEnd, height: window.innerHeight, y: window.scrollY};
            }""",
            href,
        )
        # the section starts just below the sticky bar (or, at the end of the page, is in view)
        assert where["y"] > 0, (href, where)
        assert where["top"] >= where["below"] - 1, (href, where)
        if where["atEnd"]:
            assert where["top"] < where["height"], (href, where)
        else:
            assert where["top"] <= where["below"] + 16, (href, where)
            assert where["hitId"] == href[1:], (href, where)


def _visible_ids(page):
    return page.eval_on_selector_all(
        "article.card", "as => as.filter(a => a.offsetParent !== null).map(a => a.id)")


def _check_filter(page, exps):
    page.evaluate("window.scrollTo(0, 0)")
    all_cards = _visible_ids(page)
    assert len(all_cards) == len(exps)
    assert page.text_content("#shown") == f"{len(exps)} of {len(exps)} claims shown"
    by_verdict = {}
    for e in exps:
        by_verdict.setdefault(e["verdict"], []).append(e)
    for verdict, group in by_verdict.items():
        page.uncheck(f"form#filter input[name=verdict][value='{verdict}']")
        shown = _visible_ids(page)
        assert len(shown) == len(exps) - len(group), (verdict, shown)
        rows = page.eval_on_selector_all(
            "table.verdicts tr[data-verdict]", "rs => rs.filter(r => r.offsetParent !== null).length")
        assert rows == len(shown)
        assert page.text_content("#shown") == f"{len(shown)} of {len(exps)} claims shown"
        hidden_verdicts = page.eval_on_selector_all(
            "article.card[hidden]", "as => [...new Set(as.map(a => a.dataset.verdict))]")
        assert hidden_verdicts == [verdict]
        page.check(f"form#filter input[name=verdict][value='{verdict}']")
    # the kind filter: LABELLED ("mathematical": a theorem check) and the two FAST experiments that say
    # "theorem-check" keep their cards; the hostile entry's odd label and ch90.fixture_ok are "unlabelled"
    page.uncheck("form#filter input[name=kind][value='unlabelled']")
    assert sorted(_visible_ids(page)) == ["exp-ch03.nearest_minimum", "exp-ch04.elastic_net_kink",
                                          "exp-ch04.labelled_theorem"]
    page.uncheck("form#filter input[name=kind][value='theorem-check']")
    assert _visible_ids(page) == []
    page.check("form#filter input[name=kind][value='theorem-check']")
    # a chapter with nothing left says so, and its link is dimmed; chapters 3 and 4 keep their theorem checks
    empty = page.eval_on_selector_all("section.chapter.empty", "ss => ss.map(s => s.id)")
    dim = page.eval_on_selector_all("nav.bar a.dim", "as => as.map(a => a.getAttribute('href').slice(1))")
    chapters = sorted({f"chapter-{e['chapter']}" for e in exps} - {"chapter-3", "chapter-4"})
    assert sorted(empty) == sorted(dim) == chapters
    page.click("#show-all")
    assert len(_visible_ids(page)) == len(exps)


def _check_hostile_text(page):
    assert page.evaluate("typeof window.__pwned") == "undefined"  # no injected script or handler ran
    assert page.evaluate("document.scripts.length") == 1  # ours
    assert page.evaluate("document.querySelectorAll('[onerror], img[src=\"nowhere.png\"], u').length") == 0
    assert "4 ± 0" in page.locator("#exp-ch04\\.labelled_theorem").inner_text()  # value ± se
    card = page.locator("article.card[data-verdict='error']")
    text = card.inner_text()
    for s in (f"Claim {PWN} & <i>more</i>", f"Title {IMG}", f"corrected {IMG}", f"threshold {IMG}",
              f"explanation {PWN}", f"ValueError: {PWN}", f"key {IMG}", f"<u>{PWN}</u>"):
        assert s in text, s
    assert re.search(r"ch95\.hostile<b>&id", text)
    fixture = page.locator("article.card#exp-ch90\\.fixture_ok").inner_text()
    assert 'Steps <script>alert("x")</script> & "quotes" stay text' in fixture
    assert os.path.basename(page.url) == "index.html" or "#" in page.url
