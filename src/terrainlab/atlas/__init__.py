"""The atlas: every chapter's idea as a runnable experiment with figures and a computed verdict."""

from .registry import VERDICTS, Context, Experiment, Result, discover, experiment, registry, run_one
from .runner import AtlasRun, run_atlas
from .schema import validate_results

__all__ = [
    "VERDICTS",
    "Context",
    "Experiment",
    "Result",
    "discover",
    "experiment",
    "registry",
    "run_one",
    "run_atlas",
    "AtlasRun",
    "validate_results",
]
