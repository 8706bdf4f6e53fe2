"""PNG plots of an experiment folder: val SI-SDR per epoch of every trial, and parameter importance.

Pure matplotlib object API (``Figure`` + ``FigureCanvasAgg``, via :func:`.figures.new_figure`): no
pyplot, no backend switch, no global state, so it is safe inside the CLI, tests and notebooks alike.
No Ray import. Sizes are fixed (8 × 5 in at 100 dpi → 800 × 500 px; the importance chart grows by a
fixed amount per parameter beyond 12), so the pixel size depends only on the input, never on label
lengths. :func:`write_plots` also writes the Pareto front (:mod:`.pareto_plot`) and the views of the
searched space (:mod:`.study_plots`).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from ..errors import TuneInputError
from ..names import COMPLETED, CURVE_METRIC, EARLY_STOPPED, EPOCH, ERROR, status_label
from .figures import BEST_COLOUR, DPI, SIZE_IN, new_figure, save_figure, wrapped
from .results import Experiment, TrialRecord

__all__ = [
    "IMPORTANCE_PNG",
    "VAL_SISDR_PNG",
    "figure_importance",
    "figure_val_sisdr",
    "importance_title",
    "trial_curve",
    "write_plots",
]

VAL_SISDR_PNG = "val_sisdr_per_epoch.png"
IMPORTANCE_PNG = "parameter_importance.png"

# status → (line style, alpha, colour, marker at the last point)
_STYLE = {
    COMPLETED: ("-", 0.85, None, "o"),
    EARLY_STOPPED: ("--", 0.55, "0.45", "x"),
    ERROR: (":", 0.8, "tab:red", "X"),
}
_OTHER_STYLE = (":", 0.6, "0.6", ".")  # any other status, named in the legend
MAX_LABELS = 10  # completed curves labelled with their trial id: the best ones, at most this many
_LABEL_PT = 7
# Completed trials cycle through tab10 without orange (best), red (errors) and grey (early-stopped).
_PALETTE = ("tab:blue", "tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")


def trial_curve(trial: TrialRecord, metric: str = CURVE_METRIC) -> tuple[list[int], list[float]]:
    """(epochs, values) of ``metric`` for one trial, finite values only, in report order."""
    xs, ys = [], []
    for i, row in enumerate(trial.history):
        v = row.get(metric)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            xs.append(int(row.get(EPOCH, i + 1)))
            ys.append(float(v))
    return xs, ys


def figure_val_sisdr(exp: Experiment) -> Figure:
    """val SI-SDR (dB) against epoch: one ``Line2D`` per trial that reported it (gid = trial id).

    Completed trials are solid lines with a dot at the last epoch; early-stopped ones dashed and
    grey with an ``x`` where ASHA stopped them; errored ones dotted red with an ``X``; the best
    trial (by the experiment's metric) is drawn thick, orange and on top. The best ``MAX_LABELS``
    completed curves carry their trial id at their end, spread so no two overlap. The legend shows
    the status counts and the best trial's score; it is made of proxy handles, so
    ``ax.get_lines()`` holds exactly the trial curves.
    """
    fig = new_figure()
    ax = fig.add_subplot()
    best = exp.best_trial()
    counts, ends = _draw_curves(ax, exp, best.trial_id if best else None)
    cutoffs = asha_cutoffs(exp)
    if cutoffs:
        ax.scatter([e for e, _ in cutoffs], [c for _, c in cutoffs], marker="_", s=500, linewidths=2.5,
                   color="black", zorder=4, gid="asha-cutoffs")
    sign = 1 if exp.mode == "max" else -1
    labelled = sorted(ends, key=lambda end: -sign * end[0])[:MAX_LABELS]
    _label_ends(ax, [end[1:] for end in labelled])
    handles = _curve_legend(exp, counts, best, bool(cutoffs), len(labelled))
    if handles:
        ax.legend(handles=handles, loc="best", fontsize=9, framealpha=0.9)
    else:
        ax.text(0.5, 0.5, f"no trial reported {CURVE_METRIC} yet", ha="center", va="center",
                transform=ax.transAxes, color="0.4")
    ax.set_xlabel(EPOCH)
    ax.set_ylabel("val SI-SDR (dB)")
    plotted = sum(counts.values())
    ax.set_title(wrapped(f"{exp.path.name}: val SI-SDR per epoch ({plotted} of {len(exp.trials)} trials)", fig))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    return fig


def _draw_curves(ax: Axes, exp: Experiment, best_id: str | None) -> tuple[dict[str, int], list[tuple]]:
    """One line per trial that reported the metric; return the status counts and, for each completed
    trial, (its score, last epoch, last value, trial id, colour): where its label goes."""
    counts: dict[str, int] = {}
    ends = []
    palette = iter(_PALETTE * (1 + len(exp.trials) // len(_PALETTE)))
    for trial in exp.trials:
        xs, ys = trial_curve(trial)
        if not xs:
            continue
        counts[trial.status] = counts.get(trial.status, 0) + 1
        style, alpha, colour, marker = _STYLE.get(trial.status, _OTHER_STYLE)
        is_best = trial.trial_id == best_id
        colour = BEST_COLOUR if is_best else colour or next(palette)
        ax.plot(xs, ys, linestyle=style, alpha=1.0 if is_best else alpha, color=colour,
                linewidth=2.8 if is_best else 1.3, zorder=3 if is_best else 2,
                marker=marker, markevery=[len(xs) - 1], markersize=8 if marker in "xX" else 4,
                markeredgewidth=2 if marker in "xX" else 1, label=trial.trial_id, gid=trial.trial_id)
        score = trial.best(exp.metric, exp.mode)
        if trial.status == COMPLETED and score is not None:  # a finished curve says whose it is
            ends.append((score, xs[-1], ys[-1], trial.trial_id, colour))
    return counts, ends


def _label_ends(ax: Axes, ends: list[tuple]) -> None:
    """Each (x, y, trial id, colour) labelled right of its point, moved up or down just enough that
    no two labels overlap (a thin leader joins a moved label to its point)."""
    if not ends:
        return
    lo, hi = ax.get_ylim()  # autoscaled to the curves; the labels do not change it
    ax.figure.draw_without_rendering()  # lays the figure out: the axes' height in pixels is known from here
    gap = 1.4 * _LABEL_PT * DPI / 72 * (hi - lo) / ax.get_window_extent().height  # a line of label text, in dB
    order = sorted(ends, key=lambda e: e[1])
    ys = [e[1] for e in order]
    for i in range(1, len(ys)):
        ys[i] = max(ys[i], ys[i - 1] + gap)
    if ys[-1] > hi - gap / 2:  # pushed past the top: slide the stack down, keeping the gaps
        ys[-1] = hi - gap / 2
        for i in range(len(ys) - 2, -1, -1):
            ys[i] = min(ys[i], ys[i + 1] - gap)
    for (x, y, trial_id, colour), at in zip(order, ys, strict=True):
        moved = abs(at - y) > gap / 3
        ax.annotate(trial_id, (x, y), xytext=(8, at), textcoords=("offset points", "data"), fontsize=_LABEL_PT,
                    va="center", color=colour, gid=f"label-{trial_id}",
                    arrowprops={"arrowstyle": "-", "color": colour, "lw": 0.6, "alpha": 0.7} if moved else None)


def _curve_legend(exp: Experiment, counts: dict[str, int], best: TrialRecord | None, rungs: bool,
                  labelled: int) -> list[Line2D]:
    handles = []
    names = {COMPLETED: "completed", EARLY_STOPPED: "early-stopped (x = stop)", ERROR: "errored"}
    for status in (COMPLETED, EARLY_STOPPED, ERROR):
        if counts.get(status):
            style, alpha, colour, marker = _STYLE[status]
            note = f" (best {labelled} labelled)" if status == COMPLETED and labelled < counts[status] else ""
            handles.append(Line2D([], [], linestyle=style, color=colour or "tab:blue", alpha=alpha, marker=marker,
                                  label=f"{names[status]}: {counts[status]}{note}"))
    for status, n in sorted(counts.items()):  # RUNNING / PENDING / PAUSED of an interrupted search, a budget's cut
        if status not in _STYLE:
            handles.append(Line2D([], [], linestyle=_OTHER_STYLE[0], color=_OTHER_STYLE[2], marker=_OTHER_STYLE[3],
                                  label=f"{status_label(status)}: {n}"))
    if best is not None:
        score = best.best(exp.metric, exp.mode)
        handles.append(Line2D([], [], color=BEST_COLOUR, linewidth=2.8,
                              label=f"best {best.trial_id}: {exp.metric} {score:.2f}"))
    if rungs:
        handles.append(Line2D([], [], color="black", marker="_", markersize=14, linestyle="none",
                              label="ASHA rung cut-off (below it: stopped)"))
    return handles


def asha_cutoffs(exp: Experiment) -> list[tuple[int, float]]:
    """(epoch, cut-off) of every ASHA rung as the search left it: at epoch ``grace * rf**k``, the
    ``1 - 1/rf`` quantile of the scores recorded there (a later trial below it was stopped). Rebuilt
    from search.json's scheduler and the trials' reports; [] for a search without ASHA."""
    sched = exp.search.get("scheduler") or {}
    if sched.get("type") != "asha" or exp.metric != CURVE_METRIC:
        return []
    grace, rf, max_t = sched.get("grace_period") or 1, sched.get("reduction_factor") or 3, sched.get("max_t")
    if not max_t or rf <= 1:
        return []
    out = []
    for k in range(int(math.log(max_t / grace) / math.log(rf) + 1)):
        epoch = int(grace * rf**k)
        scores = [r[exp.metric] for t in exp.trials for r in t.history
                  if r.get(EPOCH) == epoch and isinstance(r.get(exp.metric), (int, float))]
        if scores and epoch < max_t:
            q = (1 - 1 / rf) * 100 if exp.mode == "max" else 100 / rf
            out.append((epoch, float(np.nanpercentile(scores, q))))
    return out


def figure_importance(ranking: list[tuple[str, float]], title: str = "parameter importance") -> Figure:
    """Horizontal bars of an importance ranking, most important on top, value printed at each bar; the
    title wrapped to the figure's width (a line break in it is kept)."""
    n = len(ranking)
    height = SIZE_IN[1] + 0.3 * max(0, n - 12)
    fig = new_figure((SIZE_IN[0], height))
    ax = fig.add_subplot()
    names = [p for p, _ in ranking][::-1]
    values = [v for _, v in ranking][::-1]
    bars = ax.barh(range(n), values, color="tab:blue", height=0.6)
    ax.set_yticks(range(n), names)
    for bar, v in zip(bars, values, strict=True):
        ax.text(bar.get_width() + 0.01, bar.get_y() + bar.get_height() / 2, f"{v:.3f}", va="center", fontsize=9)
    ax.set_xlim(0, max(1.0, max(values, default=0) + 0.12))
    ax.set_xlabel("importance (sums to 1)")
    fig.suptitle(wrapped(title, fig))  # centred on the figure: the long parameter names make the axes narrow
    ax.grid(True, axis="x", alpha=0.3)
    return fig


def importance_title(exp: Experiment) -> str:
    """The chart's title: the experiment and the text's caption, its caveat on a line of its own."""
    from .importance import importance_caption

    return f"{exp.path.name}: {importance_caption(exp)}".replace("; ", "\n", 1)


def write_plots(exp: Experiment, out_dir: Path | None = None,
                importance: list[tuple[str, float]] | None = None) -> list[Path]:
    """Write the experiment's PNGs into ``out_dir`` (default: the experiment folder); return their paths.

    Always ``val_sisdr_per_epoch.png``; ``parameter_importance.png`` too when ``importance`` is
    given (non-empty) or can be computed (≥ 2 finished trials and a searched space), else skipped;
    ``pareto_front.png`` for a multi-objective search; the views of the searched space
    (:mod:`.study_plots`: parallel coordinates, slice, and a contour of two or more parameters)
    wherever the importance has its trials.
    """
    out = Path(out_dir) if out_dir is not None else exp.path
    written = [save_figure(figure_val_sisdr(exp), out / VAL_SISDR_PNG)]
    if importance is None:
        from .importance import parameter_importance

        try:
            importance = parameter_importance(exp)
        except TuneInputError:
            importance = []
    if importance:
        written.append(save_figure(figure_importance(importance, importance_title(exp)), out / IMPORTANCE_PNG))
    from . import pareto

    if pareto.is_multi_objective(exp) and pareto.candidates(exp):
        from .pareto_plot import write_pareto_plot

        written.append(write_pareto_plot(exp, out))
    return written + _study_views(exp, out, importance)


def _study_views(exp: Experiment, out: Path, importance: list[tuple[str, float]]) -> list[Path]:
    """Parallel coordinates, slice and contour of the searched space, over the trials the importance
    ranks: every scored finished trial at its best epoch, early-stopped ones marked (the study the
    search kept holds an early-stopped trial as PRUNED, without a value: those views would drop it)."""
    from .importance import STATUS_ATTR, importance_study
    from .study_plots import write_study_plots

    try:
        study = importance_study(exp)
    except TuneInputError as exc:
        reason = str(exc).split(": ", 1)[-1]
        print(f"note: no views of the searched space (they show the trials the importance ranks): {reason}",
              file=sys.stderr)
        return []
    n, total = len(study.trials), len(exp.trials)
    counts: dict[str, int] = {}
    for t in study.trials:
        status = status_label(str(t.user_attrs.get(STATUS_ATTR)))
        counts[status] = counts.get(status, 0) + 1
    caption = (f"{exp.path.name}: {f'all {n}' if n == total else f'{n} of {total}'} trials, each at its best epoch ("
               + ", ".join(f"{k} {v}" for k, v in counts.items()) + ")")
    top = [path for path, _ in importance]
    written, skipped = write_study_plots(study, out, exp.metric, top or None, caption)
    for reason in skipped:
        print(f"note: no view of the searched space: {reason}", file=sys.stderr)
    return written
