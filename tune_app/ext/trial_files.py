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
    """The reports in ``trial_path``'s result.json on ``fs`` (a pyarrow filesystem: local or a bucket).

    A result.json not there yet is no reports; any other error (a bucket that refuses our credentials
    or cannot be reached, a folder we may not read) is raised: read as "no reports", it would make
    the ASHA replay rebuild other rungs than the search had, silently."""
    try:
        with fs.open_input_stream(f"{trial_path}/{layout.RESULT_FILE}") as stream:
            text = stream.readall().decode()
    except FileNotFoundError:  # pyarrow's error for a missing file, local or in a bucket
        return []
    return layout.parse_result_lines(text)


def results_under(fs: Any, root: str) -> dict[str, list[dict[str, Any]]]:
    """Every trial's reports in the experiment folder ``root`` on ``fs``, by trial id (none before it exists)."""
    out = {}
    for info in fs.get_file_info(pyarrow.fs.FileSelector(root, allow_not_found=True)):
        trial_id = layout.trial_id_of(info.path.rsplit("/", 1)[-1])
        if info.type == pyarrow.fs.FileType.Directory and trial_id:
            out[trial_id] = results_at(fs, info.path)
    return out


def experiment_results(trial: Trial) -> dict[str, list[dict[str, Any]]]:
    """Every trial's reports in ``trial``'s experiment folder, by trial id."""
    return results_under(trial.storage.storage_filesystem, trial.storage.experiment_fs_path)


def trial_results(trial: Trial) -> list[dict[str, Any]]:
    """One trial's recorded reports (empty for a trial that has none yet).

    A new trial has no folder name until Tune sets it up (``trial_fs_path`` would raise RuntimeError)."""
    if trial.storage.trial_dir_name is None:
        return []
    return results_at(trial.storage.storage_filesystem, trial.path)
