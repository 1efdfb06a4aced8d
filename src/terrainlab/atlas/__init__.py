"""The atlas: every chapter's idea as a runnable experiment with figures and a computed verdict."""

from .registry import VERDICTS, Context, Experiment, Result, discover, experiment, registry, run_one

__all__ = ["VERDICTS", "Context", "Experiment", "Result", "discover", "experiment", "registry", "run_one"]
