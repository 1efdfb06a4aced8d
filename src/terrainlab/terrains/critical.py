"""Critical points of a terrain: solve ∇L(θ) = 0 from a grid of starts, then classify by the Hessian.

A critical point θ* has ∇L(θ*) = 0. With H = ∇²L(θ*) and eigenvalues λ_i: all λ_i > 0 is a minimum,
all < 0 a maximum, mixed signs a saddle, and any λ_i ≈ 0 is degenerate (the second-derivative test
says nothing). The Morse index is the number of negative eigenvalues; for a coercive L on R² with
only non-degenerate critical points, #min − #saddle + #max = 1 (the Euler characteristic of the
plane; Milnor, *Morse Theory*, 1963), a check that fails when points are missed.

The solver is Newton's method on the residual g(θ) = ∇L(θ) with Levenberg–Marquardt damping
(Levenberg 1944, Marquardt 1963): δ = −(H² + μI)⁻¹ H g, accepted only if ‖g‖ decreases, μ shrunk on
success and grown on failure. With μ → 0 it is Newton's step −H⁻¹g, quadratically convergent near a
non-degenerate root of any kind (min, saddle or max alike), and the damping keeps it defined where H
is singular. All starts run at once in float64; the inner loop takes batched gradients and Hessians
by reverse-over-reverse autograd (:func:`grad_and_hessian`) and the reported Hessian eigenvalues
come from ``torch.func.hessian``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch.func import hessian, vmap

from .terrain import Terrain, check_box

KINDS = ("min", "saddle", "max", "degenerate")


def _check_tol(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def classify_eigenvalues(eigenvalues, tol: float = 1e-6) -> str:
    """Classify from Hessian eigenvalues: "degenerate" if any |λ| ≤ tol, else min / max / saddle."""
    tol = _check_tol("tol", tol)
    ev = torch.as_tensor(eigenvalues, dtype=torch.float64).reshape(-1)
    if ev.numel() == 0 or not bool(torch.isfinite(ev).all()):
        raise ValueError(f"eigenvalues must be a non-empty finite vector, got {eigenvalues!r}")
    if bool((ev.abs() <= tol).any()):
        return "degenerate"
    if bool((ev > 0).all()):
        return "min"
    if bool((ev < 0).all()):
        return "max"
    return "saddle"


def classify(H, tol: float = 1e-6) -> str:
    """Classify a critical point by its Hessian H (a symmetric d×d matrix, tensor or array-like).

    Returns "min" (all eigenvalues > tol), "max" (all < −tol), "saddle" (mixed signs) or
    "degenerate" (some eigenvalue within ``tol`` of 0, where the second-derivative test is silent).

    Example:
        >>> classify(torch.tensor([[2.0, 0.0], [0.0, -2.0]]))
        'saddle'
    """
    H = torch.as_tensor(H).to(torch.float64)
    if H.ndim != 2 or H.shape[0] != H.shape[1] or H.shape[0] == 0:
        raise ValueError(f"H must be a square d×d matrix, got shape {tuple(H.shape)}")
    if not bool(torch.isfinite(H).all()):
        raise ValueError("H must be finite")
    scale = max(1.0, float(H.abs().max()))
    if float((H - H.T).abs().max()) > 1e-8 * scale:
        raise ValueError("H must be symmetric (a Hessian)")
    return classify_eigenvalues(torch.linalg.eigvalsh(0.5 * (H + H.T)), tol)


@dataclass(frozen=True)
class CriticalPoint:
    """One critical point: location θ*, L(θ*), ‖∇L(θ*)‖, Hessian eigenvalues (ascending), kind,
    Morse index (number of negative eigenvalues) and how many grid starts converged to it."""

    location: tuple[float, ...]
    value: float
    grad_norm: float
    hessian_eigenvalues: tuple[float, ...]
    kind: str
    index: int
    n_starts: int = 1


@dataclass(frozen=True)
class CriticalPoints:
    """The result of :func:`critical_points`: the points plus the numbers needed to trust them.

    points: sorted by kind (min, saddle, max, degenerate), then by value, then location.
    box: the search box. n_starts: grid starts. n_converged: starts that reached ‖∇L‖ ≤ tol
    inside the box. iterations: damped-Newton iterations run. max_grad_norm: the largest ‖∇L‖
    among the kept points. seconds: wall time. Iterating the result iterates the points.
    """

    points: tuple[CriticalPoint, ...]
    box: tuple[tuple[float, float], ...]
    n_starts: int
    n_converged: int
    iterations: int
    tol: float
    max_grad_norm: float
    seconds: float

    def __len__(self):
        return len(self.points)

    def __iter__(self):
        return iter(self.points)

    def __getitem__(self, i):
        return self.points[i]

    def of_kind(self, kind: str) -> tuple[CriticalPoint, ...]:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        return tuple(p for p in self.points if p.kind == kind)

    @property
    def counts(self) -> dict[str, int]:
        return {k: sum(p.kind == k for p in self.points) for k in KINDS}

    @property
    def euler_characteristic(self) -> int:
        """Σ (−1)^index over the non-degenerate points (for 2-D: #min − #saddle + #max)."""
        return sum((-1) ** p.index for p in self.points if p.kind != "degenerate")


def grad_and_hessian(fn, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """∇L and ∇²L for a batch x of shape (n, d), by reverse-over-reverse autograd of Σ_b L(x_b).

    States are independent, so ∂(Σ_b ∂L/∂x_b,i)/∂x is the batch of Hessian rows i. This is the
    finder's inner loop: on small d it is ~15× cheaper than ``vmap(hessian(fn))`` (whose result it
    equals to rounding; tested), which :meth:`Terrain.hessian` and the final report use.
    """
    with torch.enable_grad():
        z = x.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(fn(z).sum(), z, create_graph=True)
        d = z.shape[-1]
        rows = []
        for i in range(d):
            gi = g[..., i].sum()
            if gi.requires_grad:
                rows.append(torch.autograd.grad(gi, z, retain_graph=i < d - 1, allow_unused=True)[0])
            else:
                rows.append(None)
        rows = [torch.zeros_like(z) if r is None else r for r in rows]
    return g.detach(), torch.stack(rows, dim=-2).detach()


def _grad(fn, x: torch.Tensor) -> torch.Tensor:
    with torch.enable_grad():
        z = x.detach().requires_grad_(True)
        return torch.autograd.grad(fn(z).sum(), z)[0]


def _grid_starts(box, n_grid: int, dtype, device) -> torch.Tensor:
    axes = []
    for lo, hi in box:
        # cell centres: never exactly on a symmetric critical point, so starts are generic
        h = (hi - lo) / n_grid
        axes.append(torch.linspace(lo + h / 2, hi - h / 2, n_grid, dtype=dtype, device=device))
    mesh = torch.meshgrid(*axes, indexing="ij")
    return torch.stack([m.reshape(-1) for m in mesh], dim=-1)


def critical_points(
    terrain: Terrain,
    box=None,
    *,
    n_grid: int | None = None,
    starts: torch.Tensor | None = None,
    tol: float = 1e-8,
    classify_tol: float = 1e-6,
    merge_tol: float | None = None,
    max_iter: int = 200,
    device=None,
) -> CriticalPoints:
    """Find the critical points ∇L(θ) = 0 of ``terrain`` inside ``box`` and classify them.

    Args:
        terrain: a :class:`Terrain`.
        box: search box ((lo, hi), …); default ``terrain.box``. Points outside are dropped.
        n_grid: grid starts per dimension (cell centres); default 40 in 1-D, 30 in 2-D, 12 above.
        starts: optional extra starts, shape (n, dim), added to the grid.
        tol: keep a point only if ‖∇L‖ ≤ tol (float64).
        classify_tol: an eigenvalue with |λ| ≤ classify_tol makes the point "degenerate".
        merge_tol: points closer than this are one point; default 1e-6 × the box diameter.
        max_iter: cap on damped-Newton iterations (all starts advance together).
        device: where to compute (default CPU); the computation is float64.

    Returns:
        :class:`CriticalPoints`. A start that does not converge is simply not kept (counted in
        ``n_starts − n_converged``); nothing raises for non-convergence.

    Example:
        >>> from terrainlab.terrains import himmelblau, critical_points
        >>> cp = critical_points(himmelblau())
        >>> cp.counts
        {'min': 4, 'saddle': 4, 'max': 1, 'degenerate': 0}
    """
    if not isinstance(terrain, Terrain):
        raise ValueError(f"terrain must be a Terrain, got {type(terrain).__name__}")
    d = terrain.dim
    box = check_box(terrain.box if box is None else box, d)
    if n_grid is None:
        n_grid = {1: 40, 2: 30}.get(d, 12)
    if isinstance(n_grid, bool) or not isinstance(n_grid, int) or n_grid < 1:
        raise ValueError(f"n_grid must be an int >= 1, got {n_grid!r}")
    tol = _check_tol("tol", tol)
    classify_tol = _check_tol("classify_tol", classify_tol)
    diameter = math.sqrt(sum((hi - lo) ** 2 for lo, hi in box))
    merge_tol = 1e-6 * diameter if merge_tol is None else _check_tol("merge_tol", merge_tol)
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"max_iter must be an int >= 1, got {max_iter!r}")

    dtype = torch.float64
    t0 = time.perf_counter()
    x = _grid_starts(box, n_grid, dtype, device)
    if starts is not None:
        s = terrain.check(torch.as_tensor(starts), "starts").to(dtype=dtype, device=x.device)
        x = torch.cat([x, s.reshape(-1, d)])
    n = x.shape[0]

    fn = terrain.fn
    h_fn = vmap(hessian(fn))
    eye = torch.eye(d, dtype=dtype, device=x.device)

    def gnorm(z):
        gz = _grad(fn, z)
        r = torch.linalg.vector_norm(gz, dim=-1)
        return gz, torch.where(torch.isfinite(r), r, torch.full_like(r, math.inf))

    _, r = gnorm(x)
    mu = torch.full((n,), 1e-3, dtype=dtype, device=x.device)
    it = 0
    r_prev = r.clone()
    for it in range(1, max_iter + 1):
        g, H = grad_and_hessian(fn, x)
        H = 0.5 * (H + H.transpose(-1, -2))
        HH = H @ H
        lam = mu * torch.diagonal(HH, dim1=-2, dim2=-1).abs().amax(-1).clamp_min(1e-300)
        A = HH + lam[:, None, None] * eye
        rhs = -(H @ g[..., None])[..., 0]
        step, info = torch.linalg.solve_ex(A, rhs)
        ok_solve = (info == 0) & torch.isfinite(step).all(-1)
        step = torch.where(ok_solve[:, None], step, torch.zeros_like(step))
        x_new = x + step
        _, r_new = gnorm(x_new)
        accept = ok_solve & (r_new < r)
        x = torch.where(accept[:, None], x_new, x)
        r = torch.where(accept, r_new, r)
        mu = torch.where(accept, (mu / 10.0).clamp_min(1e-15), mu * 10.0)
        if it % 5 == 0:
            small_step = torch.linalg.vector_norm(step, dim=-1) <= 1e-13 * (1.0 + x.abs().amax(-1))
            stalled = (r > tol) & (r >= 0.999 * r_prev)  # stuck at a non-zero minimum of ‖∇L‖
            done = (accept & small_step) | (mu > 1e12) | (r == 0) | stalled
            if bool(done.all()):
                break
            r_prev = r.clone()

    inside = torch.ones(n, dtype=torch.bool, device=x.device)
    for i, (lo, hi) in enumerate(box):
        slack = 1e-9 * (hi - lo)
        inside &= (x[:, i] >= lo - slack) & (x[:, i] <= hi + slack)
    keep = inside & (r <= tol)
    xs, rs = x[keep], r[keep]
    n_conv = int(keep.sum())

    # deduplicate greedily, best residual first
    order = torch.argsort(rs)
    reps: list[int] = []
    counts: list[int] = []
    for j in order.tolist():
        if reps:
            dist = torch.linalg.vector_norm(xs[reps] - xs[j], dim=-1)
            m = int(torch.argmin(dist))
            if float(dist[m]) <= merge_tol:
                counts[m] += 1
                continue
        reps.append(j)
        counts.append(1)

    pts = []
    if reps:
        loc = xs[reps]
        with torch.no_grad():
            vals = fn(loc)
        ev = torch.linalg.eigvalsh(h_fn(loc))  # exact per-point Hessians for the record
        for k, j in enumerate(reps):
            e = ev[k]
            kind = classify_eigenvalues(e, classify_tol) if bool(torch.isfinite(e).all()) else "degenerate"
            pts.append(CriticalPoint(
                location=tuple(float(v) for v in loc[k]),
                value=float(vals[k]),
                grad_norm=float(rs[j]),
                hessian_eigenvalues=tuple(float(v) for v in e),
                kind=kind,
                index=int((e < -classify_tol).sum()),
                n_starts=counts[k],
            ))
    pts.sort(key=lambda p: (KINDS.index(p.kind), p.value, p.location))
    return CriticalPoints(
        points=tuple(pts),
        box=box,
        n_starts=n,
        n_converged=n_conv,
        iterations=it,
        tol=tol,
        max_grad_norm=max((p.grad_norm for p in pts), default=0.0),
        seconds=time.perf_counter() - t0,
    )
