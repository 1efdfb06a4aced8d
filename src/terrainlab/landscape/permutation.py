"""Permutation symmetry of an MLP's hidden units, and weight matching (Git Re-Basin).

An MLP ``nn.Sequential(Linear, act, Linear, act, …, Linear)`` with elementwise activations computes
the same function after its hidden units are permuted: for layer l with permutation π_l,

    W_l ← W_l[π_l, π_{l−1}],   b_l ← b_l[π_l]     (π_{−1} = π_L = identity: inputs, outputs fixed)

:func:`permute_hidden` applies such permutations (to a copy). :func:`weight_matching` finds the
permutations of model B's hidden units that bring its weights closest to model A's,

    max_π Σ_l ⟨W_l^A, W_l^B[π_l, π_{l−1}]⟩ + ⟨b_l^A, b_l^B[π_l]⟩,

by coordinate ascent: one linear assignment problem per hidden layer
(``scipy.optimize.linear_sum_assignment``) with the neighbouring layers' permutations held fixed,
sweeping until no permutation changes (Ainsworth, Hayase & Srinivasa 2023, "Git Re-Basin: merging
models modulo permutation symmetries", ICLR, Algorithm 1).

Example (a permuted copy is recovered exactly):
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> a = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    >>> b = permute_hidden(a, [torch.randperm(8)])
    >>> x = torch.randn(5, 4)
    >>> bool(torch.allclose(a(x), b(x), atol=1e-6)), bool(torch.equal(a[0].weight, b[0].weight))
    (True, False)
    >>> back = permute_hidden(b, weight_matching(a, b))
    >>> bool(torch.equal(back[0].weight, a[0].weight))
    True
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from terrainlab.core.validate import check_int

__all__ = ["hidden_widths", "permute_hidden", "weight_matching"]


def _linears(model, name: str) -> list[nn.Linear]:
    if not isinstance(model, nn.Sequential):
        raise ValueError(f"{name} must be an nn.Sequential of nn.Linear layers and activations, "
                         f"got {type(model).__name__}")
    lins = [m for m in model if isinstance(m, nn.Linear)]
    for m in model:
        if not isinstance(m, nn.Linear) and any(True for _ in m.parameters()):
            raise ValueError(f"{name} must hold no parameterised module other than nn.Linear "
                             f"(got {type(m).__name__}); only elementwise activations may sit between layers")
    if len(lins) < 2:
        raise ValueError(f"{name} must have at least two nn.Linear layers (one hidden layer), got {len(lins)}")
    for i in range(1, len(lins)):
        if lins[i].in_features != lins[i - 1].out_features:
            raise ValueError(f"{name}: layer {i} takes {lins[i].in_features} inputs but layer {i - 1} "
                             f"gives {lins[i - 1].out_features}")
    return lins


def hidden_widths(model: nn.Sequential) -> list[int]:
    """The widths of the hidden layers (outputs of every ``nn.Linear`` but the last)."""
    return [m.out_features for m in _linears(model, "model")[:-1]]


def _check_perms(perms, widths: list[int]) -> list[torch.Tensor]:
    if not isinstance(perms, (list, tuple)) or len(perms) != len(widths):
        raise ValueError(f"perms must be a list of {len(widths)} permutations (one per hidden layer), got {perms!r}")
    out = []
    for i, (p, w) in enumerate(zip(perms, widths)):
        p = torch.as_tensor(p)
        if p.dtype not in (torch.int64, torch.int32) or p.shape != (w,) or not torch.equal(
                torch.sort(p).values, torch.arange(w, dtype=p.dtype)):
            raise ValueError(f"perms[{i}] must be a permutation of range({w}) as an integer tensor")
        out.append(p.long())
    return out


def permute_hidden(model: nn.Sequential, perms) -> nn.Sequential:
    """A copy of ``model`` whose hidden units are permuted: new unit i of hidden layer l is old unit
    ``perms[l][i]`` (incoming weights, bias and outgoing weights move together). The function is
    unchanged; the parameter vector moves."""
    lins = _linears(model, "model")
    perms = _check_perms(perms, [m.out_features for m in lins[:-1]])
    out = copy.deepcopy(model)
    new = [m for m in out if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for i, m in enumerate(new):
            w = m.weight
            if i < len(perms):
                w = w[perms[i]]
                if m.bias is not None:
                    m.bias.copy_(m.bias[perms[i]])
            if i > 0:
                w = w[:, perms[i - 1]]
            m.weight.copy_(w)
    return out


def weight_matching(model_a: nn.Sequential, model_b: nn.Sequential, *, max_sweeps: int = 100,
                    generator: torch.Generator | None = None) -> list[torch.Tensor]:
    """Permutations of ``model_b``'s hidden units that maximise Σ_l ⟨W_l^A, W_l^B permuted⟩ (+ biases);
    ``permute_hidden(model_b, result)`` is B aligned to A. Layers are visited in a random order each
    sweep (``generator``; fixed order 0, 1, … when None) until a sweep changes nothing or
    ``max_sweeps`` sweeps are done."""
    from scipy.optimize import linear_sum_assignment

    la, lb = _linears(model_a, "model_a"), _linears(model_b, "model_b")
    if [(m.in_features, m.out_features) for m in la] != [(m.in_features, m.out_features) for m in lb]:
        raise ValueError("model_a and model_b must have the same layer shapes")
    max_sweeps = check_int(max_sweeps, "max_sweeps", minimum=1)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    W_a = [m.weight.detach().double() for m in la]
    W_b = [m.weight.detach().double() for m in lb]
    b_a = [m.bias.detach().double() if m.bias is not None else None for m in la]
    b_b = [m.bias.detach().double() if m.bias is not None else None for m in lb]
    L = len(la) - 1  # hidden layers
    perms = [torch.arange(m.out_features) for m in la[:-1]]
    for _ in range(max_sweeps):
        changed = False
        order = torch.randperm(L, generator=generator).tolist() if generator is not None else list(range(L))
        for l in order:
            wb_in = W_b[l] if l == 0 else W_b[l][:, perms[l - 1]]
            C = W_a[l] @ wb_in.T
            if b_a[l] is not None and b_b[l] is not None:
                C = C + torch.outer(b_a[l], b_b[l])
            wb_out = W_b[l + 1] if l + 1 == L else W_b[l + 1][perms[l + 1]]
            C = C + W_a[l + 1].T @ wb_out
            _, col = linear_sum_assignment(C.numpy(), maximize=True)
            new = torch.as_tensor(col, dtype=torch.long)
            if not torch.equal(new, perms[l]):
                # accept only a strict improvement (ties would cycle)
                if float(C[torch.arange(len(new)), new].sum()) > float(C[torch.arange(len(new)), perms[l]].sum()) + 1e-12:
                    perms[l] = new
                    changed = True
        if not changed:
            break
    return perms
