"""The experiment registry: ``@experiment`` records a function with its id, chapter and claim.

Experiments live in ``terrainlab/atlas/chapters/chNN/<name>.py``; :func:`discover` imports them all.
"""

from __future__ import annotations

import importlib
import pkgutil
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..core.validate import check_choice, check_int
from ._io import atomic_save, dumps, jsonable  # noqa: F401 - dumps and jsonable stay importable from here

VERDICTS = ("holds", "holds-with-correction", "fails", "inconclusive")


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
    """Handed to every experiment: the mode, the output folder, seeds, and figure saving."""

    out_dir: Path
    exp_id: str
    quick: bool = False
    seed: int = 0
    figures: list = field(default_factory=list)

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
    from terrainlab.plotting import style

    exp = registry()[exp_id]
    ctx = Context(out_dir=Path(out_dir), exp_id=exp_id, quick=quick, seed=seed)
    with style():  # every artist the experiment creates gets the house style
        res = exp.fn(ctx)
    if not isinstance(res, Result):
        raise TypeError(f"experiment {exp_id} returned {type(res).__name__}, not Result")
    return res, list(ctx.figures)

