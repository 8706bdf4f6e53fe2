"""The one home of an experiment folder's on-disk names: Tune's files and ours.

An experiment folder (``<storage>/<name>``) holds, from Ray Tune: ``experiment_state-<time>.json``
(a resumed run writes a newer one beside the old), ``search_gen_state-*.json`` and
``searcher-state-*.pkl``, and one ``trial_<id>/`` per trial with ``params.json``, ``result.json``
(one JSON object per report), ``progress.csv``, ``error.txt`` and ``checkpoint_<n>/`` folders; and
from polsess-tune: ``search.json`` (the resolved search), ``stages.json`` (a staged search's parent
folder), ``results.csv``, ``best_config.yaml``, ``.state-backup/`` and ``wandb-runs/``. Every other
module asks here for a path instead of spelling a name, so a Ray upgrade that renames one is one edit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..names import EPOCH

# ---- Ray Tune's names (ray 2.60)
EXPERIMENT_STATE_GLOB = "experiment_state-*.json"
STATE_GLOBS = (EXPERIMENT_STATE_GLOB, "search_gen_state-*.json", "searcher-state-*.pkl")
TRIAL_PREFIX = "trial_"
PARAMS_FILE = "params.json"
RESULT_FILE = "result.json"
PROGRESS_FILE = "progress.csv"  # the same reports as a table (tune_app.ext.progress_csv writes it)
ERROR_FILE = "error.txt"
TENSORBOARD_GLOB = "events.out.tfevents.*"  # Tune's default TensorBoard logger's files (off here: tune.driver)
CHECKPOINT_PREFIX = "checkpoint_"
CHECKPOINT_DIR_KEY = "checkpoint_dir_name"  # the key of a report that names its checkpoint folder
TRIAL_NAME_FORMAT = "trial_{trial_id}"  # what build_tuner's trial_dirname_creator returns

# ---- polsess-tune's names
SEARCH_FILE = "search.json"
STAGES_FILE = "stages.json"
RESULTS_CSV = "results.csv"
BEST_CONFIG = "best_config.yaml"
BACKUP_DIR = ".state-backup"
WANDB_DIR = "wandb-runs"
CHECKPOINT_FILE = "trainer.pt"  # the trainer's state inside each checkpoint folder
# Beside it, {"epoch": n}: the epoch a checkpoint holds, readable without torch, for a folder no report
# names (the last epoch a restored trial reports again from its checkpoint comes without one).
CHECKPOINT_EPOCH_FILE = "epoch.json"
NOT_RETRIED_FILE = "not_retried.pkl"  # in a trial folder: the error a retry re-raises (tune.trainable)
LOCK_FILE = ".polsess-tune.lock"  # held by the one run/resume driving this folder (tune.folder_lock)
# The search's Optuna study (SQLite, beside the trials; open it with `optuna-dashboard sqlite:///…`).
STUDY_FILE = "optuna-study.db"
# In a trial folder (and under wandb-runs/): the records of a training resume could not continue
# (no readable checkpoint), kept apart from the trial's new ones (experiment.restart).
SET_ASIDE_DIR = "before-restart"
STOPPED_FILE = "stopped.json"  # the search was stopped because its trials all failed alike


def trial_dirname(trial_id: str) -> str:
    return TRIAL_NAME_FORMAT.format(trial_id=trial_id)


def trial_id_of(folder_name: str) -> str | None:
    """``trial_ab12`` → ``ab12``; None for a folder that is not a trial's."""
    return folder_name.removeprefix(TRIAL_PREFIX) if folder_name.startswith(TRIAL_PREFIX) else None


def trial_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).glob(f"{TRIAL_PREFIX}*") if p.is_dir())


def checkpoint_dirs(trial_dir: Path) -> list[Path]:
    """A trial's kept checkpoint folders, oldest first (Tune numbers them with zero padding)."""
    return sorted(p for p in Path(trial_dir).glob(f"{CHECKPOINT_PREFIX}*") if p.is_dir())


def checkpoint_epoch_file(checkpoint_dir: Path) -> int | None:
    """The epoch a checkpoint folder's ``epoch.json`` says it holds; None without a readable one
    (a checkpoint of an older version, or a URI experiment's folder pulled without its files)."""
    try:
        epoch = json.loads((Path(checkpoint_dir) / CHECKPOINT_EPOCH_FILE).read_text()).get(EPOCH)
    except (OSError, ValueError, AttributeError):
        return None
    return epoch if isinstance(epoch, int) else None


def has_experiment_state(folder: Path) -> bool:
    return any(Path(folder).glob(EXPERIMENT_STATE_GLOB))


def newest(folder: Path, pattern: str) -> Path | None:
    """The newest file matching ``pattern``: Ray names state files by their start time."""
    files = sorted(Path(folder).glob(pattern), key=lambda p: p.name)
    return files[-1] if files else None


def parse_result_lines(text: str) -> list[dict[str, Any]]:
    """Tune's result.json: one JSON object per report; a line cut by a kill is skipped."""
    rows = []
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def read_results(trial_dir: Path) -> list[dict[str, Any]]:
    """Every report in a trial folder's result.json, in file order ([] when there is none)."""
    try:
        return parse_result_lines((Path(trial_dir) / RESULT_FILE).read_text())
    except OSError:
        return []


def read_json(path: Path) -> Any:
    """A JSON file's content, or None when it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
