"""What a person watching a search reads: one line per trial event and a status line every ~30 s.

Ray's own console output (a status table every few seconds, ~750 lines for the demo search, each
with a ``Result logdir:`` pointing into Ray's session folder, a token-auth warning on every run, its
``Tuner.restore(...)`` hint, a traceback per failed trial, its warnings about files it could not
read and the signal it caught, and the raylet's note of a dead worker) stays behind ``--verbose``:
what a user must know of it comes as one of these lines, in our words. The event lines come from a
Tune ``Callback`` (public API); the quieting is a ``logging.Filter`` on the handler Ray installs on
its ``ray`` logger (warnings and below dropped, and the errors these lines say), and a skip pattern
for the raylet's lines (tune_app.ext.ray_console).
"""

from __future__ import annotations

import logging
import math
import re
import time
from typing import Any

from ray.tune import Callback

from polsess.config import flatten

from ..names import (
    BUDGET_CUT,
    COMPLETED,
    CURVE_METRIC,
    EPOCH,
    ERROR,
    NOT_STARTED,
    PAUSED,
    PENDING,
    RAY_TERMINATED,
    RUNNING,
    TUNE_DONE,
    VALIDATION_KEY,
    ended_status,
    status_label,
)
from .budget import epochs_trained

STATUS_EVERY_S = 30.0
# Ray's errors that mislead or repeat what these lines say; dropped unless --verbose (its warnings all are).
_DROPPED = (
    "Tuner.restore(",  # our summary prints the polsess-tune resume command
    "Trials did not complete",  # the summary lists errored trials with their reasons
    "Trial task failed for trial",  # a traceback per errored trial; the reason is on its event line
    "Token authentication is enabled for this Ray cluster",
    "Total run time",
)


# The raylet's console lines that on_trial_recover / on_trial_error say in our words.
_RAYLET_SKIPPED = r"A worker died or was killed while executing|Task was killed due to the node running low on memory"


class _DropNoise(logging.Filter):
    """Ray's records below ERROR (``Failed to fetch metrics …``, ``Stop signal received …``: Ray's
    internals, nothing to act on) and its errors in ``_DROPPED``. The one warning a user must act on,
    a full disk, is tune.disk's: its own handler sees every record and ends the search with one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        from .disk import record_says_full  # its errors too (tracebacks): tune.disk's one line says it

        return record.levelno >= logging.ERROR and not any(part in record.getMessage() for part in _DROPPED) \
            and not record_says_full(record)


def quiet_ray_console() -> None:
    """Keep Ray's own logging off the console (see ``_DropNoise``, ``_RAYLET_SKIPPED``); idempotent.
    Called before ``ray.init``, after ``import ray`` has installed the handler."""
    from ..ext.ray_console import skip_raylet_lines

    for handler in logging.getLogger("ray").handlers:
        if not any(isinstance(f, _DropNoise) for f in handler.filters):
            handler.addFilter(_DropNoise())
    skip_raylet_lines(_RAYLET_SKIPPED)


def _short(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def _value(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _last_epoch(trial: Any) -> int | None:
    epoch = (trial.last_result or {}).get(EPOCH)
    return int(epoch) if isinstance(epoch, (int, float)) else None


def _last_failure(trial: Any) -> str:
    """The newest failure in the trial's error.txt (Tune appends one ``Failure # n`` block per failure)."""
    try:
        with open(trial.error_file) as fh:
            text = fh.read()
    except (OSError, TypeError):  # TypeError: no error file (None)
        return ""
    return text.rsplit("Failure # ", 1)[-1]


def worker_death(failure: str) -> str | None:
    """Why a trial's worker process died, in a few words, from Ray's text of the failure; None when
    the failure is an exception the training raised (its worker lived)."""
    if "low on memory" in failure or "OutOfMemoryError" in failure:
        return "Ray killed it: the machine ran low on memory"
    if "NodeDiedError" in failure or "node died" in failure.lower():
        return "the node it ran on died"
    if "worker process has died" not in failure and "actor died unexpectedly" not in failure:
        return None
    pid = re.search(r"\bpid: (\d+)", failure)
    return (f"pid {pid.group(1)}: " if pid else "") + "killed, crashed, or out of memory"


