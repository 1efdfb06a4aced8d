"""The experiment registry: ``@experiment`` records a function with its id, chapter and claim.

Experiments live in ``terrainlab/atlas/chapters/chNN/<name>.py``; :func:`discover` imports them all.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..core.validate import check_callable, check_choice, check_int
from ._io import atomic_save, dumps, jsonable  # noqa: F401 - dumps and jsonable stay importable from here

VERDICTS = ("holds", "holds-with-correction", "fails", "inconclusive")
SHARED_HOW = ("built", "loaded")
_SHARED_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class Result:
    """What an experiment returns. ``verdict`` is computed from ``numbers`` against ``threshold``."""

    verdict: str
    numbers: dict
    threshold: str
    explanation: str
    corrected: str | None = None

    def __post_init__(self):
        check_choice(self.verdict, "verdict", VERDICTS)
        if not isinstance(self.threshold, str) or not self.threshold.strip():
            raise ValueError("threshold must state the threshold the verdict was computed from")
        object.__setattr__(self, "numbers", jsonable(self.numbers))


@dataclass
class Context:
    """Handed to every experiment: the mode, the output folder, seeds, figure saving and shared
    artifacts (:meth:`shared`)."""

    out_dir: Path
    exp_id: str
    quick: bool = False
    seed: int = 0
    figures: list = field(default_factory=list)
    shared_used: dict = field(default_factory=dict)  # "shared/<file>.pt" -> "built" | "loaded"

    def generator(self, offset: int = 0) -> torch.Generator:
        g = torch.Generator()
        g.manual_seed(self.seed + offset)
        return g

    def rng(self, offset: int = 0) -> np.random.Generator:
        return np.random.default_rng(self.seed + offset)

    @property
    def figure_dir(self) -> Path:
        return self.out_dir / "figures" / self.exp_id

    def savefig(self, fig, name: str) -> list[str]:
        """Save ``fig`` as SVG and PNG under figures/<exp_id>/, atomically; close it.

        Returns the paths relative to ``out_dir``; they are recorded on the experiment's result.
        """
        if not name or any(c in name for c in "/\\"):
            raise ValueError(f"name must be a plain file stem, got {name!r}")
        rel = []
        for ext in ("svg", "png"):
            target = atomic_save(self.figure_dir / f"{name}.{ext}", lambda tmp, ext=ext: fig.savefig(tmp, format=ext))
            rel.append(str(target.relative_to(self.out_dir)))
        _close(fig)
        self.figures.extend(rel)
        return rel


    def shared_path(self, name: str, version: int) -> Path:
        """Where :meth:`shared` keeps ``name`` at ``version`` for this run's seed and mode:
        ``<out>/shared/<name>-v<version>-s<seed>.pt``, with ``-quick`` before ``.pt`` in quick mode."""
        if not isinstance(name, str) or not _SHARED_NAME.fullmatch(name):
            raise ValueError(
                f"name must be a non-empty plain file stem (letters, digits, '.', '_', '-'; no path "
                f"separators; not starting with '.' or '-'), got {name!r}"
            )
        check_int(version, "version", minimum=0)
        mode = "-quick" if self.quick else ""
        return self.out_dir / "shared" / f"{name}-v{version}-s{self.seed}{mode}.pt"

    def shared(self, name: str, build: Callable[[], object], version: int = 0):
        """An artifact built once per atlas output folder and shared by every experiment that asks.

        If ``shared_path(name, version)`` exists it is loaded with ``torch.load(path,
        weights_only=True)`` and ``build`` is not called. Otherwise an exclusive ``fcntl.flock`` on
        the ``.lock`` file next to it (POSIX only) lets one process call ``build()`` and write the
        result atomically while concurrent workers (``--jobs N``) wait, then load it.

        ``build`` must return what ``weights_only=True`` can load: tensors and plain containers
        (dict, list, tuple, str, int, float, bool, None), e.g. ``{"state_dict": model.state_dict(),
        "meta": {"steps": 400}}``; anything else is refused before it is written. The returned
        object is the one read back from the file, so a build and a load give the same thing.
        ``build`` runs under the caller's random state: seed inside it (e.g. from ``self.seed``);
        nothing is recorded beyond what it returns. Bump ``version`` when the build changes.
        Whether it was built or loaded is recorded on the experiment's entry (``"shared"``).
        """
        path = self.shared_path(name, version)
        check_callable(build, "build")
        if path.exists():  # written atomically: present means complete
            obj, how = _load_shared(path), "loaded"
        else:
            try:
                import fcntl
            except ImportError as exc:  # pragma: no cover - not POSIX
                raise RuntimeError("ctx.shared needs fcntl.flock (POSIX)") from exc
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path.with_suffix(".lock"), "a+b") as lock:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
                try:
                    if path.exists():  # another worker built it while we waited
                        obj, how = _load_shared(path), "loaded"
                    else:
                        obj, how = _build_shared(path, build), "built"
                finally:
                    fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
        rel = path.relative_to(self.out_dir).as_posix()
        self.shared_used.setdefault(rel, how)  # the first use in this experiment says how it came
        return obj


def _load_shared(path: Path):
    try:
        return torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - re-raised with what to do
        raise RuntimeError(
            f"shared artifact {path} cannot be loaded with torch.load(weights_only=True): it must hold "
            f"only tensors and plain containers; delete it to rebuild ({type(exc).__name__}: {exc})"
        ) from exc


def _build_shared(path: Path, build: Callable[[], object]):
    out = {}

    def write(tmp: str) -> None:
        torch.save(build(), tmp)
        try:  # refuse, before it lands, what a later load would refuse
            out["obj"] = torch.load(tmp, weights_only=True, map_location="cpu")
        except Exception as exc:  # noqa: BLE001 - re-raised with what to do
            raise RuntimeError(
                f"build for shared artifact {path.name} returned an object that torch.load("
                f"weights_only=True) refuses; return tensors and plain containers, e.g. "
                f"{{'state_dict': ..., 'meta': {{...}}}} ({type(exc).__name__}: {exc})"
            ) from exc

    atomic_save(path, write)
    return out["obj"]


def _close(fig) -> None:
    """Release a figure: pyplot keeps the figures it made until closed; a bare Figure needs nothing."""
    if getattr(fig.canvas, "manager", None) is not None:
        import matplotlib.pyplot as plt

        plt.close(fig)


@dataclass(frozen=True)
class Experiment:
    id: str
    chapter: int
    title: str
    claim: str
    fn: Callable[[Context], Result]
    module: str


_REGISTRY: dict[str, Experiment] = {}


def experiment(*, id: str, chapter: int, title: str, claim: str):
    """Register an atlas experiment. ``id`` is "chNN.name"; ``claim`` is the book's claim tested."""
    if not isinstance(id, str) or "." not in id:
        raise ValueError(f"id must look like 'ch03.name', got {id!r}")
    check_int(chapter, "chapter", minimum=1)

    def wrap(fn):
        if id in _REGISTRY and _REGISTRY[id].module != fn.__module__:
            raise ValueError(f"experiment id {id!r} is registered twice")
        _REGISTRY[id] = Experiment(id, chapter, title, claim, fn, fn.__module__)
        return fn

    return wrap


