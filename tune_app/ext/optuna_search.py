"""Ray's OptunaSearch, told the truth about early-stopped trials.

Ray 2.60's OptunaSearch reports a trial that ASHA stopped as COMPLETE with its last (partial)
score, so TPE treats an SI-SDR after 2 of 50 epochs as a final one. The trainable marks its last
report with ``done_training``; a trial that ends without it was stopped by the scheduler and
reaches Optuna as PRUNED, with its per-epoch values (already reported via ``ot_trial.report``).

Private names used (see ``tune_app.ext.UPSTREAM``): ``OptunaSearch._ot_study``, ``._ot_trials``,
``._completed_trials``, ``._space`` and ``optuna.Trial._trial_id``.
"""

from __future__ import annotations

import logging
from typing import Any

from optuna.trial import TrialState
from ray.tune.search.optuna import OptunaSearch

from ..names import DONE_TRAINING, ITERATION

logger = logging.getLogger(__name__)


class PruningOptunaSearch(OptunaSearch):
    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if self._adopt(trial_id, result):
            super().on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        if trial_id in self._completed_trials:
            return super().on_trial_complete(trial_id, result=result, error=error)
        if not self._adopt(trial_id, result):
            return  # a trial the study never asked for, with no config to tell it by
        if result and not error:
            self._report_last(trial_id, result)
        if error or not result or result.get(DONE_TRAINING, True):
            return super().on_trial_complete(trial_id, result=result, error=error)
        try:
            self._ot_study.tell(self._ot_trials[trial_id], state=TrialState.PRUNED)
        except Exception as exc:  # e.g. the trial was already told
            logger.warning(exc)
        self._completed_trials.add(trial_id)

    def _adopt(self, trial_id: str, result: dict[str, Any] | None) -> bool:
        """Make a trial the study never asked for known to it, by its config (``resume --restart-errored``
        gives a restarted trial a new id; Ray's OptunaSearch then fails with a KeyError on its first
        result). The study gets a trial with exactly those parameters. False if it cannot."""
        if trial_id in self._ot_trials:
            return True
        config = (result or {}).get("config")
        if not isinstance(config, dict) or not isinstance(self._space, dict):
            logger.warning("trial %s is unknown to the Optuna study and its result has no config", trial_id)
            return False
        flat = _flatten(config)
        params = {name: flat[name] for name in self._space if name in flat}
        if len(params) < len(self._space):
            return False
        self._ot_study.enqueue_trial(params, skip_if_exists=False)
        self._ot_trials[trial_id] = self._ot_study.ask(fixed_distributions=self._space)
        return True

    def _report_last(self, trial_id: str, result: dict[str, Any]) -> None:
        """Tune skips on_trial_result for the result that ends a trial; record it as a step too."""
        step, value = result.get(ITERATION), result.get(self.metric)
        ot_trial = self._ot_trials[trial_id]
        if step is None or value is None or step in ot_trial.storage.get_trial(ot_trial._trial_id).intermediate_values:
            return
        ot_trial.report(value, step)


def _flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested trial config → OptunaSearch's '/'-joined parameter names."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "/"))
        else:
            out[name] = value
    return out
