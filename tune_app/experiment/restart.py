"""A trial whose every kept checkpoint is unreadable trains again from epoch 1, under its own id.

A checkpoint can be cut by a full disk or a kill, or damaged or deleted afterwards. When none of a
trial's kept checkpoints reads, there is nothing to resume it from; erroring the trial would cost
its place in the search (Tune's ``--restart-errored`` gives it a new id, and the old one drops out
of the results and the study). Training it again keeps its id, its config and the trial count.

Its earlier records describe a model that no longer exists, so before Ray starts they are set aside
(``trial_<id>/before-restart/``, and its W&B offline runs to ``wandb-runs/before-restart/``): the
restarted training's epochs 1..n are then the trial's only ones in ``result.json``,
``progress.csv`` and W&B, without a repeat. The trainable falls back to epoch 1 by the same test
(:func:`newest_readable`), so the driver and the worker agree on which trials restart.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..names import EPOCH, ERROR, UNFINISHED
from . import layout


def newest_readable(trial_dir: Path, log: Callable[[str], None] = lambda _msg: None) -> dict[str, Any] | None:
    """The trainer state of the newest kept checkpoint of ``trial_dir`` that reads; None when none does.

    ``log`` hears each one skipped. torch is imported here only: the driver calls this on resume."""
    from polsess.config import ConfigError
    from polsess.trainer import load_checkpoint

    readable = []
    for kept in layout.checkpoint_dirs(trial_dir):
        try:
            readable.append(load_checkpoint(kept / layout.CHECKPOINT_FILE))
        except ConfigError as exc:  # cut by a kill or a full disk: an older kept checkpoint may be whole
            log(f"skipping {kept.name}, it cannot be read ({exc})")
    return max(readable, key=lambda st: st[EPOCH], default=None)


def restart_unrestorable(folder: Path, restart_errored: bool, named: dict[str, set[str]]) -> list[str]:
    """Set aside the records of each trial ``resume`` would continue that has no readable checkpoint;
    one note per trial. Errored trials count unless ``restart_errored`` (Tune then restarts them anew).
    ``named``: trial id → the checkpoint names the experiment state gives it
    (``ext.state_backup.named_checkpoints``)."""
    from .results import load_experiment

    continued = (*UNFINISHED, *(() if restart_errored else (ERROR,)))
    notes = []
    for trial in load_experiment(folder).trials:
        if trial.status not in continued or trial.path is None or not trial.history:
            continue
        if newest_readable(trial.path) is not None:
            continue
        _keep_named_checkpoints(trial.path, named.get(trial.trial_id, set()))
        moved = _set_aside(folder, trial.trial_id, trial.path)
        notes.append(f"trial {trial.trial_id}: no readable checkpoint left (cut by a kill or a full disk, or "
                     f"removed); it trains again from epoch 1 under the same id, its {_epochs(len(trial.history))} "
                     f"so far set aside in {trial.path.name}/{layout.SET_ASIDE_DIR}/" + moved)
    return notes


def _epochs(n: int) -> str:
    return f"{n} epoch" + ("" if n == 1 else "s")


def _set_aside(folder: Path, trial_id: str, trial_dir: Path) -> str:
    aside = trial_dir / layout.SET_ASIDE_DIR
    aside.mkdir(exist_ok=True)
    for name in (layout.RESULT_FILE, layout.PROGRESS_FILE):
        if (trial_dir / name).exists():
            (trial_dir / name).replace(aside / name)
    runs = sorted((folder / layout.WANDB_DIR / "wandb").glob(f"offline-run-*-{trial_id}"))
    for run in runs:
        target = folder / layout.WANDB_DIR / layout.SET_ASIDE_DIR / run.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(run, target)
    return f" (and its W&B offline run{'s' if len(runs) > 1 else ''} in {layout.WANDB_DIR}/{layout.SET_ASIDE_DIR}/)" \
        if runs else ""


def _keep_named_checkpoints(trial_dir: Path, names: set[str]) -> None:
    """Tune refuses to restore a trial whose checkpoint folder is gone; an empty one under each name
    the experiment state gives (its last result's and its checkpoint manager's) lets it start the
    trial, which then finds nothing to read in it."""
    for name in names:
        (trial_dir / name).mkdir(exist_ok=True)
