"""The atlas report: one self-contained HTML page built from ``results.json``.

The page opens with the one equation S_{t+1} = S_t + η·F(S_t, x) and the count of each verdict,
then a verdict table (each row links to its section), then one section per chapter with every
experiment's figures, claim, verdict, threshold, measured numbers, explanation and — where the
book is wrong — the corrected statement. Verdict colours are Okabe–Ito (Okabe & Ito 2008): holds
bluish green, holds-with-correction orange (amber), fails vermillion, inconclusive grey, error black.
The CSS is inline; there is no JavaScript and no external resource; figures are the relative
``figures/<id>/*.png`` (shown) and ``*.svg`` (linked). Every piece of text is ``html.escape``-d.

Example::

    import json
    from terrainlab.atlas.report import render_html
    page = render_html(json.load(open("atlas/results.json")))
"""

from __future__ import annotations

import html
import math
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from ._io import atomic_write_text
from .schema import ALL_VERDICTS

# Okabe–Ito: bluish green, orange, vermillion; grey and black for the non-verdicts
VERDICT_COLOURS = {
    "holds": ("#009E73", "#ffffff"),
    "holds-with-correction": ("#E69F00", "#000000"),
    "fails": ("#D55E00", "#ffffff"),
    "inconclusive": ("#8C8C8C", "#ffffff"),
    "error": ("#000000", "#ffffff"),
}
VERDICT_MEANING = {
    "holds": "the claim survives the measurement",
    "holds-with-correction": "true once restated; the corrected statement is given",
    "fails": "the measurement contradicts the claim",
    "inconclusive": "the measurement cannot decide",
    "error": "the experiment did not run to the end",
}

CSS = """
:root { --ink:#1a1a1a; --muted:#5f5f5f; --rule:#e3e3e3; --paper:#ffffff; --wash:#f6f6f3; }
* { box-sizing: border-box; }
body { margin:0; background:var(--wash); color:var(--ink);
  font:15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width:1120px; margin:0 auto; padding:0 20px 60px; }
header.top { background:var(--paper); border-bottom:1px solid var(--rule); padding:28px 0 20px; }
header.top .inner { max-width:1120px; margin:0 auto; padding:0 20px; }
h1 { font-size:26px; margin:0 0 4px; letter-spacing:-0.01em; }
.equation { font:italic 24px/1.4 "Cambria Math", "STIX Two Math", Georgia, serif; margin:10px 0 6px; }
.meta { color:var(--muted); font-size:13px; }
.counts { display:flex; flex-wrap:wrap; gap:10px; margin:16px 0 4px; }
.count { display:flex; align-items:center; gap:8px; background:var(--wash); border-radius:10px;
  padding:6px 12px 6px 6px; font-size:13px; }
.count b { font-size:20px; min-width:1.4em; text-align:center; }
.badge { display:inline-block; padding:2px 9px; border-radius:999px; font-size:12px;
  font-weight:600; white-space:nowrap; letter-spacing:0.01em; }
h2 { font-size:20px; margin:36px 0 12px; padding-bottom:6px; border-bottom:2px solid var(--ink); }
table { border-collapse:collapse; width:100%; background:var(--paper); }
th, td { text-align:left; vertical-align:top; padding:6px 10px; border-bottom:1px solid var(--rule);
  font-size:13.5px; }
th { font-size:12px; text-transform:uppercase; letter-spacing:0.04em; color:var(--muted); }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; white-space:nowrap; }
table.verdicts td.claim { max-width:420px; }
code, .mono { font-family:"SFMono-Regular", Menlo, Consolas, monospace; font-size:12.5px; }
a { color:#0072B2; text-decoration:none; } a:hover { text-decoration:underline; }
article { background:var(--paper); border:1px solid var(--rule); border-left:6px solid var(--accent);
  border-radius:6px; padding:16px 20px; margin:16px 0; }
article h3 { margin:0 0 2px; font-size:17px; }
article .sub { color:var(--muted); font-size:12.5px; margin-bottom:10px; }
blockquote.claim { margin:8px 0 12px; padding:8px 14px; border-left:3px solid var(--rule);
  background:var(--wash); font-style:italic; }
.figs { display:flex; flex-wrap:wrap; gap:14px; margin:10px 0; }
figure { margin:0; flex:1 1 320px; max-width:100%; }
figure img { width:100%; height:auto; border:1px solid var(--rule); border-radius:4px;
  background:#fff; }
figcaption { font-size:12px; color:var(--muted); }
.corrected { border:2px solid #E69F00; background:#fff7e6; border-radius:6px; padding:8px 12px;
  margin:10px 0; }
.corrected .label { font-weight:700; color:#8a5a00; font-size:12px; text-transform:uppercase;
  letter-spacing:0.04em; display:block; }
.threshold { font-size:13.5px; margin:6px 0; }
table.numbers { width:auto; min-width:50%; margin:8px 0; }
table.numbers td:first-child { color:var(--muted); }
pre.error { background:#111; color:#f2f2f2; padding:10px 12px; border-radius:4px; overflow:auto;
  font-size:12px; max-height:420px; white-space:pre-wrap; }
.legend { font-size:12.5px; color:var(--muted); margin-top:8px; }
.legend span.badge { margin-right:4px; }
footer { color:var(--muted); font-size:12px; margin-top:40px; }
"""


