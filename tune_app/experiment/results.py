"""Read a finished (or interrupted) experiment folder into :class:`Experiment` and its trials.

Reads the files Tune writes (the newest experiment state, each trial's ``params.json``,
``result.json``, ``error.txt`` and ``checkpoint_*``) and our ``search.json``, without starting Ray,
so ``results`` is instant and works on a copy of the folder taken from a cluster. Names of files
and folders come from :mod:`.layout`; statuses from :mod:`tune_app.names`.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import TuneInputError
from ..names import (
    DEFAULT_METRIC,
    EPOCH,
    ERROR,
    FINISHED,
    PENDING,
    RAY_TERMINATED,
    UNKNOWN,
    ended_status,
)
from . import layout


@dataclass
class TrialRecord:
    trial_id: str
    status: str  # one of tune_app.names' statuses
    config: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)  # one report per epoch, in epoch order
    path: Path | None = None
    error: str | None = None

    def scores(self, metric: str) -> list[float]:
        return [r[metric] for r in self.history if isinstance(r.get(metric), (int, float))]

    def best(self, metric: str, mode: str) -> float | None:
        values = [v for v in self.scores(metric) if math.isfinite(v)]
        if not values:
            return None
        return max(values) if mode == "max" else min(values)

    @property
    def epochs(self) -> int:
        return max((int(r.get(EPOCH, 0)) for r in self.history), default=0)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def latest_checkpoint(self) -> Path | None:
        """The newest checkpoint folder Tune kept (it keeps the best and the latest)."""
        folders = layout.checkpoint_dirs(self.path) if self.path is not None else []
        return folders[-1] if folders else None

    def checkpoint_reports(self) -> dict[str, dict[str, Any]]:
        """Kept checkpoint folder name → the report of the epoch it holds: the last one naming it.

        Why not the folder's number: Ray numbers checkpoints by its own count, which a resume restarts
        from the state it saved, and epochs a restored trial reports from its checkpoint's history come
        without a checkpoint, so after a resume ``checkpoint_000005`` can hold epoch 7 (and a number can
        be written twice: the later epoch is what the folder holds)."""
        if self.path is None:
            return {}
        kept = {p.name for p in layout.checkpoint_dirs(self.path)}
        named = {name: r for r in self.history if (name := str(r.get(layout.CHECKPOINT_DIR_KEY))) in kept}
        by_epoch = {r.get(EPOCH): r for r in self.history}
        for name in kept - named.keys():  # the re-reported epoch of a restored trial: its folder says
            epoch = layout.checkpoint_epoch_file(self.path / name)
            if epoch in by_epoch:
                named[name] = by_epoch[epoch]
        return named

    def checkpoint_epoch(self, checkpoint: Path | None) -> int | None:
        """The epoch a kept checkpoint folder holds (None when no report names it)."""
        epoch = self.checkpoint_reports().get(checkpoint.name, {}).get(EPOCH) if checkpoint is not None else None
        return int(epoch) if isinstance(epoch, (int, float)) else None

    def best_checkpoint(self, metric: str, mode: str) -> Path | None:
        """The kept checkpoint whose epoch scored best on ``metric``; the newest kept one when no
        report names a kept folder (a folder copied without its result.json)."""
        if self.path is None:
            return None
        sign = 1 if mode == "max" else -1
        scored = [(sign * r[metric], self.path / name) for name, r in self.checkpoint_reports().items()
                  if isinstance(r.get(metric), (int, float)) and math.isfinite(r[metric])]
        if scored:
            return max(scored, key=lambda sp: sp[0])[1]
        return self.latest_checkpoint()


@dataclass
class Experiment:
    path: Path
    metric: str
    mode: str
    space: list[str]
    trials: list[TrialRecord]
    search: dict[str, Any]
    replaced_epochs: int = 0  # epochs of trainings replaced: `resume --restart-errored`, a restart's set-aside

    def ranked(self) -> list[TrialRecord]:
        """Trials with a score, best first; errored ones are left out (their score says how a run
        crashed, not how good its config is)."""
        sign = 1 if self.mode == "max" else -1
        scored = [t for t in self.trials if t.status != ERROR and t.best(self.metric, self.mode) is not None]
        return sorted(scored, key=lambda t: -sign * t.best(self.metric, self.mode))

    def best_trial(self) -> TrialRecord | None:
        ranked = self.ranked()
        return ranked[0] if ranked else None

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in self.trials:
            out[t.status] = out.get(t.status, 0) + 1
        return out

    def errored(self) -> list[TrialRecord]:
        return [t for t in self.trials if t.status == ERROR]

    def error_reasons(self) -> list[tuple[str, int, str]]:
        """How trials errored, most frequent first: ``[(kind, count, one full reason), …]``, the kind
        being the exception's name (the messages differ in their numbers: lr, batch, epoch)."""
        groups: dict[str, list[str]] = {}
        for t in self.errored():
            kind, text = split_reason(t.error or "unknown (see its error.txt)")
            groups.setdefault(kind, []).append(text)
        return sorted(((k, len(v), v[0]) for k, v in groups.items()), key=lambda g: -g[1])

    @property
    def trial_epochs(self) -> int:
        """Epochs trained over all trials, replaced ones too: what a budget of trial-epochs
        (tune_app.tune.budget, which counts every trial folder) counts."""
        return sum(len(t.history) for t in self.trials) + self.replaced_epochs

    @property
    def budget_spent(self) -> bool:
        """The search had a budget of trial-epochs (``search.json``'s budget_epochs) and spent it."""
        budget = self.search.get("budget_epochs")
        return isinstance(budget, int) and self.trial_epochs >= budget

    def all_started(self, num_samples: int) -> bool:
        """Every trial the search was to run was created: ``num_samples`` of them, or its budget of
        trial-epochs was spent (the summary and ``resume`` both ask this)."""
        return len(self.trials) >= num_samples or self.budget_spent

    def is_finished(self, num_samples: int) -> bool:
        """All trials started (:meth:`all_started`) and ended for good (an errored trial is retried
        by a resume)."""
        return self.all_started(num_samples) and all(t.finished for t in self.trials)


