"""Warm start: hand a new search the results of earlier runs, so TPE models from its first trial.

A source is either a **W&B runs export** (CSV, ``;`` or ``,`` separated: one row per run, config
columns such as ``lr;weight_decay;...`` and the metric column) or an **earlier polsess-tune
experiment folder**. :func:`load_warm_start` keeps the runs whose result means the same thing in
the new search and turns them into points (``{config path: value}``) and rewards; :func:`as_evaluated`
gives them to Ray's ``OptunaSearch`` as already-evaluated points. Pure: no Ray import.

Which runs are used — a run counts under the first reason that applies, in this order:

1. ``other model/task`` — its ``model.model_type`` or ``data.task`` differs from the base config's
   (a CSV column ``model_type``/``task``/``data.task``, resolved like sweep names).
2. ``other settings`` — a setting that changes what the score *means* differs from the base config:
   :data:`SCORE_SETTINGS` (train/val subset size, crop length, epoch budget, validation variants).
   Every other recorded setting (seed, early_stopping_patience, batch size, ...) is ignored: it
   shifts a score less than the budget or the data do, and W&B exports rarely record it. Pass
   ``match_settings=False`` to use runs of other settings anyway (e.g. stage-1 runs on 2k samples
   for a stage-2 search on 8k: their ranking is informative, their scale is not).
3. ``not completed`` (CSV: ``completed`` false, or a W&B state other than ``finished``);
   ``early-stopped`` / ``errored`` / ``unfinished`` (experiment folders). A run stopped by
   hyperband/ASHA has a partial score; the new search tells Optuna such trials as PRUNED, so a
   partial score given as a final one would mislead TPE.
4. ``missing parameter`` — a searched parameter has no value (no column, or an empty cell).
5. ``outside space`` — a value the space cannot take: a number outside [low, high] (a relative
   slack of :data:`REL_TOL` of the range for numbers read back from CSV, then clamped), not a whole
   number for an int parameter, off the ``q`` grid (same slack, then snapped), or not one of the
   categorical ``values``.
6. ``no metric`` — the metric is empty or not finite.
7. ``duplicate`` — the same point as an earlier used run: one point per parameter vector, keeping
   the best reward (Optuna would accept both, but two copies double that point's weight in TPE's
   density model; the best is kept, as for a re-run the best is what a search would report).

An **unknown** value is never a mismatch: an empty CSV cell, or a column the export lacks. For
identity and settings, an empty cell falls back to the run's own experiment file when the CSV has
a ``config`` column naming one and the file is found (relative to the working directory, the CSV's
folder and its parents, the sweep file's and base config's folders and their parents); the file's
name need not match the base config's. The cell wins over the file (a sweep overrides its base).
Searched parameters are read from the cells only.

The reward is the value Ray's OptunaSearch tells Optuna when a trial ends — the metric's **last**
report — so warm and live rewards are on one scale. For CSV it is the metric column (W&B's summary
value, also the last); for ``best_val_sisdr`` last and best are the same.

Errors are :class:`TuneInputError` naming the file and the fix.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from ..errors import TuneInputError
from ..space.param import Param
from ..space.sampling import optuna_space
from ..space.spec import SearchSpec
from .location import is_uri, open_experiment
from .warm_sources import (
    EARLY_STOPPED,
    ERRORED,
    IDENTITY,
    NOT_COMPLETED,
    SCORE_SETTINGS,
    UNFINISHED,
    UNKNOWN,
    Run,
    config_roots,
    csv_runs,
    experiment_runs,
    number,
    setting,
)

__all__ = [
    "IDENTITY",
    "REASONS",
    "REL_TOL",
    "SCORE_SETTINGS",
    "WarmStart",
    "as_evaluated",
    "load_warm_start",
    "warm_trials",
]

REL_TOL = 1e-6  # a CSV holds ~9 significant digits; a value this close to the space counts as inside


OTHER_MODEL = "other model/task"


OTHER_SETTINGS = "other settings"


MISSING = "missing parameter"


OUTSIDE = "outside space"


NO_METRIC = "no metric"


DUPLICATE = "duplicate"


REASONS = (OTHER_MODEL, OTHER_SETTINGS, NOT_COMPLETED, EARLY_STOPPED, ERRORED, UNFINISHED, MISSING, OUTSIDE,
           NO_METRIC, DUPLICATE)


_NA = ("", "nan", "none", "null", "n/a", "na")


@dataclass
class WarmStart:
    """Earlier results as Optuna points: ``points[i]`` (config path → value) scored ``rewards[i]``."""

    points: list[dict[str, Any]]
    rewards: list[float]
    used: int
    skipped: dict[str, int]
    source: str
    notes: list[str] = field(default_factory=list)

    def summary_line(self) -> str:
        """``warm start: 27 used, 201 skipped (outside space: 180, no metric: 21)``."""
        total = sum(self.skipped.values())
        line = f"warm start: {self.used} used, {total} skipped"
        reasons = sorted((r for r, n in self.skipped.items() if n),
                         key=lambda r: (-self.skipped[r], REASONS.index(r) if r in REASONS else len(REASONS)))
        if reasons:
            line += " (" + ", ".join(f"{r}: {self.skipped[r]}" for r in reasons) + ")"
        return line


def as_evaluated(ws: WarmStart, key: Callable[[str], str] = str) -> tuple[list[dict[str, Any]], list[float]]:
    """``(points_to_evaluate, evaluated_rewards)`` for OptunaSearch, keys mapped through ``key``.

    Every point sets every searched parameter and each value lies in its Optuna distribution, as
    ``OptunaSearch.add_evaluated_point`` (``optuna.trial.create_trial``) requires.
    """
    return [{key(p): v for p, v in point.items()} for point in ws.points], [float(r) for r in ws.rewards]


def warm_trials(ws: WarmStart, spec: SearchSpec, key: Callable[[str], str] = str) -> list[optuna.trial.FrozenTrial]:
    """The points as COMPLETE Optuna trials, exactly as OptunaSearch adds them (for ``study.add_trials``)."""
    dists = {key(p): d for p, d in optuna_space(spec).items()}
    points, rewards = as_evaluated(ws, key)
    return [optuna.trial.create_trial(params=pt, distributions=dists, value=r)
            for pt, r in zip(points, rewards, strict=True)]


def load_warm_start(
    source: str | Path,
    spec: SearchSpec,
    base_flat: dict[str, Any],
    *,
    match_settings: bool = True,
    cwd: str | Path | None = None,
) -> WarmStart:
    """Read a W&B runs export (CSV) or an experiment folder into points and rewards for ``spec``.

    ``base_flat`` is the new search's base config as flat paths (``to_flat(plan.base)``: the base
    file with the sweep's fixed values and ``--set`` applied); identity and settings are compared
    with it. ``cwd`` (default: the process's) is tried first for a CSV run's ``config`` file.
    """
    label = str(source)
    path = open_experiment(source)[0] if is_uri(source) else Path(source)  # an experiment in a bucket: pulled
    if not spec.space:
        raise TuneInputError(f"{spec.file or '<sweep>'}: nothing is searched, so there is nothing to warm-start; "
                             "drop the warm start or search a parameter")
    if spec.multi_objective:
        raise TuneInputError(f"{spec.file or '<sweep>'}: a warm start carries one score per run, and this search has "
                             f"{len(spec.objectives)} objectives; drop the warm start or search one metric")
    if spec.method != "bayes":
        raise TuneInputError(f"{spec.file or '<sweep>'}: method {spec.method} does not learn from earlier results; "
                             "use method: bayes to warm-start, or drop the warm start")
    if not path.exists():
        raise TuneInputError(f"{label}: no such file or folder; give a W&B runs export (.csv) or an earlier "
                             "experiment folder")
    if path.is_dir():
        runs, notes = experiment_runs(path, label, spec)
    else:
        runs, notes = csv_runs(path, label, spec, config_roots(path, spec, cwd))
    return _collect(runs, spec, base_flat, match_settings, label, notes)


def _collect(runs: Iterable[Run], spec: SearchSpec, base_flat: dict[str, Any], match_settings: bool,
             label: str, notes: list[str]) -> WarmStart:
    skipped = dict.fromkeys(REASONS, 0)
    best: dict[tuple[Any, ...], int] = {}
    points: list[dict[str, Any]] = []
    rewards: list[float] = []
    sign = 1 if spec.mode == "max" else -1
    for run in runs:
        reason, point, reward = _judge(run, spec, base_flat, match_settings)
        if reason is None:
            vector = tuple(point.values())
            if vector in best:
                reason = DUPLICATE
                i = best[vector]
                if sign * reward > sign * rewards[i]:
                    rewards[i] = reward
            else:
                best[vector] = len(points)
                points.append(point)
                rewards.append(reward)
        if reason is not None:
            skipped[reason] += 1
    return WarmStart(points, rewards, len(points), {r: n for r, n in skipped.items() if n}, label, notes)


def _judge(run: Run, spec: SearchSpec, base_flat: dict[str, Any],
           match_settings: bool) -> tuple[str | None, dict[str, Any], float]:
    for reason, paths in ((OTHER_MODEL, IDENTITY), (OTHER_SETTINGS, SCORE_SETTINGS if match_settings else ())):
        for p in paths:
            if p in spec.space or p not in base_flat:
                continue
            recorded = setting(run.value(p))
            if recorded is not UNKNOWN and not _same(recorded, base_flat[p]):
                return reason, {}, 0.0
    if run.status is not None:
        return run.status, {}, 0.0
    raw = {p: run.value(p) for p in spec.space}
    if any(_is_missing(param, raw[p]) for p, param in spec.space.items()):
        return MISSING, {}, 0.0
    point = {}
    for p, param in spec.space.items():
        value = _coerce(param, raw[p])
        if value is UNKNOWN:
            return OUTSIDE, {}, 0.0
        point[p] = value
    score = number(run.metric)
    if score is None or not math.isfinite(score):
        return NO_METRIC, {}, 0.0
    return None, point, score


def _is_missing(param: Param, raw: Any) -> bool:
    if raw is UNKNOWN:
        return True
    if isinstance(raw, str) and raw.strip().lower() in _NA:
        # "None" is a value when the parameter can be None
        return not (param.kind == "categorical" and None in (param.values or ())
                    and raw.strip().lower() in ("none", "null"))
    return False


def _coerce(p: Param, raw: Any) -> Any:
    """``raw`` as the exact value ``p`` takes (an int, a float inside the distribution, the choice), or UNKNOWN."""
    if p.kind == "categorical":
        return _choice(p, raw)
    x = number(raw)
    fitted = None if x is None else p.fit(x, rel_tol=REL_TOL)
    return UNKNOWN if fitted is None else fitted


def _choice(p: Param, raw: Any) -> Any:
    """The choice ``raw`` names (a cell ``3.0`` names the choice ``3``), or UNKNOWN."""
    values = p.values or []
    if not isinstance(raw, str):
        fitted = p.fit(raw)
        return fitted if fitted is not None or (raw is None and None in values) else UNKNOWN
    text = raw.strip()
    for c in values:
        if c is None:
            if text.lower() in ("none", "null"):
                return c
        elif isinstance(c, bool):
            if text.lower() in ("true", "false") and (text.lower() == "true") == c:
                return c
        elif isinstance(c, (int, float)):
            x = number(text)
            if x is not None and math.isclose(x, c, rel_tol=1e-9, abs_tol=0.0):
                return c
        elif text == str(c):
            return c
    return UNKNOWN


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        if not (isinstance(a, (list, tuple)) and isinstance(b, (list, tuple))):
            return False
        return sorted(map(str, a)) == sorted(map(str, b))
    na, nb = number(a), number(b)
    if na is not None and nb is not None and not isinstance(a, str) and not isinstance(b, str):
        return math.isclose(na, nb, rel_tol=1e-9)
    return str(a).strip() == str(b).strip()