def esc(x) -> str:
    """``html.escape`` of ``str(x)``, quotes included (safe in text and in attribute values)."""
    return html.escape("" if x is None else str(x), quote=True)


def _url(path: str) -> str:
    return esc(quote(str(PurePosixPath(path)), safe="/"))


def fmt_value(v, max_items: int = 8, max_len: int = 160) -> str:
    """A short human-readable form of a measured number (plain text; escape before use)."""
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return str(v)
        if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
            return f"{v:.3e}"
        return f"{v:.4g}"
    if isinstance(v, str):
        s = v
    elif isinstance(v, (list, tuple)):
        items = [fmt_value(x, max_items, max_len) for x in v[:max_items]]
        more = f", … ({len(v)} values)" if len(v) > max_items else ""
        s = "[" + ", ".join(items) + more + "]"
    elif isinstance(v, dict):
        keys = list(v)[:max_items]
        s = "{" + ", ".join(f"{k}: {fmt_value(v[k], max_items, max_len)}" for k in keys)
        s += ", …}" if len(v) > max_items else "}"
    else:
        s = str(v)
    return s if len(s) <= max_len else s[: max_len - 1] + "…"


def key_numbers(numbers: dict, n: int = 3) -> str:
    """The first ``n`` scalar numbers as "name = value" (plain text)."""
    parts = []
    for k, v in numbers.items():
        if isinstance(v, (int, float, str, bool)) or v is None:
            parts.append(f"{k} = {fmt_value(v, max_len=40)}")
        if len(parts) == n:
            break
    return "; ".join(parts)


def badge(verdict: str) -> str:
    bg, fg = VERDICT_COLOURS.get(verdict, VERDICT_COLOURS["error"])
    return f'<span class="badge" style="background:{bg};color:{fg}">{esc(verdict)}</span>'


def _anchor(exp_id: str) -> str:
    return "exp-" + "".join(c if c.isalnum() or c in "-_." else "_" for c in exp_id)


def _figures(figs: list[str]) -> str:
    stems: dict[str, dict[str, str]] = {}
    for f in figs:
        p = PurePosixPath(f)
        stems.setdefault(str(p.with_suffix("")), {})[p.suffix.lower().lstrip(".")] = f
    cells = []
    for stem, kinds in stems.items():
        shown = kinds.get("png") or kinds.get("svg") or next(iter(kinds.values()))
        name = PurePosixPath(stem).name
        links = " · ".join(
            f'<a href="{_url(path)}">{esc(ext.upper())}</a>' for ext, path in sorted(kinds.items())
        )
        if PurePosixPath(shown).suffix.lower() in (".png", ".svg", ".jpg", ".jpeg", ".gif"):
            img = f'<a href="{_url(kinds.get("svg", shown))}"><img src="{_url(shown)}" alt="{esc(name)}" loading="lazy"></a>'
        else:
            img = ""
        cells.append(f"<figure>{img}<figcaption>{esc(name)} — {links}</figcaption></figure>")
    return f'<div class="figs">{"".join(cells)}</div>' if cells else ""


def _numbers_table(numbers: dict) -> str:
    if not numbers:
        return ""
    rows = "".join(
        f'<tr><td class="mono">{esc(k)}</td><td class="mono">{esc(fmt_value(v))}</td></tr>'
        for k, v in numbers.items()
    )
    return f'<table class="numbers"><tr><th>measured</th><th>value</th></tr>{rows}</table>'


