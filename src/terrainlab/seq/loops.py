"""Decoding loops: greedy decoding with a finite window as a map, and the census of its cycles.

With a context of W tokens and positions restarted at every step, decoding is the map on token
windows

    T(w_1 … w_W) = (w_2 … w_W, x),   x = argmax_v p_θ(v | w_1 … w_W)            (greedy)

(or x ~ softmax(logits / τ) at temperature τ > 0). For greedy decoding T is a deterministic map on a
finite set (|V|^W windows), so every orbit is eventually periodic — a repetition loop is a periodic
orbit of T, reached after a transient (the pigeonhole principle; cf. Holtzman et al. 2020, "The Curious
Case of Neural Text Degeneration", on repetition in greedy decoding). What is not forced is how long
the transient is, the period, how many distinct loops there are and how many starts end in each
(the loop's basin). :func:`window_orbit` iterates T with the core ``rollout`` (a map is Euler with
η = 1 on its residual field, :class:`~terrainlab.core.fields.MapField`); :func:`loop_census` finds
each row's periodic tail with :func:`terrainlab.core.cycles.detect_cycle` and groups rows by loop.

Example:
    >>> import torch
    >>> from terrainlab.seq import TinyGPT
    >>> g = torch.Generator().manual_seed(0)
    >>> gpt = TinyGPT(vocab_size=6, d_model=16, n_layers=1, n_heads=2, context=8, generator=g)
    >>> orb = window_orbit(gpt, torch.randint(0, 6, (4, 8), generator=g), steps=40)
    >>> orb.tokens.shape, orb.windows.shape
    (torch.Size([4, 48]), torch.Size([41, 4, 8]))
    >>> census = loop_census(orb.tokens, max_period=8)
    >>> bool(census.cycled.all()), sum(census.basin)
    (True, 1.0)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..core import rollout
from ..core.cycles import detect_cycle
from ..core.fields import MapField
from ..core.validate import check_instance, check_int, check_nonnegative, check_tensor
from .models import check_model_input

__all__ = ["WindowOrbit", "LoopCensus", "window_orbit", "loop_census", "canonical_loop"]


@dataclass(frozen=True)
class WindowOrbit:
    """tokens (B, W + steps): the start window followed by every token written; windows (steps + 1, B, W):
    the state of the map at each step (int64); temperature; seconds (the rollout's wall time)."""

    tokens: torch.Tensor
    windows: torch.Tensor
    temperature: float
    seconds: float


def window_orbit(model: nn.Module, start: torch.Tensor, steps: int, *, temperature: float = 0.0,
                 generator: torch.Generator | None = None) -> WindowOrbit:
    """Iterate the decoding map T on windows of W tokens (see the module docstring) ``steps`` times.

    Args:
        model: maps token ids (B, W) to logits (B, W, V); position 0 is the window's first token.
        start: (B, W) int64 start windows (W ≤ the model's context).
        steps: number of tokens to write.
        temperature: 0 for greedy decoding, τ > 0 to sample from softmax(logits / τ) with ``generator``
            (required then).

    The window is carried as a float64 tensor of ids (exact for any vocabulary below 2⁵³) so that the
    core ``rollout`` iterates it.
    """
    start = check_model_input(model, start, "start")
    check_int(steps, "steps", minimum=1)
    check_nonnegative(temperature, "temperature")
    if temperature > 0:
        check_instance(generator, "generator", torch.Generator, "a torch.Generator (temperature > 0)")

    def update(w: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            logits = model(w.long())[:, -1]
            if temperature > 0:
                probs = torch.softmax(logits.double() / temperature, dim=-1)
                # drawn on the generator's device, so one seed gives one stream on any device
                nxt = torch.multinomial(probs.to(generator.device), 1, generator=generator)[:, 0].to(w.device)
            else:
                nxt = logits.argmax(-1)
        return torch.cat([w[:, 1:], nxt[:, None].to(w.dtype)], dim=1)

    traj = rollout(MapField(update), start.double(), eta=1.0, steps=steps)
    windows = traj.states.long()
    tokens = torch.cat([start, windows[1:, :, -1].T], dim=1)
    return WindowOrbit(tokens=tokens, windows=windows, temperature=float(temperature), seconds=traj.seconds)


def canonical_loop(tokens) -> tuple:
    """The loop's tokens in a rotation-free form: the lexicographically smallest rotation.

    Example:
        >>> canonical_loop([3, 1, 2]), canonical_loop([1, 2, 3])
        ((1, 2, 3), (1, 2, 3))
    """
    t = tuple(int(x) for x in tokens)
    if not t:
        raise ValueError("tokens must hold at least one token")
    return min(t[i:] + t[:i] for i in range(len(t)))


@dataclass(frozen=True)
class LoopCensus:
    """Per row: ``period`` (B,) (0: no cycle found), ``transient`` (B,) (index where the periodic tail
    begins; the row's length when none), ``cycled`` (B,) bool, ``loop_id`` (B,) (index into ``loops``,
    −1 without a cycle). ``loops``: the distinct loops (canonical rotations, :func:`canonical_loop`),
    most common first; ``basin``: the fraction of all rows that end in each loop; ``max_period``,
    ``min_repeats``, ``window``: the detector's settings."""

    period: torch.Tensor
    transient: torch.Tensor
    cycled: torch.Tensor
    loop_id: torch.Tensor
    loops: tuple
    basin: tuple
    max_period: int
    min_repeats: int
    window: int = 1

    @property
    def cycle_fraction(self) -> float:
        return float(self.cycled.double().mean())


def loop_census(tokens: torch.Tensor, *, max_period: int = 32, min_repeats: int = 3,
                window: int = 1) -> LoopCensus:
    """Find each row's eventually periodic tail (:func:`~terrainlab.core.cycles.detect_cycle`: the
    smallest period p ≤ ``max_period`` whose tail spans ≥ ``min_repeats`` periods) and group the rows
    by the loop they end in.

    With ``window`` = W > 1 the items compared are the windows ``tokens[k : k + W]`` — the states of the
    decoding map — so a loop is a return of the map's state, seen ``min_repeats`` times (the tokens are
    then periodic over W + (min_repeats − 1)·p of them; a short run of repeated tokens inside a longer
    window does not count). ``transient`` is the same index in either case (window k starts at token k)."""
    check_tensor(tokens, "tokens", floating=False, ndim=2, nonempty=True)
    if tokens.is_floating_point() or tokens.is_complex() or tokens.dtype == torch.bool:
        raise ValueError(f"tokens must be an integer tensor of token ids, got dtype {tokens.dtype}")
    check_int(max_period, "max_period", minimum=1)
    check_int(min_repeats, "min_repeats", minimum=2)
    check_int(window, "window", minimum=1, maximum=tokens.shape[1])
    rows = tokens.tolist()
    if window == 1:
        res = [detect_cycle(r, max_period, min_repeats=min_repeats) for r in rows]
    else:
        res = [detect_cycle([tuple(r[k:k + window]) for k in range(len(r) - window + 1)], max_period,
                            min_repeats=min_repeats) for r in rows]
    keys = [canonical_loop(r[c.start:c.start + c.period]) if c.period else None for r, c in zip(rows, res)]
    counts: dict = {}
    for k in keys:
        if k is not None:
            counts[k] = counts.get(k, 0) + 1
    loops = tuple(sorted(counts, key=lambda k: (-counts[k], len(k), k)))
    index = {k: i for i, k in enumerate(loops)}
    B = len(rows)
    return LoopCensus(
        period=torch.tensor([c.period for c in res]),
        transient=torch.tensor([c.start for c in res]),
        cycled=torch.tensor([c.period > 0 for c in res]),
        loop_id=torch.tensor([index[k] if k is not None else -1 for k in keys]),
        loops=loops,
        basin=tuple(counts[k] / B for k in loops),
        max_period=max_period,
        min_repeats=min_repeats,
        window=window,
    )
