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

import csv
import io
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from polsess.config import Config, ConfigError, flatten, load_config, load_yaml, parse_value, resolve_name, to_flat

from .errors import TuneInputError
from .results import has_experiment_state, load_experiment
from .search_space import Param, SearchSpec, optuna_space

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

IDENTITY = ("model.model_type", "data.task")
SCORE_SETTINGS = (
    "data.train_max_samples",
    "data.val_max_samples",
    "data.segment_seconds",
    "training.num_epochs",
    "training.validation_variants",
)

OTHER_MODEL = "other model/task"
OTHER_SETTINGS = "other settings"
NOT_COMPLETED = "not completed"
EARLY_STOPPED = "early-stopped"
ERRORED = "errored"
UNFINISHED = "unfinished"
MISSING = "missing parameter"
OUTSIDE = "outside space"
NO_METRIC = "no metric"
DUPLICATE = "duplicate"
REASONS = (OTHER_MODEL, OTHER_SETTINGS, NOT_COMPLETED, EARLY_STOPPED, ERRORED, UNFINISHED, MISSING, OUTSIDE,
           NO_METRIC, DUPLICATE)

# Status columns of a runs export, most specific first; the first with a readable cell decides.
_STATUS_COLUMNS = ("completed", "wandb_state", "state", "run_state")
_TRUE = ("true", "1", "1.0", "yes")
_FALSE = ("false", "0", "0.0", "no")
_NA = ("", "nan", "none", "null", "n/a", "na")


class _Unknown:
    def __repr__(self) -> str:
        return "<unknown>"


UNKNOWN = _Unknown()  # a value the run did not record


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


# --------------------------------------------------------------------------- loading


@dataclass
class _Run:
    value: Callable[[str], Any]  # config path → the run's value (a CSV cell is text), or UNKNOWN
    status: str | None  # a skip reason when the run did not finish
    metric: Any  # the score (text or number), or UNKNOWN


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
    path = Path(source)
    label = str(source)
    if not spec.space:
        raise TuneInputError(f"{spec.file or '<sweep>'}: nothing is searched, so there is nothing to warm-start; "
                             "drop the warm start or search a parameter")
    if spec.method != "bayes":
        raise TuneInputError(f"{spec.file or '<sweep>'}: method {spec.method} does not learn from earlier results; "
                             "use method: bayes to warm-start, or drop the warm start")
    if not path.exists():
        raise TuneInputError(f"{label}: no such file or folder; give a W&B runs export (.csv) or an earlier "
                             "experiment folder")
    if path.is_dir():
        runs, notes = _experiment_runs(path, label, spec)
    else:
        runs, notes = _csv_runs(path, label, spec, _config_roots(path, spec, cwd))
    return _collect(runs, spec, base_flat, match_settings, label, notes)


