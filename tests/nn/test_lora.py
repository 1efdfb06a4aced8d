"""Unit tests of terrainlab.nn.lora (LoRA layer, inject / merge, ΔW spectrum, principal angles)."""

import math

import pytest
import torch
from torch import nn

from terrainlab.nn.lora import (
    LoRALinear,
    delta_w_spectrum,
    inject_lora,
    merge_lora,
    principal_angles,
)


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(10, 7, dtype=torch.float64)
        self.act = nn.Tanh()
        self.out = nn.Linear(7, 3, dtype=torch.float64)

    def forward(self, x):
        return self.out(self.act(self.fc(x)))


def _randomise_lora(model, g):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, LoRALinear):
                m.lora_B.copy_(torch.randn(m.lora_B.shape, generator=g, dtype=m.lora_B.dtype))


@pytest.mark.parametrize("init", ["book", "peft"])
@pytest.mark.parametrize("r", [1, 2, 5])
def test_delta_zero_at_start_and_rank_at_most_r(init, r):
    g = torch.Generator().manual_seed(r)
    layer = LoRALinear(nn.Linear(10, 7, dtype=torch.float64), r=r, alpha=2.0, init=init, generator=g)
    assert float(layer.delta_weight().detach().abs().max()) == 0.0
    x = torch.randn(4, 10, generator=g, dtype=torch.float64)
    assert torch.equal(layer(x), layer.base(x))
    _randomise_lora(layer, g)
    dw = layer.delta_weight()
    assert dw.shape == (7, 10)
    assert int(torch.linalg.matrix_rank(dw)) == r
    assert torch.allclose(dw, 2.0 / r * layer.lora_B @ layer.lora_A)
    assert [n for n, p in layer.named_parameters() if p.requires_grad] == ["lora_A", "lora_B"]


def test_peft_init_bound():
    layer = LoRALinear(nn.Linear(100, 50), r=8, alpha=8, init="peft", generator=torch.Generator().manual_seed(0))
    assert float(layer.lora_A.detach().abs().max()) <= 1 / math.sqrt(100)
    assert float(layer.lora_A.detach().abs().max()) > 0.9 / math.sqrt(100)


def test_merge_equals_injected_output():
    g = torch.Generator().manual_seed(1)
    torch.manual_seed(0)
    net = _Net()
    inject_lora(net, ["fc", "out"], r=2, alpha=4.0, generator=g)
    assert isinstance(net.fc, LoRALinear) and isinstance(net.out, LoRALinear)
    assert sorted(n for n, p in net.named_parameters() if p.requires_grad) == [
        "fc.lora_A", "fc.lora_B", "out.lora_A", "out.lora_B"]
    _randomise_lora(net, g)
    x = torch.randn(5, 10, generator=g, dtype=torch.float64)
    y = net(x)
    w_expected = net.fc.base.weight + net.fc.delta_weight()
    merge_lora(net)
    assert type(net.fc) is nn.Linear and type(net.out) is nn.Linear
    assert torch.allclose(net.fc.weight, w_expected)
    assert torch.allclose(net(x), y, atol=1e-12)


def test_bad_input():
    net = _Net()
    with pytest.raises(ValueError, match="nope"):
        inject_lora(net, ["fc", "nope"], r=2, alpha=1.0)
    with pytest.raises(ValueError, match="act"):
        inject_lora(net, ["act"], r=2, alpha=1.0)
    with pytest.raises(ValueError, match="r must be"):
        inject_lora(net, ["out"], r=4, alpha=1.0)  # min(7, 3) = 3
    with pytest.raises(ValueError, match="target_names"):
        inject_lora(net, "fc", r=1, alpha=1.0)
    with pytest.raises(ValueError, match="alpha"):
        LoRALinear(nn.Linear(4, 4), r=1, alpha=0.0)
    with pytest.raises(ValueError, match="init"):
        LoRALinear(nn.Linear(4, 4), r=1, alpha=1.0, init="svd")
    with pytest.raises(ValueError, match="base"):
        LoRALinear(nn.Conv1d(1, 1, 1), r=1, alpha=1.0)
    with pytest.raises(ValueError, match="r must be"):
        LoRALinear(nn.Linear(4, 4), r=0, alpha=1.0)
    assert type(net.fc) is nn.Linear  # a refused injection changed nothing
    w = torch.zeros(3, 4)
    with pytest.raises(ValueError, match="zero"):
        delta_w_spectrum(w, w)
    with pytest.raises(ValueError, match="shape"):
        delta_w_spectrum(w, torch.zeros(4, 3))
    with pytest.raises(ValueError, match="U2"):
        principal_angles(torch.eye(3), torch.eye(4))
    with pytest.raises(ValueError, match="rank-deficient"):
        principal_angles(torch.ones(3, 2, dtype=torch.float64), torch.eye(3, dtype=torch.float64))


def test_delta_w_spectrum_and_angles():
    g = torch.Generator().manual_seed(2)
    u = torch.randn(20, 3, generator=g, dtype=torch.float64)
    v = torch.randn(3, 30, generator=g, dtype=torch.float64)
    w0 = torch.randn(20, 30, generator=g, dtype=torch.float64)
    s = delta_w_spectrum(w0, w0 + u @ v)
    assert s.singular_values.shape == (20,)
    assert float(s.singular_values[3:].max()) < 1e-10
    assert s.energy_top(3) == pytest.approx(1.0)
    assert 1.0 <= s.effective_rank <= 3.0
    assert s.frobenius == pytest.approx(float(torch.linalg.norm(u @ v)))
    gauss = delta_w_spectrum(w0, w0 + torch.randn(20, 30, generator=g, dtype=torch.float64))
    assert gauss.effective_rank > 15
    q = torch.linalg.qr(torch.randn(20, 4, generator=g, dtype=torch.float64)).Q
    assert float(principal_angles(q, q @ torch.randn(4, 4, generator=g, dtype=torch.float64)).max()) < 1e-6
    ang = principal_angles(torch.eye(4, dtype=torch.float64)[:, :2], torch.eye(4, dtype=torch.float64)[:, 2:])
    assert torch.allclose(ang, torch.full((2,), math.pi / 2, dtype=torch.float64))


@pytest.mark.parametrize("init", ["book", "peft"])
def test_peft_cross_check(init):
    peft = pytest.importorskip("peft")
    import copy

    torch.manual_seed(3)
    base = _Net()
    ours = copy.deepcopy(base)
    inject_lora(ours, ["fc"], r=3, alpha=6.0, init=init, generator=torch.Generator().manual_seed(4))
    _randomise_lora(ours, torch.Generator().manual_seed(5))
    config = peft.LoraConfig(r=3, lora_alpha=6.0, target_modules=["fc"], lora_dropout=0.0)
    theirs = peft.get_peft_model(copy.deepcopy(base), config)
    layer = theirs.base_model.model.fc
    with torch.no_grad():
        layer.lora_A["default"].weight.copy_(ours.fc.lora_A)
        layer.lora_B["default"].weight.copy_(ours.fc.lora_B)
    assert layer.scaling["default"] == pytest.approx(ours.fc.scaling)
    x = torch.randn(6, 10, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    assert torch.allclose(theirs(x), ours(x), atol=1e-12)
    assert torch.allclose(layer.get_delta_weight("default"), ours.fc.delta_weight(), atol=1e-12)
    assert float(ours.fc.delta_weight().abs().max()) > 0
