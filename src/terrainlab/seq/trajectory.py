"""Hidden trajectories read out of any ``nn.Module`` with forward hooks (no edits to the model).

A pre-LN transformer's residual stream is an explicit Euler trajectory across depth,

    h_{l+1} = h_l + f_l(h_l),   l = 0 … L−1,   h_0 = the input embeddings

(He et al. 2016; Chen et al. 2018, "Neural Ordinary Differential Equations"), and at every depth the
positions t = 1 … T give a second axis — the trajectory across tokens, which for a recurrent model is
h_t = Φ(h_{t−1}, x_t). :func:`capture` records the output of each named module in one forward pass and
stacks them into a frozen :class:`HiddenTrajectory` of shape (L+1, B, T, d): index 0 is the first
named module (name the embedding module first to get h_0), index l the output of the l-th one.

Outputs that are tuples or lists (Hugging Face blocks return ``(hidden, attn_weights, …)``; ``nn.GRU``
returns ``(output, h_n)``) contribute their **first tensor**; Hugging Face ``ModelOutput`` objects (dict
subclasses) their first tensor value. A non-batch-first ``nn.GRU``/``nn.LSTM``/``nn.RNN`` output
(T, B, H) is transposed to (B, T, H) so every captured state reads (B, T, d).

Example:
    >>> import torch
    >>> from torch import nn
    >>> class Add(nn.Module):
    ...     def __init__(self, c): super().__init__(); self.c = c
    ...     def forward(self, h): return h + self.c
    >>> model = nn.Sequential(nn.Identity(), Add(1.0), Add(2.0))
    >>> tr = capture(model, torch.zeros(2, 3, 4), layers=["0", "1", "2"])
    >>> tr.states.shape, tr.states[:, 0, 0, 0].tolist(), tr.n_nonfinite
    (torch.Size([3, 2, 3, 4]), [0.0, 1.0, 3.0], (0, 0, 0))
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..core.validate import check_callable, check_instance

__all__ = ["HiddenTrajectory", "capture", "first_tensor", "resolve_layers", "token_trajectory"]


@dataclass(frozen=True)
class HiddenTrajectory:
    """Hidden states of one forward pass, stacked across depth.

    states:      (L+1, B, T, d) — ``states[l]`` is the output of ``layers[l]`` (detached unless
                 captured with ``keep_grad=True``).
    layers:      the module names, in the order of ``states``.
    n_nonfinite: per layer, the number of NaN/±inf entries (a NaN is reported here, never averaged).
    output:      what the model (or ``call``) returned, untouched.
    """

    states: torch.Tensor
    layers: tuple
    n_nonfinite: tuple
    output: object = None

    @property
    def has_nonfinite(self) -> bool:
        return any(n > 0 for n in self.n_nonfinite)

    @property
    def nonfinite_layers(self) -> tuple:
        """Names of the layers whose output holds a NaN or ±inf."""
        return tuple(name for name, n in zip(self.layers, self.n_nonfinite) if n > 0)

    def across_depth(self, position: int = -1) -> torch.Tensor:
        """(L+1, B, d): the residual-stream trajectory of token ``position`` across the layers."""
        return self.states[:, :, position]

    def across_tokens(self, layer: int | str = -1) -> torch.Tensor:
        """(B, T, d): the trajectory across token positions at one layer (index or name)."""
        if isinstance(layer, str):
            if layer not in self.layers:
                raise ValueError(f"layer must be one of {list(self.layers)}, got {layer!r}")
            layer = self.layers.index(layer)
        return self.states[layer]


def first_tensor(out, name: str = "output") -> torch.Tensor:
    """The tensor a module's output stands for: itself, the first tensor of a tuple/list, or the
    first tensor value of a dict-like output (Hugging Face ``ModelOutput``)."""
    if torch.is_tensor(out):
        return out
    if isinstance(out, dict):
        out = tuple(out.values())
    if isinstance(out, (tuple, list)):
        for o in out:
            if torch.is_tensor(o):
                return o
    raise ValueError(f"{name} holds no tensor (got {type(out).__name__})")


def resolve_layers(model: nn.Module, layers) -> list[str]:
    """Module names from a list of names (kept in the given order) or a regular expression (every
    module whose full name matches, in ``model.named_modules()`` order). ``ValueError`` listing the
    module names the model has when one is missing or the pattern matches nothing."""
    check_instance(model, "model", nn.Module, "an nn.Module")
    names = dict(model.named_modules())
    have = [n for n in names if n]

    def _missing(what):
        shown = ", ".join(have[:60]) + (f", … ({len(have)} in all)" if len(have) > 60 else "")
        return ValueError(f"layers: {what}; the model's modules are: {shown}")

    if isinstance(layers, str):
        if layers in names and layers:
            return [layers]
        try:
            pat = re.compile(layers)
        except re.error as e:
            raise ValueError(f"layers must be module names or a regular expression, got {layers!r} ({e})") from e
        found = [n for n in have if pat.fullmatch(n)]
        if not found:
            raise _missing(f"the pattern {layers!r} matches no module")
        return found
    if not isinstance(layers, Sequence) or not layers or not all(isinstance(n, str) for n in layers):
        raise ValueError(f"layers must be a non-empty list of module names or a pattern, got {layers!r}")
    missing = [n for n in layers if n not in names or not n]
    if missing:
        raise _missing(f"no module named {', '.join(repr(m) for m in missing)}")
    return list(layers)


def _batch_first(module: nn.Module, t: torch.Tensor) -> torch.Tensor:
    if isinstance(module, nn.RNNBase) and not module.batch_first and t.ndim == 3:
        return t.transpose(0, 1)
    return t


def capture(model: nn.Module, inputs, layers, *, call: Callable | None = None,
            keep_grad: bool = False) -> HiddenTrajectory:
    """Run ``model`` once and record the output of every named module.

    Args:
        model: any ``nn.Module`` (not modified; hooks are removed even if the forward raises).
        inputs: what the forward takes (a tensor of token ids, embeddings, a dict …).
        layers: a list of module names (``"embed", "blocks.0", …``) or a regular expression matched
            against the full names (``r"blocks\\.\\d+"``); name the embedding module first to get h_0.
        call: ``call(model, inputs)`` runs the forward when a plain ``model(inputs)`` will not
            (a Hugging Face model with ``attention_mask``: ``lambda m, x: m(**x)``).
        keep_grad: keep the autograd graph (no detach) so gradients can flow through the states.

    Returns:
        :class:`HiddenTrajectory` with states (L+1, B, T, d). The cost over a plain forward is one
        detach per layer and one stack.
    """
    names = resolve_layers(model, layers)
    if call is not None:
        check_callable(call, "call")
    mods = dict(model.named_modules())
    got: dict[str, torch.Tensor] = {}

    def make_hook(name):
        module = mods[name]

        def hook(_mod, _inp, out):
            t = _batch_first(module, first_tensor(out, f"the output of {name!r}"))
            got[name] = t if keep_grad else t.detach()

        return hook

    handles = [mods[n].register_forward_hook(make_hook(n)) for n in names]
    try:
        output = call(model, inputs) if call is not None else model(inputs)
    finally:
        for h in handles:
            h.remove()
    absent = [n for n in names if n not in got]
    if absent:
        raise ValueError(f"layers: {absent} did not run in the forward pass")
    shapes = {n: tuple(got[n].shape) for n in names}
    if len(set(shapes.values())) > 1:
        raise ValueError(f"layers must all output the same shape to be stacked, got {shapes}")
    states = torch.stack([got[n] for n in names])
    return HiddenTrajectory(states=states, layers=tuple(names), n_nonfinite=_count_nonfinite(states),
                            output=output)


def _count_nonfinite(states: torch.Tensor) -> tuple:
    """NaN/inf entries per layer. Fast path: one sum per layer (a NaN or inf makes it non-finite);
    only layers whose sum is not finite are counted entry by entry (a finite sum proves none)."""
    if not (states.is_floating_point() or states.is_complex()):
        return (0,) * states.shape[0]
    with torch.no_grad():
        flat = states.detach().flatten(1)
        suspect = (~torch.isfinite(flat.sum(1))).nonzero().flatten().tolist()
        counts = [0] * states.shape[0]
        for i in suspect:
            counts[i] = int((~torch.isfinite(flat[i])).sum())
    return tuple(counts)


def token_trajectory(model: nn.Module, inputs, layer: str, *, call: Callable | None = None) -> torch.Tensor:
    """(B, T, d): the trajectory across tokens of one module's output — for a recurrent model the
    hidden state h_t = Φ(h_{t−1}, x_t) at every position (name the ``nn.GRU``: its output sequence;
    a non-batch-first RNN is transposed to (B, T, H)).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> gru = nn.GRU(3, 5, batch_first=True)
        >>> token_trajectory(nn.Sequential(gru), torch.zeros(2, 7, 3), "0").shape
        torch.Size([2, 7, 5])
    """
    if not isinstance(layer, str):
        raise ValueError(f"layer must be a module name, got {layer!r}")
    return capture(model, inputs, [layer], call=call).states[0]

