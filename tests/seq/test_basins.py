"""Answer basins: noise on h₀, the tangent Hessian of −log p(answer), the GRU per-token map."""

import pytest
import torch
from torch import nn

from terrainlab.core.geometry import simplex_tangent_basis
from terrainlab.dynamics import find_fixed_points, lyapunov_spectrum
from terrainlab.seq.basins import answer_hessian, basin_volume, gru_cell_map


class EchoLM(nn.Module):
    """Orthonormal embeddings, unembedding = their transpose: the logits at each position point at the
    input token there, so the clean answer at the last position is the last token."""

    def __init__(self, V=6):
        super().__init__()
        self.embed = nn.Embedding(V, V)
        with torch.no_grad():
            self.embed.weight.copy_(torch.eye(V))
        self.head = nn.Linear(V, V, bias=False)
        with torch.no_grad():
            self.head.weight.copy_(torch.eye(V))

    def forward(self, ids):
        return self.head(self.embed(ids))


def _hooks(model):
    return sum(len(m._forward_hooks) for m in model.modules())


def test_basin_volume_is_one_at_zero_noise_and_falls_to_chance():
    model = EchoLM()
    ids = torch.tensor([[0, 1], [2, 3], [4, 1], [5, 2]])
    answers = ids[:, -1]
    kw = dict(layer="embed", sigmas=[0.0, 0.1, 1.0, 1000.0], n_samples=200, answer_ids=[1, 2, 3])
    res = basin_volume(model, ids, answers, generator=torch.Generator().manual_seed(0), **kw)
    assert res.volume[0] == 1.0 and res.stderr[0] == 0.0 and res.n_trials == 800
    assert res.volume[1] == 1.0  # margin 1 vs noise 0.1 on 3 coordinates: essentially never flips
    assert res.volume[2] < 0.9
    assert res.chance == pytest.approx(1 / 3)
    assert abs(float(res.volume[3]) - 1 / 3) < 4 * float(res.stderr[3]) + 0.01
    assert res.per_example.shape == (4, 4) and _hooks(model) == 0
    again = basin_volume(model, ids, answers, generator=torch.Generator().manual_seed(0), **kw)
    assert torch.equal(res.volume, again.volume)
    rel = basin_volume(model, ids, answers, generator=torch.Generator().manual_seed(0), relative=True, **kw)
    # per-example positions: reading position 0 (the first token) is correct only when it is the answer
    first = basin_volume(model, ids, ids[:, 0], generator=torch.Generator().manual_seed(0),
                         position=torch.zeros(4, dtype=torch.long), **{**kw, "answer_ids": None})
    assert first.volume[0] == 1.0
    mixed = basin_volume(model, ids, answers, generator=torch.Generator().manual_seed(0),
                         position=torch.tensor([1, 1, 0, 0]), **{**kw, "answer_ids": None})
    assert torch.equal(mixed.per_example[0], torch.tensor([1.0, 1.0, 0.0, 0.0], dtype=torch.float64))
    assert rel.relative and rel.volume[0] == 1.0


def test_basin_volume_rejects_bad_arguments():
    model, ids = EchoLM(), torch.tensor([[0, 1]])
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="sigmas"):
        basin_volume(model, ids, torch.tensor([1]), layer="embed", sigmas=[-1.0], generator=g)
    with pytest.raises(ValueError, match="answer_ids must not be empty"):
        basin_volume(model, ids, torch.tensor([1]), layer="embed", sigmas=[0.0], generator=g, answer_ids=[])
    with pytest.raises(ValueError, match="answers"):
        basin_volume(model, ids, torch.tensor([1, 2]), layer="embed", sigmas=[0.0], generator=g)
    with pytest.raises(ValueError, match="emb.*embed"):
        basin_volume(model, ids, torch.tensor([1]), layer="emb", sigmas=[0.0], generator=g)


def test_tangent_hessian_matches_the_closed_forms():
    z = torch.tensor([[0.3, -1.0, 2.0, 0.5], [0.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    B = simplex_tangent_basis(4, dtype=torch.float64)
    res = answer_hessian(z, 2)
    p = torch.softmax(z, -1)
    for i in range(2):
        H = torch.diag(p[i]) - torch.outer(p[i], p[i])
        assert torch.allclose(res.eigenvalues[i], torch.linalg.eigvalsh(B.T @ H @ B))
    assert bool((res.eigenvalues > 0).all())
    assert torch.allclose(res.eigenvalues[1], torch.full((3,), 0.25, dtype=torch.float64))
    sx = answer_hessian(z, 2, coords="simplex")
    # ∇²_p(−log p_y) = e_y e_yᵀ/p_y²: rank one on the tangent space, eigenvalue (1 − 1/K)/p_y²
    assert torch.allclose(sx.eigenvalues[:, :2], torch.zeros(2, 2, dtype=torch.float64), atol=1e-9)
    assert torch.allclose(sx.eigenvalues[:, 2], (1 - 1 / 4) / p[:, 2] ** 2)
    with pytest.raises(ValueError, match="answer"):
        answer_hessian(z, 4)
    with pytest.raises(ValueError, match="coords"):
        answer_hessian(z, 0, coords="fisher")


def test_gru_map_of_a_contractive_cell_has_one_attracting_fixed_point_and_negative_lyapunov():
    torch.manual_seed(0)
    cell = nn.GRUCell(3, 4).double()
    with torch.no_grad():
        cell.weight_hh.mul_(0.2)  # ‖∂Φ/∂h‖ < 1: a contraction
    x = torch.tensor([0.5, -1.0, 0.2], dtype=torch.float64)
    phi = gru_cell_map(cell, x)
    inits = torch.randn(16, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    fp = find_fixed_points(phi, inits, kind="map")
    assert fp.n_points == 1 and fp.kinds == ["attractor"] and fp.n_failed == 0
    h_star = fp.points[0]
    assert torch.allclose(cell(x[None], h_star[None])[0], h_star, atol=1e-9)
    ly = lyapunov_spectrum(phi, inits[:4], kind="map", steps=200, k=1)
    assert float(ly.mean[0]) < 0
    # the map of a one-layer nn.GRU with the same weights is the same map
    gru = nn.GRU(3, 4, batch_first=True).double()
    with torch.no_grad():
        for a, b in ((gru.weight_ih_l0, cell.weight_ih), (gru.weight_hh_l0, cell.weight_hh),
                     (gru.bias_ih_l0, cell.bias_ih), (gru.bias_hh_l0, cell.bias_hh)):
            a.copy_(b)
    assert torch.allclose(gru_cell_map(gru, x)(inits), phi(inits))
    with pytest.raises(ValueError, match="x"):
        gru_cell_map(cell, torch.zeros(5, dtype=torch.float64))
    with pytest.raises(ValueError, match="rnn"):
        gru_cell_map(nn.LSTM(3, 4), x)
