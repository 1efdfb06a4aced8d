"""The curated public surface: top-level names exist, worlds load lazily, unknown names fail."""

import importlib
import subprocess
import sys

import pytest

import terrainlab


def test_public_names_exist():
    for name in terrainlab.__all__:
        assert hasattr(terrainlab, name), name


@pytest.mark.parametrize("sub", terrainlab._SUBPACKAGES)
def test_worlds_are_reachable_as_attributes(sub):
    assert getattr(terrainlab, sub) is importlib.import_module(f"terrainlab.{sub}")


def test_unknown_attribute_raises():
    with pytest.raises(AttributeError, match="no_such_world"):
        terrainlab.no_such_world  # noqa: B018


def test_import_does_not_load_the_worlds():
    code = "import sys, terrainlab; print(any(m.startswith('terrainlab.diffusion') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
