"""Empirical Lyapunov-function checks: does a candidate V decrease along a flow or a map?

Lyapunov's direct method (Lyapunov 1892; LaSalle 1960): V decreasing along trajectories away from
equilibria certifies stability. For a flow s' = F(s) the condition is V̇ = ⟨∇V(s), F(s)⟩ < 0; for
a map (or one Euler step s + ηF) it is V(T(s)) < V(s). For gradient descent on an L-smooth loss the
descent lemma gives L(θ − η∇L) ≤ L(θ) − η(1 − ηL_smooth/2)‖∇L‖², so the loss is a Lyapunov
function of the GD map whenever η < 2/L_smooth (Nesterov, *Introductory Lectures*, §1.2.3) — and
can fail above it. This module measures the violating fraction over samples and returns the worst
points, so the claim is tested rather than assumed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..core.fields import as_field
from ..core.validate import check_callable, check_choice, check_int
from ._util import KINDS, check_eta, check_states, state_fn


@dataclass(frozen=True)
class LyapunovCheck:
    """violating_fraction (of the non-excluded samples with decrease ≥ −tol), stderr (binomial),
    n_samples, n_excluded (equilibria: ‖F‖ ≤ eq_tol or ‖T(s) − s‖ ≤ eq_tol), values (N,) V̇ or
    ΔV per sample (NaN where excluded), worst_points (n_worst, d) and worst_values, mode
    ("flow" | "map" | "euler"), seconds."""

    violating_fraction: float
    stderr: float
    n_samples: int
    n_excluded: int
    values: torch.Tensor
    worst_points: torch.Tensor
    worst_values: torch.Tensor
    mode: str
    seconds: float


def lyapunov_check(
    V: Callable,
    fn: Callable,
    samples: torch.Tensor,
    *,
    kind: str = "field",
    eta: float | None = None,
    tol: float = 0.0,
    eq_tol: float = 1e-8,
    n_worst: int = 10,
) -> LyapunovCheck:
    """Test V̇ < 0 (flow), V(s + ηF(s)) < V(s) (Euler map, ``eta`` given) or V(T(s)) < V(s) (map).

    Args:
        V: batched candidate (N, d) → (N,).  fn: field F or map T (``kind``).
        samples: (N, d) states where the condition is tested.
        tol: a sample violates when its decrease value is > −tol... i.e. V̇ > tol (or ΔV > tol).
        eq_tol: samples with ‖F(s)‖ ≤ eq_tol (‖T(s) − s‖ for maps) are equilibria and excluded.

    Example:
        >>> L = lambda th: 2.0 * (th ** 2).sum(-1)                 # L_smooth = 4
        >>> from terrainlab.core import gradient_field
        >>> chk = lyapunov_check(L, gradient_field(L), torch.randn(100, 2), eta=0.6)   # η·L = 2.4
        >>> chk.violating_fraction
        1.0
    """
    check_choice(kind, "kind", KINDS)
    check_eta(eta)
    check_int(n_worst, "n_worst", minimum=0)
    check_callable(V, "V")
    x = check_states(samples, "samples").detach()
    N = x.shape[0]
    start = time.perf_counter()
    if kind == "map":
        T = state_fn(fn)
        with torch.no_grad():
            nxt = T(x)
            vals = V(nxt) - V(x)
        move = (nxt - x).norm(dim=-1)
        mode = "map"
    else:
        F = as_field(fn)
        f = F(x, 0.0).detach()
        move = f.norm(dim=-1)
        if eta is None:
            with torch.enable_grad():
                xr = x.clone().requires_grad_(True)
                (gV,) = torch.autograd.grad(V(xr).sum(), xr)
            vals = (gV * f).sum(-1)
            mode = "flow"
        else:
            with torch.no_grad():
                vals = V(x + eta * f) - V(x)
            mode = "euler"
    vals = vals.detach()
    if vals.shape != (N,):
        raise ValueError(f"V must return one value per sample, shape ({N},), got {tuple(vals.shape)}")
    excl = move <= eq_tol
    vals = torch.where(excl, torch.full_like(vals, math.nan), vals)
    used = ~excl
    n_used = int(used.sum())
    viol = used & (vals > tol)
    frac = float(viol.sum()) / n_used if n_used else math.nan
    se = math.sqrt(frac * (1 - frac) / n_used) if n_used else math.nan
    order = torch.argsort(torch.nan_to_num(vals, nan=-math.inf), descending=True)[: min(n_worst, N)]
    return LyapunovCheck(
        violating_fraction=frac, stderr=se, n_samples=N, n_excluded=int(excl.sum()), values=vals,
        worst_points=x[order], worst_values=vals[order], mode=mode, seconds=time.perf_counter() - start,
    )
