"""Views of the searched space: parallel coordinates, slice and contour of every scored trial.

Input: an Optuna study of COMPLETE trials. :func:`.plots.write_plots` hands in
:func:`.importance.importance_study`: one trial per scored trial of the experiment, valued at its
best epoch (the score the results table ranks by and the importance ranks over), early-stopped
trials included and marked, so the three views count the trials the importance counts, and the
title says how many of the experiment's trials that is. Any study works (a stored one: its
COMPLETE trials, labelled by number).

Drawn here rather than by ``optuna.visualization.matplotlib``, which misled on these searches: it
keeps COMPLETE trials only (3 of 8 in the demo, every early-stopped one left out without a word),
lays a numeric categorical such as ``B ∈ {32, 64}`` out as a continuous axis and interpolates
across it, reverses its colour scale whenever it is given a target (a multi-objective study's best
line white on white), prints log-axis minor ticks into each other (``2×10⁻³3×10⁻³``) and draws
through pyplot's global state. Here every axis is drawn in search-space coordinates (log10 of a log
range, one index per category), with few plain ticks; the colour is :func:`.figures.score_cmap`
(dark = good), the best trial orange, an early-stopped trial an ``x`` (a dashed line); a
categorical axis gets no interpolated surface. Object API only, like :mod:`.plots`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Colormap, Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator
from matplotlib.tri import Triangulation
from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution

from ..names import COMPLETED, status_label
from .figures import BEST_COLOUR, SIZE_IN, marker, new_figure, save_figure, score_cmap, wrapped
from .importance import STATUS_ATTR, TRIAL_ATTR

PARALLEL_PNG = "optuna_parallel_coordinate.png"
SLICE_PNG = "optuna_slice.png"
CONTOUR_PNG = "optuna_contour.png"
MIN_TRIALS = 2
CATEGORY_SPREAD = 0.03  # points that share a category sit this far apart around it (axis units), up to ±0.25


@dataclass(frozen=True)
class Point:
    """One trial as the views see it: its label, status, score and searched values."""

    label: str
    status: str
    score: float
    params: dict[str, Any]


@dataclass(frozen=True)
class SpaceAxis:
    """A searched parameter as an axis, in coordinates: log10 of a log range, an index per category."""

    name: str
    label: str
    dist: BaseDistribution

    @property
    def categorical(self) -> bool:
        return isinstance(self.dist, CategoricalDistribution)

    def coord(self, value: Any) -> float:
        if isinstance(self.dist, CategoricalDistribution):
            return float(self.dist.to_internal_repr(value))
        log = bool(self.dist.log)  # type: ignore[attr-defined]  # Float- or IntDistribution
        return math.log10(value) if log else float(value)

    def bounds(self) -> tuple[float, float]:
        """The searched range in coordinates (categories: first and last index)."""
        if isinstance(self.dist, CategoricalDistribution):
            return 0.0, float(len(self.dist.choices) - 1)
        return self.coord(self.dist.low), self.coord(self.dist.high)  # type: ignore[attr-defined]

    def limits(self) -> tuple[float, float]:
        lo, hi = self.bounds()
        pad = 0.5 if self.categorical or hi == lo else 0.05 * (hi - lo)
        return lo - pad, hi + pad

    def ticks(self) -> tuple[list[float], list[str]]:
        """(coordinates, labels): every category; 3–5 plain numbers of a numeric range."""
        if isinstance(self.dist, CategoricalDistribution):
            return [float(i) for i in range(len(self.dist.choices))], [str(c) for c in self.dist.choices]
        lo, hi = self.dist.low, self.dist.high  # type: ignore[attr-defined]
        if self.dist.log and hi > lo:  # type: ignore[attr-defined]
            values = _log_ticks(lo, hi)
            return [math.log10(v) for v in values], [f"{v:g}" for v in values]
        integer = isinstance(self.dist, IntDistribution)
        values = [v for v in MaxNLocator(4, integer=integer).tick_values(lo, hi) if lo <= v <= hi] or [lo]
        return [float(v) for v in values], [f"{v:g}" for v in values]


def _log_ticks(lo: float, hi: float) -> list[float]:
    """3–5 round values inside [lo, hi]: 1-2-5 steps, else 1-3 steps, else powers of ten (every
    second or third one over a wide range); 4 values of 2 significant figures when none fit."""
    exps = range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
    for mantissas in ((1, 2, 5), (1, 3), (1,)):
        values = [float(f"{m}e{e}") for e in exps for m in mantissas
                  if lo * (1 - 1e-9) <= m * 10.0**e <= hi * (1 + 1e-9)]
        if 3 <= len(values) <= 5:
            return values
        if len(values) > 5 and mantissas == (1,):
            return values[:: math.ceil(len(values) / 5)]
    return [float(f"{v:.2g}") for v in np.geomspace(lo, hi, 4)]


def points_of(study: optuna.Study) -> list[Point]:
    """The study's COMPLETE trials with a finite first objective."""
    out = []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        value = t.values[0] if t.values else None
        if value is not None and math.isfinite(value):
            out.append(Point(str(t.user_attrs.get(TRIAL_ATTR, t.number)), str(t.user_attrs.get(STATUS_ATTR, COMPLETED)),
                             float(value), dict(t.params)))
    return out


