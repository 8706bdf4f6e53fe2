"""A running experiment's recorded results, read through the trial's own storage (local or URI).

Tune gives a live ``Trial`` no public way to its experiment folder; ``Trial.storage`` (a
``ray.train._internal.storage.StorageContext``) holds the pyarrow filesystem and the paths, so
this is fenced here. Used by the resumable ASHA (replay on restore) and the W&B backfill.
"""

from __future__ import annotations

from typing import Any

import pyarrow.fs
from ray.tune.experiment import Trial

from ..experiment import layout


def results_at(fs: Any, trial_path: str) -> list[dict[str, Any]]:
    """The reports in ``trial_path``'s result.json on ``fs`` (a pyarrow filesystem: local or a bucket)."""
    try:
        with fs.open_input_stream(f"{trial_path}/{layout.RESULT_FILE}") as stream:
            return layout.parse_result_lines(stream.readall().decode())
    except Exception:  # no results yet
        return []


def results_under(fs: Any, root: str) -> dict[str, list[dict[str, Any]]]:
    """Every trial's reports in the experiment folder ``root`` on ``fs``, by trial id."""
    out = {}
    try:
        infos = fs.get_file_info(pyarrow.fs.FileSelector(root))
    except Exception:  # not created yet
        return {}
    for info in infos:
        trial_id = layout.trial_id_of(info.path.rsplit("/", 1)[-1])
        if info.type == pyarrow.fs.FileType.Directory and trial_id:
            out[trial_id] = results_at(fs, info.path)
    return out


def experiment_results(trial: Trial) -> dict[str, list[dict[str, Any]]]:
    """Every trial's reports in ``trial``'s experiment folder, by trial id."""
    try:
        return results_under(trial.storage.storage_filesystem, trial.storage.experiment_fs_path)
    except Exception:
        return {}


def trial_results(trial: Trial) -> list[dict[str, Any]]:
    """One trial's recorded reports (empty for a trial that has none yet)."""
    try:
        return results_at(trial.storage.storage_filesystem, trial.path)
    except Exception:  # a new trial has no folder yet
        return []
