"""Figure style shared by the atlas and the instruments.

Okabe–Ito colour-blind-safe palette (Okabe & Ito 2008), Nature-style widths: single column 3.46 in,
double column 7.09 in. Figures are saved as SVG and PNG.

Nothing here changes global matplotlib state: importing selects no backend, :func:`style` is a
context manager, and :func:`figure` builds a :class:`matplotlib.figure.Figure` directly — an
object that saves to SVG/PNG through its own canvas, needs no pyplot backend and is not kept in
pyplot's list of open figures (it is freed like any object). Programs that want pyplot windows pick
their backend themselves; the atlas workers select Agg where they start.

Example:
    >>> fig, ax = figure("single")
    >>> _ = ax.plot([0, 1], [1, 0])
    >>> type(fig).__name__, round(float(fig.get_figwidth()), 2)
    ('Figure', 3.46)
"""

from __future__ import annotations

import contextlib

import matplotlib
from matplotlib.figure import Figure

OKABE_ITO = (
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#009E73",  # bluish green
    "#F0E442",  # yellow
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#000000",  # black
)
ORANGE, SKY, GREEN, YELLOW, BLUE, VERMILLION, PURPLE, BLACK = OKABE_ITO
SINGLE = 3.46
DOUBLE = 7.09

RC = {
    "axes.prop_cycle": matplotlib.cycler(color=list(OKABE_ITO)),
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "legend.fontsize": 7,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.dpi": 150,
    "savefig.dpi": 200,
    "savefig.bbox": "tight",
    "svg.fonttype": "none",
    "lines.linewidth": 1.2,
}


@contextlib.contextmanager
def style():
    """Context manager applying the terrainlab figure style."""
    with matplotlib.rc_context(RC):
        yield


def figure(width: str | float = "single", height: float | None = None, nrows: int = 1, ncols: int = 1, **kw):
    """A styled figure of the given width ("single" = 3.46 in, "double" = 7.09 in, or inches).

    Returns ``(fig, axes)`` as ``plt.subplots`` does (``axes`` is one Axes or an array of them), with
    ``fig`` a plain :class:`~matplotlib.figure.Figure`: no backend is involved, ``fig.savefig``
    writes files, and nothing needs closing. Extra keywords go to ``Figure.subplots`` (``sharex``,
    ``squeeze``, ``gridspec_kw``, …) except ``layout``, which goes to the figure (default
    "constrained")."""
    w = {"single": SINGLE, "double": DOUBLE}.get(width, width) if isinstance(width, str) else float(width)
    if isinstance(width, str) and width not in ("single", "double"):
        raise ValueError(f"width must be 'single', 'double' or a number of inches, got {width!r}")
    h = height if height is not None else w * 0.75 / max(ncols, 1) * nrows
    layout = kw.pop("layout", "constrained")
    fig_kw = {k: kw.pop(k) for k in ("dpi", "facecolor", "edgecolor", "frameon") if k in kw}
    with style():
        fig = Figure(figsize=(w, h), layout=layout, **fig_kw)
        axes = fig.subplots(nrows, ncols, **kw)
    return fig, axes


__all__ = ["OKABE_ITO", "SINGLE", "DOUBLE", "style", "figure", "ORANGE", "SKY", "GREEN", "YELLOW", "BLUE", "VERMILLION", "PURPLE", "BLACK"]