def space_axes(study: optuna.Study, top: list[str] | None = None) -> list[SpaceAxis]:
    """One axis per parameter of the study's trials, ``top`` (most important first) leading."""
    dists: dict[str, BaseDistribution] = {}
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        for name, dist in t.distributions.items():
            dists.setdefault(name, dist)
    order = [p for p in (top or []) if p in dists]
    order += sorted(set(dists) - set(order))
    tails = [name.replace("/", ".").rsplit(".", 1)[-1] for name in order]
    return [SpaceAxis(name, tail if tails.count(tail) == 1 else name, dists[name])
            for name, tail in zip(order, tails, strict=True)]


@dataclass(frozen=True)
class _Look:
    """What every view of one study shares: the points, the best one, the colour scale and the caption."""

    points: list[Point]
    metric: str
    mode: str
    caption: str

    @property
    def best(self) -> Point:
        sign = 1 if self.mode == "max" else -1
        return max(self.points, key=lambda p: sign * p.score)

    def worst_first(self) -> list[Point]:
        return sorted(self.points, key=lambda p: p.score, reverse=self.mode != "max")

    @property
    def cmap(self) -> Colormap:
        return score_cmap(self.mode)

    @property
    def norm(self) -> Normalize:
        lo, hi = min(p.score for p in self.points), max(p.score for p in self.points)
        return Normalize(lo - 0.5, hi + 0.5) if lo == hi else Normalize(lo, hi)

    def colour(self, p: Point) -> Any:
        return self.cmap(self.norm(p.score))

    @property
    def score_label(self) -> str:
        return f"best {self.metric} ({'higher' if self.mode == 'max' else 'lower'} is better)"

    def colourbar(self, fig: Figure, ax: Axes | np.ndarray) -> None:
        fig.colorbar(ScalarMappable(norm=self.norm, cmap=self.cmap), ax=ax, label=self.score_label, pad=0.02)

    def legend(self, fig: Figure, line: bool) -> None:
        """Below the plot, outside it: a status count per status, and the best trial."""
        counts: dict[str, int] = {}
        for p in self.points:
            counts[p.status] = counts.get(p.status, 0) + 1
        handles = [Line2D([], [], color="0.35", marker="none" if line else marker(s),
                          linestyle=("-" if s == COMPLETED else "--") if line else "none",
                          label=f"{status_label(s)}: {n}")
                   for s, n in sorted(counts.items(), key=lambda sn: sn[0] != COMPLETED)]
        handles.append(Line2D([], [], color=BEST_COLOUR, linewidth=3 if line else 0, marker="o", markersize=9,
                              markerfacecolor="none", markeredgewidth=2,
                              label=f"best {self.best.label}: {self.metric} {self.best.score:.2f}"))
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=9, frameon=False)


def _ring_best(ax: Axes, x: float, y: float) -> None:
    ax.scatter([x], [y], s=190, facecolors="none", edgecolors=BEST_COLOUR, linewidths=2.2, zorder=6, gid="best")


def _spread(axis: SpaceAxis, points: list[Point]) -> list[float]:
    """Coordinates of ``points`` on ``axis``; the points that share a category are spread evenly
    across a band around it (at most ±0.25 of the gap to the next one)."""
    coords = [axis.coord(p.params[axis.name]) for p in points]
    if not axis.categorical:
        return coords
    members: dict[float, list[int]] = {}
    for i, c in enumerate(coords):
        members.setdefault(c, []).append(i)
    for c, idx in members.items():  # in trial-id order (random hex): where a point sits says nothing of its score
        half = min(0.25, CATEGORY_SPREAD * (len(idx) - 1))
        idx = sorted(idx, key=lambda i: points[i].label)
        for i, offset in zip(idx, np.linspace(-half, half, len(idx)), strict=True):
            coords[i] = c + float(offset)
    return coords


