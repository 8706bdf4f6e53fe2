"""A finished trial's W&B run holds every epoch it reported, however slowly wandb writes it (issue #24).

``wandb.finish()`` returns once wandb-core has handled the run's exit; wandb-core writes the offline
``.wandb`` file (buffered: 7 bytes, the bare header, until then) only when it closes the run, after
``finish`` has returned. Ray's callback kills a logging actor as soon as its ``run`` returns, and its
wandb-core with it: on a loaded machine the run was lost whole. Here wandb-core is paused right after
``finish`` returns, as a loaded machine does, and the runs are read back from disk.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from pathlib import Path

import pytest

from tune_app.experiment.layout import trial_dirname
from tune_app.experiment.results import load_experiment
from tune_app.ext.wandb_offline import find_offline_runs, incomplete_runs, incomplete_runs_line, metric_history

wandb = pytest.importorskip("wandb")
ray = pytest.importorskip("ray")

EPOCHS = 3


@pytest.fixture(autouse=True)
def _offline(offline_wandb, monkeypatch: pytest.MonkeyPatch):
    """W&B offline, quiet, away from the user's settings (conftest.offline_wandb); a local Ray."""
    monkeypatch.delenv("RAY_ADDRESS", raising=False)


@pytest.fixture
def paused(tmp_path: Path):
    """The file the logging actors note the wandb-core processes they pause in; those still alive
    after the test (their actor was killed before it woke them) are killed."""
    record = tmp_path / "paused.txt"
    yield record
    for line in record.read_text().split() if record.exists() else []:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(line), signal.SIGKILL)


def _slow_writer_callback(record: Path, pause_s: float, stuck_base: float | None = None, **kwargs):
    """Our callback, each logging actor's wandb-core paused for ``pause_s`` right after ``wandb.finish()``
    returns (the trial with ``base == stuck_base``: never woken). Defined here so that cloudpickle ships
    the actor class by value: Ray's workers cannot import this test module."""
    import threading

    from tune_app.ext.wandb_logging import EpochWandbLoggerCallback, InboxLoggingActor

    class SlowWriterActor(InboxLoggingActor):
        def run(self):
            finish = wandb.finish
            forever = self.kwargs["config"]["base"] == stuck_base

            def slow_finish(*args, **kw):
                pids = self.wandb_core_pids()  # found first: the pause must follow finish() at once
                if forever:  # paused before finish: it can never have written the run (the race is elsewhere)
                    for pid in pids:
                        os.kill(pid, signal.SIGSTOP)
                    return finish(*args, **kw)
                finish(*args, **kw)
                for pid in pids:
                    os.kill(pid, signal.SIGSTOP)
                threading.Timer(pause_s, lambda: [os.kill(p, signal.SIGCONT) for p in pids]).start()

            wandb.finish = slow_finish
            return super().run()

        @staticmethod
        def wandb_core_pids() -> list[int]:
            me, pids = str(os.getpid()), []
            for stat in Path("/proc").glob("[0-9]*/stat"):
                with contextlib.suppress(OSError):
                    parent = stat.read_text().rsplit(")", 1)[1].split()[1]
                    if parent == me and b"wandb-core" in (stat.parent / "cmdline").read_bytes():
                        pids.append(int(stat.parent.name))
            if not pids:
                raise RuntimeError("no wandb-core process to pause")  # the test would prove nothing
            with open(record, "a") as f:
                f.write("".join(f"{pid}\n" for pid in pids))
            return pids

    class SlowWriterCallback(EpochWandbLoggerCallback):
        actor_class = SlowWriterActor

    wandb_dir = record.parent / "wandb-runs"
    wandb_dir.mkdir()  # as the driver does (tune.driver.build_callbacks): there before any actor starts
    return SlowWriterCallback(project="t", mode="offline", dir=str(wandb_dir), **kwargs)


def _search(tmp_path: Path, callback, bases: list[float]):
    """A real Tune search, ``val_sisdr = base + epoch`` for epochs 1..EPOCHS, logged by ``callback``;
    trial folders named as ours are, so ``load_experiment`` reads it."""
    from ray import tune

    def trainable(config: dict) -> None:  # nested: cloudpickle ships it by value
        for epoch in range(1, EPOCHS + 1):
            tune.report({"val_sisdr": config["base"] + epoch, "epoch": epoch})

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        results = tune.Tuner(
            trainable,
            param_space={"base": tune.grid_search(bases)},
            tune_config=tune.TuneConfig(trial_dirname_creator=lambda trial: trial_dirname(trial.trial_id)),
            run_config=tune.RunConfig(name="slow", storage_path=str(tmp_path), callbacks=[callback], verbose=0),
        ).fit()
    finally:
        ray.shutdown()
    assert not results.errors
    return {r.metrics["trial_id"]: r.config["base"] for r in results}


def test_a_run_wandb_writes_after_finish_returns_still_holds_every_epoch(tmp_path: Path, paused: Path) -> None:
    base = _search(tmp_path, _slow_writer_callback(paused, pause_s=5.0), [0.0, 100.0])

    assert len(paused.read_text().split()) == 2  # both actors' wandb-core were paused
    runs = find_offline_runs(tmp_path / "wandb-runs")
    assert sorted(r.run_id for r in runs) == sorted(base)
    for run in runs:
        assert (run.exit_code, run.truncated) == (0, False), (run.run_id, run.file.stat().st_size)
        assert metric_history(run, "val_sisdr") == [(e, base[run.run_id] + e) for e in range(1, EPOCHS + 1)]
    assert incomplete_runs_line(load_experiment(tmp_path / "slow"), tmp_path / "wandb-runs") is None


def test_a_run_wandb_never_writes_is_named_at_the_end(tmp_path: Path, paused: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    """An actor whose W&B run never finishes writing is stopped after the bound (here 30 s without
    progress: room for the other actor to start on a loaded machine) and said so, by trial id; the
    summary line names the run and where the runs are."""
    callback = _slow_writer_callback(paused, pause_s=1.0, stuck_base=0.0, upload_timeout=30)
    with caplog.at_level(logging.WARNING, logger="tune_app.ext.wandb_logging"):
        base = _search(tmp_path, callback, [0.0, 100.0])

    stuck = next(trial_id for trial_id, b in base.items() if b == 0.0)
    fine = next(trial_id for trial_id in base if trial_id != stuck)
    assert [m for m in caplog.messages if stuck in m and "30 s" in m], caplog.messages
    exp = load_experiment(tmp_path / "slow")
    assert incomplete_runs(exp, tmp_path / "wandb-runs") == [stuck]
    line = incomplete_runs_line(exp, tmp_path / "wandb-runs")
    assert line is not None and stuck in line and fine not in line and str(tmp_path / "wandb-runs") in line
    assert "\n" not in line
    runs = {r.run_id: r for r in find_offline_runs(tmp_path / "wandb-runs")}
    assert metric_history(runs[fine], "val_sisdr") == [(e, 100.0 + e) for e in range(1, EPOCHS + 1)]