def discover(package: str = "terrainlab.atlas.chapters") -> dict[str, str]:
    """Import every experiment module under ``package``. Returns {module: traceback} of failures,
    so one broken chapter never hides the others."""
    errors: dict[str, str] = {}
    pkg = importlib.import_module(package)
    for info in pkgutil.walk_packages(pkg.__path__, prefix=package + "."):
        try:
            importlib.import_module(info.name)
        except Exception:  # noqa: BLE001 - reported as an error experiment by the runner
            errors[info.name] = traceback.format_exc()
    return errors


def registry() -> dict[str, Experiment]:
    """The registered experiments, sorted by chapter then id."""
    return dict(sorted(_REGISTRY.items(), key=lambda kv: (kv[1].chapter, kv[0])))


def run_one(exp_id: str, out_dir: Path, quick: bool = False, seed: int = 0) -> tuple[Result, list[str]]:
    """Run one registered experiment in this process (tests use this; the runner isolates it)."""
    res, ctx = run_one_context(exp_id, out_dir, quick=quick, seed=seed)
    return res, list(ctx.figures)


def run_one_context(exp_id: str, out_dir: Path, quick: bool = False, seed: int = 0) -> tuple[Result, Context]:
    """:func:`run_one`, returning the :class:`Context` (figures, shared artifacts used) as well."""
    from terrainlab.plotting import style

    exp = registry()[exp_id]
    ctx = Context(out_dir=Path(out_dir), exp_id=exp_id, quick=quick, seed=seed)
    with style():  # every artist the experiment creates gets the house style
        res = exp.fn(ctx)
    if not isinstance(res, Result):
        raise TypeError(f"experiment {exp_id} returned {type(res).__name__}, not Result")
    return res, ctx

