"""The atlas report: one self-contained HTML page built from ``results.json``.

The page opens with the one equation S_{t+1} = S_t + η·F(S_t, x) and the count of each verdict over
the claims (a *reproduction* — a figure of the book redrawn, no claim tested — is counted apart);
a bar that stays at the top holds the chapter navigation (one link per chapter, landing on its
section) and a filter (by verdict, and by the claim's kind: *empirical*, *theorem-check* — a
mathematical statement checked numerically, which cannot come out otherwise —, *reproduction*, or
*unlabelled* where the experiment does not say; read from ``numbers["claim_kind"]``). Then a
verdict table (each row links to its card) and one section per chapter with a card per claim: the
book's claim, the verdict and its kind, the corrected statement where the book is wrong, the
threshold, the explanation, the figures (a figure or number whose name says "control" is marked
as the experiment's control), and the measured numbers, with an interval written ``v ± se`` or
``v [lo, hi]`` where the experiment stored one (``x`` next to ``x_se`` / ``x_stderr`` /
``x_ci95`` ..., or ``{"mean": .., "se": ..}``).

Verdict colours are Okabe–Ito (Okabe & Ito 2008): holds bluish green, holds-with-correction orange
(amber), fails vermillion, inconclusive grey, error black. CSS and the one script are inline, and
nothing is fetched from the network; figures are the relative ``figures/<id>/*.png`` (shown) and
``*.svg`` (linked). Every piece of text from results.json is ``html.escape``-d; the script only
sets ``hidden``, classes and ``textContent``, and a Content-Security-Policy lets no other script
run. Without JavaScript every card is shown.

Example::

    import json
    from terrainlab.atlas.report import render_html
    page = render_html(json.load(open("atlas/results.json")))

    >>> number_rows({"alpha": 0.5, "alpha_ci95": [0.4, 0.6], "n": 3, "claim_kind": "empirical"})
    [('alpha', '0.5 [0.4, 0.6]'), ('n', '3')]
"""

from __future__ import annotations

import base64
import hashlib
import html
import math
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from ._io import atomic_write_text
from .schema import ALL_VERDICTS

__all__ = ["render_html", "write_html", "esc", "fmt_value", "key_numbers", "number_rows",
           "claim_kind", "badge", "CHAPTER_TOPICS", "KINDS", "SCRIPT"]

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
# the kind of a claim (numbers["claim_kind"]); "mathematical" is the book-level name of a theorem check
KINDS = ("empirical", "theorem-check", "reproduction", "unlabelled")
KIND_ALIASES = {
    "empirical": "empirical",
    "theorem-check": "theorem-check",
    "theorem check": "theorem-check",
    "theorem": "theorem-check",
    "mathematical": "theorem-check",
    "reproduction": "reproduction",
}
KIND_MEANING = {
    "empirical": "a claim about what happens; the measurement could have gone either way",
    "theorem-check": "a mathematical statement checked numerically; it cannot come out otherwise "
    "unless the statement or the code is wrong",
    "reproduction": "a figure of the book reproduced, without a verdict on a claim",
    "unlabelled": "the experiment does not say which kind its claim is",
}
# short topic labels for the chapter navigation (ours, not the book's headings)
CHAPTER_TOPICS = {
    1: "why geometry",
    2: "parameter and representation space",
    3: "loss terrain and gradient motion",
    4: "optimizers and regularisation",
    5: "Bregman and KL divergence",
    6: "dynamical systems and fixed points",
    7: "chain of thought as a trajectory",
    8: "reasoning fields and verifiers",
    9: "long reasoning and reshaped landscapes",
    10: "classical algorithms",
    11: "deep architectures",
    12: "diffusion",
    13: "aleph routing, the system of the forum reply",
}
# sections that are not chapters of the book: (navigation label, heading)
NAMED_SECTIONS = {13: ("aleph", "The forum reply · aleph routing and the aleph-void autoencoder")}
ROWS_SHOWN = 14  # measured numbers shown open in a card; the rest behind "more"

