"""Ray's OptunaSearch, told the truth about early-stopped trials.

Ray 2.60's OptunaSearch reports a trial that ASHA stopped as COMPLETE with its last (partial)
score, so TPE treats an SI-SDR after 2 of 50 epochs as a final one. The trainable marks its last
report with ``done_training``; a trial that ends without it was stopped by the scheduler and
reaches Optuna as PRUNED, with its per-epoch values (already reported via ``ot_trial.report``).

With a persistent storage (``tune_app.experiment.study``) the study also has to survive a SIGKILL
of the driver: Tune's searcher pickle is then up to one snapshot older than the database. On
restore, trials the database already holds as finished are not told again, and trials the study
handed out after the snapshot (RUNNING there, unknown to Tune) are handed to the next new Tune
trials instead of being left RUNNING for ever: no trial told twice, none lost.

A trial that trained to its end reaches Optuna with its best score over epochs, not its last one
(single-objective): Ray's OptunaSearch tells the last result, while the search keeps the best
epoch's checkpoint and ranks and exports by it, so the sampler would learn to prefer configs that
end high over configs that peak high. The best is read from the trial's intermediate values in the
study, which survive a restore.

Each study trial carries the Tune trial id (user attribute ``ray_trial_id``) and warm-started
points carry ``warm_start`` (their source), so optuna-dashboard shows where a trial came from.

Private names used (see ``tune_app.ext.UPSTREAM``): ``OptunaSearch._ot_study``, ``._ot_trials``,
``._completed_trials``, ``._space`` and ``optuna.Trial._trial_id``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState
from ray.tune.search.optuna import OptunaSearch

from ..experiment import layout
from ..names import DONE_TRAINING, EPOCH, ITERATION
from ..space.prior import SOURCE_ATTR, WARM, PriorSampler

logger = logging.getLogger(__name__)


RAY_TRIAL_ID = "ray_trial_id"  # study trial user attribute: the Tune trial it ran as
WARM_START = "warm_start"  # study trial user attribute: where a warm-started point came from


class PruningOptunaSearch(OptunaSearch):
    # The experiment folder (None for a URI experiment): a trial's result.json settles how it ended.
    results_dir: str | None = None

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        new = trial_id not in self._ot_trials
        if new and self._orphans():
            orphan = self._orphans().pop(0)
            self._ot_trials[trial_id] = optuna.Trial(self._ot_study, orphan._trial_id)
            logger.info("trial %s takes over study trial %d, asked before the driver stopped", trial_id, orphan.number)
        config = super().suggest(trial_id)
        if new and trial_id in self._ot_trials:
            ot_trial = self._ot_trials[trial_id]
            ot_trial.set_user_attr(RAY_TRIAL_ID, trial_id)
            source = self._ot_study.sampler.source(ot_trial.number) if isinstance(
                self._ot_study.sampler, PriorSampler) else None
            if source is not None:
                ot_trial.set_user_attr(SOURCE_ATTR, source)
        return config

    def restore(self, checkpoint_path: str) -> None:
        """Tune's pickle, reconciled with the study's storage (which a killed driver kept newer)."""
        super().restore(checkpoint_path)
        self._orphan_trials = None
        storage = self._ot_study._storage
        for trial_id, ot_trial in self._ot_trials.items():
            if storage.get_trial(ot_trial._trial_id).state.is_finished():
                self._completed_trials.add(trial_id)

    def _orphans(self) -> list[optuna.Trial]:
        """Study trials RUNNING in the storage that no Tune trial holds (asked after the last snapshot)."""
        if getattr(self, "_orphan_trials", None) is None:
            held = {t._trial_id for t in self._ot_trials.values()}
            self._orphan_trials = [t for t in self._ot_study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                                   if t._trial_id not in held]
        return self._orphan_trials

    def add_warm_point(self, params: dict[str, Any], value: float, source: str) -> None:
        """A finished trial of an earlier search, in the study as such (``warm_start`` = its source)."""
        self._ot_study.add_trial(optuna.trial.create_trial(
            state=TrialState.COMPLETE, value=value, params=params, distributions=self._space,
            user_attrs={WARM_START: source, SOURCE_ATTR: WARM}))

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if trial_id in self._completed_trials:
            return  # told already (by the storage, before a restore); Ray's own warning would repeat it
        if self._adopt(trial_id, result) and not self._overwrote_step(trial_id, result):
            super().on_trial_result(trial_id, result)

    def _overwrote_step(self, trial_id: str, result: dict[str, Any]) -> bool:
        """A step the study holds already: a trial training again from epoch 1 (tune_app.experiment.restart)
        or an epoch trained again after a resume. Optuna's ``report`` would keep the first value (and warn
        for each), so the study's curve would be a training that no longer exists; the storage's public
        ``set_trial_intermediate_value`` overwrites it."""
        if isinstance(self.metric, list):
            return False
        ot_trial = self._ot_trials[trial_id]
        step = result.get(ITERATION)
        if step not in ot_trial.storage.get_trial(ot_trial._trial_id).intermediate_values:
            return False
        ot_trial.storage.set_trial_intermediate_value(ot_trial._trial_id, step, float(result[self.metric]))
        return True

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        if trial_id in self._completed_trials:
            return None
        if not self._adopt(trial_id, result):
            return  # a trial the study never asked for, with no config to tell it by
        result = self._settled(trial_id, result)
        if result and not error:
            self._report_last(trial_id, result)
        if error or not result or result.get(DONE_TRAINING, True):
            return super().on_trial_complete(trial_id, result=self._with_best(trial_id, result), error=error)
        try:
            self._ot_study.tell(self._ot_trials[trial_id], state=TrialState.PRUNED)
        # ValueError: the trial was already told. Anything else (the study's database gone) is logged with its
        # traceback but not raised: raised here, it would end the whole search in Tune's loop.
        except Exception as exc:
            logger.warning("Optuna: trial %s not told PRUNED (%s)", trial_id, exc, exc_info=True)
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
        orphan = next((t for t in self._orphans() if t.params == params), None)
        if orphan is not None:  # the study asked it, the driver died before Tune recorded the trial
            self._orphans().remove(orphan)
            self._ot_trials[trial_id] = optuna.Trial(self._ot_study, orphan._trial_id)
        else:
            self._ot_study.enqueue_trial(params, skip_if_exists=False)
            self._ot_trials[trial_id] = self._ot_study.ask(fixed_distributions=self._space)
        self._ot_trials[trial_id].set_user_attr(RAY_TRIAL_ID, trial_id)
        return True

    def _settled(self, trial_id: str, result: dict[str, Any] | None) -> dict[str, Any] | None:
        """Tune's last result, or the trial's own last recorded report where that one ended training.

        After Ctrl-C or a kill, Tune's snapshot can hold an older last result than result.json: a
        trial that had trained its last epoch is then resumed with nothing left to do and ends with
        the stale result, which would reach Optuna as PRUNED at an earlier epoch while ``results``
        (reading result.json) calls it completed.
        """
        if not self.results_dir or not result or result.get(DONE_TRAINING, True):
            return result
        rows = layout.read_results(Path(self.results_dir) / layout.trial_dirname(trial_id))
        last = rows[-1] if rows else {}
        if last.get(DONE_TRAINING) and last.get(EPOCH, 0) > result.get(EPOCH, 0):
            return {**result, **last}
        return result

    def _with_best(self, trial_id: str, result: dict[str, Any] | None) -> dict[str, Any] | None:
        """``result`` with the metric replaced by the trial's best intermediate value (single-objective)."""
        if not result or isinstance(self.metric, list) or not isinstance(result.get(self.metric), (int, float)):
            return result
        ot_trial = self._ot_trials[trial_id]
        values = list(ot_trial.storage.get_trial(ot_trial._trial_id).intermediate_values.values())
        pick = max if self.mode == "max" else min
        return {**result, self.metric: pick([result[self.metric], *values])}

    def _report_last(self, trial_id: str, result: dict[str, Any]) -> None:
        """Tune skips on_trial_result for the result that ends a trial; record it as a step too
        (single-objective only: Optuna keeps no intermediate values for a multi-objective study)."""
        if isinstance(self.metric, list):
            return
        step, value = result.get(ITERATION), result.get(self.metric)
        if step is not None and value is not None and not self._overwrote_step(trial_id, result):
            self._ot_trials[trial_id].report(value, step)


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
