"""terrainlab.plotting changes no global matplotlib state and draws without a pyplot backend."""

from __future__ import annotations

import subprocess
import sys

import pytest

from terrainlab.plotting import DOUBLE, OKABE_ITO, figure, style


def test_import_selects_no_backend_and_loads_no_pyplot():
    code = (
        "import sys, matplotlib\n"
        "before = matplotlib.rcParams._get_backend_or_none()\n"
        "import terrainlab.plotting\n"
        "fig, ax = terrainlab.plotting.figure('single')\n"
        "assert matplotlib.rcParams._get_backend_or_none() == before, before\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
        "print('clean')\n"
    )
    env = {"PATH": "", "PYTHONNOUSERSITE": "1"}  # no MPLBACKEND: the default, unresolved backend
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "clean"


def test_figure_is_a_bare_styled_figure_that_saves(tmp_path):
    from matplotlib.figure import Figure

    fig, axes = figure("double", height=2.0, ncols=2, sharey=True)
    assert isinstance(fig, Figure) and fig.canvas.manager is None  # not held by pyplot
    assert len(axes) == 2 and fig.get_figwidth() == pytest.approx(DOUBLE)
    (line,) = axes[0].plot([0, 1], [0, 1])
    assert line.get_color().lower() == OKABE_ITO[0].lower()  # the house cycle applied at creation
    for ext in ("png", "svg"):
        fig.savefig(tmp_path / f"f.{ext}")
        assert (tmp_path / f"f.{ext}").stat().st_size > 500
    with pytest.raises(ValueError, match="width"):
        figure("triple")


def test_style_is_a_context_and_leaves_rcparams_as_they_were():
    import matplotlib

    before = dict(matplotlib.rcParams)
    with style():
        assert matplotlib.rcParams["font.size"] == 8
    assert dict(matplotlib.rcParams) == before
