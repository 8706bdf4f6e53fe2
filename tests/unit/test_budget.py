"""A budget of trial-epochs: how a plan sizes it (no Ray start) and how the stopper counts."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from tune_app.builtin import default_config, default_space
from tune_app.cli.parser import build_parser
from tune_app.commands.options import run_request
from tune_app.errors import TuneInputError
from tune_app.space import load_search
from tune_app.space.prior import PriorSampler
from tune_app.space.spec import SchedulerSpec
from tune_app.tune.budget import BudgetStopper
from tune_app.tune.driver import build_searcher
from tune_app.tune.plan import prepare_run

REPO = Path(__file__).resolve().parents[2]


def _plan(tmp_path: Path, *flags: str, space: Path | None = None):
    args = build_parser().parse_args(["run", "--storage", str(tmp_path), "--wandb", "disabled", *flags])
    return prepare_run(run_request(args), space or default_space(), default_config())


@pytest.mark.parametrize(("sched", "mean"), [
    (SchedulerSpec("asha", 1, 2.0, 8), 1 + 1 / 2 + 2 / 4 + 4 / 8),  # rungs 1, 2, 4, 8
    (SchedulerSpec("asha", 2, 3.0, 8), 2 + 4 / 3 + 2 / 9),  # rungs 2, 6, 8
    (SchedulerSpec("asha", 8, 2.0, 8), 8.0),  # grace = max_t: nothing is stopped
    (SchedulerSpec("fifo", None, None, 8), 8.0),
])
def test_mean_epochs_per_trial_follows_the_rungs(sched, mean):
    assert sched.epochs_per_trial() == pytest.approx(mean)


def test_a_budget_on_the_command_line_replaces_run_cap_and_sizes_the_start_up_phase(tmp_path):
    plan = _plan(tmp_path, "--budget-epochs", "80")  # demo: run_cap 8, ASHA grace 2, eta 2, 8 epochs
    assert (plan.budget_epochs, plan.num_samples) == (80, 80)  # a trial trains >= 1 epoch: 80 never binds first
    assert plan.trials_expected == 20  # 80 / 4 epochs per trial (rungs 2, 4, 8: 2 + 2/2 + 4/4)
    assert any("replaces the sweep file's 8 trials" in n for n in plan.notes)
    sampler = build_searcher(plan)._sampler  # the prior (on by default) wraps TPE
    assert isinstance(sampler, PriorSampler)
    assert sampler.inner._n_startup_trials == sampler.startup == 5  # a quarter of the trials expected


def test_num_samples_caps_a_budget_and_a_file_budget_keeps_its_run_cap(tmp_path):
    plan = _plan(tmp_path, "--budget-epochs", "40", "--num-samples", "10")
    assert (plan.num_samples, plan.trials_expected) == (10, 10)
    sweep = tmp_path / "b.yaml"
    text = (REPO / "search_spaces/demo.yaml").read_text().replace("  seed: 0\n", "  seed: 0\n  budget_epochs: 30\n")
    sweep.write_text(text.replace("value: configs/demo.yaml", f"value: {REPO / 'configs/demo.yaml'}"))
    assert load_search(sweep).budget_epochs == 30
    plan = _plan(tmp_path, space=sweep)
    assert (plan.budget_epochs, plan.num_samples) == (30, 8)  # both from the file: run_cap 8 still caps
    sweep.write_text(sweep.read_text().replace("run_cap: 8\n", ""))
    assert _plan(tmp_path, space=sweep).num_samples == 30


def test_bad_budgets_are_refused_with_the_key(tmp_path):
    with pytest.raises(TuneInputError, match="--budget-epochs 0: must be at least 1"):
        _plan(tmp_path, "--budget-epochs", "0")
    with pytest.raises(TuneInputError, match="sizes each stage with its num_samples"):
        _plan(tmp_path, "--budget-epochs", "40", space=REPO / "search_spaces/demo_staged.yaml")
    sweep = tmp_path / "b.yaml"
    text = (REPO / "search_spaces/demo.yaml").read_text().replace("  seed: 0\n", "  seed: 0\n  budget_epochs: -3\n")
    sweep.write_text(text.replace("value: configs/demo.yaml", f"value: {REPO / 'configs/demo.yaml'}"))
    with pytest.raises(TuneInputError, match=r"tune\.budget_epochs"):
        load_search(sweep)


def test_the_stopper_counts_each_epoch_once_and_ends_the_search_at_the_budget(tmp_path):
    stop = BudgetStopper(4, str(tmp_path))
    for trial_id, epoch in [("a", 1), ("b", 1), ("a", 1), ("a", 2)]:  # ("a", 1) replayed after a restore
        assert stop(trial_id, {"epoch": epoch}) is False  # no single trial is stopped by the budget
        assert stop.stop_all() is False
    stop("b", {"epoch": 2})
    assert stop.spent == 4 and stop.stop_all() is True


def test_a_restored_stopper_counts_the_epochs_recorded_before_it_from_the_trials_files(tmp_path):
    """Tune restores the stopper as a pickled copy of the first driver's; it starts from the folder."""
    for trial_id, epochs in [("aaaa0001", 3), ("bbbb0002", 1), ("cccc0003", 0)]:
        (tmp_path / f"trial_{trial_id}").mkdir()
        (tmp_path / f"trial_{trial_id}" / "result.json").write_text(
            "".join(json.dumps({"epoch": e, "val_sisdr": -3.0}) + "\n" for e in range(1, epochs + 1)))
    first = BudgetStopper(6, str(tmp_path))
    first("aaaa0001", {"epoch": 3})
    restored = pickle.loads(pickle.dumps(first))
    assert restored.spent == 0
    restored("aaaa0001", {"epoch": 3})  # replayed: already in result.json
    assert restored.spent == 4 and not restored.stop_all()
    restored("bbbb0002", {"epoch": 2})
    restored("dddd0004", {"epoch": 1})
    assert restored.spent == 6 and restored.stop_all()


