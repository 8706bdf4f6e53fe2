"""Ray's WandbLoggerCallback, one W&B step per epoch, never the same epoch twice.

Ray logs with ``step=training_iteration`` and, when a trial is restored, opens a second offline
run with the same id and logs every result again, including an epoch redone after a kill. Here
the step is the trainer's epoch, the epochs a run already holds (read back from its offline
files) are skipped, and online runs resume the same W&B run (``resume="allow"``).
"""

from __future__ import annotations

import glob
import os
from typing import Any

from ray.air.integrations.wandb import WandbLoggerCallback
from ray.tune.experiment import Trial

from .wandb_offline import read_offline_run


def logged_epochs(wandb_dir: str | None, run_id: str) -> set[int]:
    """Epochs already in this run's offline files (a file cut by a kill counts up to the cut)."""
    if not wandb_dir:
        return set()
    epochs: set[int] = set()
    for folder in glob.glob(os.path.join(wandb_dir, "wandb", f"offline-run-*-{run_id}")):
        try:
            run = read_offline_run(folder)
        except (OSError, ValueError):
            continue
        epochs.update(int(row["epoch"]) for row in run.history if isinstance(row.get("epoch"), (int, float)))
    return epochs


class EpochWandbLoggerCallback(WandbLoggerCallback):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("resume", "allow")
        super().__init__(*args, **kwargs)
        self._logged: dict[str, set[int]] = {}

    def log_trial_start(self, trial: Trial) -> None:
        first_start = trial.trial_id not in self._logged
        if first_start:
            self._logged[trial.trial_id] = logged_epochs(self.kwargs.get("dir"), trial.trial_id)
        super().log_trial_start(trial)
        if first_start and self.kwargs.get("mode") == "offline":
            self._backfill(trial)

    def _backfill(self, trial: Trial) -> None:
        """Re-send epochs Tune recorded but a killed logging actor never flushed to disk."""
        from .schedulers import trial_results

        for row in trial_results(trial):
            if isinstance(row.get("epoch"), (int, float)) and int(row["epoch"]) not in self._logged[trial.trial_id]:
                self.log_trial_result(int(row.get("training_iteration", 0)), trial, row)

    def log_trial_result(self, iteration: int, trial: Trial, result: dict[str, Any]) -> None:
        epoch = result.get("epoch")
        if epoch is None:
            return super().log_trial_result(iteration, trial, result)
        seen = self._logged.setdefault(trial.trial_id, logged_epochs(self.kwargs.get("dir"), trial.trial_id))
        if int(epoch) in seen:
            return None
        seen.add(int(epoch))
        # The logging actor uses training_iteration as the W&B step: make it the epoch.
        super().log_trial_result(iteration, trial, {**result, "training_iteration": int(epoch)})
        return None

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        # On Ctrl-C/SIGTERM Tune ends the experiment without ending the running trials: tell their
        # logging actors to finish now, or Ray waits the whole upload timeout and then kills them.
        for trial in list(self._trial_logging_actors):
            self._signal_logging_actor_stop(trial)
        super().on_experiment_end(trials, **info)
