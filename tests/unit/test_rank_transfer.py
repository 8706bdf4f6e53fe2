"""The rank-transfer line of a staged search: Kendall's tau of the carried configs' two scores."""

from __future__ import annotations

from pathlib import Path

from tune_app.experiment.results import Experiment, TrialRecord
from tune_app.experiment.transfer import carried_scores, transfer_line


def _exp(scores: dict[float, float], extra: dict[float, float] | None = None) -> Experiment:
    trials = [TrialRecord(f"t{i}", "COMPLETED", {"training": {"lr": lr}}, [{"epoch": 1, "val_sisdr": s}])
              for i, (lr, s) in enumerate({**scores, **(extra or {})}.items())]
    return Experiment(Path("."), "val_sisdr", "max", ["training.lr"], trials, {})


def test_the_carried_configs_are_matched_by_their_searched_values():
    wide = _exp({0.001: 3.0, 0.002: 2.0, 0.003: 1.0, 0.004: 0.5})
    narrow = _exp({0.003: 5.0, 0.001: 4.0, 0.002: 6.0}, extra={0.0025: 9.0})  # 0.0025: a new proposal
    assert carried_scores(wide, narrow, ["training.lr"], 3) == [(3.0, 4.0), (2.0, 6.0), (1.0, 5.0)]


def test_the_verdict_follows_kendalls_tau():
    assert "tau +1.00 over its top 3 configs retrained; they keep their order" in transfer_line(
        "a", "b", [(3, 9), (2, 8), (1, 7)])
    line = transfer_line("a", "b", [(3, 7), (2, 8), (1, 9)])
    assert "tau -1.00" in line and "does not carry over" in line and "--budget-epochs" in line
    assert transfer_line("a", "b", [(3, 7), (2, 8)]) is None  # two configs rank only one way or the other
    assert transfer_line("a", "b", [(3, 7), (3, 7), (3, 7)]) is None  # all tied: no ranking to compare
