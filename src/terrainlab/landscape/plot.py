"""Figures of landscape slices: the filled contour of a plane with a trajectory on top."""

from __future__ import annotations

import torch

from .slices import PlaneResult


def plot_plane(result: PlaneResult, ax=None, trajectory: torch.Tensor | None = None, levels: int = 30,
               log: bool = True, title: str | None = None, labels=("α", "β"), zlim=None):
    """Filled contour of a plane slice; ``trajectory`` (T, 2) coordinates from :func:`project` in
    the same (α, β) coordinates are drawn on top (start ○, end □). ``zlim=(lo, hi)`` fixes the
    colour scale (in loss units) so several planes can share it."""
    import numpy as np

    from terrainlab.plotting import BLACK, VERMILLION, figure, style

    if ax is None:
        fig, ax = figure("single", height=3.0)
    else:
        fig = ax.figure
    Z = result.losses.double().numpy().T  # rows ↔ betas for contourf(X=alphas, Y=betas)
    finite = np.isfinite(Z)
    zmax = float(np.nanpercentile(np.where(finite, Z, np.nan), 98)) if finite.any() else 1.0
    zmin = None
    if zlim is not None:
        zmin, zmax = float(zlim[0]), float(zlim[1])
    Zc = np.clip(np.where(finite, Z, zmax), zmin, zmax)
    if zlim is not None:
        lo, hi = (np.log10(max(zmin, 1e-12)), np.log10(max(zmax, 1e-12))) if log else (zmin, zmax)
        levels = np.linspace(lo, hi, levels if isinstance(levels, int) else len(levels))
    with style():
        if log:
            Zc = np.log10(np.maximum(Zc, 1e-12))
        cs = ax.contourf(result.alphas.numpy(), result.betas.numpy(), Zc, levels=levels, cmap="viridis")
        ax.contour(result.alphas.numpy(), result.betas.numpy(), Zc, levels=levels, colors="white",
                   linewidths=0.25, alpha=0.5)
        cb = fig.colorbar(cs, ax=ax)
        cb.set_label("log₁₀ loss" if log else "loss")
        if trajectory is not None:
            tr = torch.as_tensor(trajectory).double().numpy()
            ax.plot(tr[:, 0], tr[:, 1], color=VERMILLION, lw=1.0, marker=".", ms=2, label="trajectory")
            ax.plot(tr[0, 0], tr[0, 1], "o", mfc="none", color=BLACK, ms=5, label="start")
            ax.plot(tr[-1, 0], tr[-1, 1], "s", mfc="none", color=BLACK, ms=5, label="end")
            ax.legend(frameon=False, loc="upper right")
        ax.set_xlabel(labels[0])
        ax.set_ylabel(labels[1])
        if title:
            ax.set_title(title)
    return fig
