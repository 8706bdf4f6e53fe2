"""Interrupted searches resume: a real driver killed with SIGKILL or stopped with SIGINT.

Each test starts `polsess-tune run` in its own session, interrupts it once a trial has reported,
runs `polsess-tune resume`, and checks what a user relies on: the trial count, finished trials
untouched, running trials continuing from their last epoch, and W&B runs without repeats.
Only processes of the sessions the test started are killed (never `ray stop`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections import Counter
from pathlib import Path

import pytest
from helpers import assert_study_agrees, polsess_tune, start_polsess_tune, tiny
from processes import kill_session, wait_for

from tune_app.experiment.results import load_experiment
from tune_app.ext.wandb_offline import find_offline_runs, metric_history

EPOCHS = 4
SAMPLES = 4
TINY = tiny(EPOCHS)


def _epochs(folder: Path) -> dict[str, list[int]]:
    return {trial: [e for e, _ in rows] for trial, rows in _epoch_iterations(folder).items()}


def _epoch_iterations(folder: Path) -> dict[str, list[tuple[int, int]]]:
    """Per trial, (epoch, training_iteration) of every row of its result.json, in file order."""
    out = {}
    for trial in folder.glob("trial_*"):
        rows = []
        for line in (trial / "result.json").read_text().splitlines() if (trial / "result.json").exists() else []:
            with contextlib.suppress(ValueError):
                rows.append(json.loads(line))
        out[trial.name.removeprefix("trial_")] = [(int(r["epoch"]), int(r["training_iteration"])) for r in rows]
    return out


@pytest.fixture
def started(demo_corpus: Path, tmp_path: Path):
    storage = tmp_path / "runs"
    folder = storage / "interrupted"
    proc = start_polsess_tune(["run", "--data-root", str(demo_corpus), "--storage", str(storage), "--name",
                               "interrupted", "--num-samples", str(SAMPLES), "--max-concurrent", "2", "--wandb",
                               "offline", "--grace-period", "2", "--reduction-factor", "2", *TINY],
                              tmp_path / "run.log")
    sessions = [proc.pid]
    yield proc, folder, tmp_path, sessions
    for sid in sessions:
        kill_session(sid)


def _interrupted_mid_search(folder: Path) -> bool:
    epochs = _epochs(folder) if folder.exists() else {}
    return sum(len(v) for v in epochs.values()) >= 2 and any(0 < len(v) < EPOCHS for v in epochs.values())


def _resume_and_check(folder: Path, tmp_path: Path, before: dict[str, list[int]], sessions: list[int]) -> None:
    resume = start_polsess_tune(["resume", str(folder)], tmp_path / "resume.log")
    sessions.append(resume.pid)
    assert resume.wait(timeout=600) == 0, (tmp_path / "resume.log").read_text()[-4000:]
    _check_finished(folder, before)


def _check_finished(folder: Path, before: dict[str, list[int]]) -> None:
    """The interrupted search ended whole: every trial finished, each continued where ``before``
    (its epochs at the interruption) left it, and W&B and the study hold each epoch once."""
    after = _epochs(folder)
    exp = load_experiment(folder)
    assert len(exp.trials) == SAMPLES
    assert all(t.status in ("COMPLETED", "EARLY_STOPPED") for t in exp.trials), [t.status for t in exp.trials]
    # Whether a trial was caught mid-way depends on timing; each one that was continues where it was.
    for trial_id, epochs in after.items():
        assert epochs == list(range(1, len(epochs) + 1)), (trial_id, epochs)  # no epoch redone or skipped
        old = before.get(trial_id, [])
        assert epochs[: len(old)] == old

    runs = find_offline_runs(folder / "wandb-runs")
    logged: dict[str, Counter] = {}
    for run in runs:
        logged.setdefault(run.run_id, Counter()).update(int(e) for _, e in metric_history(run, "epoch"))
    assert set(logged) == set(after)
    for trial_id, counts in logged.items():
        assert counts and max(counts.values()) == 1, (trial_id, counts)  # logged, and no epoch twice
        assert sorted(counts) == after[trial_id]
    assert_study_agrees(folder)  # the study in SQLite: every trial once, none told twice or left RUNNING


def _reported(folder: Path) -> int:
    return sum(len(v) for v in _epochs(folder).values()) if folder.exists() else 0


def test_a_chain_of_three_kills_loses_no_epoch_and_repeats_none(started):
    """SIGKILL mid-search, SIGKILL of the resume while it restores, SIGKILL of the next resume mid-trial:
    the last resume finishes, and in every trial's result.json the epochs and Tune's iterations both run
    1..n, without a gap or a repeat. It is also the plain SIGKILL-then-resume test: what one resume
    after one kill must keep (each trial continues where it was, W&B holds every epoch) is checked
    at the end of the chain."""
    proc, folder, tmp_path, sessions = started
    wait_for(lambda: _interrupted_mid_search(folder) or proc.poll() is not None, 300, "a trial to report")
    assert proc.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
    kill_session(proc.pid)  # 1: during trials
    proc.wait()
    before_kill = _epochs(folder)

    resume = start_polsess_tune(["resume", str(folder)], tmp_path / "resume1.log")
    sessions.append(resume.pid)
    wait_for(lambda: "resuming" in (tmp_path / "resume1.log").read_text() or resume.poll() is not None, 120,
             "the resume to start restoring")
    kill_session(resume.pid)  # 2: during the resume itself
    resume.wait()

    before = _reported(folder)
    resume = start_polsess_tune(["resume", str(folder)], tmp_path / "resume2.log")
    sessions.append(resume.pid)
    wait_for(lambda: _reported(folder) > before or resume.poll() is not None, 300, "the resumed search to report")
    # Certainly mid-search here: every trial trains at least the grace period (2 epochs), so the search
    # reports at least SAMPLES x 2 = 8 epochs; the first kill came after a few of them, resume 1 was killed
    # before Ray started (it prints "resuming" first), and this is only the first epoch resume 2 reports.
    assert resume.poll() is None, (tmp_path / "resume2.log").read_text()[-3000:]
    kill_session(resume.pid)  # 3: during the resumed search's trials
    resume.wait()

    final = start_polsess_tune(["resume", str(folder)], tmp_path / "resume3.log")
    sessions.append(final.pid)
    assert final.wait(timeout=600) == 0, (tmp_path / "resume3.log").read_text()[-4000:]
    for trial_id, rows in _epoch_iterations(folder).items():
        n = len(rows)
        assert [e for e, _ in rows] == list(range(1, n + 1)), (trial_id, rows)
        assert [i for _, i in rows] == list(range(1, n + 1)), (trial_id, rows)
    # What a plain SIGKILL and one resume must keep holds after the chain too: every trial caught
    # mid-way by the first kill continued where it was, and W&B holds every epoch each trial reports.
    _check_finished(folder, before_kill)


def test_resume_after_a_kill_that_truncated_the_state_file(started):
    proc, folder, tmp_path, sessions = started
    wait_for(lambda: _interrupted_mid_search(folder) or proc.poll() is not None, 300, "a trial to report")
    assert proc.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
    kill_session(proc.pid)
    proc.wait()
    # A kill can land while Tune copies its state file into the folder. The backup it falls back to
    # is up to two seconds older (a stale snapshot), so only the search as a whole is checked here.
    state = max(folder.glob("experiment_state-*.json"), key=lambda p: p.name)
    state.write_text(state.read_text()[: len(state.read_text()) // 3])
    resume = start_polsess_tune(["resume", str(folder)], tmp_path / "resume.log")
    sessions.append(resume.pid)
    assert resume.wait(timeout=600) == 0, (tmp_path / "resume.log").read_text()[-4000:]
    assert f"note: {state.name}: cut short while it was written (a killed driver or a full disk); restored the copy" \
        in (tmp_path / "resume.log").read_text()
    exp = load_experiment(folder)
    assert len(exp.trials) == SAMPLES
    assert all(t.status in ("COMPLETED", "EARLY_STOPPED") for t in exp.trials), [t.status for t in exp.trials]


def test_a_second_driver_is_refused_and_the_first_resumes_after_ctrl_c(started):
    proc, folder, tmp_path, sessions = started
    wait_for(lambda: _interrupted_mid_search(folder) or proc.poll() is not None, 300, "a trial to report")
    assert proc.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
    # The first driver is paused (SIGSTOP; it keeps its lock) while the second tries, so it cannot finish
    # the search meanwhile and is certainly mid-search when Ctrl-C reaches it below.
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        second = polsess_tune("resume", str(folder))
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    assert second.returncode == 2 and second.stderr.count("\n") == 1, second.stderr
    assert "in use by another polsess-tune run or resume" in second.stderr
    os.kill(proc.pid, signal.SIGINT)
    # 130, not 0: the first is unharmed and was mid-search, so it stops as Ctrl-C asks, its state saved.
    assert proc.wait(timeout=90) == 130, (tmp_path / "run.log").read_text()[-3000:]
    assert f"polsess-tune resume {folder}" in (tmp_path / "run.log").read_text()
    before = _epochs(folder)
    _resume_and_check(folder, tmp_path, before, sessions)


def test_sigterm_twice_saves_state_and_a_moved_experiment_is_refused(started):
    proc, folder, tmp_path, _sessions = started
    wait_for(lambda: _interrupted_mid_search(folder) or proc.poll() is not None, 300, "a trial to report")
    os.kill(proc.pid, signal.SIGTERM)
    os.kill(proc.pid, signal.SIGTERM)  # schedulers repeat it before their SIGKILL
    assert proc.wait(timeout=90) == 130
    assert "Resume it with: polsess-tune resume" in (tmp_path / "run.log").read_text()
    assert list(folder.glob("experiment_state-*.json"))
    moved = folder.rename(tmp_path / "moved")
    again = polsess_tune("resume", str(moved))
    assert again.returncode == 2 and again.stderr.count("\n") == 1, again.stderr
    assert f"this experiment was started at {folder}" in again.stderr and "move it back" in again.stderr


def test_resume_refuses_what_it_cannot_resume(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    for target, needle in ((tmp_path / "missing", "no such experiment folder"),
                           (empty, "holds no Ray Tune experiment state")):
        proc = polsess_tune("resume", str(target))
        assert proc.returncode == 2 and needle in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
