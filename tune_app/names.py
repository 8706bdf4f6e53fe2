"""The names every part of tune_app agrees on: trial statuses and what a trial reports.

One home for each, so a status or metric is spelled once: the trainable reports these keys, the
search space accepts them as ``metric.name``, the results read them back and W&B logs them.
"""

from __future__ import annotations

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
ERROR = "ERROR"
RUNNING = "RUNNING"
PENDING = "PENDING"
PAUSED = "PAUSED"
UNKNOWN = "UNKNOWN"  # reported results, but no status in the experiment state
FINISHED = (COMPLETED, EARLY_STOPPED)  # ended for good with a score that means what it says
UNFINISHED = (PENDING, RUNNING, PAUSED, UNKNOWN)  # a resume would continue them
# Ray's own status of a trial that ended (COMPLETED or EARLY_STOPPED above, by its last report).
RAY_TERMINATED = "TERMINATED"


def status_label(status: str) -> str:
    """``EARLY_STOPPED`` → ``early-stopped``: how summaries and plots write a status."""
    return status.lower().replace("_", "-")
