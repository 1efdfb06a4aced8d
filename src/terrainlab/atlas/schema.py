"""The shape of ``results.json`` and a hand-written validator for it.

``results.json`` (schema version 1) is written by :func:`terrainlab.atlas.runner.run_atlas`::

    {
      "schema": 1,
      "generated": "2026-11-28T18:00:00+00:00",   # UTC, ISO 8601
      "version": "0.1.0",                          # terrainlab version
      "quick": false, "seed": 0,
      "only": null | ["ch05", "ch03.*"],           # --only patterns of the run that wrote it
      "wall_seconds": 12.3,                        # wall time of that run
      "totals": {"experiments": 5, "claims": 4, "reproductions": 1, "holds": 2,
                 "holds-with-correction": 1, "fails": 1, "inconclusive": 0, "error": 0, "seconds": 40.2},
      "experiments": [
        {"id": "ch03.euler_steps", "chapter": 3, "title": "...", "claim": "...",
         "module": "terrainlab.atlas.chapters.ch03.euler_steps",
         "status": "ok" | "error",
         "verdict": "holds" | "holds-with-correction" | "fails" | "inconclusive" | "error",
         "numbers": {...}, "threshold": "...", "explanation": "...", "corrected": null | "...",
         "figures": ["figures/ch03.euler_steps/euler_steps.svg", ".../euler_steps.png"],
         "seconds": 3.1, "cached": false, "error": null | "traceback text",
         "shared": {"shared/tinygpt-v1-s0.pt": "built" | "loaded"}}   # optional (absent before it existed)
      ]
    }

``shared`` lists the shared artifacts (``ctx.shared``) the experiment used, by path relative to
the output folder, and whether it built or loaded each; entries written before it existed lack it.

The tally: an entry whose kind (``numbers["claim_kind"]``, or a top-level ``kind``) is
``"reproduction"`` reproduces a figure of the book without testing a claim, so it is counted in
``reproductions`` and in no verdict; every other entry is a claim (``claims``) and is counted under
its verdict (an error entry carries no kind: it is counted under ``error``). Hence ``experiments =
claims + reproductions`` and the verdict counts (``error`` included) add up to ``claims``. Files
written before ``claims``/``reproductions`` existed lack them; they are read as if no entry were a
reproduction.

``status == "error"`` exactly when ``verdict == "error"``; an error entry carries the traceback (or
the reason: timeout, crash) in ``error``. Example::

    >>> from terrainlab.atlas.schema import validate_results
    >>> validate_results({"schema": 1})
    Traceback (most recent call last):
    ...
    ValueError: results.generated: missing
"""

from __future__ import annotations

import math

from .registry import SHARED_HOW, VERDICTS

SCHEMA_VERSION = 1
STATUSES = ("ok", "error")
ALL_VERDICTS = (*VERDICTS, "error")
TOTAL_KEYS = ("experiments", *ALL_VERDICTS, "seconds")
TALLY_KEYS = ("claims", "reproductions")  # optional in files written before they existed
REPRODUCTION = "reproduction"

_TOP = {
    "schema": int,
    "generated": str,
    "version": str,
    "quick": bool,
    "seed": int,
    "only": (list, type(None)),
    "wall_seconds": (int, float),
    "totals": dict,
    "experiments": list,
}
_ENTRY = {
    "id": str,
    "chapter": int,
    "title": str,
    "claim": str,
    "module": str,
    "status": str,
    "verdict": str,
    "numbers": dict,
    "threshold": (str, type(None)),
    "explanation": (str, type(None)),
    "corrected": (str, type(None)),
    "figures": list,
    "seconds": (int, float),
    "cached": bool,
    "error": (str, type(None)),
}


def is_reproduction(entry: dict) -> bool:
    """Whether an entry reproduces a figure without testing a claim: its kind (``entry["kind"]`` or
    ``entry["numbers"]["claim_kind"]``) is ``"reproduction"`` (any case, surrounding blanks ignored).

    >>> is_reproduction({"numbers": {"claim_kind": "reproduction"}}), is_reproduction({"numbers": {}})
    (True, False)
    """
    raw = entry.get("kind") or (entry.get("numbers") or {}).get("claim_kind")
    return isinstance(raw, str) and raw.strip().lower() == REPRODUCTION


def _fail(path: str, msg: str):
    raise ValueError(f"{path}: {msg}")


def _check_type(path: str, value, typ):
    types = typ if isinstance(typ, tuple) else (typ,)
    # bool is an int subclass: never accept it where a number is expected, and vice versa
    if isinstance(value, bool) and bool not in types:
        _fail(path, f"expected {_names(types)}, got bool")
    if not isinstance(value, types):
        _fail(path, f"expected {_names(types)}, got {type(value).__name__}")


def _names(types) -> str:
    return " or ".join("null" if t is type(None) else t.__name__ for t in types)


def _check_json_value(path: str, value):
    """Numbers must be plain JSON: dict/list/str/int/float/bool/None with finite floats."""
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                _fail(path, f"key {k!r} is not a string")
            _check_json_value(f"{path}.{k}", v)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_json_value(f"{path}[{i}]", v)
    elif isinstance(value, float):
        if not math.isfinite(value):
            _fail(path, "non-finite float (write 'nan'/'inf' as strings)")
    elif not (value is None or isinstance(value, (str, int, bool))):
        _fail(path, f"not a JSON value: {type(value).__name__}")


