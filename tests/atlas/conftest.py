"""Shared fixture for the runner and CLI tests: the fixture experiment modules next to this file."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

registry_module = importlib.import_module("terrainlab.atlas.registry")  # the module, not the function
HERE = Path(__file__).resolve().parent
FIXTURE_MODULES = ("_atlas_runner_fixtures", "_atlas_runner_broken")

# The fixture modules are imported by the runner under test, never collected: one of them fails to
# import on purpose, which `pytest --doctest-modules` would otherwise report as a collection error.
collect_ignore = [f"{name}.py" for name in FIXTURE_MODULES]


@pytest.fixture
def fixtures(monkeypatch):
    """Make the fixture modules importable (here and in workers); unregister them afterwards."""
    monkeypatch.syspath_prepend(str(HERE))
    before = dict(registry_module._REGISTRY)
    yield
    registry_module._REGISTRY.clear()
    registry_module._REGISTRY.update(before)
    for name in FIXTURE_MODULES:
        sys.modules.pop(name, None)


@pytest.fixture(scope="session")
def seq_zoo_out(tmp_path_factory):
    """An atlas output folder for the sequence-world experiments whose shared zoo models
    (:mod:`terrainlab.atlas.chapters._seq_zoo`) are trained for a few steps only: the experiments run
    end to end in seconds (a smoke size; their decide functions are tested both ways on their own).
    Every test that uses it shares the models, as the experiments of one atlas run do."""
    from dataclasses import replace

    from terrainlab.atlas.chapters import _seq_zoo

    mp = pytest.MonkeyPatch()
    mp.setattr(_seq_zoo, "ZOO", {k: replace(v, steps=(40, 40)) for k, v in _seq_zoo.ZOO.items()})
    yield tmp_path_factory.mktemp("seq_zoo")
    mp.undo()
