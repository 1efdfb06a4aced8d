"""Figure style shared by the atlas and the instruments.

Okabe–Ito colour-blind-safe palette (Okabe & Ito 2008), Nature-style widths: single column 3.46 in,
double column 7.09 in. Figures are saved as SVG and PNG. Nothing here changes global matplotlib
state: :func:`style` is a context manager.
"""

from __future__ import annotations

import contextlib

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402

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
    """A styled figure of the given width ("single" = 3.46 in, "double" = 7.09 in, or inches)."""
    w = {"single": SINGLE, "double": DOUBLE}.get(width, width) if isinstance(width, str) else float(width)
    if isinstance(width, str) and width not in ("single", "double"):
        raise ValueError(f"width must be 'single', 'double' or a number of inches, got {width!r}")
    h = height if height is not None else w * 0.75 / max(ncols, 1) * nrows
    kw.setdefault("layout", "constrained")
    with style():
        fig, axes = plt.subplots(nrows, ncols, figsize=(w, h), **kw)
    return fig, axes


__all__ = ["OKABE_ITO", "SINGLE", "DOUBLE", "style", "figure", "ORANGE", "SKY", "GREEN", "YELLOW", "BLUE", "VERMILLION", "PURPLE", "BLACK"]
