"""Ray's WandbLoggerCallback, one W&B step per epoch, never the same epoch twice.

Ray logs with ``step=training_iteration`` and, when a trial is restored, opens a second offline
run with the same id and logs every result again, including an epoch redone after a kill. Here
the step is the trainer's epoch, the epochs a run already holds (read back from its offline
files) are skipped, and online runs resume the same W&B run (``resume="allow"``).

Ray gives every trial two processes, a queue actor and the logging actor that reads it, and the
driver waits on each put; a trial's first put waits for the queue actor's process to start (about a
second) while the whole Tune loop stalls. On a 2-core machine the queue actors alone cost about 2 s
of CPU per trial (start-up and an idle Ray worker's polling). Here the queue lives inside the
logging actor (one process per trial), and the driver's puts run on one background thread: still
one at a time and in order, but off the Tune loop.

Private names used (see ``tune_app.ext.UPSTREAM``): ``_WandbLoggingActor``, ``_force_on_current_node``,
and ``WandbLoggerCallback._start_logging_actor``, ``._trial_logging_futures``, ``._logging_future_to_trial``,
``._trial_queues``, ``._trial_logging_actors``, ``._remote_logger_class``, ``._signal_logging_actor_stop``,
``._cleanup_logging_actors``, ``._upload_timeout``; and the offline run files (:mod:`.wandb_offline`).
"""

from __future__ import annotations

import glob
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import ray
import wandb
from ray.air.integrations.wandb import WANDB_ENV_VAR, WandbLoggerCallback, _QueueItem, _WandbLoggingActor
from ray.air.util.node import _force_on_current_node
from ray.tune.experiment import Trial

from ..experiment.layout import WANDB_DIR
from ..experiment.location import driver_folder
from ..names import END_STATE_KEY, EPOCH, ERROR, ITERATION, VALIDATION_KEY, ended_status, status_label
from .trial_files import trial_results
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
        epochs.update(int(row[EPOCH]) for row in run.history if isinstance(row.get(EPOCH), (int, float)))
    return epochs


def _put_and_wait(actor: Any, item: Any) -> None:
    ray.get(actor.put.remote(item))  # waiting keeps the order: the actor is threaded


class OrderedSender:
    """Runs the driver's puts on one thread, in the order they were handed over.

    ``send(actor, item)`` delivers one item and returns when it has arrived; an exception it raises
    is logged and the next item goes on (a dead logging actor must not stop the others' results).
    """

    def __init__(self, send: Callable[[Any, Any], None] = _put_and_wait) -> None:
        self._send = send
        self._items: queue.SimpleQueue = queue.SimpleQueue()
        self._pending = 0
        self._idle = threading.Condition()
        threading.Thread(target=self._run, name="wandb-put", daemon=True).start()

    def put(self, actor: Any, item: Any) -> None:
        with self._idle:
            self._pending += 1
        self._items.put((actor, item))

    def flush(self, timeout: float) -> bool:
        """Wait until every handed-over item has reached its actor; False if none arrived for ``timeout``
        seconds. Bounded by progress, not in all: on a loaded machine a backlog of puts to actors
        still starting takes long, but gets on; only a stuck actor stops it."""
        with self._idle:
            while self._pending:
                if not self._idle.wait_for(lambda left=self._pending: self._pending < left, timeout=timeout):
                    return False
            return True

    def _run(self) -> None:
        while True:
            actor, item = self._items.get()
            try:
                self._send(actor, item)
            except Exception as exc:  # any: a dead actor's error is Ray's, a bad item's is the actor's
                logger.warning("W&B: a result did not reach its logging actor: %s", exc, exc_info=exc)
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()


END_STATE = "polsess_end_state"  # a queue item of ours: the trial's end state, for the run's summary and tags


class _Inbox(queue.Queue):
    """The logging actor's queue. Ray's run loop reads it only after ``wandb.init``: when it reaches
    the END item, the trial's end state (put earlier) goes into the run's summary and tags, in the
    run loop's thread, before ``wandb.finish``. It notes the run's ``.wandb`` file there too."""

    def __init__(self) -> None:
        super().__init__()
        self.end_state: dict[str, Any] | None = None
        self.run_file: str | None = None

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        item = super().get(block, timeout)
        if item[0] == _QueueItem.END and wandb.run is not None:
            self.run_file = wandb.run.settings.sync_file
            if self.end_state:
                wandb.run.summary.update(self.end_state)
                wandb.run.tags = (*wandb.run.tags, self.end_state[END_STATE_KEY])
        return item