def _section(e: dict) -> str:
    bg = VERDICT_COLOURS.get(e["verdict"], VERDICT_COLOURS["error"])[0]
    parts = [
        f'<article id="{esc(_anchor(e["id"]))}" style="--accent:{bg}">',
        f'<h3>{esc(e["title"])} {badge(e["verdict"])}</h3>',
        f'<div class="sub"><code>{esc(e["id"])}</code> · {e["seconds"]:.1f} s'
        + (" · from cache" if e.get("cached") else "")
        + "</div>",
    ]
    if e.get("claim"):
        parts.append(f'<blockquote class="claim">{esc(e["claim"])}</blockquote>')
    parts.append(_figures(e.get("figures") or []))
    if e.get("corrected"):
        parts.append(
            '<div class="corrected"><span class="label">Corrected statement</span>'
            f'{esc(e["corrected"])}</div>'
        )
    if e.get("threshold"):
        parts.append(f'<div class="threshold"><b>Threshold.</b> {esc(e["threshold"])}</div>')
    if e.get("explanation"):
        parts.append(f'<p>{esc(e["explanation"])}</p>')
    parts.append(_numbers_table(e.get("numbers") or {}))
    if e.get("error"):
        parts.append(f'<pre class="error">{esc(e["error"])}</pre>')
    parts.append("</article>")
    return "\n".join(p for p in parts if p)


def render_html(results: dict) -> str:
    """The whole index.html for a results.json object (see :mod:`terrainlab.atlas.schema`)."""
    exps = results.get("experiments", [])
    totals = results.get("totals", {})
    counts = "".join(
        f'<div class="count"><b>{int(totals.get(v, 0))}</b>{badge(v)}</div>' for v in ALL_VERDICTS
    )
    legend = " ".join(f"{badge(v)} {esc(VERDICT_MEANING[v])}." for v in ALL_VERDICTS)
    mode = "quick" if results.get("quick") else "full"
    meta = (
        f'{int(totals.get("experiments", len(exps)))} experiments · {esc(mode)} mode · seed '
        f'{esc(results.get("seed"))} · {float(totals.get("seconds", 0.0)):.1f} s of experiments · '
        f'terrainlab {esc(results.get("version"))} · generated {esc(results.get("generated"))}'
    )
    rows = []
    for e in exps:
        rows.append(
            "<tr>"
            f'<td><a href="#{esc(_anchor(e["id"]))}"><code>{esc(e["id"])}</code></a></td>'
            f'<td class="num">{esc(e["chapter"])}</td>'
            f'<td class="claim">{esc(e["claim"] or e["title"])}</td>'
            f"<td>{badge(e['verdict'])}</td>"
            f'<td class="mono">{esc(key_numbers(e.get("numbers") or {}))}</td>'
            f'<td class="num">{e["seconds"]:.1f}</td>'
            "</tr>"
        )
    table = (
        '<table class="verdicts"><tr><th>experiment</th><th class="num">ch.</th><th>claim</th>'
        '<th>verdict</th><th>key numbers</th><th class="num">s</th></tr>'
        + "".join(rows)
        + "</table>"
    )
    chapters: dict[int, list[dict]] = {}
    for e in exps:
        chapters.setdefault(int(e["chapter"]), []).append(e)
    sections = []
    for ch in sorted(chapters):
        title = f"Chapter {ch}" if ch > 0 else "Other"
        sections.append(f'<h2 id="chapter-{ch}">{esc(title)}</h2>')
        sections.extend(_section(e) for e in chapters[ch])
    body = "\n".join(sections) if exps else "<p>No experiment has a result yet.</p>"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>terrainlab atlas</title>
<style>{CSS}</style>
</head>
<body>
<header class="top"><div class="inner">
<h1>terrainlab atlas</h1>
<div class="equation">S<sub>t+1</sub> = S<sub>t</sub> + η · F(S<sub>t</sub>, x)</div>
<div class="meta">Training, residual networks, beliefs on the simplex and diffusion sampling as one
equation. Each experiment below tests one claim of <i>The Terrain of Learning</i>; its verdict is
computed from measured numbers against the stated threshold.</div>
<div class="counts">{counts}</div>
<div class="meta">{meta}</div>
</div></header>
<main>
<h2 id="verdicts">Verdicts</h2>
{table}
<div class="legend">{legend}</div>
{body}
<footer>Written by <code>terrainlab atlas</code>. Machine-readable results:
<a href="results.json">results.json</a>.</footer>
</main>
</body>
</html>
"""


def write_html(out_dir: str | Path, results: dict) -> Path:
    """Render ``results`` and write ``out_dir/index.html`` atomically; return its path."""
    path = Path(out_dir) / "index.html"
    atomic_write_text(path, render_html(results))
    return path