def validate_entry(entry, path: str = "entry") -> None:
    """Check one experiment entry of results.json; raise ``ValueError`` naming the first problem."""
    _check_type(path, entry, dict)
    for key, typ in _ENTRY.items():
        if key not in entry:
            _fail(f"{path}.{key}", "missing")
        _check_type(f"{path}.{key}", entry[key], typ)
    if entry["status"] not in STATUSES:
        _fail(f"{path}.status", f"expected one of {STATUSES}, got {entry['status']!r}")
    if entry["verdict"] not in ALL_VERDICTS:
        _fail(f"{path}.verdict", f"expected one of {ALL_VERDICTS}, got {entry['verdict']!r}")
    if (entry["status"] == "error") != (entry["verdict"] == "error"):
        _fail(f"{path}.verdict", "must be 'error' exactly when status is 'error'")
    if entry["status"] == "error" and not entry["error"]:
        _fail(f"{path}.error", "an error entry must say what went wrong")
    if entry["status"] == "ok":
        if entry["error"] is not None:
            _fail(f"{path}.error", "must be null when status is 'ok'")
        if not entry["threshold"]:
            _fail(f"{path}.threshold", "an ok entry must state its threshold")
    if entry["seconds"] < 0 or not math.isfinite(entry["seconds"]):
        _fail(f"{path}.seconds", f"expected a finite number ≥ 0, got {entry['seconds']!r}")
    if entry["chapter"] < 0:
        _fail(f"{path}.chapter", f"expected ≥ 0, got {entry['chapter']}")
    for i, fig in enumerate(entry["figures"]):
        _check_type(f"{path}.figures[{i}]", fig, str)
        if fig.startswith("/") or ".." in fig.split("/"):
            _fail(f"{path}.figures[{i}]", f"must be a path relative to the output folder: {fig!r}")
    _check_json_value(f"{path}.numbers", entry["numbers"])
    if "shared" in entry:  # optional: results written before shared artifacts existed lack it
        _check_type(f"{path}.shared", entry["shared"], dict)
        for rel, how in entry["shared"].items():
            if not isinstance(rel, str) or not rel.startswith("shared/") or ".." in rel.split("/"):
                _fail(f"{path}.shared", f"keys must be paths under shared/, got {rel!r}")
            if how not in SHARED_HOW:
                _fail(f"{path}.shared.{rel}", f"expected one of {SHARED_HOW}, got {how!r}")


def validate_results(obj) -> None:
    """Check a parsed ``results.json`` against schema version 1.

    Raises ``ValueError("<path>: <problem>")`` on the first problem; returns ``None`` when valid.
    Also checks that ids are unique and that ``totals`` agree with the entries.
    """
    _check_type("results", obj, dict)
    for key, typ in _TOP.items():
        if key not in obj:
            _fail(f"results.{key}", "missing")
        _check_type(f"results.{key}", obj[key], typ)
    if obj["schema"] != SCHEMA_VERSION:
        _fail("results.schema", f"expected {SCHEMA_VERSION}, got {obj['schema']}")
    if obj["only"] is not None:
        for i, p in enumerate(obj["only"]):
            _check_type(f"results.only[{i}]", p, str)
    seen = set()
    for i, entry in enumerate(obj["experiments"]):
        validate_entry(entry, f"results.experiments[{i}]")
        if entry["id"] in seen:
            _fail(f"results.experiments[{i}].id", f"duplicate id {entry['id']!r}")
        seen.add(entry["id"])
    tot = obj["totals"]
    # a file written before the tally left reproductions out counts every entry under its verdict
    counted = _tally(obj["experiments"], split_reproductions="reproductions" in tot)
    seconds = counted["seconds"]
    for key in TOTAL_KEYS:
        if key not in tot:
            _fail(f"results.totals.{key}", "missing")
        _check_type(f"results.totals.{key}", tot[key], float if key == "seconds" else int)
    if tot["experiments"] != len(obj["experiments"]):
        _fail("results.totals.experiments", f"{tot['experiments']} ≠ {len(obj['experiments'])} entries")
    for key in TALLY_KEYS:
        if key in tot:
            _check_type(f"results.totals.{key}", tot[key], int)
            if tot[key] != counted[key]:
                _fail(f"results.totals.{key}", f"{tot[key]} ≠ {counted[key]} counted in the entries")
    for v in ALL_VERDICTS:
        if tot[v] != counted[v]:
            _fail(f"results.totals.{v}", f"{tot[v]} ≠ {counted[v]} counted in the entries"
                  + (" (reproductions are not counted under a verdict)" if counted["reproductions"] else ""))
    if abs(tot["seconds"] - seconds) > 1e-6 * max(1.0, seconds):
        _fail("results.totals.seconds", f"{tot['seconds']} ≠ {seconds} summed over the entries")


def totals(entries: list[dict]) -> dict:
    """The ``totals`` block for a list of entries: a reproduction (:func:`is_reproduction`) is counted in
    ``reproductions`` only; every other entry is a claim, counted under its verdict.

    >>> t = totals([{"verdict": "holds", "seconds": 1.0, "numbers": {"claim_kind": "reproduction"}},
    ...             {"verdict": "fails", "seconds": 2.0, "numbers": {"claim_kind": "empirical"}}])
    >>> t["experiments"], t["claims"], t["reproductions"], t["holds"], t["fails"]
    (2, 1, 1, 0, 1)
    """
    return _tally(entries, split_reproductions=True)


def _tally(entries: list[dict], *, split_reproductions: bool) -> dict:
    out = {"experiments": len(entries), "claims": 0, "reproductions": 0, **dict.fromkeys(ALL_VERDICTS, 0)}
    for e in entries:
        if split_reproductions and is_reproduction(e) and e["verdict"] != "error":
            out["reproductions"] += 1
        else:
            out["claims"] += 1
            out[e["verdict"]] += 1
    out["seconds"] = float(sum(e["seconds"] for e in entries))
    return out
