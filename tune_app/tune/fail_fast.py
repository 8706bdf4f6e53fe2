"""Stop a search whose trials all fail alike: the first few trials errored with the same exception
and none finished, so every other trial would too (a broken corpus, a config no model can train).

One object is both a Tune ``Callback`` (it sees trials end) and a ``Stopper`` (``stop_all`` ends the
experiment): public Ray Tune API. It writes ``stopped.json`` so the summary can say why the search
ended early instead of calling it interrupted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ray.tune import Callback
from ray.tune.stopper import Stopper

from ..experiment.layout import STOPPED_FILE
from ..experiment.location import push
from ..experiment.results import reason_line, split_reason


class SameErrorStopper(Callback, Stopper):
    def __init__(self, folder: str | None, num_samples: int, after: int = 3, uri: str | None = None) -> None:
        self.folder = folder  # where stopped.json is written (None: nowhere)
        self.uri = uri  # a URI experiment: stopped.json goes into the bucket too
        self.after = max(1, min(after, num_samples))
        self._errors: list[tuple[str, str]] = []
        self._finished = 0
        self._stop = False

    def __getstate__(self) -> dict[str, Any]:  # a restored search starts counting afresh
        return {**self.__dict__, "_errors": [], "_finished": 0, "_stop": False}

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._finished += 1

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        try:
            text = Path(trial.error_file).read_text() if trial.error_file else ""
        except OSError:
            text = ""
        self._errors.append(split_reason(reason_line(text) or "unknown"))
        kinds = {kind for kind, _ in self._errors}
        if self._finished == 0 and len(self._errors) >= self.after and len(kinds) == 1 and not self._stop:
            self._stop = True
            kind, message = self._errors[0]
            reason = (f"the first {len(self._errors)} trials all failed with {kind} and none finished, so the "
                      f"others would too: {message}")
            if self.folder:
                Path(self.folder, STOPPED_FILE).write_text(json.dumps({"reason": reason}))
                if getattr(self, "uri", None):
                    push(Path(self.folder), self.uri, [STOPPED_FILE])

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        return self._stop