def has_experiment_state(path: Path) -> bool:
    return layout.has_experiment_state(path)


def load_experiment(path: str | Path) -> Experiment:
    path = Path(path)
    if not path.is_dir():
        raise TuneInputError(f"{path}: no such experiment folder")
    if not layout.has_experiment_state(path):
        raise TuneInputError(f"{path}: holds no Ray Tune experiment (no {layout.EXPERIMENT_STATE_GLOB})")
    search = layout.read_json(path / layout.SEARCH_FILE) or {}
    metric = search.get("metric", DEFAULT_METRIC)
    mode = search.get("mode", "max")
    states = _trial_states(path)
    budget = isinstance(search.get("budget_epochs"), int)
    trials = []
    replaced_epochs = 0
    for trial_dir in layout.trial_dirs(path):
        trial_id = layout.trial_id_of(trial_dir.name)
        if states and trial_id not in states:  # replaced by `resume --restart-errored` (a new id)
            replaced_epochs += len(history_by_epoch(layout.read_results(trial_dir)))  # trained all the same
            continue
        # A training set aside when resume restarted the trial (experiment.restart): trained all the same.
        replaced_epochs += len(history_by_epoch(layout.read_results(trial_dir / layout.SET_ASIDE_DIR)))
        state = states.get(trial_id, {})
        config = layout.read_json(trial_dir / layout.PARAMS_FILE) or state.get("config") or {}
        history = history_by_epoch(layout.read_results(trial_dir))
        trials.append(TrialRecord(
            trial_id=trial_id,
            status=_status(state.get("status"), history, budget),
            config=config,
            history=history,
            path=trial_dir,
            error=_error_reason(trial_dir) or state.get("error"),
        ))
    for trial_id, state in states.items():  # trials that never got a folder
        if not any(t.trial_id == trial_id for t in trials):
            trials.append(TrialRecord(trial_id, _status(state.get("status"), [], budget), state.get("config") or {}))
    return Experiment(path, metric, mode, search.get("space_paths", []), trials, search, replaced_epochs)


def history_by_epoch(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One report per epoch, in epoch order; a repeated epoch (retrained after a kill) keeps its last report.

    Keyed by the trainer's ``epoch``, not Tune's ``training_iteration``: after a restore from a stale
    snapshot the iteration counter can lag the epoch, so two epochs would share one iteration.
    """
    by_epoch: dict[Any, dict[str, Any]] = {}
    for i, row in enumerate(rows):
        key = row.get(EPOCH)
        by_epoch[key if isinstance(key, (int, float)) else ("row", i)] = row
    numbered = sorted(k for k in by_epoch if not isinstance(k, tuple))
    return [by_epoch[k] for k in numbered] + [v for k, v in by_epoch.items() if isinstance(k, tuple)]


def _trial_states(path: Path) -> dict[str, dict[str, Any]]:
    data = layout.read_json(layout.newest(path, layout.EXPERIMENT_STATE_GLOB)) or {}
    out: dict[str, dict[str, Any]] = {}
    for entry in data.get("trial_data", []):
        trial_json = entry[0] if isinstance(entry, list) else entry
        try:
            trial = json.loads(trial_json) if isinstance(trial_json, str) else trial_json
        except ValueError:
            continue
        trial_id = trial.get("trial_id")
        if trial_id:
            out[trial_id] = {"status": trial.get("status"), "config": trial.get("config"),
                             "error": _error_text(trial)}
    return out


def _error_reason(trial_dir: Path) -> str | None:
    """The exception line of the trial's error.txt: what a user needs, without the traceback."""
    try:
        return reason_line((trial_dir / layout.ERROR_FILE).read_text())
    except OSError:
        return None


def reason_line(traceback_text: str) -> str | None:
    """The ``module.Error: message`` line of a traceback (its last such line), else its last line."""
    lines = [line.strip() for line in traceback_text.splitlines() if line.strip()]
    reasons = [line for line in lines if re.match(r"^[\w.]+(Error|Exception|Diverged)\b.*:", line)]
    return (reasons[-1] if reasons else lines[-1]) if lines else None


def split_reason(reason: str) -> tuple[str, str]:
    """``polsess.trainer.TrainingDiverged: loss was …`` → ``("TrainingDiverged", "loss was …")``."""
    named = re.match(r"^([\w.]+):\s*(.*)$", reason, re.S)
    return (named.group(1).rsplit(".", 1)[-1], named.group(2)) if named else ("an error", reason)


def _error_text(trial: dict[str, Any]) -> str | None:
    for key in ("error_msg", "error_file"):
        if trial.get(key):
            return str(trial[key])
    return None


def _status(ray_status: str | None, history: list[dict[str, Any]], budget: bool) -> str:
    if ray_status == RAY_TERMINATED:
        return ended_status(next((r for r in reversed(history) if isinstance(r.get(EPOCH), (int, float))), None),
                            budget)
    return ray_status or (PENDING if not history else UNKNOWN)
