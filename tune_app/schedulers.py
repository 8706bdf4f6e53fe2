"""ASHA that survives ``Tuner.restore``.

Ray 2.60 restores the scheduler as it was pickled when the Tuner was built: empty rungs, so a
resumed search would let every trial run to the end. Here the first trial added on restore
replays every recorded result of the experiment (``trial_*/result.json``) into the bracket, in the
order ASHA first saw them: the rungs and each trial's last decision come back exactly. Rungs are
keyed by ``epoch`` (not Tune's ``training_iteration``), which stays right even when a stale
snapshot makes Tune's iteration counter lag the trainer's epoch.
"""
from __future__ import annotations

import logging
from typing import Any

import pyarrow.fs
from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler, TrialScheduler

from .results import parse_result_lines

logger = logging.getLogger(__name__)
TIME_ATTR = "epoch"


def _read_results(fs: Any, path: str) -> list[dict[str, Any]]:
    try:
        with fs.open_input_stream(path) as stream:
            return parse_result_lines(stream.readall().decode())
    except Exception:  # no results yet
        return []


def experiment_results(trial: Trial) -> dict[str, list[dict[str, Any]]]:
    """Every trial's reports in the experiment folder, by trial id (trial folders are trial_<id>)."""
    out = {}
    try:
        fs = trial.storage.storage_filesystem
        root = trial.storage.experiment_fs_path
        infos = fs.get_file_info(pyarrow.fs.FileSelector(root))
    except Exception:
        return {}
    for info in infos:
        name = info.path.rsplit("/", 1)[-1]
        if info.type == pyarrow.fs.FileType.Directory and name.startswith("trial_"):
            out[name.removeprefix("trial_")] = _read_results(fs, f"{info.path}/result.json")
    return out


def trial_results(trial: Trial) -> list[dict[str, Any]]:
    """One trial's recorded reports (empty for a trial that has none yet)."""
    try:
        return _read_results(trial.storage.storage_filesystem, f"{trial.path}/result.json")
    except Exception:  # a new trial has no folder yet
        return []


class _Id:
    def __init__(self, trial_id: str) -> None:
        self.trial_id = trial_id


class ResumableASHA(ASHAScheduler):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(time_attr=TIME_ATTR, **kwargs)
        self._replayed = False
        self._last_decision: dict[str, tuple[int, str]] = {}
        self._stop_at_next_report: set[str] = set()

    def _replay(self, trial: Trial) -> None:
        """Feed every recorded result to the bracket in the order ASHA first saw them.

        ASHA is deterministic given that order, so this rebuilds the rungs and each trial's last
        decision exactly (reports are ordered by their timestamp, then epoch).
        """
        self._replayed = True
        if len(self._brackets) != 1:
            logger.warning("ASHA with several brackets: rungs are not rebuilt on resume")
            return
        events = []
        for trial_id, rows in experiment_results(trial).items():
            seen = set()
            for row in rows:
                if TIME_ATTR in row and self._metric in row and row[TIME_ATTR] not in seen:
                    seen.add(row[TIME_ATTR])
                    events.append((row.get("timestamp", 0), row[TIME_ATTR], trial_id, row[self._metric]))
        bracket = self._brackets[0]
        for _, epoch, trial_id, value in sorted(events):
            decision = bracket.on_result(_Id(trial_id), epoch, self._metric_op * value)
            self._last_decision[trial_id] = (epoch, decision)
        if events:
            logger.info("ASHA: rebuilt rungs from %d recorded results", len(events))

    def on_trial_add(self, tune_controller: Any, trial: Trial) -> None:
        super().on_trial_add(tune_controller, trial)
        if not self._replayed:
            self._replay(trial)
        last = self._last_decision.get(trial.trial_id)
        if last is None or trial.status == Trial.TERMINATED:
            return
        epoch, decision = last
        # A live trial whose last recorded report was already a stop (or its final epoch) — the
        # snapshot was older than the decision — ends at its next report instead of running on.
        if decision == TrialScheduler.STOP or epoch >= self._max_t:
            self._stop_at_next_report.add(trial.trial_id)

    def on_trial_result(self, tune_controller: Any, trial: Trial, result: dict[str, Any]) -> str:
        action = super().on_trial_result(tune_controller, trial, result)
        if trial.trial_id in self._stop_at_next_report:
            self._stop_at_next_report.discard(trial.trial_id)
            return TrialScheduler.STOP
        return action
