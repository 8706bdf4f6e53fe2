"""Where warm-start runs come from: a W&B runs export (CSV) or an earlier experiment folder.

Each source yields :class:`Run` records (a run's value for a config path, whether it finished, its
score) for :mod:`.warm_start` to judge; the CSV reader sniffs the delimiter, resolves column names as
sweep names are resolved, and reads settings a row does not record from the run's experiment file.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from polsess.config import Config, ConfigError, flatten, load_config, load_yaml, parse_value, resolve_name, to_flat

from .. import names
from ..errors import TuneInputError
from ..space.spec import SearchSpec
from .results import has_experiment_state, load_experiment

IDENTITY = ("model.model_type", "data.task")


SCORE_SETTINGS = (
    "data.train_max_samples",
    "data.val_max_samples",
    "data.segment_seconds",
    "training.num_epochs",
    "training.validation_variants",
)


NOT_COMPLETED = "not completed"


EARLY_STOPPED = "early-stopped"


ERRORED = "errored"


UNFINISHED = "unfinished"


# Status columns of a runs export, most specific first; the first with a readable cell decides.
_STATUS_COLUMNS = ("completed", "wandb_state", "state", "run_state")


_TRUE = ("true", "1", "1.0", "yes")


_FALSE = ("false", "0", "0.0", "no")


class _Unknown:
    def __repr__(self) -> str:
        return "<unknown>"


UNKNOWN = _Unknown()  # a value the run did not record


@dataclass
class Run:
    value: Callable[[str], Any]  # config path → the run's value (a CSV cell is text), or UNKNOWN
    status: str | None  # a skip reason when the run did not finish
    metric: Any  # the score (text or number), or UNKNOWN


def number(raw: Any) -> float | None:
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


def setting(raw: Any) -> Any:
    """A recorded setting as a value, UNKNOWN if unrecorded: a cell is read as YAML (``null`` is None)."""
    if not isinstance(raw, str):
        return raw
    text = raw.strip()
    if text.lower() in ("", "nan", "n/a", "na"):
        return UNKNOWN
    if text.lower() in ("none", "null"):
        return None
    return parse_value(text)


def csv_runs(path: Path, label: str, spec: SearchSpec, roots: list[Path]) -> tuple[Iterator[Run], list[str]]:
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
        have = [m for m in names.METRICS if m in header]
        hint = f" (it has {', '.join(have)}: set metric.name to one of them)" if have else ""
        raise TuneInputError(f"{label}: no '{spec.metric}' column, the sweep's metric{hint}; export that column "
                             "or warm-start from another file")
    notes = [f"{label}: no column for {p}; every run lacks it" for p in spec.space if p not in columns]
    metric_col = header.index(spec.metric)
    lower = [h.lower() for h in header]
    status_cols = [(lower.index(name), name) for name in _STATUS_COLUMNS if name in lower]
    config_col = lower.index("config") if "config" in lower else None
    configs = _ConfigFiles(roots, notes)

    def runs() -> Iterator[Run]:
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

            yield Run(value, _csv_status(cells, status_cols), cells[metric_col] or UNKNOWN)

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


def config_roots(csv_path: Path, spec: SearchSpec, cwd: str | Path | None) -> list[Path]:
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


_TRIAL_STATUS = {names.COMPLETED: None, names.EARLY_STOPPED: EARLY_STOPPED, names.ERROR: ERRORED}


def experiment_runs(path: Path, label: str, spec: SearchSpec) -> tuple[Iterator[Run], list[str]]:
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

    def runs() -> Iterator[Run]:
        for trial in exp.trials:
            flat = flatten(trial.config) if isinstance(trial.config, dict) else {}
            scores = trial.scores(spec.metric)
            yield Run(lambda p, flat=flat: flat.get(p, UNKNOWN),
                       _TRIAL_STATUS.get(trial.status, UNFINISHED),
                       scores[-1] if scores else UNKNOWN)

    return runs(), notes

