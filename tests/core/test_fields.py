"""One field adapter: as_field for callables and nn.Modules, with and without time; MapField."""

import warnings

import pytest
import torch
from torch import nn

from terrainlab.core import MapField, as_field, gradient_field, map_field
from terrainlab.core.fields import takes_time


class Autonomous(nn.Module):
    def forward(self, h):
        return -h


class Timed(nn.Module):
    def forward(self, h, t):
        return t * h


class TimedDefault(nn.Module):
    def forward(self, h, t=0.0):
        return t * h


class Stateful(nn.Module):  # a second optional argument that is not time (like GRUCell's hx)
    def forward(self, h, hx=None):
        return -h


def f_state(s):
    return -s


def f_time(s, t):
    return t * s


def f_time_default(s, t=0.0):
    return t * s


def f_time_kw_name(s, time=0.0):
    return time * s


def f_varargs(*args):
    return -args[0]


X = torch.tensor([[1.0, 2.0]])
T = 3.0

CASES = [  # (f, receives t?, expected F(X, T))
    (f_state, False, -X),
    (f_time, True, T * X),
    (f_time_default, True, T * X),
    (f_time_kw_name, True, T * X),
    (lambda s: -s, False, -X),
    (lambda s, t: t * s, True, T * X),
    (f_varargs, False, -X),
    (Autonomous(), False, -X),
    (Timed(), True, T * X),
    (TimedDefault(), True, T * X),
    (Stateful(), False, -X),
    (gradient_field(lambda s: 0.5 * (s**2).sum(-1)), True, -X),
    (MapField(lambda s: 0.5 * s), True, -0.5 * X),
]


@pytest.mark.parametrize("f,uses_t,expected", CASES)
def test_as_field_table(f, uses_t, expected):
    assert takes_time(f) is uses_t
    F = as_field(f)
    assert torch.equal(F(X, T), expected)
    F(X)  # t defaults to 0 for every adapted field


def test_time_arg_overrides_inspection():
    assert torch.equal(as_field(f_varargs, time_arg=False)(X, T), -X)
    assert torch.equal(as_field(lambda *a: a[1] * a[0], time_arg=True)(X, T), T * X)


def test_as_field_rejects_non_callables():
    with pytest.raises(ValueError, match="field"):
        as_field(3)


def test_nn_uses_the_core_adapter():
    from terrainlab.nn import neural_ode, odestack

    assert odestack.as_field is as_field and neural_ode.as_field is as_field


def test_map_field_is_map_field_class():
    F = map_field(lambda s: 0.5 * s)
    assert isinstance(F, MapField) and torch.equal(F(X, 0.0), -0.5 * X)
    with pytest.raises(ValueError, match="T"):
        map_field(None)
    with pytest.raises(ValueError, match="update"):
        MapField(None)


def test_no_warning_from_core_fields():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        as_field(f_state)(X, 0.0)