def figure_parallel(look: _Look, axes: list[SpaceAxis]) -> Figure:
    """One vertical axis per parameter (most important left) and the score last; a line per trial,
    coloured by its score, worst drawn first; each axis spans its searched range."""
    k = len(axes)
    fig = new_figure((max(SIZE_IN[0], 1.5 * k + 3.5), SIZE_IN[1]))
    ax = fig.add_subplot()
    norm = look.norm

    def level(axis: SpaceAxis, coord: float) -> float:
        lo, hi = axis.bounds()
        return 0.5 if hi == lo else (coord - lo) / (hi - lo)

    drawn = [p for p in look.worst_first() if all(a.name in p.params for a in axes)]
    top = look.best
    for p in drawn:
        ys = [level(a, a.coord(p.params[a.name])) for a in axes] + [float(norm(p.score))]
        best = p is top
        ax.plot(range(k + 1), ys, color=BEST_COLOUR if best else look.colour(p), lw=3 if best else 1.3,
                ls="-" if p.status == COMPLETED else "--", alpha=1.0 if best else 0.85, zorder=5 if best else 2,
                gid=p.label)
    score_ticks = [v for v in MaxNLocator(5).tick_values(norm.vmin, norm.vmax) if norm.vmin <= v <= norm.vmax]
    columns = [([level(a, c) for c in a.ticks()[0]], a.ticks()[1]) for a in axes]
    columns.append(([float(norm(v)) for v in score_ticks], [f"{v:.3g}" for v in score_ticks]))
    for j, (levels, labels) in enumerate(columns):
        ax.axvline(j, color="0.25", lw=0.8, zorder=1)
        for y, text in zip(levels, labels, strict=True):
            ax.text(j, y, f" {text}", fontsize=8, ha="left", va="center", zorder=7,
                    bbox={"boxstyle": "square,pad=0.05", "fc": "white", "ec": "none", "alpha": 0.75})
    ax.set_xticks(range(k + 1), [a.label for a in axes] + [f"best {look.metric}"], fontsize=9)
    ax.set_yticks([])
    ax.set_xlim(-0.15, k + 0.55)
    ax.set_ylim(-0.04, 1.04)
    for spine in ax.spines.values():
        spine.set_visible(False)
    missing = len(look.points) - len(drawn)
    note = f"; {missing} without every parameter not drawn" if missing else ""
    fig.suptitle(wrapped(f"{look.caption}{note}\nparallel coordinates: each line a trial, each axis its searched "
                         "range", fig, 11), fontsize=11)
    look.colourbar(fig, ax)
    look.legend(fig, line=True)
    return fig


def figure_slice(look: _Look, axes: list[SpaceAxis]) -> Figure:
    """One panel per parameter: each trial's best score against its value (categories spread)."""
    k = len(axes)
    ncols = 2 if k == 4 else min(k, 3)
    nrows = math.ceil(k / ncols)
    fig = new_figure((SIZE_IN[0], max(SIZE_IN[1], 1.6 + 2.6 * nrows)))
    grid = fig.subplots(nrows, ncols, sharey=True, squeeze=False)
    best = look.best
    for i, axis in enumerate(axes):
        ax = grid.flat[i]
        pts = [p for p in look.points if axis.name in p.params]
        xs = _spread(axis, pts)
        for status in sorted({p.status for p in pts}):
            sel = [(x, p.score) for x, p in zip(xs, pts, strict=True) if p.status == status]
            ax.scatter(*zip(*sel, strict=True), marker=marker(status), s=30, alpha=0.85, zorder=3,
                       c="tab:blue" if status == COMPLETED else "0.4", linewidths=1.6 if marker(status) == "x" else 0.5)
        if best in pts:
            _ring_best(ax, xs[pts.index(best)], best.score)
        ax.set_xticks(*axis.ticks(), fontsize=8)
        ax.set_xlim(*axis.limits())
        ax.set_xlabel(axis.label, fontsize=9)
        ax.grid(True, alpha=0.3)
        if i % ncols == 0:
            ax.set_ylabel(f"best {look.metric}", fontsize=9)
    for ax in grid.flat[k:]:
        ax.set_visible(False)
    fig.suptitle(wrapped(f"{look.caption}\nslice: {look.score_label} against each searched parameter", fig, 11),
                 fontsize=11)
    look.legend(fig, line=False)
    return fig


