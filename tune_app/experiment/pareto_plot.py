"""The Pareto front as a PNG: the first objective (SI-SDR) against each cost, the front drawn.

Written here rather than with Optuna's ``plot_pareto_front``: that one places each study trial at
its last epoch's value and leaves early-stopped (PRUNED) trials out, while the front ``results``
prints (:mod:`.pareto`) uses each trial's best epoch, the checkpoint it hands out. Object API only
(``Figure`` + ``FigureCanvasAgg``), like :mod:`.plots`: no pyplot state.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from ..names import COMPLETED, COST_UNITS, status_label
from . import pareto
from .figures import BEST_COLOUR, SIZE_IN, marker, new_figure, save_figure, wrapped
from .results import Experiment

PARETO_PNG = "pareto_front.png"
FRONT_GID = "pareto-front"  # the Line2D of the front in each panel (tests find it by this)


def figure_pareto(exp: Experiment) -> Figure:
    """One panel per cost objective: every scored trial (``x`` if it stopped early), the front in orange,
    joined as a staircase where the search has exactly two objectives. The legend sits below the
    panels, outside them, so it covers no point."""
    objs = pareto.objectives(exp)
    (name, mode), costs = objs[0], objs[1:]
    pool = pareto.candidates(exp)
    on_front = {t.trial_id for t, _ in pareto.front(exp)}
    fig = new_figure((SIZE_IN[0] * max(1, len(costs)) * 0.75 + 2, SIZE_IN[1]))
    for j, (cost, cost_mode) in enumerate(costs, start=1):
        ax = fig.add_subplot(1, len(costs), j)
        for status in sorted({t.status for t, _ in pool}, key=lambda s: s != COMPLETED):
            pts = [p for t, p in pool if t.status == status and t.trial_id not in on_front]
            ax.scatter([p[j] for p in pts], [p[0] for p in pts], c="0.55", marker=marker(status), s=28,
                       label=f"other trials, {status_label(status)}" if pts else None)
        front = sorted(((p[j], p[0], t.trial_id) for t, p in pool if t.trial_id in on_front),
                       reverse=cost_mode == "max")
        xs, ys = [f[0] for f in front], [f[1] for f in front]
        if len(costs) == 1:
            ax.step(xs, ys, where="post", color=BEST_COLOUR, lw=2, gid=FRONT_GID, label="Pareto front")
        else:
            ax.plot(xs, ys, "none", gid=FRONT_GID)
        ax.scatter(xs, ys, c=BEST_COLOUR, s=60, edgecolors="black", zorder=3,
                   label=None if len(costs) == 1 else "Pareto front")
        for x, y, trial_id in front:
            ax.annotate(trial_id, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=7)
        ax.set_xlabel(f"{cost} ({COST_UNITS.get(cost, cost)}; {'lower' if cost_mode == 'min' else 'higher'} "
                      "is better)")
        ax.set_ylabel(f"best {name} (dB)" if j == 1 else "")
        ax.grid(True, alpha=0.3)
    handles, labels = fig.axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(handles), fontsize=9, frameon=False)
    fig.suptitle(wrapped(f"{exp.path.name}: {len(on_front)} of {len(pool)} scored trials on the front "
                         f"({name}: {'higher' if mode == 'max' else 'lower'} is better)", fig))
    return fig


def write_pareto_plot(exp: Experiment, out: Path) -> Path:
    return save_figure(figure_pareto(exp), out / PARETO_PNG)
