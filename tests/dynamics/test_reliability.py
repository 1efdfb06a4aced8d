"""Bad and edge-case input to the dynamics toolkit: clear ValueErrors naming the argument, or a
documented answer; renamed modules keep a warning shim."""

import importlib
import math

import pytest
import torch

from terrainlab.core import Euler
from terrainlab.dynamics import (
    classify_flow,
    classify_map,
    find_fixed_points,
    largest_lyapunov,
    lyapunov_check,
    lyapunov_spectrum,
)

D64 = torch.float64


@pytest.mark.parametrize("classify", [classify_flow, classify_map])
def test_classify_rejects_no_eigenvalues(classify):
    with pytest.raises(ValueError, match="eigs"):
        classify(torch.tensor([]))
    with pytest.raises(ValueError, match="eigs"):
        classify(torch.zeros(2, 0))


def test_classify_nonfinite_eigenvalues():
    assert classify_flow(torch.tensor([math.nan, -1.0])) == "nonfinite"
    assert classify_map(torch.tensor([0.5, math.inf])) == "nonfinite"
    assert classify_flow(torch.tensor([[-1.0, -2.0], [math.nan, 1.0]])) == ["attractor", "nonfinite"]
    with pytest.raises(ValueError, match="tol"):
        classify_flow(torch.tensor([-1.0]), tol=-1.0)


def test_lyapunov_check_is_the_function_and_stays_so_after_any_import():
    # The module was renamed lyapunov_function.py. A deprecation shim named lyapunov_check.py cannot
    # exist: importing it would rebind terrainlab.dynamics.lyapunov_check from the function to the
    # module (the import system sets the attribute on the package), breaking every caller.
    import terrainlab.dynamics as dyn
    from terrainlab.dynamics import lyapunov_function

    assert dyn.lyapunov_check is lyapunov_function.lyapunov_check is lyapunov_check
    assert callable(dyn.lyapunov_check)
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("terrainlab.dynamics.lyapunov_check")
    assert dyn.lyapunov_check is lyapunov_check


def test_batched_lyapunov_masks_orbits_that_blew_up_in_an_earlier_chunk():
    # x ↦ x²(1 + 0·x): from 2 it overflows, then 0·inf = NaN — which a restart of the next chunk
    # would turn into a finite orbit at 0; from 1 it sits at the fixed point 1 with λ = log 2
    def T(x):
        return x * x * (1 + 0 * x)

    res = lyapunov_spectrum(T, torch.tensor([[2.0], [1.0]], dtype=D64), steps=1500, chunk=100, method="batched")
    assert math.isnan(float(res.exponents[0, 0])) and res.status == "nonfinite"
    assert abs(float(res.exponents[1, 0]) - math.log(2.0)) < 1e-12


def test_per_row_parameters_sequential_lyapunov():
    # per-row step sizes: not batchable over time, the sequential strategy handles it exactly
    etas = torch.tensor([[0.1], [0.3]], dtype=D64)
    res = largest_lyapunov(lambda x, t=0.0: -etas * x, torch.ones(2, 1, dtype=D64), kind="field", eta=1.0,
                           scheme=Euler(), steps=200, method="sequential")
    assert torch.allclose(res.exponents[:, 0], torch.log(1 - etas[:, 0]), atol=1e-12)
    assert res.status == "completed"


@pytest.mark.parametrize("kw,name", [({"kind": "flow"}, "kind"), ({"method": "qr"}, "method"),
                                     ({"max_iter": 0}, "max_iter"), ({"eta": -1.0}, "eta"),
                                     ({"tol": 0.0}, "tol")])
def test_find_fixed_points_names_the_bad_argument(kw, name):
    with pytest.raises(ValueError, match=name):
        find_fixed_points(lambda s: -s, torch.zeros(2, 1, dtype=D64), **kw)
    with pytest.raises(ValueError, match="inits"):
        find_fixed_points(lambda s: -s, torch.empty(0, 2))
