"""The atlas's files: JSON-safe values, atomic writes and the per-experiment cache.

Every file the atlas writes (``results.json``, ``index.html``, ``cache/<id>.json``, the figures)
goes through :func:`atomic_save`: the bytes land in a temporary file in the target's folder, are
flushed to disk, and ``os.replace`` swaps it in, so a killed run leaves either the old file or the
new one, never half of one. ``tempfile.mkstemp`` creates its file private (0600); the finished file
gets the permissions of any file the user creates (0666 minus the umask, 0644 with the usual 022).

This module imports nothing from the rest of the atlas, so the runner, the pool, the registry and
the report can all use it without importing each other.

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> path = atomic_write_json(d / "x.json", {"slope": float("nan")})
    >>> path.read_text()
    '{\\n  "slope": "nan"\\n}\\n'
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch


def jsonable(x):
    """Convert tensors / numpy scalars / nested containers to plain JSON-safe Python values.

    Non-finite floats become the strings "inf", "-inf", "nan" so results.json stays valid JSON.
    """
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if torch.is_tensor(x):
        return jsonable(x.detach().cpu().tolist())
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, (np.bool_, bool)):
        return bool(x)
    if isinstance(x, (np.integer, int)):
        return int(x)
    if isinstance(x, (np.floating, float)):
        v = float(x)
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return v
    if x is None or isinstance(x, str):
        return x
    return str(x)


def dumps(obj) -> str:
    """``obj`` as indented JSON, after :func:`jsonable`."""
    return json.dumps(jsonable(obj), indent=2, ensure_ascii=False)


def _umask() -> int:
    """The process umask, read without changing it where /proc allows (os.umask sets it to read it)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The permissions of a newly created regular file: 0666 minus the umask (0644 under 022)."""
    return 0o666 & ~_umask()


def atomic_save(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Create ``path`` atomically: ``write(tmp)`` fills a temporary file in the same folder, which is
    then given the usual file permissions (:func:`file_mode`) and moved over ``path``.

    A failure inside ``write`` leaves ``path`` as it was and no temporary file behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, file_mode())  # mkstemp's 0600 would make the report unreadable to others
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically, flushed to disk before the swap."""

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())

    return atomic_save(path, write)


def atomic_write_json(path: str | os.PathLike, obj) -> Path:
    """Write ``obj`` as indented JSON (:func:`jsonable` first) to ``path`` atomically."""
    return atomic_write_text(path, dumps(obj) + "\n")


# --------------------------------------------------------------------------------------------------
# the cache: DIR/cache/<id>.json = {"quick", "seed", "version", "entry"}


def cache_path(out_dir: str | os.PathLike, exp_id: str) -> Path:
    return Path(out_dir) / "cache" / f"{exp_id}.json"


def write_cache(out_dir: str | os.PathLike, entry: dict, *, quick: bool, seed: int, version: str) -> Path:
    """Record a finished experiment's entry for a later ``--resume`` with the same quick/seed."""
    payload = {"quick": quick, "seed": seed, "version": version, "entry": entry}
    return atomic_write_json(cache_path(out_dir, entry["id"]), payload)


def read_cache(out_dir: str | os.PathLike, exp_id: str, *, quick: bool, seed: int) -> dict | None:
    """The cached entry of ``exp_id`` written with this ``quick``/``seed`` and status ok, else None.

    Unreadable, truncated or foreign files read as None (the experiment is recomputed)."""
    try:
        data = json.loads(cache_path(out_dir, exp_id).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("quick") != quick or data.get("seed") != seed:
        return None
    entry = data.get("entry")
    if not isinstance(entry, dict) or entry.get("status") != "ok" or entry.get("id") != exp_id:
        return None
    return entry


def drop_cache(out_dir: str | os.PathLike, exp_id: str) -> None:
    """Forget a cached result (a stale success must not come back after a failed rerun)."""
    p = cache_path(out_dir, exp_id)
    if p.exists():
        p.unlink()
