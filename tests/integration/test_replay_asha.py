"""The replay benchmark's ASHA decides as the live scheduler did, on a real recorded search.

``finished_search`` is a real ``polsess-tune run`` (ASHA, grace 1, reduction factor 2). Its trials'
reports, fed in the order the live scheduler saw them to the arm the replay benchmark simulates
with (benchmarks/replay_arms.TuneArm), must stop exactly the trials the live search stopped, at
the same epochs, and let the others train to the end.
"""

from __future__ import annotations

import sys

import pytest
from helpers import REPO, SEARCH_EPOCHS

sys.path.insert(0, str(REPO / "benchmarks"))

from replay_arms import TuneArm

from tune_app.experiment.results import load_experiment
from tune_app.names import COMPLETED, EARLY_STOPPED, EPOCH
from tune_app.space import load_search


def test_replayed_asha_stops_what_the_live_asha_stopped(finished_experiment):
    exp = load_experiment(finished_experiment)
    spec = load_search(REPO / "search_spaces" / "demo.yaml")
    spec.scheduler.grace_period, spec.scheduler.reduction_factor, spec.scheduler.max_t = 1, 2.0, SEARCH_EPOCHS
    arm = TuneArm(spec, seed=0, trials_expected=len(exp.trials))
    # The order the live scheduler saw the reports in: by timestamp, then epoch (as ResumableASHA's replay).
    events = sorted((row.get("timestamp", 0), row[EPOCH], t.trial_id, row[exp.metric])
                    for t in exp.trials for row in t.history if exp.metric in row)
    stubs, stopped_at = {}, {}
    for _, epoch, trial_id, value in events:
        if trial_id not in stubs:
            stubs[trial_id] = arm.watch(trial_id)
        if trial_id not in stopped_at and arm.judge(stubs[trial_id], epoch, value) and epoch < SEARCH_EPOCHS:
            stopped_at[trial_id] = epoch
    live = {t.trial_id: (t.status, t.epochs) for t in exp.trials}
    assert any(status == EARLY_STOPPED for status, _ in live.values())  # the case is not trivial
    # Tune stamps a report to the second: two trials' reports at one rung in the same second may have
    # reached the live ASHA in either order, so a trial with such a report is not compared.
    stamps = {}
    for stamp, epoch, trial_id, _ in events:
        stamps.setdefault((stamp, epoch), set()).add(trial_id)
    tied = {t for ids in stamps.values() if len(ids) > 1 for t in ids}
    compared = [t for t in live if t not in tied]
    if not any(live[t][0] == EARLY_STOPPED for t in compared):
        pytest.skip(f"every early-stopped trial shares a one-second stamp at a rung with another: {sorted(tied)}")
    for trial_id, (status, epochs) in ((t, live[t]) for t in compared):
        if status == EARLY_STOPPED:
            assert stopped_at.get(trial_id) == epochs, (trial_id, live, stopped_at)
        elif status == COMPLETED:
            assert trial_id not in stopped_at and epochs == SEARCH_EPOCHS, (trial_id, live, stopped_at)