def test_a_training_set_aside_by_a_restart_counts_against_the_budget(tmp_path):
    """A trial resume restarted (no readable checkpoint) spent its first training all the same: the
    stopper and the experiment's trial-epochs count its set-aside epochs beside the new ones."""
    trial = tmp_path / "trial_aaaa0001"
    (trial / "before-restart").mkdir(parents=True)
    (trial / "before-restart" / "result.json").write_text(
        "".join(json.dumps({"epoch": e, "val_sisdr": -3.0}) + "\n" for e in (1, 2, 3)))
    (trial / "result.json").write_text(json.dumps({"epoch": 1, "val_sisdr": -2.0}) + "\n")
    stop = BudgetStopper(5, str(tmp_path))
    stop("aaaa0001", {"epoch": 1})  # the new training's epoch 1 is not the set-aside one's
    assert stop.spent == 4 and not stop.stop_all()
    stop("aaaa0001", {"epoch": 2})
    assert stop.spent == 5 and stop.stop_all()
    (tmp_path / "experiment_state-2026-12-01_10-00-00.json").write_text(json.dumps({"trial_data": [
        [json.dumps({"trial_id": "aaaa0001", "status": "RUNNING", "config": {}}), json.dumps({})]]}))
    from tune_app.experiment.results import load_experiment

    assert load_experiment(tmp_path).trial_epochs == 4


def test_a_budget_search_is_finished_once_spent(tmp_path):
    from tune_app.experiment.results import Experiment, TrialRecord

    trials = [TrialRecord("a", "COMPLETED", {}, [{"epoch": 1}, {"epoch": 2}]),
              TrialRecord("b", "EARLY_STOPPED", {}, [{"epoch": 1}])]
    exp = Experiment(tmp_path, "val_sisdr", "max", [], trials, json.loads('{"budget_epochs": 3}'))
    assert exp.trial_epochs == 3 and exp.budget_spent and exp.is_finished(num_samples=3)
    exp.search["budget_epochs"] = 4
    assert not exp.is_finished(num_samples=3)
