"""Seed validation read back: scores per config over seeds, the ranking by mean, the verdict."""

from __future__ import annotations

from pathlib import Path

import pytest

from tune_app.errors import TuneInputError
from tune_app.experiment import validation
from tune_app.experiment.results import Experiment, TrialRecord
from tune_app.tune.validate import parse_seeds, top_configs


def _run(tid: str, source: str, seed: int, score: float, status: str = "COMPLETED") -> TrialRecord:
    config = {"training": {"lr": 1e-3, "seed": seed}, "validation": {"source_trial": source, "seed": seed}}
    return TrialRecord(tid, status, config, [{"epoch": 1, "val_sisdr": score - 1}, {"epoch": 2, "val_sisdr": score}])


def _exp(runs: list[TrialRecord]) -> Experiment:
    return Experiment(Path("/x/v"), "val_sisdr", "max", [], runs, {"validation": {"source": "/x/s"}})


def test_configs_rank_by_their_mean_and_a_clear_lead_wins():
    exp = _exp([_run("a1", "A", 1, 3.40), _run("a2", "A", 2, 3.42), _run("a3", "A", 3, 3.41),
                _run("b1", "B", 1, 3.10), _run("b2", "B", 2, 3.12), _run("b3", "B", 3, 3.11),
                _run("b4", "B", 4, 9.99, status="ERROR")])
    ranked = validation.scores_by_config(exp)
    assert [c.source_trial for c in ranked] == ["A", "B"]
    assert ranked[0].mean == pytest.approx(3.41) and ranked[0].std == pytest.approx(0.01)
    assert ranked[1].scores == {1: 3.10, 2: 3.12, 3: 3.11}  # the errored run is left out
    assert ranked[0].config == {"training": {"lr": 1e-3, "seed": 1}}
    text = validation.verdict(ranked, "val_sisdr")
    assert text.startswith("trial A's config wins: its lead of 0.300 dB") and "p=0.000" in text
    table = validation.table(ranked, "val_sisdr")
    assert table.splitlines()[1].split()[:6] == ["1", "A", "3.410", "0.010", "3.400", "3.420"]


def test_a_lead_inside_the_seed_spread_is_called_a_tie():
    """The users' stage 2: 3.358 vs 3.337 dB, seed noise ~0.15 dB."""
    exp = _exp([_run("a1", "A", 1, 3.50), _run("a2", "A", 2, 3.22), _run("a3", "A", 3, 3.35),
                _run("b1", "B", 1, 3.20), _run("b2", "B", 2, 3.45), _run("b3", "B", 3, 3.36)])
    text = validation.verdict(validation.scores_by_config(exp), "val_sisdr")
    assert text.startswith("no clear winner: the lead of 0.020 dB") and "treat them as tied" in text


def test_one_seed_or_one_config_says_what_is_missing():
    one_seed = _exp([_run("a1", "A", 1, 3.5), _run("b1", "B", 1, 3.2)])
    assert "with one seed per config the seed spread is unknown" in validation.verdict(
        validation.scores_by_config(one_seed), "val_sisdr")
    assert "nothing to compare" in validation.verdict(validation.scores_by_config(_exp([_run("a", "A", 1, 3)])), "m")
    assert validation.verdict([], "val_sisdr") == "no validation run has finished yet"


def test_seeds_and_the_top_configs_of_a_search():
    assert parse_seeds("42,123, 456") == [42, 123, 456]
    for bad in ("", "1,1", "1,x", "-1", str(2**32)):
        with pytest.raises(TuneInputError, match="--seed"):
            parse_seeds(bad)
    trials = [TrialRecord(t, "COMPLETED", {"training": {"lr": lr, "seed": seed}}, [{"epoch": 1, "val_sisdr": s}])
              for t, lr, seed, s in (("a", 1e-3, 0, 3.0), ("b", 1e-3, 5, 2.9), ("c", 2e-3, 0, 2.5),
                                     ("d", 3e-3, 0, 2.0))]
    trials.append(TrialRecord("e", "RUNNING", {"training": {"lr": 4e-3, "seed": 0}}, [{"epoch": 1, "val_sisdr": 9.0}]))
    exp = Experiment(Path("/x/s"), "val_sisdr", "max", [], trials, {})
    # e has not finished; b is a's config with another seed
    assert [t for t, _ in top_configs(exp, 2)] == ["a", "c"]
    assert top_configs(exp, 2)[1][1] == {"training.lr": 2e-3, "training.seed": 0}