CSS = """
:root { --ink:#1a1a1a; --muted:#5f5f5f; --rule:#e3e3e3; --paper:#ffffff; --wash:#f6f6f3;
  --navh:96px; }
* { box-sizing: border-box; }
[hidden] { display:none !important; }
html { scroll-padding-top: var(--navh); }
body { margin:0; background:var(--wash); color:var(--ink);
  font:15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width:1120px; margin:0 auto; padding:0 20px 60px; }
header.top { background:var(--paper); border-bottom:1px solid var(--rule); padding:28px 0 20px; }
header.top .inner, nav.bar .inner { max-width:1120px; margin:0 auto; padding:0 20px; }
h1 { font-size:26px; margin:0 0 4px; letter-spacing:-0.01em; }
.equation { font:italic 24px/1.4 "Cambria Math", "STIX Two Math", Georgia, serif; margin:10px 0 6px; }
.meta { color:var(--muted); font-size:13px; }
.counts { display:flex; flex-wrap:wrap; gap:10px; margin:16px 0 4px; }
.count { display:flex; align-items:center; gap:8px; background:var(--wash); border-radius:10px;
  padding:6px 12px 6px 6px; font-size:13px; }
.count b { font-size:20px; min-width:1.4em; text-align:center; }
nav.bar { position:sticky; top:0; z-index:10; background:rgba(255,255,255,0.97);
  border-bottom:1px solid var(--rule); box-shadow:0 1px 4px rgba(0,0,0,0.06); padding:6px 0; }
nav.bar .chapters { display:flex; flex-wrap:wrap; gap:4px 6px; align-items:center; }
nav.bar .chapters a { font-size:13px; padding:2px 8px; border-radius:6px; background:var(--wash);
  white-space:nowrap; }
nav.bar .chapters a.dim { opacity:0.45; }
nav.bar .chapters a .n { color:var(--muted); font-size:11.5px; margin-left:3px; }
form.filter { display:flex; flex-wrap:wrap; gap:4px 14px; align-items:center; margin-top:5px;
  font-size:12.5px; }
form.filter fieldset { border:0; margin:0; padding:0; display:flex; flex-wrap:wrap; gap:2px 8px;
  align-items:center; }
form.filter legend { float:left; color:var(--muted); font-weight:600; margin-right:4px; padding:0; }
form.filter label { display:inline-flex; align-items:center; gap:3px; cursor:pointer; }
form.filter output { color:var(--muted); }
form.filter button { font:inherit; font-size:12px; padding:1px 8px; border:1px solid var(--rule);
  border-radius:6px; background:var(--paper); cursor:pointer; }
.badge { display:inline-block; padding:2px 9px; border-radius:999px; font-size:12px;
  font-weight:600; white-space:nowrap; letter-spacing:0.01em; }
.kind { display:inline-block; padding:1px 8px; border-radius:999px; font-size:11.5px;
  border:1px solid #9a9a9a; color:#333; background:#fff; white-space:nowrap; }
.kind.k-theorem-check { border-color:#0072B2; color:#0072B2; }
.kind.k-empirical { border-color:#1a1a1a; }
.kind.k-unlabelled { border-style:dashed; color:var(--muted); }
.tag { display:inline-block; padding:0 6px; border-radius:4px; font-size:11px; font-weight:700;
  background:#56B4E9; color:#000; text-transform:uppercase; letter-spacing:0.04em; }
h2 { font-size:20px; margin:36px 0 12px; padding-bottom:6px; border-bottom:2px solid var(--ink); }
h2 .topic { font-weight:400; color:var(--muted); font-size:16px; }
section.chapter.empty::after { content:"No claim of this chapter passes the filter.";
  color:var(--muted); font-size:13px; }
table { border-collapse:collapse; width:100%; background:var(--paper); }
th, td { text-align:left; vertical-align:top; padding:6px 10px; border-bottom:1px solid var(--rule);
  font-size:13.5px; }
th { font-size:12px; text-transform:uppercase; letter-spacing:0.04em; color:var(--muted); }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; white-space:nowrap; }
table.verdicts td.claim { max-width:420px; }
div.scroll { overflow-x:auto; }
code, .mono { font-family:"SFMono-Regular", Menlo, Consolas, monospace; font-size:12.5px; }
a { color:#0072B2; text-decoration:none; } a:hover { text-decoration:underline; }
article { background:var(--paper); border:1px solid var(--rule); border-left:6px solid var(--accent);
  border-radius:6px; padding:16px 20px; margin:16px 0; }
article h3 { margin:0 0 2px; font-size:17px; }
article .sub { color:var(--muted); font-size:12.5px; margin-bottom:10px; }
.label { font-weight:700; color:var(--muted); font-size:11.5px; text-transform:uppercase;
  letter-spacing:0.04em; display:block; font-style:normal; }
blockquote.claim { margin:8px 0 12px; padding:8px 14px; border-left:3px solid var(--rule);
  background:var(--wash); font-style:italic; }
.figs { display:flex; flex-wrap:wrap; gap:14px; margin:10px 0; }
figure { margin:0; flex:1 1 320px; max-width:100%; }
figure img { width:100%; height:auto; border:1px solid var(--rule); border-radius:4px;
  background:#fff; }
figcaption { font-size:12px; color:var(--muted); }
.corrected { border:2px solid #E69F00; background:#fff7e6; border-radius:6px; padding:8px 12px;
  margin:10px 0; }
.corrected .label { color:#8a5a00; }
.threshold { font-size:13.5px; margin:6px 0; }
.numbers-wrap { display:flex; flex-wrap:wrap; gap:8px 24px; align-items:flex-start; }
table.numbers { width:auto; min-width:40%; margin:8px 0; }
table.numbers td:first-child { color:var(--muted); }
table.numbers.control { border-left:3px solid #56B4E9; }
details.more summary { cursor:pointer; color:#0072B2; font-size:12.5px; }
pre.error { background:#111; color:#f2f2f2; padding:10px 12px; border-radius:4px; overflow:auto;
  font-size:12px; max-height:420px; white-space:pre-wrap; }
.legend { font-size:12.5px; color:var(--muted); margin-top:8px; }
.legend span.badge, .legend span.kind { margin-right:4px; }
footer { color:var(--muted); font-size:12px; margin-top:40px; }
@media (max-width: 700px) {
  nav.bar { position:static; }
  html { scroll-padding-top:0; }
  main, header.top .inner, nav.bar .inner { padding-left:10px; padding-right:10px; }
}
"""

