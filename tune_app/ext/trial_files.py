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


def _read(fs: Any, path: str) -> list[dict[str, Any]]:
    try:
        with fs.open_input_stream(path) as stream:
            return layout.parse_result_lines(stream.readall().decode())
    except Exception:  # no results yet
        return []


def experiment_results(trial: Trial) -> dict[str, list[dict[str, Any]]]:
    """Every trial's reports in ``trial``'s experiment folder, by trial id."""
    out = {}
    try:
        fs = trial.storage.storage_filesystem
        root = trial.storage.experiment_fs_path
        infos = fs.get_file_info(pyarrow.fs.FileSelector(root))
    except Exception:
        return {}
    for info in infos:
        trial_id = layout.trial_id_of(info.path.rsplit("/", 1)[-1])
        if info.type == pyarrow.fs.FileType.Directory and trial_id:
            out[trial_id] = _read(fs, f"{info.path}/{layout.RESULT_FILE}")
    return out


def trial_results(trial: Trial) -> list[dict[str, Any]]:
    """One trial's recorded reports (empty for a trial that has none yet)."""
    try:
        return _read(trial.storage.storage_filesystem, f"{trial.path}/{layout.RESULT_FILE}")
    except Exception:  # a new trial has no folder yet
        return []