def figure_contour(look: _Look, x_axis: SpaceAxis, y_axis: SpaceAxis) -> Figure:
    """The two most important parameters against each other, the points coloured by score; shaded by
    linear interpolation between the trials where both axes are numeric (a category has no between)."""
    fig = new_figure()
    ax = fig.add_subplot()
    pts = [p for p in look.worst_first() if x_axis.name in p.params and y_axis.name in p.params]
    xs, ys = _spread(x_axis, pts), _spread(y_axis, pts)
    z = [p.score for p in pts]
    shaded = not (x_axis.categorical or y_axis.categorical) and len(pts) >= 3
    if shaded:
        try:
            ax.tricontourf(Triangulation(xs, ys), z, levels=np.linspace(look.norm.vmin, look.norm.vmax, 13),
                           cmap=look.cmap, norm=look.norm, alpha=0.5, zorder=1)
        except (RuntimeError, ValueError):  # the points lie on one line: no triangles to shade
            shaded = False
    for status in sorted({p.status for p in pts}):
        sel = [(x, y, look.colour(p)) for x, y, p in zip(xs, ys, pts, strict=True) if p.status == status]
        cx, cy, colours = zip(*sel, strict=True)
        dot = marker(status) == "o"
        ax.scatter(cx, cy, c=list(colours), marker=marker(status), s=55, zorder=3,
                   edgecolors="black" if dot else None, linewidths=0.6 if dot else 2)
    best = look.best
    if best in pts:
        i = pts.index(best)
        _ring_best(ax, xs[i], ys[i])
    for axis, set_ticks, set_lim, set_label in ((x_axis, ax.set_xticks, ax.set_xlim, ax.set_xlabel),
                                                (y_axis, ax.set_yticks, ax.set_ylim, ax.set_ylabel)):
        set_ticks(*axis.ticks(), fontsize=8)
        set_lim(*axis.limits())
        set_label(axis.label + (" (categories)" if axis.categorical else ""))
    how = "shaded by linear interpolation between trials" if shaded else "points only, nothing interpolated"
    fig.suptitle(wrapped(f"{look.caption}\nthe two most important parameters; {how}", fig, 11), fontsize=11)
    ax.grid(True, alpha=0.3, zorder=0)
    look.colourbar(fig, ax)
    look.legend(fig, line=False)
    return fig


def study_figures(study: optuna.Study, metric: str, top_params: list[str] | None = None,
                  caption: str | None = None) -> tuple[dict[str, Figure], list[str]]:
    """The views as figures, keyed by file name, and the reasons for views not drawn.

    ``metric`` names the first objective (a multi-objective study is drawn on it); ``top_params``:
    the study's parameter names, most important first (the contour shows the top two);
    ``caption`` heads every view (default: the study's name, if it has one, and its trial count).
    """
    points = points_of(study)
    if len(points) < MIN_TRIALS:
        return {}, [f"Optuna's views need {MIN_TRIALS} completed study trials; the study has {len(points)}"]
    axes = space_axes(study, top_params)
    if not axes:
        return {}, ["the study's trials searched no parameters"]
    mode = "max" if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else "min"
    named = not study.study_name.startswith("no-name-")  # Optuna's name for an unnamed (in-memory) study
    look = _Look(points, metric, mode, caption or f"{study.study_name + ': ' if named else ''}{len(points)} trials")
    figures = {PARALLEL_PNG: figure_parallel(look, axes), SLICE_PNG: figure_slice(look, axes)}
    if len(axes) >= 2:
        figures[CONTOUR_PNG] = figure_contour(look, axes[0], axes[1])
    return figures, []


def write_study_plots(study: optuna.Study, out: Path, metric: str, top_params: list[str] | None = None,
                      caption: str | None = None) -> tuple[list[Path], list[str]]:
    """Write :func:`study_figures` into ``out``; return (paths written, reasons for views skipped)."""
    figures, skipped = study_figures(study, metric, top_params, caption)
    return [save_figure(fig, out / name) for name, fig in figures.items()], skipped
