"""Low-rank adaptation (LoRA): a frozen linear layer plus a trainable rank-r update.

Hu et al. 2021, *LoRA: Low-Rank Adaptation of Large Language Models*, eq. (3): h = W₀x + ΔWx =
W₀x + BAx with B ∈ ℝ^{d×r}, A ∈ ℝ^{r×k}, r ≪ min(d, k), the update scaled by α/r.

Convention. Here, as in torch, a weight is stored (out, in) and y = x Wᵀ + b, so the adapted weight is

    W' = W + (α/r) · B A,   B: (out, r),   A: (r, in),

which is Hu et al.'s ordering and peft's (``lora_B.weight @ lora_A.weight``). The book writes the
row-vector form W'_book = W_book + (α/r) A_book B_book with W_book = Wᵀ (in, out); the two are the same
matrix transposed: A_book = Aᵀ (in, r), B_book = Bᵀ (r, out), and (α/r) A_book B_book = ((α/r) B A)ᵀ.

Initialisation (ΔW = 0 at the start in both): ``init="book"``: A ~ N(0, 1/r²) entrywise (the Gaussian
of Hu et al. §4.1, with peft's ``init_lora_weights="gaussian"`` scale 1/r), B = 0; ``init="peft"``:
peft's default (``init_lora_weights=True``): A ~ kaiming-uniform with a = √5, i.e. U(±1/√in), B = 0.

Also: :func:`inject_lora` / :func:`merge_lora` on a model, :func:`delta_w_spectrum` (singular values and
effective rank of W_ft − W_pre) and :func:`principal_angles` between two column spaces.

Example:
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> layer = LoRALinear(torch.nn.Linear(6, 4), r=2, alpha=4.0, generator=g)
    >>> float(layer.delta_weight().detach().abs().max())  # B = 0: no change at the start
    0.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

__all__ = [
    "LORA_INITS",
    "LoRALinear",
    "inject_lora",
    "merge_lora",
    "DeltaSpectrum",
    "delta_w_spectrum",
    "principal_angles",
]

LORA_INITS = ("book", "peft")


def _check_r_alpha(r, alpha, in_features: int, out_features: int) -> None:
    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
        raise ValueError(f"r must be a positive int, got {r!r}")
    if r > min(in_features, out_features):
        raise ValueError(f"r must be ≤ min(in_features, out_features) = {min(in_features, out_features)}, got {r}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"alpha must be a positive finite number, got {alpha!r}")


class LoRALinear(nn.Module):
    """``base`` (an ``nn.Linear``, frozen) plus the rank-``r`` update (α/r)·B A (see the module docstring
    for the convention and the two initialisations).

    ``forward(x) = base(x) + (α/r) · (x Aᵀ) Bᵀ``. ``lora_A`` (r, in) and ``lora_B`` (out, r) are the only
    trainable parameters; they take the base weight's dtype and device.

    Raises:
        ValueError: ``base`` not an ``nn.Linear``; ``r`` not an int in [1, min(in, out)]; ``alpha`` not a
            positive finite number; ``init`` not "book" or "peft".
    """

    def __init__(self, base: nn.Linear, r: int, alpha: float, init: str = "book",
                 generator: torch.Generator | None = None):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise ValueError(f"base must be a torch.nn.Linear, got {type(base).__name__}")
        _check_r_alpha(r, alpha, base.in_features, base.out_features)
        if init not in LORA_INITS:
            raise ValueError(f"init must be one of {LORA_INITS}, got {init!r}")
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.r, self.alpha, self.init = r, float(alpha), init
        self.scaling = self.alpha / r
        w = base.weight
        opts = {"dtype": w.dtype, "device": "cpu"}
        if init == "book":
            a = torch.randn(r, base.in_features, generator=generator, **opts) / r
        else:  # kaiming_uniform_(a=√5): bound = √(6 / ((1 + 5) · fan_in)) = 1/√fan_in
            bound = 1.0 / math.sqrt(base.in_features)
            a = (2 * torch.rand(r, base.in_features, generator=generator, **opts) - 1) * bound
        self.lora_A = nn.Parameter(a.to(w.device))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, dtype=w.dtype, device=w.device))

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    def delta_weight(self) -> torch.Tensor:
        """ΔW = (α/r) · B A, shape (out, in), rank ≤ r."""
        return self.scaling * (self.lora_B @ self.lora_A)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.scaling * ((x @ self.lora_A.mT) @ self.lora_B.mT)

    def merged(self) -> nn.Linear:
        """A plain ``nn.Linear`` with weight W + ΔW and the base's bias (a new module; nothing shared)."""
        out = nn.Linear(self.in_features, self.out_features, bias=self.base.bias is not None,
                        dtype=self.base.weight.dtype, device=self.base.weight.device)
        with torch.no_grad():
            out.weight.copy_(self.base.weight + self.delta_weight())
            if self.base.bias is not None:
                out.bias.copy_(self.base.bias)
        return out

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha}, init={self.init!r}"


