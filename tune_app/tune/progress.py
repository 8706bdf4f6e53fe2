"""What a person watching a search reads: one line per trial event and a status line every ~30 s.

Ray's own console output (a status table every few seconds, ~750 lines for the demo search, each
with a ``Result logdir:`` pointing into Ray's session folder, a token-auth warning on every run, its
``Tuner.restore(...)`` hint and a traceback per failed trial) stays behind ``--verbose``. The event
lines come from a Tune ``Callback`` (public API); the quieting is a ``logging.Filter`` on the
handler Ray installs on its ``ray`` logger.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from ray.tune import Callback

from polsess.config import flatten

from ..names import (
    CURVE_METRIC,
    DONE_TRAINING,
    EPOCH,
    ERROR,
    PAUSED,
    PENDING,
    RAY_TERMINATED,
    RUNNING,
    VALIDATION_KEY,
)
from .budget import epochs_trained

STATUS_EVERY_S = 30.0
# Ray console lines that mislead or repeat what these lines say; dropped unless --verbose.
_DROPPED = (
    "Tuner.restore(",  # our summary prints the polsess-tune resume command
    "Trials did not complete",  # the summary lists errored trials with their reasons
    "Trial task failed for trial",  # a traceback per errored trial; the reason is on its event line
    "Token authentication is enabled for this Ray cluster",
    "Total run time",
)


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(part in message for part in _DROPPED)


def quiet_ray_console() -> None:
    """Drop Ray's misleading console lines (see ``_DROPPED``); idempotent."""
    for handler in logging.getLogger("ray").handlers:
        if not any(isinstance(f, _DropNoise) for f in handler.filters):
            handler.addFilter(_DropNoise())


def _short(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def _value(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


class TrialEvents(Callback):
    """``trial 4f55271a started: lr=0.00206 …``, ``… epoch 3: val SI-SDR 2.41 dB``, ``… stopped by ASHA
    at epoch 2``, ``… finished``, ``… errored: <reason>``, and every ~30 s a status line with the best
    score so far, the time spent and an upper bound of the time left (from the epochs left)."""

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

    def __getstate__(self) -> dict[str, Any]:  # the clock restarts with a restored search
        return {**self.__dict__, "_epochs_done": 0, "_best": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._start = self._last_status = time.monotonic()

    def _say(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
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
        last = trial.last_result or {}
        epoch = last.get(EPOCH)
        if last.get(DONE_TRAINING, True):
            self._say(f"trial {trial.trial_id} finished after {epoch} epochs")
        elif self.budget is not None and epochs_trained(trials) >= self.budget:
            self._say(f"trial {trial.trial_id} stopped at epoch {epoch}: the budget is spent")
        else:
            self._say(f"trial {trial.trial_id} stopped by {self.stopper} at epoch {epoch} (it ranked low there)")

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        from ..experiment.results import reason_line

        try:
            with open(trial.error_file) as fh:
                reason = reason_line(fh.read())
        except (OSError, TypeError):
            reason = None
        self._say(f"trial {trial.trial_id} errored: {reason or 'see its error.txt'}")

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
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

