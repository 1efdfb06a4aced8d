"""Bad inputs to the curvature instruments: a ValueError naming the argument, or a status."""

import pytest
import torch

from terrainlab.core.status import Status
from terrainlab.curvature import (
    DenseOperator,
    HessianOperator,
    eigs,
    power_iteration,
    spectral_density,
    trace,
)

F = torch.nn.functional


def _A(n=12):
    return DenseOperator(torch.diag(torch.arange(1.0, n + 1, dtype=torch.float64)))


def _nan_op(n=12):
    M = torch.eye(n, dtype=torch.float64)
    M[3, 3] = float("nan")
    return DenseOperator(M)


def _nan_loss_op():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    x, y = torch.randn(8, 3), torch.randint(0, 2, (8,))
    return HessianOperator(net, lambda m, b: F.cross_entropy(m(b[0]), b[1]) * float("nan"), [(x, y)])


def test_dense_operator_of_an_int_matrix_names_matrix():
    with pytest.raises(ValueError, match="matrix must be a floating-point tensor"):
        eigs(DenseOperator(torch.eye(5, dtype=torch.int64)))
    with pytest.raises(ValueError, match="matrix must be square"):
        DenseOperator(torch.zeros(3, 4))


@pytest.mark.parametrize("make", [_nan_op, _nan_loss_op], ids=["nan-operator", "nan-loss"])
def test_eigs_on_nan_returns_status_nonfinite(make):
    r = eigs(make(), k=2, generator=torch.Generator().manual_seed(0))
    assert r.status == Status.NONFINITE and r.status == "nonfinite"
    assert not bool(r.converged.any()) and bool(torch.isnan(r.eigenvalues).all())
    p = power_iteration(make(), generator=torch.Generator().manual_seed(0))
    assert p.status == "nonfinite"


@pytest.mark.parametrize("method", ["hutchinson", "hutch++", "krylov-hutch++"])
def test_trace_on_nan_operator_is_nonfinite_not_garbage(method):
    r = trace(_nan_op(), method, n_matvec=9, generator=torch.Generator().manual_seed(0))
    assert r.status == "nonfinite"
    assert r.estimate != r.estimate  # NaN, flagged, not a finite-looking number


def test_spectral_density_on_nan_operator_is_nonfinite():
    r = spectral_density(_nan_op(), n_probes=3, lanczos_steps=5, generator=torch.Generator().manual_seed(0))
    assert r.status == "nonfinite" and r.values.numel() == 0


@pytest.mark.parametrize("kwargs, name", [
    ({"sigma": 0.0}, "sigma"), ({"sigma": -1.0}, "sigma"), ({"sigma": float("nan")}, "sigma"),
    ({"n_grid": 0}, "n_grid"), ({"n_probes": 0}, "n_probes"), ({"lanczos_steps": 1}, "lanczos_steps"),
])
def test_spectral_density_bad_arguments_name_themselves(kwargs, name):
    with pytest.raises(ValueError, match=f"^{name} must"):
        spectral_density(_A(), **kwargs)


def test_eigs_atol_and_v0_are_checked_not_ignored():
    with pytest.raises(ValueError, match="^atol must"):
        eigs(_A(), atol=-1.0)
    with pytest.raises(ValueError, match="^v0 must"):
        eigs(_A(), v0=torch.ones(5, dtype=torch.float64))
    with pytest.raises(ValueError, match="^v0 must"):
        eigs(_A(), v0=torch.full((12,), float("nan"), dtype=torch.float64))
    with pytest.raises(ValueError, match="^v0 must"):
        eigs(_A(), v0=torch.zeros(12, dtype=torch.float64))
    with pytest.raises(ValueError, match="^v0 must"):
        power_iteration(_A(), v0=torch.ones(5, dtype=torch.float64))
    # a column vector of the right size is still a vector
    r = eigs(_A(), v0=torch.ones(12, 1, dtype=torch.float64), tol=1e-8)
    assert r.status == "converged" and abs(float(r.eigenvalues[0]) - 12.0) < 1e-8


@pytest.mark.parametrize("kwargs, name", [
    ({"k": 0}, "k"), ({"k": 12}, "k"), ({"tol": 0.0}, "tol"), ({"which": "XX"}, "which"),
    ({"ncv": 1}, "ncv"), ({"max_matvec": 2}, "max_matvec"),
])
def test_eigs_bad_arguments_name_themselves(kwargs, name):
    with pytest.raises(ValueError, match=f"^{name} must"):
        eigs(_A(), **kwargs)


def test_trace_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="^method must"):
        trace(_A(), "exact")
    with pytest.raises(ValueError, match="^n_matvec must"):
        trace(_A(), "hutch++", n_matvec=2)


def test_eigs_max_matvec_status_word():
    r = eigs(_A(200), k=3, tol=1e-14, ncv=8, max_matvec=12, generator=torch.Generator().manual_seed(0))
    assert r.status == Status.MAX_STEPS and r.status == "max_steps"
