"""Hidden-unit permutations leave an MLP's function unchanged; weight matching recovers a permuted copy."""

import pytest
import torch

from terrainlab.landscape.permutation import hidden_widths, permute_hidden, weight_matching


def _mlp(seed, widths=(5, 7, 6, 3), act=torch.nn.ReLU):
    torch.manual_seed(seed)
    layers = []
    for i in range(len(widths) - 1):
        layers.append(torch.nn.Linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2:
            layers.append(act())
    return torch.nn.Sequential(*layers).double()


def test_permuting_keeps_the_function_and_moves_the_parameters():
    net = _mlp(0)
    g = torch.Generator().manual_seed(1)
    perms = [torch.randperm(w, generator=g) for w in hidden_widths(net)]
    new = permute_hidden(net, perms)
    x = torch.randn(20, 5, dtype=torch.float64)
    assert torch.allclose(net(x), new(x), atol=1e-12)
    d = torch.nn.utils.parameters_to_vector(net.parameters()) - torch.nn.utils.parameters_to_vector(new.parameters())
    assert d.norm() > 1.0
    assert not torch.equal(net[0].weight, new[0].weight)  # the original is untouched, the copy moved


@pytest.mark.parametrize("act", [torch.nn.ReLU, torch.nn.Tanh])
def test_weight_matching_recovers_a_permuted_copy_exactly(act):
    net = _mlp(2, widths=(6, 9, 8, 7, 4), act=act)
    g = torch.Generator().manual_seed(3)
    perms = [torch.randperm(w, generator=g) for w in hidden_widths(net)]
    b = permute_hidden(net, perms)
    back = permute_hidden(b, weight_matching(net, b, generator=torch.Generator().manual_seed(0)))
    for p, q in zip(net.parameters(), back.parameters()):
        assert torch.equal(p, q)


def test_weight_matching_increases_the_inner_product_of_independent_nets():
    a, b = _mlp(4, widths=(6, 20, 20, 3)), _mlp(5, widths=(6, 20, 20, 3))
    va = torch.nn.utils.parameters_to_vector(a.parameters()).detach()
    before = float(va @ torch.nn.utils.parameters_to_vector(b.parameters()).detach())
    al = permute_hidden(b, weight_matching(a, b))
    after = float(va @ torch.nn.utils.parameters_to_vector(al.parameters()).detach())
    assert after > before
    x = torch.randn(10, 6, dtype=torch.float64)
    assert torch.allclose(b(x), al(x), atol=1e-12)


def test_bad_inputs_name_the_argument():
    net = _mlp(0)
    with pytest.raises(ValueError, match="^model must be an nn.Sequential"):
        permute_hidden(torch.nn.Linear(3, 3), [])
    with pytest.raises(ValueError, match="^perms must be a list of 2"):
        permute_hidden(net, [torch.arange(7)])
    with pytest.raises(ValueError, match=r"^perms\[1\] must be a permutation"):
        permute_hidden(net, [torch.arange(7), torch.zeros(6, dtype=torch.long)])
    with pytest.raises(ValueError, match="^model must have at least two"):
        hidden_widths(torch.nn.Sequential(torch.nn.Linear(2, 2)))
    with pytest.raises(ValueError, match="^model must hold no parameterised module"):
        hidden_widths(torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.LayerNorm(3), torch.nn.Linear(3, 2)))
    with pytest.raises(ValueError, match="^model_a and model_b must have the same layer shapes"):
        weight_matching(net, _mlp(1, widths=(5, 8, 6, 3)))
    with pytest.raises(ValueError, match="^max_sweeps must"):
        weight_matching(net, net, max_sweeps=0)
    with pytest.raises(ValueError, match="^generator must"):
        weight_matching(net, net, generator=3)
