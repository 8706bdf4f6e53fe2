"""Ray's WandbLoggerCallback, one W&B step per epoch, never the same epoch twice.

Ray logs with ``step=training_iteration`` and, when a trial is restored, opens a second offline
run with the same id and logs every result again, including an epoch redone after a kill. Here
the step is the trainer's epoch, the epochs a run already holds (read back from its offline
files) are skipped, and online runs resume the same W&B run (``resume="allow"``).

Ray's ``Queue.put`` waits for the trial's queue actor; a trial's first put waits for that actor's
process to start (about a second), and the whole Tune loop, every other trial included, stalls
meanwhile. The puts here go through one background thread instead: still one at a time and in
order (a put that does not wait is not ordered, since the queue actor is async), but off the loop.
"""

from __future__ import annotations

import glob
import logging
import os
import queue
import threading
import time
from typing import Any

from ray.air.integrations.wandb import WandbLoggerCallback
from ray.tune.experiment import Trial

from .wandb_offline import read_offline_run

logger = logging.getLogger(__name__)


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


class OrderedSender:
    """Runs ``ray_queue.put(item)`` calls on one thread, in the order they were handed over."""

    def __init__(self) -> None:
        self._items: queue.SimpleQueue = queue.SimpleQueue()
        self._pending = 0
        self._idle = threading.Condition()
        threading.Thread(target=self._run, name="wandb-queue-put", daemon=True).start()

    def put(self, ray_queue: Any, item: Any) -> None:
        with self._idle:
            self._pending += 1
        self._items.put((ray_queue, item))

    def flush(self, timeout: float) -> bool:
        """Wait until every handed-over item is in its queue; False if ``timeout`` ran out first."""
        deadline = time.monotonic() + timeout
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout=max(0.0, deadline - time.monotonic()))

    def _run(self) -> None:
        while True:
            ray_queue, item = self._items.get()
            try:
                ray_queue.put(item)
            except Exception as exc:  # a dead queue actor (Ray shutting down) must not stop the others
                logger.warning("W&B: could not pass a result to the logging actor: %s", exc)
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()


class BackgroundQueue:
    """Stands in for a trial's Ray ``Queue`` on the driver: ``put`` returns at once."""

    def __init__(self, ray_queue: Any, sender: OrderedSender) -> None:
        self.ray_queue = ray_queue
        self._sender = sender

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        self._sender.put(self.ray_queue, item)


class EpochWandbLoggerCallback(WandbLoggerCallback):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("resume", "allow")
        super().__init__(*args, **kwargs)
        self._logged: dict[str, set[int]] = {}
        self._sender: OrderedSender | None = None  # started on first use: the callback is pickled before

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_sender": None}

    def _start_logging_actor(self, trial: Trial, exclude_results: list[str], **wandb_init_kwargs: Any) -> None:
        super()._start_logging_actor(trial, exclude_results, **wandb_init_kwargs)
        ray_queue = self._trial_queues.get(trial)
        if ray_queue is not None and not isinstance(ray_queue, BackgroundQueue):
            if self._sender is None:
                self._sender = OrderedSender()
            self._trial_queues[trial] = BackgroundQueue(ray_queue, self._sender)

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
        if self._sender is not None and not self._sender.flush(self._upload_timeout):
            logger.warning("W&B: results still queued after %s s; their logging actors are stopped", self._upload_timeout)
        super().on_experiment_end(trials, **info)
