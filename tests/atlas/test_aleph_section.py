"""Section 13 ("aleph"): the runner selects and files the aleph experiments, the report names the section."""

import html

from terrainlab.atlas import runner
from terrainlab.atlas.report import NAMED_SECTIONS, render_html
from terrainlab.atlas.schema import totals


def test_only_aleph_selects_the_aleph_experiments():
    assert runner.matches("aleph.x", ["aleph"])
    assert runner.matches("aleph.decoding_is_a_state_iteration", ["ALEPH"])
    assert not runner.matches("ch13.x", ["aleph"]) and not runner.matches("alephx.y", ["aleph"])
    assert runner._chapter_of("terrainlab.atlas.chapters.aleph.x") == 13
    assert runner._chapter_of("terrainlab.atlas.chapters.ch05.energy") == 5


def test_report_renders_section_13_with_its_heading():
    e = {"id": "aleph.x", "chapter": 13, "title": "Hub decoding", "claim": "a claim",
         "module": "terrainlab.atlas.chapters.aleph.x", "status": "ok", "verdict": "holds",
         "numbers": {"claim_kind": "empirical", "v": 1.0}, "threshold": "v > 0", "explanation": "",
         "corrected": None, "figures": [], "seconds": 0.5, "cached": False, "error": None}
    page = render_html({"schema": 1, "generated": "2026-12-05T12:00:00+00:00", "version": "0", "quick": True,
                        "seed": 0, "only": ["aleph"], "wall_seconds": 1.0, "totals": totals([e]),
                        "experiments": [e]})
    short, heading = NAMED_SECTIONS[13]
    assert short == "aleph"
    assert f'<section class="chapter" id="chapter-13"><h2>{html.escape(heading)}</h2>' in page
    assert '<a href="#chapter-13"' in page and f">{short}<span" in page
    assert "Chapter 13" not in page
    # its claims are the forum reply's, not the book's; a chapter's card keeps "The book's claim"
    assert "The forum reply&#x27;s claim" in page and "The book&#x27;s claim" not in page
    book = dict(e, id="ch05.y", chapter=5, module="terrainlab.atlas.chapters.ch05.y")
    page5 = render_html({"schema": 1, "generated": "2026-12-05T12:00:00+00:00", "version": "0", "quick": True,
                         "seed": 0, "only": None, "wall_seconds": 1.0, "totals": totals([book]),
                         "experiments": [book]})
    assert "The book&#x27;s claim" in page5 and "forum reply&#x27;s claim" not in page5