class RunNotWritten(RuntimeError):
    """A logging actor's run is not (all) on disk after ``wandb.finish`` and ``wandb.teardown``."""


class InboxLoggingActor(_WandbLoggingActor):
    """Ray's logging actor, reading from a queue of its own that ``put`` fills (from a second thread).

    The API key comes as an argument, not in the actor's ``runtime_env`` as Ray passes it: Ray's
    runtime-env agent writes every runtime_env it creates, env_vars included, to its session log.
    """

    def __init__(self, logdir: str, queue_: Any, exclude: list[str], to_config: list[str], *args: Any,
                 api_key: str | None = None, **kwargs: Any) -> None:
        if api_key:
            os.environ[WANDB_ENV_VAR] = api_key
        super().__init__(logdir, _Inbox(), exclude, to_config, *args, **kwargs)

    def run(self) -> str | None:
        """Ray's run (``wandb.init``, the queue, ``wandb.finish``), then wait until the run is on disk;
        the run's ``.wandb`` file.

        ``wandb.finish`` returns once wandb-core has handled the run's exit, but wandb-core writes the
        ``.wandb`` file (buffered: the bare 7-byte header until then) only when it closes the run,
        after that. The driver kills this actor as soon as ``run`` returns, and its wandb-core with
        it: on a loaded machine the whole run was lost (issue #24). ``wandb.teardown`` waits until
        wandb-core has closed every run and exited; the driver bounds the wait (``upload_timeout``
        without progress). The exit record read back proves the file complete."""
        super().run()
        wandb.teardown()
        run_file = self.queue.run_file
        if run_file and os.path.isfile(run_file) and read_offline_run(run_file).exit_code is None:
            raise RunNotWritten(f"{run_file}: no exit record after wandb.finish and wandb.teardown")
        return run_file

    def put(self, item: Any) -> None:
        if isinstance(item, tuple) and item[0] == END_STATE:
            self.queue.end_state = item[1]
        else:
            self.queue.put(item)


class ActorInbox:
    """Stands in for a trial's Ray ``Queue`` on the driver: ``put`` returns at once."""

    def __init__(self, actor: Any, sender: OrderedSender) -> None:
        self.actor = actor
        self._sender = sender

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        self._sender.put(self.actor, item)


FINISHING_AT_MOST = 2  # logging actors of ended trials still writing, beyond which a new trial's waits
FINISHING_WAIT_S = 120.0


