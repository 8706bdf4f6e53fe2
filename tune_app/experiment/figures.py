"""What every PNG of an experiment shares: size, resolution, how it is written, its colours and marks.

One home for the look, so the per-epoch plot, the importance chart, the Pareto front and the views
of the searched space (:mod:`.plots`, :mod:`.pareto_plot`, :mod:`.study_plots`) mark the same things
the same way: the best trial orange, an early-stopped trial an ``x`` (dashed as a line), a score
coloured dark where it is good. A module of its own because :mod:`.plots` writes the other two
(the architecture test counts that import): folded into it, they would import each other.

Sizes are fixed (8 × 5 in at 100 dpi → 800 × 500 px, or a fixed amount per panel) and figures are
saved without ``bbox_inches="tight"``, so a plot's pixel size depends only on its input, never on
label lengths; titles are wrapped to the figure's width instead of running off it.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Colormap, ListedColormap
from matplotlib.figure import Figure

from ..names import COMPLETED

DPI = 100
SIZE_IN = (8.0, 5.0)
BEST_COLOUR = "tab:orange"


def new_figure(size_in: tuple[float, float] = SIZE_IN) -> Figure:
    """A figure on the Agg canvas, constrained layout: no pyplot, no backend switch, no global state."""
    fig = Figure(figsize=size_in, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as a PNG of exactly figsize × dpi pixels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, format="png")
    return path


def wrapped(text: str, fig: Figure, fontsize: float = 12, share: float = 0.95) -> str:
    """``text`` broken into lines that fit ``share`` of the figure's width at ``fontsize`` (points).

    A title longer than the figure is clipped at both ends (constrained layout centres it); an
    average glyph of DejaVu Sans in such titles is about half an em wide (measured: 0.5–0.55).
    """
    chars = int(fig.get_size_inches()[0] * 72 * share / (0.55 * fontsize))
    return "\n".join(textwrap.fill(part, max(20, chars)) for part in text.split("\n"))


def marker(status: str) -> str:
    """A trial's point: ``o`` for a completed one, ``x`` for any other (stopped before its last epoch)."""
    return "o" if status == COMPLETED else "x"


def score_cmap(mode: str) -> Colormap:
    """viridis, dark where the score is good: dark purple for the best, yellow-green for the worst.

    The palest 15 % of the map is cut so no score is drawn near-white on white; for ``mode="min"``
    the map runs the other way, so low (good) scores are dark too.
    """
    colours = matplotlib.colormaps["viridis"](np.linspace(0.0, 0.85, 256))
    return ListedColormap(colours[::-1] if mode == "max" else colours, name=f"score-{mode}")
