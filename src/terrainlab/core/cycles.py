"""Eventually periodic tails of recorded sequences — the after-the-fact cycle test.

:class:`terrainlab.core.stop.CycleDetect` stops a rollout the moment the state returns to a recent
one; :func:`detect_cycle` reads a sequence already recorded (a rollout's states, a decoded token
stream, an orbit window) and reports the smallest period and where the periodic tail begins. Both
compare states in the max-abs norm within a tolerance, so one notion of "returned" serves every
world.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from .validate import check_int, check_nonnegative, check_tensor

__all__ = ["CycleResult", "detect_cycle", "tail_period", "returns_rows"]


@dataclass(frozen=True)
class CycleResult:
    """period: smallest period p ≥ 1 of the tail (0: none found); start: first index from which
    the sequence is p-periodic; repeats: how many full periods the periodic tail holds."""

    period: int
    start: int
    repeats: float


def tail_period(same: Callable[[int, int], bool], n: int, max_period: int, min_repeats: int) -> CycleResult:
    """Smallest p ≤ ``max_period`` with ``same(t, t − p)`` for every t of a tail spanning at least
    ``min_repeats`` periods of a length-``n`` sequence; ``same(i, j)`` compares items i and j."""
    for p in range(1, max_period + 1):
        if n < min_repeats * p:
            break
        i = n - 1
        while i - p >= 0 and same(i, i - p):
            i -= 1
        start = i - p + 1  # seq[t] == seq[t − p] for every t ≥ start + p
        if n - start >= min_repeats * p:
            return CycleResult(p, start, (n - start) / p)
    return CycleResult(0, n, 0.0)


def detect_cycle(seq, max_period: int = 32, *, tol: float = 0.0, min_repeats: int = 3):
    """Detect an eventually periodic tail in a sequence of tokens or of states.

    A tail is p-periodic when seq[t] = seq[t − p] (exactly for tokens, within ``tol`` in max-abs
    norm for float states) for every t from its start to the end, and it spans at least
    ``min_repeats`` periods. The smallest such p ≤ ``max_period`` is returned (p = 1 is a fixed
    point / a repeated token). Greedy decoding with a finite context, and any deterministic map on a
    finite set, is eventually periodic: this finds the loop and where it began.

    Args:
        seq: a list/tuple of hashable tokens, a 1-D integer tensor, a (T, d) float tensor of states,
            or a (T, B, d) float tensor (one result per batch column).

    Returns:
        :class:`CycleResult` (a list of them for (T, B, d) input).

    Example:
        >>> detect_cycle([5, 1, 2, 3, 1, 2, 3, 1, 2, 3])
        CycleResult(period=3, start=1, repeats=3.0)
    """
    check_int(max_period, "max_period", minimum=1)
    check_int(min_repeats, "min_repeats", minimum=2)
    check_nonnegative(tol, "tol")
    if torch.is_tensor(seq):
        if seq.ndim == 0:
            raise ValueError("seq must be a sequence, got a 0-d tensor")
        if torch.is_floating_point(seq) or torch.is_complex(seq):
            if seq.ndim == 1:
                seq = seq[:, None]
            if seq.ndim == 3:
                return [detect_cycle(seq[:, b], max_period, tol=tol, min_repeats=min_repeats) for b in range(seq.shape[1])]
            if seq.ndim != 2:
                raise ValueError(f"seq of states must have shape (T, d) or (T, B, d), got {tuple(seq.shape)}")
            x = seq.detach()
            return tail_period(lambda a, b: bool((x[a] - x[b]).abs().max() <= tol), x.shape[0], max_period, min_repeats)
        seq = seq.tolist()
    if not isinstance(seq, Sequence):
        raise ValueError(f"seq must be a sequence of tokens or a tensor of states, got {type(seq).__name__}")
    toks = list(seq)
    return tail_period(lambda a, b: toks[a] == toks[b], len(toks), max_period, min_repeats)


def returns_rows(states: torch.Tensor, max_period: int, tol: float, *, move_ratio: float | None = None) -> torch.Tensor:
    """Per row of a recorded batch, whether the last state returned to the one p steps earlier.

    ``states`` is (T, N, d) (a rollout's record); row n is flagged when
    max|S_T − S_{T−p}| ≤ ``tol`` for some 2 ≤ p ≤ ``max_period`` (p < T). With ``move_ratio`` the
    return must also be closer than ``move_ratio`` × the row's last one-step move — a cycle returns
    to itself far more closely than it moves in one step, which rules out slow convergence to a
    fixed point (that also "returns" within tol). Vectorised over rows: the batched counterpart of
    :func:`detect_cycle`, used by basin maps.
    """
    check_tensor(states, "states", ndim=3)
    check_int(max_period, "max_period", minimum=2)
    check_nonnegative(tol, "tol")
    last = states[-1]
    found = torch.zeros(states.shape[1], dtype=torch.bool, device=states.device)
    step_move = (states[-1] - states[-2]).abs().amax(-1) if move_ratio is not None else None
    for p in range(2, min(max_period, states.shape[0] - 1) + 1):
        ret = (last - states[-1 - p]).abs().amax(-1)
        hit = ret <= tol
        if move_ratio is not None:
            hit = hit & (ret <= move_ratio * step_move)
        found |= hit
    return found
