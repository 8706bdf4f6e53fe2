"""What every PNG of an experiment shares: its size, its resolution and how it is written.

Sizes are fixed (8 × 5 in at 100 dpi → 800 × 500 px) and figures are saved without
``bbox_inches="tight"``, so a plot's pixel size depends only on its input, never on label lengths.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

DPI = 100
SIZE_IN = (8.0, 5.0)


def save_figure(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as a PNG of exactly figsize × dpi pixels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, format="png")
    return path