class TrialEvents(Callback):
    """``trial 4f55271a started: lr=0.00206 …``, ``… epoch 3: val SI-SDR 2.41 dB``, ``… stopped by ASHA
    at epoch 2``, ``… finished``, ``… errored: <reason>``, ``…: its worker process died (…); retrying …``,
    ``… cut at epoch 3: the budget is spent``, and every ~30 s a status line with the best score so far,
    the time spent and an upper bound of the time left (from the epochs left)."""

    def __init__(self, num_samples: int, max_epochs: int, metric: str, mode: str, searched: list[str],
                 scheduler: str = "asha", every_s: float = STATUS_EVERY_S, budget: int | None = None) -> None:
        self.stopper = {"asha": "ASHA", "median": "the median stopping rule"}.get(scheduler, "the scheduler")
        self.num_samples = num_samples
        self.budget = budget  # trial-epochs (tune.budget), or None: the search ends with its trials
        self.max_epochs = max_epochs
        self.metric, self.mode = metric, mode
        self.searched = searched
        self.every_s = every_s
        self._start = time.monotonic()
        self._last_status = self._start
        self._epochs_done = 0
        self._best: tuple[float, str] | None = None
        self._started: set[str] = set()  # trials this driver started: a second start is Tune's retry
        self._ended: set[str] = set()  # trials this driver saw complete or error

    def __getstate__(self) -> dict[str, Any]:  # the clock restarts with a restored search
        return {**self.__dict__, "_epochs_done": 0, "_best": None, "_started": set(), "_ended": set()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._start = self._last_status = time.monotonic()
        self._started, self._ended = set(), set()  # also for a callback pickled before it kept them

    def _say(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        if trial.trial_id in self._started:
            epoch = _last_epoch(trial)
            self._say(f"trial {trial.trial_id} restarted " +
                      (f"from its checkpoint of epoch {epoch}" if epoch else "from the start"))
            return
        self._started.add(trial.trial_id)
        flat = flatten(trial.config)
        params = ", ".join(f"{_short(p)}={_value(flat[p])}" for p in self.searched if p in flat)
        origin = trial.config.get(VALIDATION_KEY)
        if isinstance(origin, dict):  # a validation run
            params = f"trial {origin.get('source_trial')}'s config, seed {origin.get('seed')}"
        self._say(f"trial {trial.trial_id} started: {params}")

    def on_trial_result(self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any],
                        **info: Any) -> None:
        self._epochs_done += 1
        value = result.get(CURVE_METRIC)
        score = result.get(self.metric)
        if isinstance(score, (int, float)) and math.isfinite(score):
            sign = 1 if self.mode == "max" else -1
            if self._best is None or sign * score > sign * self._best[0]:
                self._best = (float(score), trial.trial_id)
        shown = f"val SI-SDR {value:.2f} dB" if isinstance(value, (int, float)) else ""
        self._say(f"trial {trial.trial_id} epoch {result.get(EPOCH)}: {shown}")

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        """Tune calls it for a trial that ended itself or that its scheduler stopped; trials a spent
        budget cuts end without it (``_say_cut``)."""
        if trial.trial_id not in self._ended:
            self._say_ended(trial, ended_status(trial.last_result, budget=self.budget is not None))

    def _say_cut(self, trials: list[Any]) -> None:
        """The trials this driver started that the search's own end cut in this step (a spent budget:
        ``Stopper.stop_all`` sets them TERMINATED without ``on_trial_complete``, even one its scheduler
        had just stopped), named as ``results`` names them. At the experiment's end, after Ctrl-C, Tune
        sets its running trials TERMINATED too; ``on_step_end`` runs before that."""
        for trial in trials:
            if trial.status == RAY_TERMINATED and trial.trial_id in self._started and trial.trial_id not in self._ended:
                self._say_ended(trial, ended_status(trial.last_result, budget=self.budget is not None))

    def _say_ended(self, trial: Any, status: str) -> None:
        self._ended.add(trial.trial_id)
        epoch = _last_epoch(trial)
        if status == COMPLETED:
            self._say(f"trial {trial.trial_id} finished after {epoch} epochs")
        elif status == BUDGET_CUT:
            self._say(f"trial {trial.trial_id} cut at epoch {epoch}: the budget is spent ({status_label(status)})")
        elif status == NOT_STARTED:
            why = ": the budget is spent" if self.budget is not None else ", with the search"
            self._say(f"trial {trial.trial_id} ended before its first epoch{why} ({status_label(status)})")
        elif not (trial.last_result or {}).get(TUNE_DONE, True):  # the search stopped (its trials all failed alike)
            self._say(f"trial {trial.trial_id} stopped at epoch {epoch}, with the search")
        else:
            self._say(f"trial {trial.trial_id} stopped by {self.stopper} at epoch {epoch} (it ranked low there)")

    def on_trial_recover(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        """A trial failed and Tune retries it (``--max-failures``). A dead worker process is said here,
        in place of the raylet's line; other errors a retry re-raises (tune.trainable) end on the
        ``errored`` line."""
        died = worker_death(_last_failure(trial))
        if died is None:
            return
        epoch = _last_epoch(trial)
        attempts = f"attempt {trial.num_failures} of {trial.max_failures}" if trial.max_failures >= 0 else \
            f"attempt {trial.num_failures}, without limit"
        self._say(f"trial {trial.trial_id}: its worker process died ({died}); retrying "
                  + (f"from its checkpoint of epoch {epoch}" if epoch else "from the start") + f" ({attempts})")

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._ended.add(trial.trial_id)
        from ..experiment.results import reason_line

        try:
            with open(trial.error_file) as fh:
                reason = reason_line(fh.read())
        except (OSError, TypeError):
            reason = None
        self._say(f"trial {trial.trial_id} errored: {reason or 'see its error.txt'}")

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        self._say_cut(trials)
        now = time.monotonic()
        if now - self._last_status < self.every_s:
            return
        self._last_status = now
        counts: dict[str, int] = {}
        for t in trials:
            counts[t.status] = counts.get(t.status, 0) + 1
        running, pending = counts.get(RUNNING, 0), counts.get(PENDING, 0)
        ended = counts.get(RAY_TERMINATED, 0) + counts.get(ERROR, 0)
        elapsed = now - self._start
        if self.budget is None:
            not_created = max(0, self.num_samples - len(trials))
            left = sum(max(0, self.max_epochs - int((t.last_result or {}).get(EPOCH, 0) or 0))
                       for t in trials if t.status in (RUNNING, PENDING, PAUSED)) + not_created * self.max_epochs
        else:  # trials keep coming until the budget is spent
            not_created, left = 0, max(0, self.budget - epochs_trained(trials))
        eta = f", at most {left * elapsed / self._epochs_done / 60:.1f} min left" if self._epochs_done else ""
        best = f"; best {self._best[0]:.2f} ({self._best[1]})" if self._best else ""
        self._say(f"status: {running} running, {pending + not_created} pending, {ended} ended{best}; "
                  f"{elapsed / 60:.1f} min{eta}")

