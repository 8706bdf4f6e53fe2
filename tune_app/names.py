"""The names every part of tune_app agrees on: trial statuses and what a trial reports.

One home for each, so a status or metric is spelled once: the trainable reports these keys, the
search space accepts them as ``metric.name``, the results read them back and W&B logs them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# ---- what the trainable reports once per epoch
METRICS = ("val_sisdr", "val_sisdri", "best_val_sisdr", "train_sisdr")  # quality: what ASHA can prune on
# What a trial's model costs (polsess.cost), measured once per trial and reported with every epoch;
# a multi-objective search may add them after a quality metric.
COST_METRICS = ("params_m", "gmacs_per_s", "rtf")
COST_UNITS = {"params_m": "M params", "gmacs_per_s": "GMAC/s of audio", "rtf": "real-time factor"}
DEFAULT_METRIC = "val_sisdr"
CURVE_METRIC = "val_sisdr"  # the per-epoch curve tables and plots show
EPOCH = "epoch"  # the scheduler's time attribute: the trainer's epoch
ITERATION = "training_iteration"  # Tune's report counter; the trainable reports it equal to the epoch
DONE_TRAINING = "done_training"  # True on the report that ends a trial on its own (not stopped early)
# Tune's own flag, True on the last report of a trial that Tune ended for that report (its scheduler or
# a stopper's per-trial decision, or the trial's own end); a trial cut by ``Stopper.stop_all`` (a spent
# budget) ends after a report without it.
TUNE_DONE = "done"
# Reported for Tune's and our own bookkeeping; W&B does not chart them.
NOT_LOGGED = ("done_training", "time_training_s", "node_id")
# A validation trial's config carries {"source_trial": id, "seed": n} under this key (tune.validate):
# W&B shows and tags it; the trainable leaves it out of the experiment config.
VALIDATION_KEY = "validation"
# Console progress table: report key → column title.
PROGRESS_COLUMNS = {"epoch": "epoch", "val_sisdr": "val SI-SDR", "best_val_sisdr": "best"}

# ---- trial statuses as results, warm start, importance and plots see them
COMPLETED = "COMPLETED"  # trained to its last epoch (or its early-stopping patience)
EARLY_STOPPED = "EARLY_STOPPED"  # stopped by the scheduler (ASHA / median rule)
BUDGET_CUT = "BUDGET_CUT"  # running when its search's budget of trial-epochs ran out (tune.budget); scored so far
NOT_STARTED = "NOT_STARTED"  # ended with its search before it reported an epoch: nothing to score
ERROR = "ERROR"
RUNNING = "RUNNING"
PENDING = "PENDING"
PAUSED = "PAUSED"
UNKNOWN = "UNKNOWN"  # reported results, but no status in the experiment state
# Ended for good (a resume leaves them); a score they have means what it says.
FINISHED = (COMPLETED, EARLY_STOPPED, BUDGET_CUT, NOT_STARTED)
UNFINISHED = (PENDING, RUNNING, PAUSED, UNKNOWN)  # a resume would continue them
# Ray's own status of a trial that ended (one of FINISHED above, by ``ended_status``).
RAY_TERMINATED = "TERMINATED"
# How a trial ended, for W&B (the run's summary key, its value also a tag) and the Optuna study (a
# user attribute of the trials a spent budget cut): ``status_label`` of a status above.
END_STATE_KEY = "end_state"


def ended_status(last: Mapping[str, Any] | None, budget: bool) -> str:
    """The status of a trial Tune ended (TERMINATED) after ``last``, its last report; ``budget``: its
    search had a budget of trial-epochs. One rule for results, W&B and the study.

    No epoch reported: NOT_STARTED. Trained to its end: COMPLETED. Ended by Tune for that report (the
    scheduler): EARLY_STOPPED. Ended after it, by the search's own end, in a budget search: BUDGET_CUT
    (the only other ``stop_all``, fail-fast, stops searches without a budget too: those stay early-stopped).
    """
    if not last or not isinstance(last.get(EPOCH), (int, float)):
        return NOT_STARTED
    if last.get(DONE_TRAINING, True):
        return COMPLETED
    if budget and not last.get(TUNE_DONE, True):
        return BUDGET_CUT
    return EARLY_STOPPED


def status_label(status: str) -> str:
    """``EARLY_STOPPED`` → ``early-stopped``: how summaries and plots write a status."""
    return status.lower().replace("_", "-")