def _set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, leaf = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, leaf, module)


def inject_lora(model: nn.Module, target_names, r: int, alpha: float, init: str = "book",
                generator: torch.Generator | None = None, freeze_base: bool = True) -> nn.Module:
    """Replace each ``nn.Linear`` named in ``target_names`` (dotted names as in ``named_modules()``) by a
    :class:`LoRALinear` around it, in place; with ``freeze_base`` every other parameter of ``model`` is
    frozen too, so only the LoRA factors train. Returns ``model``.

    Raises:
        ValueError: ``target_names`` empty or a str; names missing from ``model`` or naming a module that
            is not an ``nn.Linear`` (all such names listed); ``r`` > min(in, out) of a target; bad
            ``alpha`` / ``init`` (see :class:`LoRALinear`).
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(target_names, str) or not target_names:
        raise ValueError(f"target_names must be a non-empty list of module names, got {target_names!r}")
    names = list(target_names)
    modules = dict(model.named_modules())
    missing = [n for n in names if n not in modules]
    if missing:
        raise ValueError(f"target_names not found in model: {missing}")
    not_linear = [n for n in names if not isinstance(modules[n], nn.Linear)]
    if not_linear:
        raise ValueError(f"target_names must name nn.Linear modules; not Linear: "
                         f"{[(n, type(modules[n]).__name__) for n in not_linear]}")
    for n in names:
        _check_r_alpha(r, alpha, modules[n].in_features, modules[n].out_features)
    if init not in LORA_INITS:
        raise ValueError(f"init must be one of {LORA_INITS}, got {init!r}")
    if freeze_base:
        for p in model.parameters():
            p.requires_grad_(False)
    for n in names:
        _set_submodule(model, n, LoRALinear(modules[n], r, alpha, init=init, generator=generator))
    return model


def merge_lora(model: nn.Module) -> nn.Module:
    """Replace every :class:`LoRALinear` in ``model`` by a plain ``nn.Linear`` with weight W + ΔW (in
    place; same outputs). Returns ``model`` (or the merged layer when ``model`` itself is a LoRALinear)."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(model, LoRALinear):
        return model.merged()
    targets = [n for n, m in model.named_modules() if isinstance(m, LoRALinear)]
    for n in targets:
        _set_submodule(model, n, model.get_submodule(n).merged())
    return model


@dataclass(frozen=True)
class DeltaSpectrum:
    """The spectrum of ΔW = W_ft − W_pre: ``singular_values`` (descending, float64), ``effective_rank``
    (entropy effective rank, Roy & Vetterli 2007: exp H(σ/Σσ)), ``stable_rank`` (‖ΔW‖_F² / ‖ΔW‖₂²),
    ``energy`` (cumulative Σ_{i≤k} σ_i² / Σ σ_i², k = 1..min(out, in)) and ``frobenius`` (‖ΔW‖_F)."""

    singular_values: torch.Tensor
    effective_rank: float
    stable_rank: float
    energy: torch.Tensor
    frobenius: float

    def energy_top(self, r: int) -> float:
        """Fraction of ‖ΔW‖_F² in the top ``r`` singular values."""
        if isinstance(r, bool) or not isinstance(r, int) or not 1 <= r <= self.energy.numel():
            raise ValueError(f"r must be an int in [1, {self.energy.numel()}], got {r!r}")
        return float(self.energy[r - 1])


