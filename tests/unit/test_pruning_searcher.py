"""PruningOptunaSearch: a trial the scheduler stopped reaches Optuna as PRUNED with its epochs; a
trial that trained to the end as COMPLETE with its best score over epochs. Real OptunaSearch, no Ray start."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from tune_app.ext.optuna_search import PruningOptunaSearch


@pytest.fixture
def searcher() -> PruningOptunaSearch:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return PruningOptunaSearch(space={"x": optuna.distributions.FloatDistribution(0.0, 1.0)}, metric="val_sisdr",
                               mode="max", sampler=optuna.samplers.RandomSampler(seed=0))


def _run(searcher: PruningOptunaSearch, trial_id: str, scores: list[float], done: bool) -> None:
    assert searcher.suggest(trial_id) is not None
    for epoch, score in enumerate(scores[:-1], start=1):
        searcher.on_trial_result(trial_id, {"val_sisdr": score, "training_iteration": epoch, "done_training": False})
    final = {"val_sisdr": scores[-1], "training_iteration": len(scores), "done_training": done}
    searcher.on_trial_complete(trial_id, result=final)  # Tune skips on_trial_result for the last report


def _trials(searcher: PruningOptunaSearch) -> list[optuna.trial.FrozenTrial]:
    return searcher._ot_study.get_trials(deepcopy=False)


def test_stopped_trial_is_pruned_with_every_epoch(searcher):
    _run(searcher, "stopped", [1.0, 1.5], done=False)
    (trial,) = _trials(searcher)
    assert trial.state == TrialState.PRUNED
    assert trial.intermediate_values == {1: 1.0, 2: 1.5}  # the last report is recorded as a step too


def test_finished_trial_is_complete_with_its_best_score(searcher):
    """The search keeps and ranks a trial by its best epoch, so the sampler is told that one, not the last."""
    _run(searcher, "finished", [1.0, 2.5, 2.0], done=True)
    (trial,) = _trials(searcher)
    assert trial.state == TrialState.COMPLETE and trial.value == 2.5
    assert trial.intermediate_values == {1: 1.0, 2: 2.5, 3: 2.0}


def test_errored_trial_fails_and_a_second_complete_is_ignored(searcher):
    assert searcher.suggest("crashed") is not None
    searcher.on_trial_complete("crashed", result=None, error=True)
    searcher.on_trial_complete("crashed", result={"val_sisdr": 3.0, "done_training": False})
    (trial,) = _trials(searcher)
    assert trial.state == TrialState.FAIL


def test_a_trial_the_study_never_asked_for_is_adopted_by_its_config(searcher):
    """`resume --restart-errored` gives a restarted trial a new id: its first result used to be a KeyError."""
    config = {"x": 0.25, "other": {"nested": 1}}
    searcher.on_trial_result("restarted", {"val_sisdr": 1.0, "training_iteration": 1, "config": config})
    searcher.on_trial_complete("restarted", result={"val_sisdr": 2.0, "training_iteration": 2, "done_training": True,
                                                    "config": config})
    (trial,) = _trials(searcher)
    assert trial.params == {"x": 0.25} and trial.state == TrialState.COMPLETE and trial.value == 2.0
    assert trial.intermediate_values == {1: 1.0, 2: 2.0}


def test_an_unknown_trial_without_a_config_is_skipped_not_a_crash(searcher):
    searcher.on_trial_complete("stranger", result={"val_sisdr": 2.0})
    assert _trials(searcher) == []
