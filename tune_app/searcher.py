"""Ray's OptunaSearch, told the truth about early-stopped trials.

Ray 2.60's OptunaSearch reports a trial that ASHA stopped as COMPLETE with its last (partial)
score, so TPE treats an SI-SDR after 2 of 50 epochs as a final one. The trainable marks its last
report with ``done_training``; a trial that ends without it was stopped by the scheduler and
reaches Optuna as PRUNED, with its per-epoch values (already reported via ``ot_trial.report``).
"""

from __future__ import annotations

import logging
from typing import Any

from optuna.trial import TrialState
from ray.tune.search.optuna import OptunaSearch

logger = logging.getLogger(__name__)


class PruningOptunaSearch(OptunaSearch):
    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        if error or not result or result.get("done_training", True) or trial_id in self._completed_trials:
            super().on_trial_complete(trial_id, result=result, error=error)
            return
        ot_trial = self._ot_trials[trial_id]
        try:
            self._ot_study.tell(ot_trial, state=TrialState.PRUNED)
        except Exception as exc:  # e.g. the trial was already told
            logger.warning(exc)
        self._completed_trials.add(trial_id)
