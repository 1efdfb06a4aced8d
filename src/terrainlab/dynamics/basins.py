"""Basins of attraction by sampling: integrate many starts at once, label each endpoint.

The basin of an attractor s* is the set of starts whose orbit converges to s*. ``basin_map`` samples
starts (a grid in 2-D, Dirichlet on the simplex, a Gaussian ball in R^n), runs them all through the
core ``rollout`` (the same Euler/Heun/RK4 schemes and simplex landings as everywhere else), labels
each endpoint by the nearest attractor within ``radius``, and reports coverage fractions with their
Monte-Carlo standard errors √(f(1 − f)/N) (for uniform samples, the fraction of the sampled volume;
cf. the basin-fraction estimators of Menck et al. 2013, "How basin stability complements the linear
stability paradigm", Nature Physics).

Labels: 0 … A−1 the attractor reached; −1 ``NONE`` (settled elsewhere, or still moving);
−2 ``DIVERGED`` (left the bound or produced NaN/inf); −3 ``CYCLE`` (a periodic orbit).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..core import Euler, StepTolerance, map_field, rollout
from ..core.cycles import returns_rows
from ..core.fields import as_field
from ..core.schemes import AbstractScheme
from ..core.validate import check_choice, check_instance, check_int, check_positive, check_tensor
from ._util import KINDS, check_eta, check_geometry, check_states, state_fn

NONE, DIVERGED, CYCLE = -1, -2, -3


def grid_starts(box, n, *, dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
    """A regular grid of starts over ``box`` = [(lo, hi), …] (one pair per dimension), ``n`` points
    per axis (an int or one int per axis); returns (Π n_i, d), first coordinate varying slowest.

    Example:
        >>> grid_starts([(-2, 2), (-1, 1)], 3).shape
        torch.Size([9, 2])
    """
    try:
        pairs = [(float(a), float(b)) for a, b in box]
    except (TypeError, ValueError):
        raise ValueError(f"box must be a sequence of (lo, hi) pairs, got {box!r}") from None
    if not pairs or any(not (b > a) for a, b in pairs):
        raise ValueError(f"box must be a non-empty sequence of (lo, hi) pairs with hi > lo, got {box!r}")
    ns = [n] * len(pairs) if isinstance(n, int) else list(n)
    if len(ns) != len(pairs) or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in ns):
        raise ValueError(f"n must be an int >= 1 or one int >= 1 per axis, got {n!r}")
    axes = [torch.linspace(a, b, k, dtype=dtype, device=device) for (a, b), k in zip(pairs, ns)]
    mesh = torch.meshgrid(*axes, indexing="ij")
    return torch.stack([g.reshape(-1) for g in mesh], dim=-1)


def dirichlet_starts(K: int, n: int, generator: torch.Generator | None = None, *, alpha: float = 1.0,
                     dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
    """n starts from Dirichlet(α, …, α) on the simplex Δ^{K−1}; α = 1 is uniform on the simplex.

    Sampled as normalised Gamma(α) variates (Marsaglia–Tsang via ``torch._standard_gamma``), with the
    generator for reproducibility. Returns (n, K).
    """
    check_int(K, "K", minimum=2)
    check_int(n, "n", minimum=1)
    check_positive(alpha, "alpha")
    if alpha == 1.0:  # Exp(1) variates by inversion: reproducible with the generator
        u = torch.rand(n, K, generator=generator, dtype=dtype, device=device)
        g = -torch.log1p(-u)
    else:
        conc = torch.full((n, K), float(alpha), dtype=dtype, device=device)
        g = torch._standard_gamma(conc, generator=generator)
    return g / g.sum(-1, keepdim=True)


def gaussian_ball_starts(center: torch.Tensor, radius: float, n: int,
                         generator: torch.Generator | None = None) -> torch.Tensor:
    """n starts center + radius·ξ, ξ ~ N(0, I) (a Gaussian ball in R^d). Returns (n, d)."""
    check_tensor(center, "center", ndim=1)
    check_positive(radius, "radius")
    check_int(n, "n", minimum=1)
    xi = torch.randn(n, center.shape[0], generator=generator, dtype=center.dtype, device=center.device)
    return center + radius * xi


@dataclass(frozen=True)
class BasinResult:
    """Labels and coverage of a basin map.

    starts (N, d), endpoints (N, d), attractors (A, d), labels (N,): attractor index, or NONE (−1),
    DIVERGED (−2), CYCLE (−3). fractions (A,) and stderr (A,): share of starts in each basin and
    its Monte-Carlo standard error; fraction_none / fraction_cycle / fraction_diverged likewise.
    settled (N,): the endpoint had stopped moving (last step ≤ tol). status: the rollout status.
    """

    starts: torch.Tensor
    endpoints: torch.Tensor
    attractors: torch.Tensor
    labels: torch.Tensor
    fractions: torch.Tensor
    stderr: torch.Tensor
    fraction_none: float
    fraction_cycle: float
    fraction_diverged: float
    settled: torch.Tensor
    n_steps: int
    n_evals: int
    seconds: float
    status: str
    geometry: str

    def table(self) -> dict:
        """{label: (fraction, stderr)} including "none", "cycle", "diverged"."""
        n = self.labels.numel()
        out = {i: (float(f), float(e)) for i, (f, e) in enumerate(zip(self.fractions, self.stderr))}
        for name, f in (("none", self.fraction_none), ("cycle", self.fraction_cycle), ("diverged", self.fraction_diverged)):
            out[name] = (f, math.sqrt(f * (1 - f) / n))
        return out


class _Guard:
    """Freezes states that left ``bound`` or whose field is not finite (so one bad start cannot
    stop the batch) and remembers them as diverged."""

    def __init__(self, field, bound, eta):
        self.field, self.bound, self.eta = field, bound, eta
        self.bad = None

    def __call__(self, s, t=0.0):
        f = self.field(s, t)
        bad = (~torch.isfinite(f).all(-1)) | (s.abs().amax(-1) > self.bound) | (~torch.isfinite(s + self.eta * f).all(-1))
        self.bad = bad if self.bad is None else (self.bad | bad)
        return torch.where(bad[..., None], torch.zeros_like(f), f)


def basin_map(
    fn: Callable,
    starts: torch.Tensor,
    attractors: torch.Tensor,
    *,
    eta: float | None = None,
    steps: int = 1000,
    kind: str = "field",
    geometry=None,
    scheme: AbstractScheme | None = None,
    tol: float = 1e-9,
    radius: float | None = None,
    bound: float = 1e6,
    max_period: int = 16,
    check_every: int = 25,
) -> BasinResult:
    """Integrate every start and label it by the attractor it reaches.

    Args:
        fn: a batched field F(s, t) (``kind="field"``, integrated with ``scheme`` and step ``eta``)
            or a map T(s) (``kind="map"``: iterated as s ← s + η(T(s) − s), η = 1 by default,
            which is plain iteration of T).
        starts: (N, d) initial states (on the simplex for simplex geometry).
        attractors: (A, d) points to label by, e.g. ``res.of_kind("attractor")`` from
            :func:`find_fixed_points`.
        eta, steps: step size and maximum number of steps (the run stops early once every start
            has settled to within ``tol`` per step).
        geometry: ``None``/``Euclidean()`` or ``Simplex(projection=...)`` (each step lands on the
            simplex through the core geometry).
        radius: an endpoint within this distance of an attractor gets its label (default
            1e-3·(1 + max|attractor|), or 1e-2 in low precision).
        bound: |s| beyond this counts as diverged.  max_period: longest cycle looked for.

    Returns:
        :class:`BasinResult`.

    Example:
        >>> F = lambda s, t=0.0: torch.stack([s[:, 0] - s[:, 0] ** 3, -s[:, 1]], -1)
        >>> res = basin_map(F, grid_starts([(-2, 2), (-1, 1)], 20), torch.tensor([[-1.0, 0], [1.0, 0]],
        ...                 dtype=torch.float64), eta=0.1, steps=2000)
        >>> [round(float(f), 2) for f in res.fractions]
        [0.5, 0.5]
    """
    check_choice(kind, "kind", KINDS)
    check_eta(eta)
    check_int(steps, "steps", minimum=1)
    check_positive(tol, "tol")
    check_positive(bound, "bound")
    check_int(max_period, "max_period", minimum=2)
    check_int(check_every, "check_every", minimum=1)
    if radius is not None:
        check_positive(radius, "radius")
    geometry = check_geometry(geometry)
    s0 = check_states(starts, "starts").detach()
    N, d = s0.shape
    if kind == "field" and eta is None:
        raise ValueError("eta must be given for kind='field' (the integration step)")
    eta = 1.0 if eta is None else float(eta)
    if not torch.is_tensor(attractors) or attractors.ndim != 2 or attractors.shape[1] != d:
        raise ValueError(f"attractors must be a tensor of shape (A, d={d}), got "
                         f"{tuple(attractors.shape) if torch.is_tensor(attractors) else type(attractors).__name__}")
    att = attractors.detach().to(s0.dtype).to(s0.device)
    if radius is None:
        base = 1e-3 if s0.dtype == torch.float64 else 1e-2
        radius = base * (1 + (float(att.abs().max()) if att.numel() else 0.0))
    scheme = Euler() if scheme is None else scheme
    check_instance(scheme, "scheme", AbstractScheme, "a scheme object such as Euler()")
    field = map_field(state_fn(fn)) if kind == "map" else as_field(fn)
    guard = _Guard(field, bound, eta)
    start = time.perf_counter()
    tr = rollout(guard, s0, eta=eta, steps=steps, scheme=scheme, geometry=geometry,
                 stop=StepTolerance(tol, check_every=check_every), record="last")
    end = tr.final.detach()
    # one more step to measure how far each endpoint still moves, then look for cycles
    tail = rollout(guard, end, eta=eta, steps=max_period * 2, scheme=scheme, geometry=geometry, record="all")
    states = tail.states.detach()  # (2P + 1, N, d)
    move = (states[1] - states[0]).abs().amax(-1)
    settled = move <= max(tol, 1e3 * torch.finfo(s0.dtype).eps)
    diverged = guard.bad.clone() if guard.bad is not None else torch.zeros(N, dtype=torch.bool, device=s0.device)
    diverged |= ~torch.isfinite(end).all(-1)
    labels = torch.full((N,), NONE, dtype=torch.long, device=s0.device)
    if att.shape[0]:
        # near an attractor at the end AND throughout the tail (a chaotic orbit passing close to
        # an unstable point is not captured by it)
        tail_pts = torch.nan_to_num(states, nan=0.0, posinf=0.0, neginf=0.0)
        dist = torch.cdist(tail_pts, att.expand(tail_pts.shape[0], *att.shape))  # (2P+1, N, A)
        dmin, arg = dist[0].min(-1)
        stays = torch.gather(dist, 2, arg[None, :, None].expand(dist.shape[0], N, 1)).squeeze(-1).amax(0)
        near = (dmin <= radius) & (stays <= radius)
        labels[near] = arg[near]
    # periodic orbits among the unlabelled movers: state returns to itself after p ≥ 2 steps
    cyc_tol = max(10 * tol, math.sqrt(torch.finfo(s0.dtype).eps) * 1e-2)
    # a cycle returns to itself far more closely than it moves in one step (this rules out slow
    # convergence to a fixed point, which also returns within tol)
    is_cycle = returns_rows(states, max_period, cyc_tol, move_ratio=1e-3) & ~settled
    labels[(labels == NONE) & is_cycle] = CYCLE
    labels[diverged] = DIVERGED
    A = att.shape[0]
    counts = torch.stack([(labels == i).sum() for i in range(A)]) if A else torch.zeros(0, device=s0.device)
    frac = counts.to(torch.float64) / N
    se = (frac * (1 - frac) / N).sqrt()
    seconds = time.perf_counter() - start
    return BasinResult(
        starts=s0, endpoints=end, attractors=att, labels=labels, fractions=frac, stderr=se,
        fraction_none=float((labels == NONE).sum()) / N,
        fraction_cycle=float((labels == CYCLE).sum()) / N,
        fraction_diverged=float((labels == DIVERGED).sum()) / N,
        settled=settled, n_steps=tr.n_steps, n_evals=tr.n_evals + tail.n_evals, seconds=seconds,
        status=tr.status, geometry=repr(geometry),
    )


def plot_basins(result: BasinResult, ax=None, *, colors=None, title: str | None = None,
                labels: list[str] | None = None):
    """Plot a basin map: an image for a 2-D grid of starts, a scatter otherwise; simplex states
    with K = 3 are drawn in the barycentric triangle. Attractors are marked with stars.

    Returns the matplotlib axes.
    """
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    from ..plotting import OKABE_ITO

    check_instance(result, "result", BasinResult, "a BasinResult")
    if ax is None:
        _, ax = plt.subplots()
    A = result.attractors.shape[0]
    palette = list(colors) if colors is not None else [OKABE_ITO[i % 7] for i in (4, 0, 2, 6, 1, 5, 3)]
    special = {NONE: "#DDDDDD", DIVERGED: "#555555", CYCLE: "#F0E442"}
    lab = result.labels.cpu().numpy()
    codes = np.where(lab >= 0, lab, A + (-lab - 1))  # none→A, diverged→A+1, cycle→A+2
    cmap_colors = [palette[i % len(palette)] for i in range(A)] + [special[NONE], special[DIVERGED], special[CYCLE]]
    cmap = ListedColormap(cmap_colors)
    S = result.starts.detach().cpu().double().numpy()
    att = result.attractors.detach().cpu().double().numpy()
    simplex3 = result.geometry.startswith("Simplex") and S.shape[1] == 3

    def bary(P):
        return np.stack([P[:, 1] + 0.5 * P[:, 2], (math.sqrt(3) / 2) * P[:, 2]], -1)

    if simplex3:
        XY, AT = bary(S), bary(att)
        ax.scatter(XY[:, 0], XY[:, 1], c=codes, cmap=cmap, vmin=-0.5, vmax=A + 2.5, s=4, linewidths=0)
        ax.plot([0, 1, 0.5, 0], [0, 0, math.sqrt(3) / 2, 0], color="k", lw=0.8)
        for (vx, vy), name, ha in (((0, 0), "$e_1$", "right"), ((1, 0), "$e_2$", "left"),
                                   ((0.5, math.sqrt(3) / 2), "$e_3$", "center")):
            ax.text(vx, vy + (0.03 if vy > 0 else -0.05), name, ha=ha, fontsize=7)
        ax.set_aspect("equal")
        ax.set_axis_off()
    else:
        xs, ys = np.unique(S[:, 0]), np.unique(S[:, 1]) if S.shape[1] > 1 else np.zeros(1)
        AT = att[:, :2] if att.shape[1] >= 2 else np.c_[att, np.zeros(len(att))]
        if S.shape[1] == 2 and xs.size * ys.size == S.shape[0] and xs.size > 1 and ys.size > 1:
            img = codes.reshape(xs.size, ys.size).T  # rows = y
            ax.imshow(img, origin="lower", extent=(xs[0], xs[-1], ys[0], ys[-1]), cmap=cmap,
                      vmin=-0.5, vmax=A + 2.5, aspect="auto", interpolation="nearest")
        else:
            y = S[:, 1] if S.shape[1] > 1 else np.zeros(len(S))
            ax.scatter(S[:, 0], y, c=codes, cmap=cmap, vmin=-0.5, vmax=A + 2.5, s=4, linewidths=0)
        ax.set_xlabel("$s_1$")
        ax.set_ylabel("$s_2$")
    if A:
        ax.scatter(AT[:, 0], AT[:, 1], marker="*", s=80, c="k", edgecolors="w", linewidths=0.6, zorder=5)
    names = labels if labels is not None else [f"basin {i}" for i in range(A)]
    handles = [Patch(color=cmap_colors[i], label=f"{names[i]} ({float(result.fractions[i]):.1%})") for i in range(A)]
    for name, code, f in (("none", NONE, result.fraction_none), ("diverged", DIVERGED, result.fraction_diverged),
                          ("cycle", CYCLE, result.fraction_cycle)):
        if f > 0:
            handles.append(Patch(color=special[code], label=f"{name} ({f:.1%})"))
    ax.legend(handles=handles, loc="best", fontsize=6, framealpha=0.8)
    if title:
        ax.set_title(title)
    return ax
