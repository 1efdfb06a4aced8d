"""Step geometry of hidden trajectories, the Def-4 step classes with their controls, and Def-3 events.

For a trajectory h_0, h_1, … (across depth or across tokens) with steps Δ_t = h_t − h_{t−1}:

    relative step size   r_t = ‖Δ_t‖ / ‖h_{t−1}‖          (≪ 1 is the regime where a residual
                                                          layer reads as a small Euler step)
    step cosine          cos α_t = ⟨Δ_t, Δ_{t−1}⟩ / (‖Δ_t‖ ‖Δ_{t−1}‖)
    discrete curvature   κ_t = 2 α_t / (‖Δ_{t−1}‖ + ‖Δ_t‖)  (turning angle per unit arc length;
                                                          0 on a straight line)

Def 4 of the monograph's chapter 7 (geometric step classes; its thresholds as in the book's
``classify_steps(h, k_sigma=1.0, cos_struct=0.9, cos_corr=0.0)``), with m, s the mean and standard
deviation of ‖Δ‖ over the trajectory:

    substantive  ‖Δ_t‖ > m + k_sigma·s  and  cos α_t ≥ cos_corr (or undefined, the first step)
    corrective   ‖Δ_t‖ > m + k_sigma·s  and  cos α_t < cos_corr
    structural   ‖Δ_t‖ ≤ m              and  cos α_t ≥ cos_struct
    other        everything else;  nonfinite: a step with a NaN/inf (counted, never averaged)

The book forgets the controls that decide whether the classes say anything about "reasoning":
the same statistic on (i) the input embeddings alone and (ii) the same architecture at random
initialisation (:func:`step_classes_with_controls`, :func:`reinit_like`). Def 3 (implicit reasoning: a
large step) gets a baseline: a step is an event when its size is more than ``z`` standard deviations
above the mean of the steps at the same token id (``by="token"``, the book's §7.3 fix) or at the same
position (``by="position"``) across the batch (:func:`implicit_reasoning_events`).

Example:
    >>> import torch
    >>> h = torch.cumsum(torch.ones(5, 3), 0)          # a straight line, unit steps along (1,1,1)
    >>> g = step_geometry(h)
    >>> torch.allclose(g.norm, torch.full((4,), 3 ** 0.5)), g.cos.tolist() == [1.0] * 3, float(g.curvature.abs().max())
    (True, True, 0.0)
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..core.validate import check_choice, check_instance, check_int, check_number, check_tensor
from .trajectory import capture

__all__ = [
    "CLASS_NAMES", "ImplicitEvents", "StepClassComparison", "StepClasses", "StepGeometry",
    "classify_steps", "implicit_reasoning_events", "reinit_like", "step_classes_with_controls",
    "step_geometry",
]

CLASS_NAMES = ("other", "substantive", "structural", "corrective")
NONFINITE = -1


@dataclass(frozen=True)
class StepGeometry:
    """Geometry of a batch of trajectories; the step axis is axis 0 of every field.

    norm (n−1, …): ‖Δ_t‖.  relative (n−1, …): ‖Δ_t‖/‖h_{t−1}‖.  cos (n−2, …): cosine between
    consecutive steps.  curvature (n−2, …): turning angle per unit arc length.  mean_relative,
    mean_cos, mean_curvature: nan-aware means over everything finite.  n_nonfinite: steps with a
    NaN/inf norm (excluded from the means, never silently averaged).
    """

    norm: torch.Tensor
    relative: torch.Tensor
    cos: torch.Tensor
    curvature: torch.Tensor
    mean_relative: float
    mean_cos: float
    mean_curvature: float
    n_nonfinite: int


def _nanmean(x: torch.Tensor) -> float:
    x = x[torch.isfinite(x)]
    return float(x.mean()) if x.numel() else float("nan")


def step_geometry(states: torch.Tensor, *, dim: int = 0) -> StepGeometry:
    """Step sizes, cosines and curvature of trajectories ``states`` (…, d) whose step axis is ``dim``
    (0 for a :class:`~terrainlab.seq.HiddenTrajectory`'s (L+1, B, T, d) states across depth; 1 for
    (B, T, d) across tokens). The last axis is the feature axis; results put the step axis first."""
    check_tensor(states, "states", min_ndim=2)
    nd = states.ndim
    check_int(dim, "dim", minimum=-nd, maximum=nd - 2)
    h = states.movedim(dim, 0)
    if h.shape[0] < 2:
        raise ValueError(f"states must have at least 2 points along dim={dim}, got shape {tuple(states.shape)}")
    d = h[1:] - h[:-1]
    norm = torch.linalg.vector_norm(d, dim=-1)
    relative = norm / torch.linalg.vector_norm(h[:-1], dim=-1)
    dot = (d[1:] * d[:-1]).sum(-1)
    cos = (dot / (norm[1:] * norm[:-1])).clamp(-1.0, 1.0)
    curvature = 2 * torch.arccos(cos) / (norm[1:] + norm[:-1])
    return StepGeometry(norm=norm, relative=relative, cos=cos, curvature=curvature,
                        mean_relative=_nanmean(relative), mean_cos=_nanmean(cos),
                        mean_curvature=_nanmean(curvature),
                        n_nonfinite=int((~torch.isfinite(norm)).sum()))


@dataclass(frozen=True)
class StepClasses:
    """Def-4 classes of every step: ``labels`` (n−1, …) int64, an index into :data:`CLASS_NAMES`
    (−1 for a nonfinite step); ``fractions`` maps each class name to its share of the finite steps;
    ``threshold_large`` (…) = m + k_sigma·s and ``mean`` (…) = m per trajectory; ``n_nonfinite``."""

    labels: torch.Tensor
    fractions: dict
    mean: torch.Tensor
    threshold_large: torch.Tensor
    n_nonfinite: int
    k_sigma: float
    cos_struct: float
    cos_corr: float


def classify_steps(states: torch.Tensor, *, dim: int = 0, k_sigma: float = 1.0, cos_struct: float = 0.9,
                   cos_corr: float = 0.0) -> StepClasses:
    """Def 4's geometric step classes (see the module docstring) of the trajectories in ``states``;
    m and s are taken per trajectory, over its finite steps (nan-aware)."""
    check_number(k_sigma, "k_sigma", minimum=0)
    check_number(cos_struct, "cos_struct", minimum=-1, maximum=1)
    check_number(cos_corr, "cos_corr", minimum=-1, maximum=1)
    g = step_geometry(states, dim=dim)
    norm = g.norm
    finite = torch.isfinite(norm)
    cnt = finite.sum(0)
    z = torch.where(finite, norm, torch.zeros_like(norm))
    m = z.sum(0) / cnt
    var = (torch.where(finite, norm - m, torch.zeros_like(norm)) ** 2).sum(0) / (cnt - 1).clamp(min=1)
    thr = m + k_sigma * var.sqrt()
    cos = torch.cat([torch.full_like(norm[:1], float("nan")), g.cos])  # the first step has no cosine
    large = norm > thr
    labels = torch.zeros(norm.shape, dtype=torch.long, device=norm.device)
    labels[large & ~(cos < cos_corr)] = 1
    labels[large & (cos < cos_corr)] = 3
    labels[(norm <= m) & (cos >= cos_struct)] = 2
    labels[~finite] = NONFINITE
    n_fin = int(finite.sum())
    fractions = {name: (float((labels == i).sum()) / n_fin if n_fin else float("nan"))
                 for i, name in enumerate(CLASS_NAMES)}
    return StepClasses(labels=labels, fractions=fractions, mean=m, threshold_large=thr,
                       n_nonfinite=int((~finite).sum()), k_sigma=float(k_sigma),
                       cos_struct=float(cos_struct), cos_corr=float(cos_corr))


def reinit_like(model: nn.Module, generator: torch.Generator) -> nn.Module:
    """A deep copy of ``model`` at random initialisation: every submodule's own ``reset_parameters()``
    (PyTorch's default initialisation of that layer), run with the global RNG seeded from
    ``generator`` inside ``torch.random.fork_rng`` — so the global random state is the same after the
    call. Parameters owned by no module with ``reset_parameters`` are redrawn N(0, 0.02²) from
    ``generator`` (GPT-2's initialisation; Radford et al. 2019). Architecture, dtype, device and mode
    are those of ``model``; ``model`` itself is untouched."""
    check_instance(model, "model", nn.Module, "an nn.Module")
    check_instance(generator, "generator", torch.Generator, "a torch.Generator")
    new = copy.deepcopy(model)
    seed = int(torch.randint(0, 2 ** 62, (1,), generator=generator, device=generator.device))
    covered = set()
    cuda = sorted({p.device.index or 0 for p in new.parameters() if p.is_cuda})
    with torch.random.fork_rng(devices=cuda), torch.no_grad():
        torch.manual_seed(seed)
        for mod in new.modules():
            if callable(getattr(mod, "reset_parameters", None)):
                mod.reset_parameters()
                covered.update(id(p) for p in mod.parameters(recurse=False))
        for p in new.parameters():
            if id(p) not in covered:
                w = torch.randn(p.shape, generator=generator, device=generator.device, dtype=torch.float64)
                p.copy_((0.02 * w).to(p.dtype))
    return new


@dataclass(frozen=True)
class StepClassComparison:
    """Def-4 classes of the trained model and its two controls (each a :class:`StepClasses`), the
    class fractions side by side (``table``: class → (trained, embeddings, random_init)), and the
    largest absolute difference of a fraction between the trained model and either control."""

    trained: StepClasses
    embeddings: StepClasses
    random_init: StepClasses
    table: dict
    max_gap: float


def step_classes_with_controls(model: nn.Module, inputs, *, layer: str, embed_layer: str,
                               generator: torch.Generator, call: Callable | None = None,
                               k_sigma: float = 1.0, cos_struct: float = 0.9,
                               cos_corr: float = 0.0) -> StepClassComparison:
    """Def-4 classes of the steps across tokens at ``layer`` (B, T, d), against (i) the same statistic
    on the embedding sequence (output of ``embed_layer``) and (ii) ``layer`` of :func:`reinit_like`
    ``(model, generator)`` on the same inputs. If a control reproduces the classes, the classes
    measure the tokens (or the architecture), not what the model learned."""
    kw = dict(dim=1, k_sigma=k_sigma, cos_struct=cos_struct, cos_corr=cos_corr)
    tr = capture(model, inputs, [embed_layer, layer], call=call)
    rand = capture(reinit_like(model, generator), inputs, [layer], call=call)
    a = classify_steps(tr.states[1], **kw)
    b = classify_steps(tr.states[0], **kw)
    c = classify_steps(rand.states[0], **kw)
    table = {k: (a.fractions[k], b.fractions[k], c.fractions[k]) for k in CLASS_NAMES}
    gaps = [abs(v[0] - v[i]) for v in table.values() for i in (1, 2)]
    return StepClassComparison(trained=a, embeddings=b, random_init=c, table=table,
                               max_gap=max(gaps))


@dataclass(frozen=True)
class ImplicitEvents:
    """Def-3 events. ``z`` (B, T−1): the z-score of step t (h_t − h_{t−1}, the step onto token t)
    against its group's baseline (NaN where there is none); ``mask`` (B, T−1) bool: events;
    ``events``: list of (b, t) with t the token position the step lands on; ``n_no_baseline``: finite
    steps whose group had < 2 finite steps or zero spread; ``n_nonfinite``: NaN/inf steps."""

    z: torch.Tensor
    mask: torch.Tensor
    events: list
    n_no_baseline: int
    n_nonfinite: int
    by: str
    threshold: float


def implicit_reasoning_events(h: torch.Tensor, token_ids: torch.Tensor, *, z: float = 2.0, by: str = "token",
                              structural_ids=None) -> ImplicitEvents:
    """Def 3 with a baseline: the step Δ_t = h_t − h_{t−1} onto token t is an event when
    (‖Δ_t‖ − μ_g)/σ_g > ``z``, with μ_g, σ_g the mean and standard deviation of the step sizes of its
    group g across the batch — the same token id (``by="token"``) or the same position
    (``by="position"``). ``structural_ids`` (optional) restricts events to steps landing on those
    tokens ("so", "then"), as Def 3 literally asks.

    Args:
        h: (B, T, d) trajectory across tokens at one layer.  token_ids: (B, T) the tokens.
    """
    check_tensor(h, "h", ndim=3)
    if not torch.is_tensor(token_ids) or token_ids.shape != h.shape[:2] or token_ids.is_floating_point():
        raise ValueError(f"token_ids must be an integer tensor of shape {tuple(h.shape[:2])}, got "
                         f"{tuple(token_ids.shape) if torch.is_tensor(token_ids) else type(token_ids).__name__}")
    check_number(z, "z")
    check_choice(by, "by", ("token", "position"))
    if h.shape[1] < 2:
        raise ValueError(f"h must have at least 2 token positions, got shape {tuple(h.shape)}")
    norm = torch.linalg.vector_norm(h[:, 1:] - h[:, :-1], dim=-1).to(torch.float64)
    tok = token_ids[:, 1:]
    key = tok if by == "token" else torch.arange(tok.shape[1], device=tok.device).expand_as(tok)
    finite = torch.isfinite(norm)
    groups, inv = torch.unique(key, return_inverse=True)
    G = groups.numel()
    w = finite.to(norm.dtype).flatten()
    x = torch.where(finite, norm, torch.zeros_like(norm)).flatten()
    cnt = torch.zeros(G, dtype=norm.dtype, device=norm.device).index_add_(0, inv.flatten(), w)
    mu = torch.zeros_like(cnt).index_add_(0, inv.flatten(), x) / cnt.clamp(min=1)
    dev = torch.where(finite.flatten(), x - mu[inv.flatten()], torch.zeros_like(x))
    var = torch.zeros_like(cnt).index_add_(0, inv.flatten(), dev ** 2) / (cnt - 1).clamp(min=1)
    sd = var.sqrt()
    ok = (cnt >= 2) & (sd > 0)
    zs = torch.where(ok[inv] & finite, (norm - mu[inv]) / torch.where(ok, sd, torch.ones_like(sd))[inv],
                     torch.full_like(norm, float("nan")))
    mask = zs > z
    if structural_ids is not None:
        sid = torch.as_tensor(list(structural_ids), device=tok.device, dtype=tok.dtype)
        if sid.numel() == 0:
            raise ValueError("structural_ids must not be empty (pass None for no restriction)")
        mask = mask & torch.isin(tok, sid)
    ev = [(int(b), int(t) + 1) for b, t in mask.nonzero().tolist()]
    return ImplicitEvents(z=zs, mask=mask, events=ev, n_no_baseline=int((finite & ~ok[inv]).sum()),
                          n_nonfinite=int((~finite).sum()), by=by, threshold=float(z))
