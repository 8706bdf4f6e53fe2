"""W&B through Ray Tune, read back from the offline runs: Ray's callback, and ours (one step per
epoch, every report once and in order, the epochs a killed logging actor never wrote logged on resume)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tune_app.ext.wandb_offline import find_offline_runs, metric_history

wandb = pytest.importorskip("wandb")


@pytest.fixture(autouse=True)
def offline_wandb(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Keep W&B offline, quiet and away from the user's settings and credentials."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb_config"))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_DIR", raising=False)
    yield
    wandb.teardown()  # stop the wandb-core service this process started


def test_ray_tune_wandb_logger_callback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two real Tune trials logged through WandbLoggerCallback read back one run per trial."""
    ray = pytest.importorskip("ray")
    from ray import tune
    from ray.air.integrations.wandb import WandbLoggerCallback

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    wandb_root = tmp_path / "wandb_root"
    lrs = [0.01, 0.02]

    def expected_sisdr(lr: float, i: int) -> float:
        return 10.0 * lr + 0.5 * i

    # Nested so cloudpickle ships it by value: workers cannot import this test module.
    def trainable(config: dict) -> None:
        for i in range(3):
            tune.report({"val_sisdr": 10.0 * config["lr"] + 0.5 * i, "epoch": i})

    # WANDB_MODE must be in the environment before ray.init: the callback's setup()
    # only skips the API-key check for the env var, and the logging actors inherit it.
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        tuner = tune.Tuner(
            trainable,
            param_space={"lr": tune.grid_search(lrs), "model": {"depth": 2}},
            run_config=tune.RunConfig(
                name="wandb_offline_test",
                storage_path=str(tmp_path / "ray_results"),
                callbacks=[WandbLoggerCallback(project="t", mode="offline", dir=str(wandb_root))],
                verbose=0,
            ),
        )
        results = tuner.fit()
    finally:
        ray.shutdown()

    assert not results.errors
    trial_lr = {r.metrics["trial_id"]: r.config["lr"] for r in results}
    runs = find_offline_runs(wandb_root)
    assert sorted(r.run_id for r in runs) == sorted(trial_lr)
    for run in runs:
        lr = trial_lr[run.run_id]
        assert (run.project, run.group, run.exit_code, run.truncated) == ("t", "wandb_offline_test", 0, False)
        assert run.config["lr"] == lr
        assert run.config["model"] == {"depth": 2}  # the trial config stays nested
        assert run.config["trial_id"] == run.run_id
        # Ray logs with step=training_iteration, which starts at 1.
        assert metric_history(run, "val_sisdr") == [(i + 1, expected_sisdr(lr, i)) for i in range(3)]
        assert [row["epoch"] for row in run.history] == [0, 1, 2]


def _epoch_logged_search(tmp_path: Path, name: str, epochs: int, bases: list[float]):
    """A real Tune search logged by our callback (offline into ``tmp_path/wandb_root``): each trial
    reports ``val_sisdr = base + epoch`` for epochs 1..``epochs``. Ray must be up."""
    from ray import tune

    from tune_app.ext.wandb_logging import EpochWandbLoggerCallback

    # Nested so cloudpickle ships it by value: workers cannot import this test module.
    def trainable(config: dict) -> None:
        for epoch in range(1, epochs + 1):
            tune.report({"val_sisdr": config["base"] + epoch, "epoch": epoch})

    tuner = tune.Tuner(
        trainable,
        param_space={"base": tune.grid_search(bases)},
        run_config=tune.RunConfig(
            name=name,
            storage_path=str(tmp_path / "ray_results"),
            callbacks=[EpochWandbLoggerCallback(project="t", mode="offline", dir=str(tmp_path / "wandb_root"))],
            verbose=0,
        ),
    )
    return tuner, trainable


def _assert_every_epoch_logged_once(wandb_root: Path, base: dict[str, float], epochs: int) -> None:
    runs = find_offline_runs(wandb_root)
    assert sorted({r.run_id for r in runs}) == sorted(base)
    for run in runs:
        assert metric_history(run, "val_sisdr") == [(e, base[run.run_id] + e) for e in range(1, epochs + 1)], run.run_id


def test_epoch_callback_logs_every_report_once_and_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Our callback's puts leave the Tune loop (one thread, queue inside the logging actor): 60 quick
    reports per trial must still reach W&B complete and in order, with the epoch as the step."""
    ray = pytest.importorskip("ray")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        results = _epoch_logged_search(tmp_path, "ordered", 60, [0.0, 1000.0])[0].fit()
    finally:
        ray.shutdown()

    assert not results.errors
    base = {r.metrics["trial_id"]: r.config["base"] for r in results}
    runs = find_offline_runs(tmp_path / "wandb_root")
    assert len(runs) == len(base)  # one run per trial
    assert all((run.exit_code, run.truncated) == (0, False) for run in runs)
    _assert_every_epoch_logged_once(tmp_path / "wandb_root", base, 60)


def test_resume_logs_epochs_a_killed_logging_actor_never_wrote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A trial that finished before a kill is not started again on resume: epochs recorded in its
    result.json but missing from W&B (the logging actor died first) must be logged on resume."""
    ray = pytest.importorskip("ray")
    from ray import tune

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    wandb_root = tmp_path / "wandb_root"

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        tuner, trainable = _epoch_logged_search(tmp_path, "finished", 3, [0.0, 100.0])
        results = tuner.fit()
        base = {r.metrics["trial_id"]: r.config["base"] for r in results}
        lost = sorted(base)[0]
        for run in find_offline_runs(wandb_root):
            if run.run_id == lost:
                shutil.rmtree(run.path)  # as if the logging actor was killed before writing
        assert lost not in {r.run_id for r in find_offline_runs(wandb_root)}

        tune.Tuner.restore(str(tmp_path / "ray_results" / "finished"), trainable=trainable).fit()
    finally:
        ray.shutdown()

    _assert_every_epoch_logged_once(wandb_root, base, 3)


def test_logging_actors_end_with_their_trials_not_with_the_search(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Many short trials: each trial's logging actor (a process of ~250 MB) must be gone soon after its
    trial ends, not kept until the whole search ends."""
    ray = pytest.importorskip("ray")
    from ray import tune

    from tune_app.ext.wandb_logging import EpochWandbLoggerCallback

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    alive: list[int] = []

    class Counting(EpochWandbLoggerCallback):
        def log_trial_start(self, trial):
            alive.append(len(self._trial_logging_actors))  # actors alive as a new trial starts
            super().log_trial_start(trial)

    def trainable(config: dict) -> None:
        tune.report({"val_sisdr": config["base"], "epoch": 1})

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        results = tune.Tuner(
            trainable,
            param_space={"base": tune.grid_search([float(i) for i in range(12)])},
            tune_config=tune.TuneConfig(max_concurrent_trials=2),
            run_config=tune.RunConfig(name="many", storage_path=str(tmp_path / "ray_results"), verbose=0,
                                      callbacks=[Counting(project="t", mode="offline", dir=str(tmp_path / "w"))]),
        ).fit()
    finally:
        ray.shutdown()
    assert not results.errors and len(alive) == 12
    # Two trials run at once; a finished trial's actor may still be writing for a step or two.
    assert max(alive) <= 5, alive
    assert len(find_offline_runs(tmp_path / "w")) == 12
