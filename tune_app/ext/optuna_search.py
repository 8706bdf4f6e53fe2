"""Ray's OptunaSearch, told the truth about early-stopped trials.

Ray 2.60's OptunaSearch reports a trial that ASHA stopped as COMPLETE with its last (partial)
score, so TPE treats an SI-SDR after 2 of 50 epochs as a final one. The trainable marks its last
report with ``done_training``; a trial that ends without it was stopped by the scheduler and
reaches Optuna as PRUNED, with its per-epoch values (already reported via ``ot_trial.report``).

Private names used (see ``tune_app.ext.UPSTREAM``): ``OptunaSearch._ot_study``, ``._ot_trials``,
``._completed_trials`` and ``optuna.Trial._trial_id``.
"""

from __future__ import annotations

import logging
from typing import Any

from optuna.trial import TrialState
from ray.tune.search.optuna import OptunaSearch

from ..names import DONE_TRAINING

logger = logging.getLogger(__name__)


class PruningOptunaSearch(OptunaSearch):
    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        if trial_id in self._completed_trials:
            return super().on_trial_complete(trial_id, result=result, error=error)
        if result and not error:
            self._report_last(trial_id, result)
        if error or not result or result.get(DONE_TRAINING, True):
            return super().on_trial_complete(trial_id, result=result, error=error)
        try:
            self._ot_study.tell(self._ot_trials[trial_id], state=TrialState.PRUNED)
        except Exception as exc:  # e.g. the trial was already told
            logger.warning(exc)
        self._completed_trials.add(trial_id)

    def _report_last(self, trial_id: str, result: dict[str, Any]) -> None:
        """Tune skips on_trial_result for the result that ends a trial; record it as a step too."""
        step, value = result.get("training_iteration"), result.get(self.metric)
        ot_trial = self._ot_trials[trial_id]
        if step is None or value is None or step in ot_trial.storage.get_trial(ot_trial._trial_id).intermediate_values:
            return
        ot_trial.report(value, step)
