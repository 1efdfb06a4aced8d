"""Step geometry, Def-4 step classes (with controls) and Def-3 events on trajectories with known answers."""

import math

import pytest
import torch
from torch import nn

from terrainlab.seq.geometry import (
    CLASS_NAMES,
    classify_steps,
    implicit_reasoning_events,
    reinit_like,
    step_classes_with_controls,
    step_geometry,
)
from terrainlab.seq.trajectory import capture


class AddConst(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.register_buffer("c", c)

    def forward(self, h):
        return h + self.c


class PreLNBlock(nn.Module):
    """h + W2 relu(W1 LN(h)): a pre-LN residual MLP block."""

    def __init__(self, d):
        super().__init__()
        self.ln = nn.LayerNorm(d)
        self.fc1, self.fc2 = nn.Linear(d, 2 * d), nn.Linear(2 * d, d)

    def forward(self, h):
        return h + self.fc2(torch.relu(self.fc1(self.ln(h))))


class TinyLM(nn.Module):
    def __init__(self, blocks, V=11, d=8):
        super().__init__()
        self.embed = nn.Embedding(V, d)
        self.pos = nn.Parameter(torch.zeros(16, d))  # owned by no module with reset_parameters
        self.blocks = nn.ModuleList(blocks)

    def forward(self, ids):
        h = self.embed(ids) + self.pos[: ids.shape[1]]
        for b in self.blocks:
            h = b(h)
        return h


def test_constant_add_stack_has_exact_relative_steps_and_identity_layers_zero_steps():
    torch.manual_seed(0)
    c = torch.tensor([3.0, 0.0, 4.0, 0.0])  # ‖c‖ = 5
    model = nn.Sequential(nn.Identity(), AddConst(c), AddConst(c), nn.Identity())
    x = torch.randn(2, 3, 4, dtype=torch.float64)
    model = model.double()
    tr = capture(model, x, ["0", "1", "2", "3"])
    g = step_geometry(tr.states)
    assert g.norm.shape == (3, 2, 3)
    assert torch.allclose(g.norm[:2], torch.full((2, 2, 3), 5.0, dtype=torch.float64))
    assert torch.equal(g.norm[2], torch.zeros(2, 3, dtype=torch.float64))  # identity layer: a zero step
    assert torch.allclose(g.relative[0], 5.0 / x.norm(dim=-1))
    assert torch.allclose(g.relative[1], 5.0 / (x + c.double()).norm(dim=-1))
    assert torch.allclose(g.cos[0], torch.ones(2, 3, dtype=torch.float64))  # two equal steps
    assert g.n_nonfinite == 0


def test_curvature_of_a_regular_polygon_is_one_over_the_radius():
    n, R = 400, 2.5
    a = torch.arange(n, dtype=torch.float64) * 2 * math.pi / n
    h = torch.stack([R * a.cos(), R * a.sin()], -1)
    g = step_geometry(h)
    assert torch.allclose(g.curvature, torch.full((n - 2,), 1 / R, dtype=torch.float64), rtol=1e-4)
    line = torch.arange(6, dtype=torch.float64)[:, None] * torch.tensor([1.0, 2.0], dtype=torch.float64)
    assert float(step_geometry(line).curvature.abs().max()) < 1e-6


def test_nan_steps_are_counted_and_left_out_of_the_means():
    h = torch.cumsum(torch.ones(6, 3, dtype=torch.float64), 0)
    h[3, 1] = float("nan")
    g = step_geometry(h)
    assert g.n_nonfinite == 2 and math.isfinite(g.mean_relative) and math.isfinite(g.mean_cos)
    assert g.mean_cos == pytest.approx(1.0)


def test_def4_classes_on_a_hand_built_trajectory():
    e = torch.tensor([1.0, 0.0], dtype=torch.float64)
    steps = torch.tensor([1, 1, 1, 1, 10, 1, -10, 1], dtype=torch.float64)[:, None] * e
    h = torch.cat([torch.zeros(1, 2, dtype=torch.float64), torch.cumsum(steps, 0)])
    cls = classify_steps(h)
    names = [CLASS_NAMES[i] for i in cls.labels.tolist()]
    assert names == ["other", "structural", "structural", "structural", "substantive", "structural",
                     "corrective", "other"]
    assert cls.fractions["structural"] == pytest.approx(4 / 8)
    assert float(cls.mean) == pytest.approx(3.25)
    # batched across tokens (dim=1) gives the same labels per row
    hb = torch.stack([h, h])
    assert torch.equal(classify_steps(hb, dim=1).labels, torch.stack([cls.labels, cls.labels], 1))
    # a NaN step is labelled −1 and counted
    h2 = h.clone()
    h2[2, 0] = float("nan")
    c2 = classify_steps(h2)
    assert c2.n_nonfinite == 2 and c2.labels[1] == -1 and c2.labels[2] == -1


def test_reinit_like_is_seeded_leaves_the_model_and_global_rng_alone():
    torch.manual_seed(0)
    model = TinyLM([PreLNBlock(8) for _ in range(2)])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = torch.random.get_rng_state()
    a = reinit_like(model, torch.Generator().manual_seed(1))
    b = reinit_like(model, torch.Generator().manual_seed(1))
    c = reinit_like(model, torch.Generator().manual_seed(2))
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["blocks.0.fc1.weight"], sc["blocks.0.fc1.weight"])
    assert not torch.equal(sa["blocks.0.fc1.weight"], before["blocks.0.fc1.weight"])
    assert 0.01 < float(sa["pos"].std()) < 0.03  # a bare nn.Parameter gets N(0, 0.02²)