class EpochWandbLoggerCallback(WandbLoggerCallback):
    actor_class: type = InboxLoggingActor  # the logging actor each trial gets (a subclass may log differently)

    def __init__(self, *args: Any, finishing_at_most: int = FINISHING_AT_MOST, uri: str | None = None,
                 budget: bool = False, **kwargs: Any) -> None:
        kwargs.setdefault("resume", "allow")
        super().__init__(*args, **kwargs)
        self._budget = budget  # a budget search: a trial its end cuts is budget-cut (names.ended_status)
        self._uri = uri  # a URI experiment: its W&B runs go to the driver folder of whichever machine drives it
        self._logged: dict[str, set[int]] = {}
        self._sender: OrderedSender | None = None  # started on first use: the callback is pickled before
        self._finishing_at_most = finishing_at_most
        self._ended: set[str] = set()  # trials whose logging actor was told to finish

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_sender": None, "_ended": set()}

    def setup(self, *args: Any, **kwargs: Any) -> None:
        # Tune calls setup on a restored search too: a driver started afresh on another machine
        # logs beside itself, not into the pickled path of the machine that started the search.
        if getattr(self, "_uri", None):
            self.kwargs["dir"] = str(driver_folder(self._uri) / WANDB_DIR)
            os.makedirs(self.kwargs["dir"], exist_ok=True)
        super().setup(*args, **kwargs)

    def _start_logging_actor(self, trial: Trial, exclude_results: list[str], **wandb_init_kwargs: Any) -> None:
        """Ray's own, less the queue actor and the key in the runtime_env; a second thread for ``put``."""
        if trial in self._trial_logging_futures:  # a restarted trial keeps its actor
            return
        self._wait_for_finishing_actors()
        if self._sender is None:
            self._sender = OrderedSender()
        if not self._remote_logger_class:
            self._remote_logger_class = ray.remote(
                num_cpus=0,
                max_concurrency=2,
                **_force_on_current_node(),
                max_restarts=-1,
                max_task_retries=-1,
            )(self.actor_class)
        origin = (trial.config or {}).get(VALIDATION_KEY)
        if isinstance(origin, dict):  # a validation run: which trial's config, which seed
            wandb_init_kwargs["tags"] = [*(wandb_init_kwargs.get("tags") or []),
                                         f"source-trial:{origin.get('source_trial')}", f"seed:{origin.get('seed')}"]
        offline = wandb_init_kwargs.get("mode", os.environ.get("WANDB_MODE")) in ("offline", "disabled")
        actor = self._remote_logger_class.remote(
            logdir=trial.local_path,
            queue_=None,
            exclude=exclude_results,
            to_config=self.AUTO_CONFIG_KEYS,
            api_key=None if offline else os.environ.get(WANDB_ENV_VAR),  # offline runs never need it
            **wandb_init_kwargs,
        )
        self._trial_queues[trial] = ActorInbox(actor, self._sender)
        self._trial_logging_actors[trial] = actor
        future = actor.run.remote()
        self._trial_logging_futures[trial] = future
        self._logging_future_to_trial[future] = trial

    def _wait_for_finishing_actors(self) -> None:
        """Bound the logging processes alive at once (~250 MB each): with trials shorter than a W&B
        run's start and finish, ended trials' actors pile up (16 alive after 16 one-epoch trials), so
        a new one waits until at most ``finishing_at_most`` ended trials' actors are still writing."""
        deadline = time.monotonic() + FINISHING_WAIT_S
        while True:
            self._cleanup_logging_actors()
            ending = [f for t, f in self._trial_logging_futures.items() if t.trial_id in self._ended]
            if len(ending) <= self._finishing_at_most or time.monotonic() > deadline:
                return
            ray.wait(ending, num_returns=len(ending) - self._finishing_at_most, timeout=5.0)

    def log_trial_end(self, trial: Trial, failed: bool = False) -> None:
        """Early-stopped, completed and errored trials all exit 0 in W&B: say which in the summary
        (``end_state``, ``epochs``) and as a tag, so the runs can be told apart and filtered."""
        self._put_end_state(trial, failed)
        self._ended.add(trial.trial_id)
        super().log_trial_end(trial, failed=failed)

    def _put_end_state(self, trial: Trial, failed: bool) -> None:
        if trial in self._trial_queues:
            last = trial.last_result or {}
            state = ERROR if failed else ended_status(last, budget=getattr(self, "_budget", False))  # older pickles
            self._trial_queues[trial].put((END_STATE, {END_STATE_KEY: status_label(state),
                                                      "epochs": int(last.get(EPOCH, 0) or 0)}))

    def log_trial_start(self, trial: Trial) -> None:
        first_start = trial.trial_id not in self._logged
        if first_start:
            self._logged[trial.trial_id] = logged_epochs(self.kwargs.get("dir"), trial.trial_id)
        super().log_trial_start(trial)
        if first_start and self.kwargs.get("mode") == "offline":
            self._backfill(trial)

    def _backfill(self, trial: Trial) -> None:
        """Re-send epochs Tune recorded but a killed logging actor never flushed to disk."""
        for row in trial_results(trial):
            if isinstance(row.get(EPOCH), (int, float)) and int(row[EPOCH]) not in self._logged[trial.trial_id]:
                self.log_trial_result(int(row.get(ITERATION, 0)), trial, row)

    def log_trial_result(self, iteration: int, trial: Trial, result: dict[str, Any]) -> None:
        epoch = result.get(EPOCH)
        if epoch is None:
            return super().log_trial_result(iteration, trial, result)
        seen = self._logged.setdefault(trial.trial_id, logged_epochs(self.kwargs.get("dir"), trial.trial_id))
        if int(epoch) in seen:
            return None
        seen.add(int(epoch))
        # The logging actor uses training_iteration as the W&B step: make it the epoch.
        super().log_trial_result(iteration, trial, {**result, ITERATION: int(epoch)})
        return None

    def _backfill_finished(self, trials: list[Trial]) -> None:
        """After a resume: a trial that had finished before the kill is never started again, so its
        epochs that the killed logging actor never wrote would stay missing. Log them now."""
        for trial in trials:
            if trial.trial_id in self._logged or trial.status not in (Trial.TERMINATED, Trial.ERROR):
                continue  # started by this driver: its own actor has had every result
            recorded = {int(r[EPOCH]) for r in trial_results(trial) if isinstance(r.get(EPOCH), (int, float))}
            self._logged[trial.trial_id] = logged_epochs(self.kwargs.get("dir"), trial.trial_id)
            if recorded - self._logged[trial.trial_id]:
                super().log_trial_start(trial)  # its actor finishes with the others below
                self._backfill(trial)

    def on_step_end(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        """End the logging actors whose trial has ended and whose run has finished writing, every loop
        step: Ray's callback does it only when another trial ends, so with many short trials dozens of
        finished actors (~250 MB each) stay alive until the search ends."""
        super().on_step_end(iteration, trials, **info)
        # A spent budget (Stopper.stop_all) ends the running trials in this step without log_trial_end
        # (at the experiment's end, interrupted trials are TERMINATED too: not there).
        for trial in list(self._trial_queues):
            if trial.status == Trial.TERMINATED and trial.trial_id not in self._ended:
                self._put_end_state(trial, failed=False)
                self._ended.add(trial.trial_id)
        if self._trial_logging_futures:
            self._cleanup_logging_actors()

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        if self.kwargs.get("mode") == "offline":
            self._backfill_finished(trials)
        # On Ctrl-C/SIGTERM Tune ends the experiment without ending the running trials: tell their
        # logging actors to finish now, or Ray waits the whole upload timeout and then kills them.
        for trial in list(self._trial_logging_actors):
            self._signal_logging_actor_stop(trial)
        if self._sender is not None and not self._sender.flush(self._upload_timeout):
            logger.warning("W&B: no queued result reached a logging actor for %s s; the rest are dropped",
                           self._upload_timeout)
        self._finish_logging_actors()  # instead of Ray's on_experiment_end: the same, bounded by progress

    def _finish_logging_actors(self) -> None:
        """Wait for every logging actor to write its run, for as long as they get on. Ray waits
        ``upload_timeout`` in all, then kills the rest: on a loaded machine, runs still being written.
        Here the bound is ``upload_timeout`` without any actor finishing; those still writing then
        are stopped and named (and the search's summary names their runs, :func:`incomplete_runs_line`)."""
        while self._trial_logging_futures:
            futures = list(self._trial_logging_futures.values())
            done, _ = ray.wait(futures, num_returns=1, timeout=self._upload_timeout)
            if not done:
                break
            self._cleanup_logging_actors()
        self._cleanup_logging_actors(kill_on_timeout=True)

    def _cleanup_logging_actors(self, timeout: int = 0, kill_on_timeout: bool = False) -> None:
        """Ray's (end the actors whose ``run`` has returned; with ``kill_on_timeout``, the rest too), and
        a warning naming each trial whose run is not on disk: its actor raised or died, or was stopped."""
        futures = list(self._trial_logging_futures.values())
        done, remaining = ray.wait(futures, num_returns=len(futures), timeout=timeout)
        for future in done:
            try:
                ray.get(future)
            except ray.exceptions.RayError as exc:  # RunNotWritten inside, or the actor's death
                trial_id = self._logging_future_to_trial[future].trial_id
                logger.warning("W&B: the run of trial %s was not written whole: %s", trial_id, exc, exc_info=exc)
        if kill_on_timeout and remaining:
            ids = ", ".join(self._logging_future_to_trial[f].trial_id for f in remaining)
            logger.warning("W&B: the logging actors of trials %s were still writing %s s after the last one "
                           "finished: stopped, their runs may be incomplete", ids, self._upload_timeout)
        super()._cleanup_logging_actors(timeout=0, kill_on_timeout=kill_on_timeout)
