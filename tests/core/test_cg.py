"""Batched conjugate gradients in core.linalg."""

import pytest
import torch

from terrainlab.core.linalg import cg


def test_cg_solves_spd_rows_independently():
    g = torch.Generator().manual_seed(0)
    M = torch.randn(3, 5, 5, generator=g, dtype=torch.float64)
    A = M @ M.transpose(-1, -2) + 5 * torch.eye(5, dtype=torch.float64)
    b = torch.randn(3, 5, generator=g, dtype=torch.float64)
    res = cg(lambda v: (A @ v[..., None])[..., 0], b, max_iter=50, rtol=1e-12)
    assert res.converged and res.n_iter <= 6
    assert torch.allclose(res.x, torch.linalg.solve(A, b), atol=1e-10)
    assert float(res.residual_norms.max()) <= 1e-12 * float(b.norm(dim=-1).max()) * 10


def test_cg_budget_and_bad_arguments():
    A = torch.diag(torch.logspace(0, 6, 40, dtype=torch.float64))
    b = torch.ones(1, 40, dtype=torch.float64)
    res = cg(lambda v: v @ A, b, max_iter=3, rtol=1e-14)
    assert not res.converged and res.n_iter == 3
    with pytest.raises(ValueError, match="max_iter"):
        cg(lambda v: v, b, max_iter=0)
    with pytest.raises(ValueError, match="rtol"):
        cg(lambda v: v, b, rtol=-1.0)
    with pytest.raises(ValueError, match="b"):
        cg(lambda v: v, torch.ones(3))