def test_controls_reuse_the_same_statistic():
    torch.manual_seed(0)
    model = TinyLM([PreLNBlock(8) for _ in range(2)])
    ids = torch.randint(0, 11, (6, 12), generator=torch.Generator().manual_seed(3))
    cmp = step_classes_with_controls(model, ids, layer="blocks.1", embed_layer="embed",
                                     generator=torch.Generator().manual_seed(4))
    emb = capture(model, ids, ["embed"]).states[0]
    assert torch.equal(cmp.embeddings.labels, classify_steps(emb, dim=1).labels)
    top = capture(model, ids, ["blocks.1"]).states[0]
    assert torch.equal(cmp.trained.labels, classify_steps(top, dim=1).labels)
    assert set(cmp.table) == set(CLASS_NAMES)
    for fr in (cmp.trained.fractions, cmp.embeddings.fractions, cmp.random_init.fractions):
        assert sum(fr.values()) == pytest.approx(1.0)
    assert cmp.max_gap == pytest.approx(max(abs(v[0] - v[i]) for v in cmp.table.values() for i in (1, 2)))


def _trajectory_from_steps(sizes):
    """(B, T, 2) with step t of row b of size sizes[b, t] along e1."""
    B, S = sizes.shape
    e = torch.tensor([1.0, 0.0], dtype=torch.float64)
    steps = sizes[..., None] * e
    return torch.cat([torch.zeros(B, 1, 2, dtype=torch.float64), torch.cumsum(steps, 1)], 1)


def test_def3_events_use_a_per_token_baseline():
    B = 8
    sizes = torch.ones(B, 3, dtype=torch.float64)
    sizes[:, 0] = 1 + 0.1 * torch.arange(B, dtype=torch.float64)
    sizes[3, 0] = 5.0                      # one big step onto token 2
    sizes[:, 1] = 10 + 0.1 * torch.arange(B, dtype=torch.float64)  # steps onto token 3: large but typical
    h = _trajectory_from_steps(sizes)
    tokens = torch.tensor([1, 2, 3, 4]).expand(B, 4)
    ev = implicit_reasoning_events(h, tokens, z=2.0)
    assert ev.events == [(3, 1)]
    col = sizes[:, 0]
    assert float(ev.z[3, 0]) == pytest.approx(float((5 - col.mean()) / col.std()), rel=1e-9)  # ≈ 2.43
    assert ev.n_no_baseline == B  # the steps onto token 4 all have size 1: no spread, no baseline
    # a raw threshold without a baseline would have flagged every step onto token 3 (size ≈ 10)
    assert not bool(ev.mask[:, 1].any())
    # restricting to structural tokens that never carry the event gives none
    assert implicit_reasoning_events(h, tokens, z=2.0, structural_ids=[3]).events == []
    pos = implicit_reasoning_events(h, tokens, z=2.0, by="position")
    assert pos.events == [(3, 1)]
    hn = h.clone()
    hn[0, 2, 0] = float("nan")
    assert implicit_reasoning_events(hn, tokens).n_nonfinite == 2
    with pytest.raises(ValueError, match="token_ids"):
        implicit_reasoning_events(h, tokens[:, :3])
    with pytest.raises(ValueError, match="by"):
        implicit_reasoning_events(h, tokens, by="type")