def _collect(runs: Iterable[_Run], spec: SearchSpec, base_flat: dict[str, Any], match_settings: bool,
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


def _judge(run: _Run, spec: SearchSpec, base_flat: dict[str, Any],
           match_settings: bool) -> tuple[str | None, dict[str, Any], float]:
    for reason, paths in ((OTHER_MODEL, IDENTITY), (OTHER_SETTINGS, SCORE_SETTINGS if match_settings else ())):
        for p in paths:
            if p in spec.space or p not in base_flat:
                continue
            recorded = _setting(run.value(p))
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
    score = _number(run.metric)
    if score is None or not math.isfinite(score):
        return NO_METRIC, {}, 0.0
    return None, point, score


# --------------------------------------------------------------------------- values


def _number(raw: Any) -> float | None:
    """A number from a typed value or a CSV cell (``1.31E-06``, ``3.0``, ``1,5``); None if it is none."""
    if raw is UNKNOWN or raw is None or isinstance(raw, bool):
        return None
    if isinstance(raw, (int, float)):
        return float(raw)
    if isinstance(raw, str):
        text = raw.strip()
        for candidate in (text, text.replace(",", ".") if text.count(",") == 1 else None):
            if candidate:
                try:
                    return float(candidate)
                except ValueError:
                    pass
    return None


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
        return _choice(p.values or [], raw)
    x = _number(raw)
    if x is None or not math.isfinite(x):
        return UNKNOWN
    if p.kind == "int":
        n = round(x)
        if abs(x - n) > 1e-9 * max(1.0, abs(x)) or not (p.low <= n <= p.high):
            return UNKNOWN
        if p.q is not None and (n - p.low) % p.q:
            return UNKNOWN
        return int(n)
    low, high = float(p.low), float(p.high)
    if p.log:
        inside = low * (1 - REL_TOL) <= x <= high * (1 + REL_TOL)
    else:
        slack = REL_TOL * ((high - low) or abs(low) or 1.0)
        inside = low - slack <= x <= high + slack
    if not inside:
        return UNKNOWN
    x = min(max(x, low), high)
    if p.q is not None:
        k = (x - low) / p.q
        if abs(k - round(k)) > REL_TOL * max(1.0, abs(k)):
            return UNKNOWN
        x = min(max(low + round(k) * p.q, low), high)
    return float(x)


def _choice(values: list[Any], raw: Any) -> Any:
    """The choice ``raw`` names (a cell ``3.0`` names the choice ``3``), or UNKNOWN."""
    if isinstance(raw, str):
        text = raw.strip()
        for c in values:
            if c is None:
                if text.lower() in ("none", "null"):
                    return c
            elif isinstance(c, bool):
                if text.lower() in ("true", "false") and (text.lower() == "true") == c:
                    return c
            elif isinstance(c, (int, float)):
                x = _number(text)
                if x is not None and math.isclose(x, c, rel_tol=1e-9, abs_tol=0.0):
                    return c
            elif text == str(c):
                return c
        return UNKNOWN
    for c in values:
        if isinstance(c, bool) or isinstance(raw, bool) or c is None or raw is None:
            if type(c) is type(raw) and c == raw:
                return c
        elif isinstance(c, (int, float)) and isinstance(raw, (int, float)):
            if math.isclose(raw, c, rel_tol=1e-9, abs_tol=0.0):
                return c
        elif c == raw:
            return c
    return UNKNOWN


def _setting(raw: Any) -> Any:
    """A recorded setting as a value, UNKNOWN if unrecorded: a cell is read as YAML (``null`` is None)."""
    if not isinstance(raw, str):
        return raw
    text = raw.strip()
    if text.lower() in ("", "nan", "n/a", "na"):
        return UNKNOWN
    if text.lower() in ("none", "null"):
        return None
    return parse_value(text)


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        if not (isinstance(a, (list, tuple)) and isinstance(b, (list, tuple))):
            return False
        return sorted(map(str, a)) == sorted(map(str, b))
    na, nb = _number(a), _number(b)
    if na is not None and nb is not None and not isinstance(a, str) and not isinstance(b, str):
        return math.isclose(na, nb, rel_tol=1e-9)
    return str(a).strip() == str(b).strip()


# --------------------------------------------------------------------------- CSV


def _csv_runs(path: Path, label: str, spec: SearchSpec, roots: list[Path]) -> tuple[Iterator[_Run], list[str]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise TuneInputError(f"{label}: cannot read it as a text CSV ({exc.__class__.__name__}); give a W&B runs "
                             "export (.csv) or an experiment folder") from None
    header_line = text.split("\n", 1)[0]
    delimiter = max(";,\t", key=header_line.count)  # sniffed from the header; ';' wins a tie
    rows = [r for r in csv.reader(io.StringIO(text), delimiter=delimiter) if any(c.strip() for c in r)]
    if not rows:
        raise TuneInputError(f"{label}: empty file; give a W&B runs export with a header row and one row per run")
    header = [h.strip() for h in rows[0]]

    columns: dict[str, list[int]] = {}
    for i, name in enumerate(header):
        try:
            columns.setdefault(resolve_name(name), []).append(i)
        except ConfigError:
            continue  # run_id, best_val_sisdr, ...: not a config key
    if not any(p in columns for p in spec.space):
        raise TuneInputError(f"{label}: no column matches a searched parameter ({', '.join(spec.space)}); export "
                             "the runs' config columns (e.g. lr, weight_decay) or warm-start from another file")
    if spec.metric not in header:
        have = [m for m in ("val_sisdr", "val_sisdri", "best_val_sisdr", "train_sisdr") if m in header]
        hint = f" (it has {', '.join(have)}: set metric.name to one of them)" if have else ""
        raise TuneInputError(f"{label}: no '{spec.metric}' column, the sweep's metric{hint}; export that column "
                             "or warm-start from another file")
    notes = [f"{label}: no column for {p}; every run lacks it" for p in spec.space if p not in columns]
    metric_col = header.index(spec.metric)
    lower = [h.lower() for h in header]
    status_cols = [(lower.index(name), name) for name in _STATUS_COLUMNS if name in lower]
    config_col = lower.index("config") if "config" in lower else None
    configs = _ConfigFiles(roots, notes)

    def runs() -> Iterator[_Run]:
        for row in rows[1:]:
            cells = [c.strip() for c in row] + [""] * (len(header) - len(row))
            config_name = cells[config_col] if config_col is not None else ""

            def value(p: str, cells: list[str] = cells, config_name: str = config_name) -> Any:
                for i in columns.get(p, ()):
                    if cells[i]:
                        return cells[i]
                if config_name and (p in IDENTITY or p in SCORE_SETTINGS):
                    return configs.value(config_name, p)
                return UNKNOWN

            yield _Run(value, _csv_status(cells, status_cols), cells[metric_col] or UNKNOWN)

    return runs(), notes


def _csv_status(cells: list[str], status_cols: list[tuple[int, str]]) -> str | None:
    """``completed`` true/false decides; else a W&B state: ``finished`` or not; else unknown (used)."""
    for i, name in status_cols:
        text = cells[i].lower()
        if name == "completed":
            if text in _TRUE:
                return None
            if text in _FALSE:
                return NOT_COMPLETED
        elif text:
            return None if text == "finished" else NOT_COMPLETED
    return None


def _config_roots(csv_path: Path, spec: SearchSpec, cwd: str | Path | None) -> list[Path]:
    roots = [Path.cwd() if cwd is None else Path(cwd)]
    for anchor in (csv_path, spec.file, spec.base_config):
        if anchor is not None:
            folder = Path(anchor).resolve().parent
            roots += [folder, *folder.parents]
    return list(dict.fromkeys(roots))


class _ConfigFiles:
    """A run's experiment file (the CSV's ``config`` cell) → its identity and settings, cached."""

    _defaults = to_flat(Config())

    def __init__(self, roots: list[Path], notes: list[str]) -> None:
        self.roots = roots
        self.notes = notes
        self.cache: dict[str, dict[str, Any] | None] = {}

    def value(self, name: str, path: str) -> Any:
        if name not in self.cache:
            self.cache[name] = self._load(name)
        flat = self.cache[name]
        return UNKNOWN if flat is None else flat.get(path, UNKNOWN)

    def _load(self, name: str) -> dict[str, Any] | None:
        rel = Path(name)
        candidates = [rel] if rel.is_absolute() else [root / rel for root in self.roots]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            self.notes.append(f"run config {name} not found: its runs' unrecorded settings are unknown")
            return None
        try:
            return to_flat(load_config(found, env={}))
        except ConfigError:
            pass  # another model's config (unknown keys): its raw values still tell model and settings
        try:
            tree = load_yaml(found)
        except ConfigError as exc:
            self.notes.append(f"run config {name} unreadable ({exc}): its runs' unrecorded settings are unknown")
            return None
        raw = flatten(tree) if isinstance(tree, dict) else {}
        return {**self._defaults, **raw}


# --------------------------------------------------------------------------- experiment folders

_TRIAL_STATUS = {"COMPLETED": None, "EARLY_STOPPED": EARLY_STOPPED, "ERROR": ERRORED}


def _experiment_runs(path: Path, label: str, spec: SearchSpec) -> tuple[Iterator[_Run], list[str]]:
    if not has_experiment_state(path):
        raise TuneInputError(f"{label}: not an experiment folder (no experiment_state-*.json); give an earlier "
                             "polsess-tune experiment folder or a W&B runs export (.csv)")
    try:
        exp = load_experiment(path)
    except TuneInputError as exc:
        raise TuneInputError(f"{exc}; give an earlier polsess-tune experiment folder or a W&B runs export") from None
    notes = []
    if exp.metric != spec.metric:
        notes.append(f"{label} searched {exp.metric}; its trials' {spec.metric} reports are used")

    def runs() -> Iterator[_Run]:
        for trial in exp.trials:
            flat = flatten(trial.config) if isinstance(trial.config, dict) else {}
            scores = trial.scores(spec.metric)
            yield _Run(lambda p, flat=flat: flat.get(p, UNKNOWN),
                       _TRIAL_STATUS.get(trial.status, UNFINISHED),
                       scores[-1] if scores else UNKNOWN)

    return runs(), notes
