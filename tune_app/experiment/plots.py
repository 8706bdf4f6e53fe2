"""PNG plots of an experiment folder: val SI-SDR per epoch of every trial, and parameter importance.

Pure matplotlib object API (``Figure`` + ``FigureCanvasAgg``): no pyplot, no backend switch, no
global state, so it is safe inside the CLI, tests and notebooks alike. No Ray import.
Sizes are fixed (8 × 5 in at 100 dpi → 800 × 500 px; the importance chart grows by a fixed
amount per parameter beyond 12) and figures are saved without ``bbox_inches="tight"``, so the
pixel size depends only on the input, never on label lengths.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from ..errors import TuneInputError
from ..names import COMPLETED, CURVE_METRIC, EARLY_STOPPED, EPOCH, ERROR
from .figures import DPI, SIZE_IN, save_figure
from .results import Experiment, TrialRecord

__all__ = [
    "DPI",
    "IMPORTANCE_PNG",
    "SIZE_IN",
    "VAL_SISDR_PNG",
    "figure_importance",
    "figure_val_sisdr",
    "save_figure",
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
_OTHER_STYLE = (":", 0.6, "0.6", ".")  # RUNNING / PENDING / PAUSED of an interrupted search
_BEST_COLOUR = "tab:orange"
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
    trial (by the experiment's metric) is drawn thick, orange and on top. The legend shows the
    status counts and the best trial's score; it is made of proxy handles, so ``ax.get_lines()``
    holds exactly the trial curves.
    """
    fig = Figure(figsize=SIZE_IN, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    best = exp.best_trial()
    best_id = best.trial_id if best else None
    counts: dict[str, int] = {}
    plotted = 0
    palette = iter(_PALETTE * (1 + len(exp.trials) // len(_PALETTE)))
    for trial in exp.trials:
        xs, ys = trial_curve(trial)
        if not xs:
            continue
        plotted += 1
        counts[trial.status] = counts.get(trial.status, 0) + 1
        style, alpha, colour, marker = _STYLE.get(trial.status, _OTHER_STYLE)
        is_best = trial.trial_id == best_id
        if colour is None and not is_best:
            colour = next(palette)
        (line,) = ax.plot(
            xs, ys, linestyle=style, alpha=1.0 if is_best else alpha,
            color=_BEST_COLOUR if is_best else colour,
            linewidth=2.8 if is_best else 1.3, zorder=3 if is_best else 2,
            marker=marker, markevery=[len(xs) - 1], markersize=8 if marker in "xX" else 4,
            markeredgewidth=2 if marker in "xX" else 1,
            label=trial.trial_id,
        )
        line.set_gid(trial.trial_id)
        if trial.status == COMPLETED:  # a finished curve says whose it is
            ax.annotate(trial.trial_id, (xs[-1], ys[-1]), xytext=(4, 0), textcoords="offset points", fontsize=7,
                        va="center", color=_BEST_COLOUR if is_best else colour, gid=f"label-{trial.trial_id}")

    cutoffs = asha_cutoffs(exp)
    if cutoffs:
        ax.scatter([e for e, _ in cutoffs], [c for _, c in cutoffs], marker="_", s=500, linewidths=2.5,
                   color="black", zorder=4, gid="asha-cutoffs")

    handles = []
    names = {COMPLETED: "completed", EARLY_STOPPED: "early-stopped (x = stop)", ERROR: "errored"}
    for status in (COMPLETED, EARLY_STOPPED, ERROR):
        if counts.get(status):
            style, alpha, colour, marker = _STYLE[status]
            handles.append(Line2D([], [], linestyle=style, color=colour or "tab:blue", alpha=alpha, marker=marker,
                                  label=f"{names[status]}: {counts[status]}"))
    other = sum(n for s, n in counts.items() if s not in _STYLE)
    if other:
        handles.append(Line2D([], [], linestyle=_OTHER_STYLE[0], color=_OTHER_STYLE[2], marker=_OTHER_STYLE[3],
                              label=f"unfinished: {other}"))
    if best is not None:
        score = best.best(exp.metric, exp.mode)
        handles.append(Line2D([], [], color=_BEST_COLOUR, linewidth=2.8,
                              label=f"best {best.trial_id}: {exp.metric} {score:.2f}"))
    if cutoffs:
        handles.append(Line2D([], [], color="black", marker="_", markersize=14, linestyle="none",
                              label="ASHA rung cut-off (below it: stopped)"))
    if handles:
        ax.legend(handles=handles, loc="best", fontsize=9, framealpha=0.9)
    else:
        ax.text(0.5, 0.5, f"no trial reported {CURVE_METRIC} yet", ha="center", va="center",
                transform=ax.transAxes, color="0.4")

    ax.set_xlabel(EPOCH)
    ax.set_ylabel("val SI-SDR (dB)")
    ax.set_title(f"{exp.path.name}: val SI-SDR per epoch ({plotted} of {len(exp.trials)} trials)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    return fig


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
    """Horizontal bars of an importance ranking, most important on top, value printed at each bar."""
    n = len(ranking)
    height = SIZE_IN[1] + 0.3 * max(0, n - 12)
    fig = Figure(figsize=(SIZE_IN[0], height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    names = [p for p, _ in ranking][::-1]
    values = [v for _, v in ranking][::-1]
    bars = ax.barh(range(n), values, color="tab:blue", height=0.6)
    ax.set_yticks(range(n), names)
    for bar, v in zip(bars, values, strict=True):
        ax.text(bar.get_width() + 0.01, bar.get_y() + bar.get_height() / 2, f"{v:.3f}", va="center", fontsize=9)
    ax.set_xlim(0, max(1.0, max(values, default=0) + 0.12))
    ax.set_xlabel("importance (sums to 1)")
    ax.set_title(title)
    ax.grid(True, axis="x", alpha=0.3)
    return fig


def write_plots(exp: Experiment, out_dir: Path | None = None,
                importance: list[tuple[str, float]] | None = None) -> list[Path]:
    """Write the experiment's PNGs into ``out_dir`` (default: the experiment folder); return their paths.

    Always ``val_sisdr_per_epoch.png``; ``parameter_importance.png`` too when ``importance`` is
    given (non-empty) or can be computed (≥ 2 finished trials and a searched space), else skipped.
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
        from .importance import importance_caption

        title = f"{exp.path.name}: {importance_caption(exp)}"
        written.append(save_figure(figure_importance(importance, title), out / IMPORTANCE_PNG))
    from . import pareto

    if pareto.is_multi_objective(exp) and pareto.candidates(exp):
        from .pareto_plot import write_pareto_plot

        written.append(write_pareto_plot(exp, out))
    return written + _study_views(exp, out, importance)


def _study_views(exp: Experiment, out: Path, importance: list[tuple[str, float]]) -> list[Path]:
    """Optuna's parallel-coordinate, slice and contour views of the study the search kept."""
    from .study import load_study
    from .study_plots import write_study_plots

    study = load_study(exp.search, exp.path)
    if study is None:
        return []
    top = [path.replace(".", "/") for path, _ in importance]  # the study's parameter names (driver.space_key)
    written, skipped = write_study_plots(study, out, exp.metric, top or None)
    for reason in skipped:
        print(f"note: no Optuna view {reason}", file=sys.stderr)
    return written
