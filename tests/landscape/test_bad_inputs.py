"""Bad inputs to the landscape slicer name the argument; moved names keep working with a warning."""

import importlib
import sys
import warnings

import pytest
import torch

from terrainlab.landscape import interpolate, line, plane, random_direction

F = torch.nn.functional


def _setup():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2))
    x, y = torch.randn(10, 3), torch.randint(0, 2, (10,))
    return net, (lambda m, b: F.cross_entropy(m(b[0]), b[1])), [(x, y)]


def test_line_with_an_integer_dtype_names_dtype():
    net, loss, data = _setup()
    d = random_direction(net, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="^dtype must be a floating-point torch.dtype"):
        line(net, loss, data, d, torch.linspace(-1, 1, 3), dtype=torch.int64)
    with pytest.raises(ValueError, match="^dtype must"):
        random_direction(net, dtype=torch.int32)


@pytest.mark.parametrize("kwargs, name", [
    ({"chunk_size": 0}, "chunk_size"), ({"memory_budget": -1}, "memory_budget"),
    ({"strategy": "fast"}, "strategy"), ({"mode": "train"}, "mode"),
])
def test_plane_bad_arguments_name_themselves(kwargs, name):
    net, loss, data = _setup()
    d = random_direction(net, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=f"^{name} must"):
        plane(net, loss, data, d, d, torch.zeros(2), torch.zeros(2), **kwargs)
    with pytest.raises(ValueError, match="^d2 must have shape"):
        plane(net, loss, data, d, d[:-1], torch.zeros(2), torch.zeros(2))


def test_interpolate_n_points_named():
    net, loss, data = _setup()
    with pytest.raises(ValueError, match="^n_points must"):
        interpolate(net, net, loss, data, n_points=1)


def test_old_params_module_is_a_warning_alias():
    sys.modules.pop("terrainlab.curvature.params", None)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        old = importlib.import_module("terrainlab.curvature.params")
    assert any(issubclass(x.category, DeprecationWarning) for x in w)
    import terrainlab.params as new

    assert old.ParamSpec is new.ParamSpec and old.FunctionalModel is new.FunctionalModel
    from terrainlab.curvature import ParamSpec

    assert ParamSpec is new.ParamSpec
