"""ASHA that survives ``Tuner.restore`` (ray#30838: schedulers are not restored).

Ray 2.60 restores the scheduler as it was pickled when the Tuner was built: empty rungs, so a
resumed search would let every trial run to the end. Here the first trial added on restore
replays every recorded result of the experiment (``trial_*/result.json``) into the bracket, in the
order ASHA first saw them: the rungs and each trial's last decision come back exactly. Rungs are
keyed by ``epoch`` (not Tune's ``training_iteration``), which stays right even when a stale
snapshot makes Tune's iteration counter lag the trainer's epoch.

A trial is judged at a rung by its best score so far, not its latest: a trial's worth is its best
epoch (the checkpoint kept, the ranking of ``results``, the exported config), and W&B's hyperband,
which the sweep files were written for, compares ``min(history)`` too. On the demo corpus val SI-SDR
swings by ~1 dB from one epoch to the next (benchmarks/README.md), so the latest score is a noisy
judge.

Private names used (see ``tune_app.ext.UPSTREAM``): ``ASHAScheduler._brackets``, ``._metric``,
``._metric_op``, ``._max_t`` and ``_Bracket.on_result``.
"""
from __future__ import annotations

import logging
from typing import Any

from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler, TrialScheduler

from ..names import EPOCH
from .trial_files import experiment_results

logger = logging.getLogger(__name__)


class _Id:
    """What ``_Bracket.on_result`` needs of a trial: its id."""

    def __init__(self, trial_id: str) -> None:
        self.trial_id = trial_id


class ResumableASHA(ASHAScheduler):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(time_attr=EPOCH, **kwargs)
        self._replayed = False
        self._last_decision: dict[str, tuple[int, str]] = {}
        self._stop_at_next_report: set[str] = set()
        self._best_signed: dict[str, float] = {}  # per trial, max of metric_op × score so far

    @classmethod
    def live(cls, **kwargs: Any) -> ResumableASHA:
        """One that starts empty with nothing recorded to replay (a simulated search, a test)."""
        sched = cls(**kwargs)
        sched._replayed = True
        return sched

    def _best_so_far(self, trial_id: str, signed: float) -> float:
        """``signed`` (metric_op × score) folded into the trial's running best, which is returned."""
        best = max(signed, self._best_signed.get(trial_id, signed))
        self._best_signed[trial_id] = best
        return best

    def replay(self, results: dict[str, list[dict[str, Any]]]) -> int:
        """Feed recorded reports (by trial id) to the bracket in the order ASHA first saw them.

        ASHA is deterministic given that order, so this rebuilds the rungs and each trial's last
        decision exactly (reports are ordered by their timestamp, then epoch; an epoch reported twice
        counts once). Returns the number of reports replayed.
        """
        self._replayed = True
        if len(self._brackets) != 1:
            logger.warning("ASHA with several brackets: rungs are not rebuilt on resume")
            return 0
        events = []
        for trial_id, rows in results.items():
            seen = set()
            for row in rows:
                if EPOCH in row and self._metric in row and row[EPOCH] not in seen:
                    seen.add(row[EPOCH])
                    events.append((row.get("timestamp", 0), row[EPOCH], trial_id, row[self._metric]))
        bracket = self._brackets[0]
        for _, epoch, trial_id, value in sorted(events):
            decision = bracket.on_result(_Id(trial_id), epoch, self._best_so_far(trial_id, self._metric_op * value))
            self._last_decision[trial_id] = (epoch, decision)
        if events:
            logger.info("ASHA: rebuilt rungs from %d recorded results", len(events))
        return len(events)

    def last_decision(self, trial_id: str) -> tuple[int, str] | None:
        """(epoch, CONTINUE or STOP) of the trial's last replayed report."""
        return self._last_decision.get(trial_id)

    def on_trial_add(self, tune_controller: Any, trial: Trial) -> None:
        super().on_trial_add(tune_controller, trial)
        if not self._replayed:
            self.replay(experiment_results(trial))
        last = self._last_decision.get(trial.trial_id)
        if last is None or trial.status == Trial.TERMINATED:
            return
        epoch, decision = last
        # A live trial whose last recorded report was already a stop (or its final epoch) — the
        # snapshot was older than the decision — ends at its next report instead of running on.
        if decision == TrialScheduler.STOP or epoch >= self._max_t:
            self._stop_at_next_report.add(trial.trial_id)

    def on_trial_result(self, tune_controller: Any, trial: Trial, result: dict[str, Any]) -> str:
        value = result.get(self._metric)
        if isinstance(value, (int, float)):  # ASHA reads metric_op × result[metric]: give it the best so far
            best = self._best_so_far(trial.trial_id, self._metric_op * value)
            result = {**result, self._metric: self._metric_op * best}
        action = super().on_trial_result(tune_controller, trial, result)
        if trial.trial_id in self._stop_at_next_report:
            self._stop_at_next_report.discard(trial.trial_id)
            return TrialScheduler.STOP
        return action
