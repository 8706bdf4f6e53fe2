"""The fault battery of issue 24 §5: what a user finds in the experiment after each fault and resume.

- SIGTERM (a batch scheduler's stop) and a torn ``result.json``, then ``resume``: every trial's
  ``progress.csv`` is one table (pandas reads it, every row has the header's fields, its values are
  result.json's);
- every kept checkpoint of a trial unreadable: ``resume`` trains that trial again from epoch 1 under
  its own id (one note says so), the search keeps its trial count, and result.json, progress.csv and
  W&B hold the new training's epochs once each;
- a full disk under ``--storage`` (a real tmpfs; skipped where it cannot be mounted): one
  ``error: --storage …: disk full`` line, exit 2, never 0, however little room there was.

Each test starts its drivers in sessions of their own and kills only those (never ``ray stop``).
"""

from __future__ import annotations

import csv
import errno
import json
import logging
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from helpers import REPO, TINY_MODEL, assert_study_agrees
from processes import kill_session, wait_for

from tune_app.experiment.results import load_experiment
from tune_app.experiment.study import load_study
from tune_app.ext.progress_csv import append_row, drop_from_epoch, read_columns
from tune_app.ext.wandb_offline import find_offline_runs, metric_history
from tune_app.tune.disk import DiskFullError, guard

EPOCHS = 4
SAMPLES = 4


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "tune_app.cli", *args]