def delta_w_spectrum(W_pre: torch.Tensor, W_ft: torch.Tensor) -> DeltaSpectrum:
    """Singular values and effective ranks of ΔW = ``W_ft`` − ``W_pre`` (Hu et al. 2021 §7 ask how
    low-rank the fine-tuning update is; Aghajanyan et al. 2020 its intrinsic dimension).

    Raises:
        ValueError: either not a 2-D floating tensor, shapes differ, non-finite entries, or ΔW = 0.

    Example:
        >>> W = torch.zeros(3, 4, dtype=torch.float64)
        >>> s = delta_w_spectrum(W, W + torch.outer(torch.ones(3), torch.arange(4.0)).double())
        >>> round(s.effective_rank, 6), round(s.energy_top(1), 6)
        (1.0, 1.0)
    """
    for name, w in (("W_pre", W_pre), ("W_ft", W_ft)):
        if not torch.is_tensor(w) or w.ndim != 2 or not torch.is_floating_point(w):
            raise ValueError(f"{name} must be a 2-D floating tensor, got "
                             f"{tuple(w.shape) if torch.is_tensor(w) else type(w).__name__}")
        if not bool(torch.isfinite(w).all()):
            raise ValueError(f"{name} must be finite")
    if W_pre.shape != W_ft.shape:
        raise ValueError(f"W_pre and W_ft must have the same shape, got {tuple(W_pre.shape)} and {tuple(W_ft.shape)}")
    d = (W_ft.detach().to(torch.float64) - W_pre.detach().to(W_ft.device, torch.float64))
    s = torch.linalg.svdvals(d).cpu()
    total = float((s**2).sum())
    if not total > 0:
        raise ValueError("W_ft − W_pre is zero: no spectrum to measure")
    p = s[s > 0] / s.sum()
    erank = float(math.exp(float(-(p * p.log()).sum())))
    return DeltaSpectrum(singular_values=s, effective_rank=erank, stable_rank=float(total / s[0] ** 2),
                         energy=torch.cumsum(s**2, 0) / total, frobenius=math.sqrt(total))


def principal_angles(U1: torch.Tensor, U2: torch.Tensor) -> torch.Tensor:
    """Principal angles (radians, ascending, min(k1, k2) of them) between the column spaces of ``U1``
    (n, k1) and ``U2`` (n, k2) (Björck & Golub 1973): orthonormalise both by QR, then θ_i = arccos σ_i(Q1ᵀQ2).

    Raises:
        ValueError: not 2-D floating tensors with the same number of rows, or a rank-deficient input.

    Example:
        >>> e = torch.eye(3, dtype=torch.float64)
        >>> [round(float(t), 6) for t in principal_angles(e[:, :2], e[:, 1:])]
        [0.0, 1.570796]
    """
    for name, u in (("U1", U1), ("U2", U2)):
        if not torch.is_tensor(u) or u.ndim != 2 or not torch.is_floating_point(u) or u.shape[1] == 0:
            raise ValueError(f"{name} must be a 2-D floating tensor with ≥ 1 column, got "
                             f"{tuple(u.shape) if torch.is_tensor(u) else type(u).__name__}")
        if u.shape[1] > u.shape[0]:
            raise ValueError(f"{name} has more columns than rows ({tuple(u.shape)}): its columns cannot be independent")
    if U1.shape[0] != U2.shape[0]:
        raise ValueError(f"U1 and U2 must have the same number of rows, got {U1.shape[0]} and {U2.shape[0]}")
    qs = []
    for name, u in (("U1", U1), ("U2", U2)):
        q, rr = torch.linalg.qr(u.detach().to(torch.float64))
        diag = rr.diagonal().abs()
        if float(diag.min()) <= 1e-12 * max(float(diag.max()), 1e-300):
            raise ValueError(f"{name} is rank-deficient: its columns do not span a {u.shape[1]}-dimensional space")
        qs.append(q)
    cos = torch.linalg.svdvals(qs[0].mT @ qs[1].to(qs[0].device)).clamp(-1.0, 1.0)
    return torch.arccos(cos).sort().values
