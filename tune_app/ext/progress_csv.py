"""Tune's ``progress.csv``, one table however a trial's reports differ in their keys.

Ray's ``CSVLoggerCallback`` takes a trial's columns from the first report it logs and, when the file
already exists (a resumed trial), writes no header but those columns in that report's order. The
first report of a resumed trial is often not like the others: the epochs its checkpoint holds but
Tune never recorded (a kill, SIGTERM or a torn ``result.json``) are reported again without a
checkpoint, so Tune leaves out ``should_checkpoint`` and the trainable the node it trained on. Every
later row then lands shifted under the old header (ray 2.60: ``row 4: 24 fields under a header of
26``), and pandas reads wrong values in the right-looking columns.

Here every row is written under the file's own header: a key a report lacks is an empty cell, and a
key the header lacks widens the header (the file is rewritten once, atomically). A row cut by a kill
is dropped before the next one is appended. Being a ``CSVLoggerCallback``, Tune adds no logger of
its own beside it on resume.

Private name used (see ``tune_app.ext.UPSTREAM``): ``LoggerCallback._restore_from_remote``, which
copies the trial's file from storage into the driver's staging folder, as Ray's own logger does.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ray.tune.experiment import Trial
from ray.tune.logger import CSVLoggerCallback
from ray.tune.utils import flatten_dict

from ..experiment.layout import PROGRESS_FILE
from ..names import EPOCH


def read_columns(path: Path) -> list[str] | None:
    """The header of the CSV at ``path``; None when there is none. A last line without its newline
    (cut by a kill) is removed first, so the next row starts on a line of its own."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    if data and not data.endswith(b"\n"):
        data = data[: data.rfind(b"\n") + 1]
        with path.open("r+b") as fh:
            fh.truncate(len(data))
    if not data:
        return None
    header = next(csv.reader(io.StringIO(data.decode(errors="replace").splitlines()[0])), [])
    return header or None


def append_row(path: Path, columns: list[str] | None, row: dict[str, Any]) -> list[str]:
    """Append ``row`` under ``columns`` (the file's header; None: a new file); returns the header.

    Keys ``row`` has and the header lacks are added at its end: the file is rewritten with the wider
    header, the rows so far padded with empty cells."""
    if columns is None:
        columns = list(row)
        with path.open("w", newline="") as fh:
            csv.writer(fh).writerow(columns)
    new = [k for k in row if k not in columns]
    if new:
        columns = [*columns, *new]
        _rewrite(path, columns)
    with path.open("a", newline="") as fh:
        csv.DictWriter(fh, columns, restval="", extrasaction="ignore").writerow(row)
    return columns


def drop_from_epoch(path: Path, columns: list[str], epoch: Any) -> None:
    """Remove the rows of ``epoch`` and later: a resumed trial reports them again (the epochs after
    its checkpoint are trained again, an epoch that a torn result.json lost is re-reported), and the
    table keeps one row per epoch, as result.json does."""
    if EPOCH not in columns or not isinstance(epoch, (int, float)):
        return
    at = columns.index(EPOCH)

    def before(row: list[str]) -> bool:
        try:
            return float(row[at]) < epoch
        except (IndexError, ValueError):  # a row without an epoch stays
            return True

    _rewrite(path, columns, keep=before)


def _rewrite(path: Path, columns: list[str], keep: Callable[[list[str]], bool] = lambda row: True) -> None:
    with path.open(newline="") as fh:
        rows = [r for r in list(csv.reader(fh))[1:] if keep(r)]
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        writer.writerows(r + [""] * (len(columns) - len(r)) for r in rows)
    os.replace(tmp, path)


class ProgressCsvCallback(CSVLoggerCallback):
    """``progress.csv`` per trial, every row under one header (the module docstring says why)."""

    def __init__(self) -> None:
        super().__init__()
        self._columns: dict[str, list[str] | None] = {}  # by trial id, while the trial runs
        self._restored: set[str] = set()  # trials whose file came from storage in this driver

    def log_trial_result(self, iteration: int, trial: Trial, result: dict[str, Any]) -> None:
        row = flatten_dict({k: v for k, v in result.items() if k != "config"}, delimiter="/")
        if trial.trial_id not in self._columns:
            self._columns[trial.trial_id] = self._set_up(trial, row)
        self._columns[trial.trial_id] = append_row(Path(trial.local_path) / PROGRESS_FILE,
                                                   self._columns[trial.trial_id], row)

    def _set_up(self, trial: Trial, first: dict[str, Any]) -> list[str] | None:
        """The trial's file as it stands (pulled from storage the first time in this driver: after a
        retry the staging copy is newer than the synced one), without the epochs ``first`` reports again."""
        trial.init_local_path()
        if trial.trial_id not in self._restored:
            self._restored.add(trial.trial_id)
            self._restore_from_remote(PROGRESS_FILE, trial)
        path = Path(trial.local_path) / PROGRESS_FILE
        columns = read_columns(path)
        if columns is not None:
            drop_from_epoch(path, columns, first.get(EPOCH))
        return columns

    def log_trial_end(self, trial: Trial, failed: bool = False) -> None:
        self._columns.pop(trial.trial_id, None)