def _start(args: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(_cli(*args), cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                            stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def _run_args(corpus: Path, storage: Path, wandb: str = "disabled") -> list[str]:
    return ["run", "--data-root", str(corpus), "--storage", str(storage), "--name", "battery",
            "--num-samples", str(SAMPLES), "--max-concurrent", "2", "--wandb", wandb, "--grace-period", "2",
            "--reduction-factor", "2", *TINY_MODEL, "--set", f"num_epochs={EPOCHS}"]


def _rows(trial: Path) -> list[dict]:
    path = trial / "result.json"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def _mid_trial(folder: Path) -> Path | None:
    """A trial with a checkpoint and 1..EPOCHS-1 recorded epochs: one a stop catches mid-training."""
    for trial in sorted(folder.glob("trial_*")) if folder.exists() else []:
        try:
            n = len(_rows(trial))
        except ValueError:  # a line being written
            continue
        if 0 < n < EPOCHS and list(trial.glob("checkpoint_*/trainer.pt")):
            return trial
    return None


@pytest.fixture
def sessions():
    started: list[int] = []
    yield started
    for sid in started:
        kill_session(sid)


def _stopped_mid_trial(corpus: Path, tmp_path: Path, sessions: list[int], sig: int, wandb: str) -> tuple[Path, Path]:
    """A search stopped by ``sig`` while a trial is mid-way; (experiment folder, that trial's folder)."""
    folder = tmp_path / "runs" / "battery"
    proc = _start(_run_args(corpus, tmp_path / "runs", wandb), tmp_path / "run.log")
    sessions.append(proc.pid)
    wait_for(lambda: _mid_trial(folder) is not None or proc.poll() is not None, 600, "a trial to report")
    assert proc.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
    os.kill(proc.pid, sig)
    assert proc.wait(timeout=300) == 130, (tmp_path / "run.log").read_text()[-3000:]
    trial = _mid_trial(folder)
    assert trial is not None, "the stop ended every trial"
    return folder, trial


def _resume(folder: Path, tmp_path: Path, sessions: list[int], name: str = "resume") -> str:
    log = tmp_path / f"{name}.log"
    proc = _start(["resume", str(folder)], log)
    sessions.append(proc.pid)
    assert proc.wait(timeout=900) == 0, log.read_text()[-4000:]
    return log.read_text()


def assert_one_table(trial: Path) -> None:
    """progress.csv: pandas reads it, every row has the header's number of fields, and each row holds
    the values of the same report in result.json (one row per epoch, in order)."""
    path = trial / "progress.csv"
    with path.open(newline="") as fh:
        header, *rows = list(csv.reader(fh))
    assert {len(r) for r in rows} <= {len(header)}, (trial.name, len(header), [len(r) for r in rows])
    table = pd.read_csv(path, dtype={"trial_id": str})  # an id of digits only stays a string
    reports = _rows(trial)
    assert table["epoch"].tolist() == [r["epoch"] for r in reports], trial.name
    assert table["val_sisdr"].tolist() == pytest.approx([r["val_sisdr"] for r in reports]), trial.name
    assert set(table["trial_id"]) == {trial.name.removeprefix("trial_")}


# --------------------------------------------------------------------------- progress.csv, no Ray


def test_a_row_with_other_keys_lands_under_the_files_header(tmp_path):
    path = tmp_path / "progress.csv"
    columns = None
    for epoch in (1, 2, 3):
        columns = append_row(path, columns, {"epoch": epoch, "val_sisdr": epoch / 10, "node_id": "n1"})
    path.write_bytes(path.read_bytes() + b"4,0.4")  # a row cut by a kill
    columns = read_columns(path)
    drop_from_epoch(path, columns, 3)  # the resumed trial reports epoch 3 again
    columns = append_row(path, columns, {"val_sisdr": 0.33, "epoch": 3})  # fewer keys, another order
    append_row(path, columns, {"epoch": 4, "val_sisdr": 0.4, "node_id": "n2", "should_checkpoint": True})
    table = pd.read_csv(path, dtype={"trial_id": str})  # an id of digits only stays a string
    assert list(table.columns) == ["epoch", "val_sisdr", "node_id", "should_checkpoint"]
    assert table["epoch"].tolist() == [1, 2, 3, 4]
    assert table["val_sisdr"].tolist() == [0.1, 0.2, 0.33, 0.4]
    assert table["node_id"].fillna("").tolist() == ["n1", "n1", "", "n2"]


def test_a_full_disk_seen_only_by_ray_or_in_a_trials_error_file_still_fails_the_search(tmp_path, monkeypatch):
    """Tune logs a failed sync and goes on, a retried trial leaves its ENOSPC only in error.txt: both
    end in the one line. What an earlier, resumed search recorded does not count, and neither does a
    "no space" record Ray repeats while the disk has room again (a resume after space was freed)."""
    from tune_app.tune import disk

    with guard("/storage", str(tmp_path)):  # tmp_path has room: an old failure re-logged, not a full disk
        logging.getLogger("ray.tune").error("Trial a errored: OSError: [Errno 28] No space left on device")
    monkeypatch.setattr(disk, "STILL_ROOM_MB", float("inf"))  # from here on the disk counts as full
    trial = tmp_path / "trial_a"
    trial.mkdir()
    (trial / "error.txt").write_text("Failure # 1\nOSError: [Errno 28] No space left on device\n")  # an earlier run's
    with guard("/storage", str(tmp_path)):
        pass
    line = (r"^--storage /storage: disk full \(\d+\.\d MB free\); free space and run polsess-tune resume "
            rf"{re.escape(str(tmp_path))}$")
    with pytest.raises(DiskFullError, match=line), guard("/storage", str(tmp_path)):
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:  # Tune's way: it logs the failed snapshot and goes on
            logging.getLogger("ray.tune.execution.experiment_state").error("Saving failed", exc_info=True)
    with pytest.raises(DiskFullError), guard("/storage", str(tmp_path)), (trial / "error.txt").open("a") as fh:
        fh.write("Failure # 2\nOSError: [Errno 28] Error writing bytes to file\n")


# --------------------------------------------------------------------------- real searches


def test_sigterm_then_a_torn_result_json_then_resume_leaves_every_progress_csv_one_table(
        demo_corpus, tmp_path, sessions):
    folder, trial = _stopped_mid_trial(demo_corpus, tmp_path, sessions, signal.SIGTERM, "disabled")
    # Tear the trial's last report mid-line: its checkpoint holds an epoch result.json then lacks, which
    # the resumed trial reports again first, without a checkpoint (the report whose keys differ).
    text = (trial / "result.json").read_text()
    last = text.rstrip("\n").rsplit("\n", 1)[-1]
    (trial / "result.json").write_text(text[: len(text) - len(last) // 2 - 1])
    log = _resume(folder, tmp_path, sessions)
    assert f"{trial.name}/result.json: its last report was cut" in log
    exp = load_experiment(folder)
    assert len(exp.trials) == SAMPLES
    for t in exp.trials:
        epochs = [r["epoch"] for r in _rows(t.path)]
        assert epochs == list(range(1, len(epochs) + 1)), (t.trial_id, epochs)
        assert_one_table(t.path)
    reported_again = [r for r in _rows(trial) if r.get("time_training_s") == 0.0]
    if not reported_again:  # the kill landed where the checkpoint and result.json agreed: nothing to catch up
        pytest.skip("the torn epoch was not reported again (where SIGTERM landed): the catch-up report, "
                    "whose keys differ, was not exercised this time")


def test_a_trial_without_a_readable_checkpoint_trains_again_under_its_own_id(demo_corpus, tmp_path, sessions):
    folder, trial = _stopped_mid_trial(demo_corpus, tmp_path, sessions, signal.SIGTERM, "offline")
    trial_id = trial.name.removeprefix("trial_")
    before = [r["epoch"] for r in _rows(trial)]
    for kept in trial.glob("checkpoint_*/trainer.pt"):
        kept.write_bytes(b"not a checkpoint")
    log = _resume(folder, tmp_path, sessions)
    notes = [line for line in log.splitlines() if f"trial {trial_id}: no readable checkpoint left" in line]
    assert len(notes) == 1 and "trains again from epoch 1 under the same id" in notes[0], log[-3000:]
    assert "Traceback" not in log and "UserWarning" not in log, log[-3000:]
    exp = load_experiment(folder)
    assert len(exp.trials) == SAMPLES and trial_id in {t.trial_id for t in exp.trials}
    assert all(t.status in ("COMPLETED", "EARLY_STOPPED") for t in exp.trials), [t.status for t in exp.trials]
    epochs = [r["epoch"] for r in _rows(trial)]
    assert epochs == list(range(1, len(epochs) + 1)) and len(epochs) >= 2, epochs  # trained anew, once each
    assert [r["epoch"] for r in _rows(trial / "before-restart")] == before  # the lost training, kept aside
    assert_one_table(trial)
    # The run of the lost training was set aside (wandb-runs/before-restart/, outside what `wandb sync
    # <experiment>/wandb-runs/wandb/offline-run-*` uploads); the trial's own run holds each epoch once.
    logged = Counter(int(e) for run in find_offline_runs(folder / "wandb-runs")
                     if run.run_id == trial_id and "before-restart" not in run.path.parts
                     for _, e in metric_history(run, "epoch"))
    assert sorted(logged) == epochs and max(logged.values()) == 1, logged
    # The Optuna study's curve of the trial is the new training's, not the lost one's.
    study = load_study(json.loads((folder / "search.json").read_text()), folder)
    (ot,) = [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("ray_trial_id") == trial_id]
    assert {e: ot.intermediate_values[e] for e in epochs} == {r["epoch"]: pytest.approx(r["val_sisdr"])
                                                              for r in _rows(trial)}


def _mount(small: Path, size: str) -> None:
    small.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(small)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (root only: {mounted.stderr.decode().strip()})")


@pytest.mark.parametrize("size", ["300k", "700k"], ids=["no-room", "little-room"])
def test_a_full_disk_is_one_line_and_exit_2_never_0(demo_corpus, tmp_path, size):
    """300k: the search fills it before its first checkpoints; 700k: a few epochs fit, then W&B's
    offline runs, the study and the checkpoints compete for the last of it."""
    small = tmp_path / "small"
    _mount(small, size)
    try:
        proc = subprocess.run(_cli(*_run_args(demo_corpus, small, "offline")), cwd=REPO, capture_output=True,
                              text=True, timeout=900)
        assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-3000:]
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
        assert re.fullmatch(rf"error: --storage {re.escape(str(small))}: disk full \(\d+\.\d MB free\); free space "
                            rf"and run polsess-tune resume {re.escape(str(small / 'battery'))}", lines[0]), lines[0]
        subprocess.run(["mount", "-o", "remount,size=64m", str(small)], check=True)  # space freed
        again = subprocess.run(_cli("resume", str(small / "battery")), cwd=REPO, capture_output=True, text=True,
                               timeout=900)
        assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
        exp = load_experiment(small / "battery")
        assert len(exp.trials) == SAMPLES and all(t.status in ("COMPLETED", "EARLY_STOPPED") for t in exp.trials)
        for t in exp.trials:
            epochs = [r["epoch"] for r in _rows(t.path)]
            assert epochs == list(range(1, len(epochs) + 1)), (t.trial_id, epochs)  # none lost, none twice
            assert_one_table(t.path)
        assert_study_agrees(small / "battery")  # the SQLite study on the full disk lost nothing either
    finally:
        subprocess.run(["umount", "-l", str(small)], capture_output=True)