# The filter: shows the cards and table rows whose verdict and kind are both ticked. It sets only
# `hidden`, classes and `textContent` (never HTML), so nothing from results.json is parsed here.
SCRIPT = """
(function () {
  "use strict";
  var form = document.getElementById("filter");
  var nav = document.querySelector("nav.bar");
  function navHeight() {
    document.documentElement.style.setProperty("--navh", (nav.offsetHeight + 8) + "px");
  }
  function ticked(name) {
    var out = {};
    form.querySelectorAll("input[name=" + name + "]").forEach(function (i) { out[i.value] = i.checked; });
    return out;
  }
  function apply() {
    var v = ticked("verdict"), k = ticked("kind"), shown = 0, total = 0;
    document.querySelectorAll("[data-verdict]").forEach(function (el) {
      var on = v[el.dataset.verdict] !== false && k[el.dataset.kind] !== false;
      el.hidden = !on;
      if (el.tagName === "ARTICLE") { total += 1; if (on) { shown += 1; } }
    });
    document.querySelectorAll("section.chapter").forEach(function (s) {
      var any = s.querySelector("article.card:not([hidden])") !== null;
      s.classList.toggle("empty", !any);
      var link = document.querySelector('nav.bar a[href="#' + s.id + '"]');
      if (link) { link.classList.toggle("dim", !any); }
    });
    document.getElementById("shown").textContent = shown + " of " + total + " claims shown";
  }
  form.addEventListener("change", apply);
  document.getElementById("show-all").addEventListener("click", function () {
    form.querySelectorAll("input[type=checkbox]").forEach(function (i) { i.checked = true; });
    apply();
  });
  form.hidden = false;
  navHeight();
  window.addEventListener("resize", navHeight);
  apply();
})();
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
    """The first ``n`` scalar numbers as "name = value" (plain text); ``claim_kind`` is a label, skipped."""
    parts = []
    for k, v in numbers.items():
        if k == "claim_kind":
            continue
        if isinstance(v, (int, float, str, bool)) or v is None:
            parts.append(f"{k} = {fmt_value(v, max_len=40)}")
        if len(parts) == n:
            break
    return "; ".join(parts)


def claim_kind(entry: dict) -> str:
    """The claim's kind, one of :data:`KINDS`: ``entry["kind"]`` or ``numbers["claim_kind"]``
    ("mathematical" counts as "theorem-check"); "unlabelled" when absent or unknown."""
    raw = entry.get("kind") or (entry.get("numbers") or {}).get("claim_kind")
    return KIND_ALIASES.get(raw.strip().lower(), "unlabelled") if isinstance(raw, str) else "unlabelled"


# --------------------------------------------------------------------------------------------------
# measured numbers: flattened one level, intervals joined to their value

_SE_SUFFIXES = ("_stderr", "_sem", "_se")
_CI_SUFFIXES = ("_ci95", "_ci90", "_ci68", "_ci", "_interval")
_VALUE_KEYS = ("mean", "value", "estimate", "median", "point")
_SE_KEYS = ("se", "stderr", "sem")
_CI_KEYS = ("ci95", "ci", "interval", "ci90")


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_pair(v) -> bool:
    return isinstance(v, (list, tuple)) and len(v) == 2 and all(_is_num(x) for x in v)


def _num(v) -> str:
    return fmt_value(v, max_len=40)


def _with_se(v, se) -> str:
    return f"{_num(v)} ± {_num(se)}"


def _with_ci(v, ci) -> str:
    lo, hi = ci
    return f"{_num(v)} [{_num(lo)}, {_num(hi)}]" if v is not None else f"[{_num(lo)}, {_num(hi)}]"


def _interval_dict(d: dict) -> str | None:
    """``{"mean": m, "se": s, ...}`` → "m ± s"; ``{"value": v, "ci": [lo, hi]}`` → "v [lo, hi]";
    ``{"lo": a, "hi": b}`` → "[a, b]"; anything else → None."""
    value = next((d[k] for k in _VALUE_KEYS if _is_num(d.get(k))), None)
    se = next((d[k] for k in _SE_KEYS if _is_num(d.get(k))), None)
    ci = next((d[k] for k in _CI_KEYS if _is_pair(d.get(k))), None)
    if ci is None and _is_num(d.get("lo")) and _is_num(d.get("hi")):
        ci = (d["lo"], d["hi"])
    if value is not None and se is not None:
        text = _with_se(value, se)
        return text + (f" [{_num(ci[0])}, {_num(ci[1])}]" if ci is not None else "")
    if ci is not None:
        return _with_ci(value, ci)
    return None


def number_rows(numbers: dict, depth: int = 2, _prefix: str = "") -> list[tuple[str, str]]:
    """The measured numbers as ``(name, text)`` rows (plain text; escape before use).

    Nested dicts are flattened to ``parent.child`` down to ``depth`` levels; a value ``x`` with a
    sibling ``x_se``/``x_stderr``/``x_sem`` becomes "x ± se", with ``x_ci95``/``x_ci``/... a pair
    "x [lo, hi]"; a dict ``{"mean"|"value"|"estimate": .., "se"|"ci": ..}`` one interval;
    ``x_mean_se = [m, s]`` "m ± s". The top-level ``claim_kind`` (a label) is left out.
    """
    rows: list[tuple[str, str]] = []
    used: set[str] = set()
    se_of: dict[str, object] = {}
    ci_of: dict[str, object] = {}
    for k, v in numbers.items():
        for suf in _SE_SUFFIXES:
            base = k[: -len(suf)]
            if k.endswith(suf) and base in numbers and _is_num(numbers[base]) and _is_num(v):
                se_of[base] = v
                used.add(k)
                break
        for suf in _CI_SUFFIXES:
            base = k[: -len(suf)]
            if k.endswith(suf) and base in numbers and _is_num(numbers[base]) and _is_pair(v):
                ci_of[base] = v
                used.add(k)
                break
    for k, v in numbers.items():
        if k in used or (not _prefix and k == "claim_kind"):
            continue
        name = _prefix + str(k)
        if k in se_of or k in ci_of:
            text = _with_se(v, se_of[k]) if k in se_of else _num(v)
            if k in ci_of:
                text += f" [{_num(ci_of[k][0])}, {_num(ci_of[k][1])}]"
            rows.append((name, text))
        elif str(k).endswith("_mean_se") and _is_pair(v):
            rows.append((name, _with_se(*v)))
        elif any(str(k).endswith(suf) for suf in _CI_SUFFIXES) and _is_pair(v):
            rows.append((name, _with_ci(None, v)))
        elif isinstance(v, dict) and v:
            interval = _interval_dict(v)
            if interval is not None:
                rows.append((name, interval))
            elif depth > 1:
                rows.extend(number_rows(v, depth - 1, name + "."))
            else:
                rows.append((name, fmt_value(v)))
        else:
            rows.append((name, fmt_value(v)))
    return rows


def badge(verdict: str) -> str:
    bg, fg = VERDICT_COLOURS.get(verdict, VERDICT_COLOURS["error"])
    return f'<span class="badge" style="background:{bg};color:{fg}">{esc(verdict)}</span>'


def kind_badge(kind: str, raw: str | None = None) -> str:
    """The kind as a small outlined label (``raw``: the text the experiment wrote, if other)."""
    title = esc(KIND_MEANING.get(kind, ""))
    text = esc(raw if raw and kind == "unlabelled" else kind)
    return f'<span class="kind k-{esc(kind)}" title="{title}">{text}</span>'


def _anchor(exp_id: str) -> str:
    return "exp-" + "".join(c if c.isalnum() or c in "-_." else "_" for c in exp_id)


def _is_control(name: str) -> bool:
    return "control" in name.lower()


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
        tag = '<span class="tag">control</span> ' if _is_control(name) else ""
        cells.append(f"<figure>{img}<figcaption>{tag}{esc(name)} — {links}</figcaption></figure>")
    return f'<div class="figs">{"".join(cells)}</div>' if cells else ""


def _rows_table(rows: list[tuple[str, str]], head: str, cls: str) -> str:
    def tr(r):
        return f'<tr><td class="mono">{esc(r[0])}</td><td class="mono">{esc(r[1])}</td></tr>'

    table = (
        f'<table class="{cls}"><tr><th>{esc(head)}</th><th>value</th></tr>'
        + "".join(tr(r) for r in rows[:ROWS_SHOWN])
        + "</table>"
    )
    if len(rows) > ROWS_SHOWN:
        rest = rows[ROWS_SHOWN:]
        table += (
            f'<details class="more"><summary>{len(rest)} more</summary><table class="{cls}">'
            + "".join(tr(r) for r in rest)
            + "</table></details>"
        )
    return f"<div>{table}</div>"


def _numbers_table(numbers: dict) -> str:
    rows = number_rows(numbers)
    if not rows:
        return ""
    measured = [r for r in rows if not _is_control(r[0])]
    control = [r for r in rows if _is_control(r[0])]
    parts = []
    if measured:
        parts.append(_rows_table(measured, "measured", "numbers"))
    if control:
        parts.append(_rows_table(control, "control", "numbers control"))
    return f'<div class="numbers-wrap">{"".join(parts)}</div>'


def _section(e: dict) -> str:
    bg = VERDICT_COLOURS.get(e["verdict"], VERDICT_COLOURS["error"])[0]
    kind = claim_kind(e)
    raw_kind = (e.get("numbers") or {}).get("claim_kind")
    parts = [
        f'<article class="card" id="{esc(_anchor(e["id"]))}" data-verdict="{esc(e["verdict"])}"'
        f' data-kind="{esc(kind)}" style="--accent:{bg}">',
        f'<h3>{esc(e["title"])} {badge(e["verdict"])} '
        f'{kind_badge(kind, raw_kind if isinstance(raw_kind, str) else None)}</h3>',
        f'<div class="sub"><code>{esc(e["id"])}</code> · {float(e["seconds"]):.1f} s'
        + (" · from cache" if e.get("cached") else "")
        + "</div>",
    ]
    if e.get("claim"):
        # a named section (e.g. 13, aleph) tests claims of the monograph's forum reply, not of the book
        whose = "The forum reply's claim" if int(e.get("chapter", 0)) in NAMED_SECTIONS else "The book's claim"
        parts.append(
            f'<blockquote class="claim"><span class="label">{esc(whose)}</span>'
            f'{esc(e["claim"])}</blockquote>'
        )
    if e.get("corrected"):
        parts.append(
            '<div class="corrected"><span class="label">Corrected statement</span>'
            f'{esc(e["corrected"])}</div>'
        )
    parts.append(_figures(e.get("figures") or []))
    if e.get("threshold"):
        parts.append(f'<div class="threshold"><b>Threshold.</b> {esc(e["threshold"])}</div>')
    if e.get("explanation"):
        parts.append(f'<p>{esc(e["explanation"])}</p>')
    parts.append(_numbers_table(e.get("numbers") or {}))
    if e.get("error"):
        parts.append(f'<pre class="error">{esc(e["error"])}</pre>')
    parts.append("</article>")
    return "\n".join(p for p in parts if p)


def _chapter_title(ch: int) -> str:
    if ch <= 0:
        return "Other"
    if ch in NAMED_SECTIONS:
        return NAMED_SECTIONS[ch][1]
    topic = CHAPTER_TOPICS.get(ch)
    return f"Chapter {ch}" + (f" · {topic}" if topic else "")


def _filter_form(exps: list[dict]) -> str:
    n_verdict = {v: sum(e["verdict"] == v for e in exps) for v in ALL_VERDICTS}
    n_kind = {k: sum(claim_kind(e) == k for e in exps) for k in KINDS}

    def box(name: str, value: str, label: str, n: int) -> str:
        return (
            f'<label><input type="checkbox" name="{name}" value="{esc(value)}" checked>'
            f"{label}<span class=\"n\">&nbsp;{n}</span></label>"
        )

    verdicts = "".join(box("verdict", v, badge(v), n_verdict[v]) for v in ALL_VERDICTS)
    kinds = "".join(box("kind", k, kind_badge(k), n_kind[k]) for k in KINDS)
    return (
        '<form class="filter" id="filter" hidden>'
        f"<fieldset><legend>verdict</legend>{verdicts}</fieldset>"
        f"<fieldset><legend>kind</legend>{kinds}</fieldset>"
        '<button type="button" id="show-all">show all</button>'
        '<output id="shown"></output></form>'
    )


def _script_hash() -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(SCRIPT.encode("utf-8")).digest()).decode()


def render_html(results: dict) -> str:
    """The whole index.html for a results.json object (see :mod:`terrainlab.atlas.schema`)."""
    exps = results.get("experiments", [])
    totals = results.get("totals", {})
    counts = "".join(
        f'<div class="count"><b>{int(totals.get(v, 0))}</b>{badge(v)}</div>' for v in ALL_VERDICTS
    )
    # the tally counts claims; a reproduction (a figure redrawn, no claim tested) is shown apart
    n_repro = int(totals.get("reproductions", 0))
    if n_repro:
        counts += (f'<div class="count" title="not counted under a verdict"><b>{n_repro}</b>'
                   f'{kind_badge("reproduction")}</div>')
    n_exp = int(totals.get("experiments", len(exps)))
    tally = (f"{int(totals.get('claims', n_exp - n_repro))} claims + {n_repro} reproduction"
             f"{'s' if n_repro != 1 else ''} (not in the tally) · " if n_repro else "")
    legend = " ".join(f"{badge(v)} {esc(VERDICT_MEANING[v])}." for v in ALL_VERDICTS)
    legend += "<br>" + " ".join(f"{kind_badge(k)} {esc(KIND_MEANING[k])}." for k in KINDS)
    mode = "quick" if results.get("quick") else "full"
    meta = (
        f'{n_exp} experiments · {tally}{esc(mode)} mode · seed '
        f'{esc(results.get("seed"))} · {float(totals.get("seconds", 0.0)):.1f} s of experiments · '
        f'terrainlab {esc(results.get("version"))} · generated {esc(results.get("generated"))}'
    )
    rows = []
    for e in exps:
        kind = claim_kind(e)
        rows.append(
            f'<tr data-verdict="{esc(e["verdict"])}" data-kind="{esc(kind)}">'
            f'<td><a href="#{esc(_anchor(e["id"]))}"><code>{esc(e["id"])}</code></a></td>'
            f'<td class="num">{esc(e["chapter"])}</td>'
            f'<td class="claim">{esc(e["claim"] or e["title"])}</td>'
            f"<td>{badge(e['verdict'])}</td>"
            f"<td>{kind_badge(kind)}</td>"
            f'<td class="mono">{esc(key_numbers(e.get("numbers") or {}))}</td>'
            f'<td class="num">{float(e["seconds"]):.1f}</td>'
            "</tr>"
        )
    table = (
        '<div class="scroll"><table class="verdicts"><tr><th>experiment</th><th class="num">ch.</th><th>claim</th>'
        '<th>verdict</th><th>kind</th><th>key numbers</th><th class="num">s</th></tr>'
        + "".join(rows)
        + "</table></div>"
    )
    chapters: dict[int, list[dict]] = {}
    for e in exps:
        chapters.setdefault(int(e["chapter"]), []).append(e)
    sections, links = [], ['<a href="#verdicts">all verdicts</a>']
    for ch in sorted(chapters):
        sections.append(
            f'<section class="chapter" id="chapter-{ch}"><h2>{esc(_chapter_title(ch))}</h2>\n'
            + "\n".join(_section(e) for e in chapters[ch])
            + "\n</section>"
        )
        short = NAMED_SECTIONS[ch][0] if ch in NAMED_SECTIONS else (f"ch{ch:02d}" if ch > 0 else "other")
        topic = esc(CHAPTER_TOPICS.get(ch, ""))
        links.append(
            f'<a href="#chapter-{ch}" title="{topic}">{short}<span class="n">{len(chapters[ch])}</span></a>'
        )
    body = "\n".join(sections) if exps else "<p>No experiment has a result yet.</p>"
    csp = f"script-src '{_script_hash()}'; object-src 'none'; base-uri 'none'; form-action 'none'"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{esc(csp)}">
<title>terrainlab atlas</title>
<style>{CSS}</style>
</head>
<body>
<header class="top"><div class="inner">
<h1>terrainlab atlas</h1>
<div class="equation">S<sub>t+1</sub> = S<sub>t</sub> + η · F(S<sub>t</sub>, x)</div>
<div class="meta">Training, residual networks, beliefs on the simplex and diffusion sampling as one
equation. Each experiment below tests one claim of <i>The Terrain of Learning</i> (the last section: of
the forum reply to it); its verdict is
computed from measured numbers against the stated threshold, and its control is a setting where the
same measurement must come out the other way.</div>
<div class="counts">{counts}</div>
<div class="meta">{meta}</div>
</div></header>
<nav class="bar" aria-label="chapters and filter"><div class="inner">
<div class="chapters">{"".join(links)}</div>
{_filter_form(exps)}
</div></nav>
<main>
<h2 id="verdicts">Verdicts</h2>
{table}
<div class="legend">{legend}</div>
{body}
<footer>Written by <code>terrainlab atlas</code>. Machine-readable results:
<a href="results.json">results.json</a>.</footer>
</main>
<script>{SCRIPT}</script>
</body>
</html>
"""


def write_html(out_dir: str | Path, results: dict) -> Path:
    """Render ``results`` and write ``out_dir/index.html`` atomically; return its path."""
    path = Path(out_dir) / "index.html"
    atomic_write_text(path, render_html(results))
    return path
