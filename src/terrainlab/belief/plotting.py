"""Plot helpers for Δ² (three-outcome beliefs) in the terrainlab figure style: the triangle, filled
contours of a function over it, trajectories, points. Vertex e1 is bottom-left, e2 bottom-right,
e3 on top (see :func:`terrainlab.belief.to_xy`)."""

from __future__ import annotations

import numpy as np
import torch

from .simplex import simplex_grid, to_xy

__all__ = ["simplex_frame", "simplex_field_map", "simplex_path", "simplex_points"]


def simplex_frame(ax, labels=("e1", "e2", "e3")):
    """Draw the triangle with vertex labels and hide the axes."""
    xy = to_xy(torch.eye(3, dtype=torch.float64)).numpy()
    ax.plot(*np.vstack([xy, xy[:1]]).T, color="black", lw=0.8)
    off = [(-0.04, -0.05), (0.04, -0.05), (0.0, 0.03)]
    for (x, y), (dx, dy), s in zip(xy, off, labels):
        ax.text(x + dx, y + dy, s, ha="center", va="center", fontsize=7)
    ax.set_aspect("equal")
    ax.set_xlim(-0.08, 1.08)
    ax.set_ylim(-0.09, 0.93)
    ax.axis("off")


def simplex_field_map(ax, fn, *, n: int = 120, margin: float = 1e-3, log: bool = False, levels=20,
                      cmap="viridis", vmin=None, vmax=None):
    """Filled contours of ``fn`` (batched (M, 3) → (M,)) over Δ² via a triangulation; returns the
    contour set (for a colour bar)."""
    import matplotlib.tri as mtri
    from matplotlib.colors import LogNorm

    P = simplex_grid(n, dtype=torch.float64)
    P = (1 - 3 * margin) * P + margin
    with torch.no_grad():
        v = fn(P).detach().double().numpy()
    xy = to_xy(P).numpy()
    tri = mtri.Triangulation(xy[:, 0], xy[:, 1])
    finite = np.isfinite(v)
    v = np.where(finite, v, np.nanmax(v[finite]))
    if log:
        v = np.clip(v, 1e-12, None)
        lo = vmin if vmin is not None else v.min()
        hi = vmax if vmax is not None else v.max()
        lv = np.logspace(np.log10(lo), np.log10(hi), levels if isinstance(levels, int) else len(levels))
        return ax.tricontourf(tri, np.clip(v, lo, hi), levels=lv, cmap=cmap, norm=LogNorm(lo, hi))
    return ax.tricontourf(tri, v, levels=levels, cmap=cmap, vmin=vmin, vmax=vmax)


def simplex_path(ax, P, **kw):
    """Plot a path (T, 3) of beliefs; returns the line."""
    xy = to_xy(torch.as_tensor(P, dtype=torch.float64)).numpy()
    (line,) = ax.plot(xy[:, 0], xy[:, 1], **kw)
    return line


def simplex_points(ax, P, **kw):
    xy = to_xy(torch.as_tensor(P, dtype=torch.float64).reshape(-1, 3)).numpy()
    return ax.scatter(xy[:, 0], xy[:, 1], **kw)
