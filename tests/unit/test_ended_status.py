"""names.ended_status: how a trial Tune ended is named, from its last report (one rule for results,
W&B's end state, the study and the console)."""

from __future__ import annotations

import pytest

from tune_app.names import BUDGET_CUT, COMPLETED, EARLY_STOPPED, NOT_STARTED, ended_status


@pytest.mark.parametrize(("last", "budget", "want"), [
    (None, True, NOT_STARTED),  # cut before its first report
    ({}, False, NOT_STARTED),
    ({"done": True, "done_training": False}, True, NOT_STARTED),  # a report without an epoch scores nothing
    ({"epoch": 6, "done": True, "done_training": True}, True, COMPLETED),
    ({"epoch": 2, "done": True, "done_training": False}, True, EARLY_STOPPED),  # ASHA's stop, budget or not
    ({"epoch": 2, "done": True, "done_training": False}, False, EARLY_STOPPED),
    ({"epoch": 3, "done": False, "done_training": False}, True, BUDGET_CUT),  # ended after it: the budget
    ({"epoch": 3, "done": False, "done_training": False}, False, EARLY_STOPPED),  # fail-fast: no budget to blame
    ({"epoch": 3}, True, COMPLETED),  # reports from before done_training: as results always read them
])
def test_ended_status(last, budget, want):
    assert ended_status(last, budget) == want
