"""What a search prints and records says what happened (issue 24 §3, §5): real small searches.

- a trial a spent budget cuts is BUDGET_CUT (not ASHA's EARLY_STOPPED), one cut before its first
  epoch NOT_STARTED, in ``results`` (table, ``--json``), the summary, W&B's end state and the study;
- a checkpoint path is printed with the epoch the checkpoint holds, also after a resume;
- Ray's own logging (its warnings, the raylet's lines) stays off the console without ``--verbose``,
  for ``run`` and ``resume``, SIGTERM included, and a resume writes no TensorBoard files;
- a dead trial worker is said in our own line.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO
from processes import kill_session, trial_workers, wait_for

from polsess.trainer import load_checkpoint
from tune_app.experiment.results import load_experiment
from tune_app.experiment.study import load_study
from tune_app.ext.wandb_offline import find_offline_runs
from tune_app.names import BUDGET_CUT, COMPLETED, EARLY_STOPPED, NOT_STARTED, status_label

MODEL = ["--set", "N=16", "--set", "B=8", "--set", "H=16", "--set", "X=2", "--set", "R=1",
         "--set", "batch_size=4", "--set", "num_workers=0"]
TINY = [*MODEL, "--set", "segment_seconds=0.25"]
# A line of Ray's own logging (``2026-… WARNING experiment_analysis.py:186 -- …``) or the raylet's.
RAY_LINE = re.compile(r"\b(?:DEBUG|INFO|WARNING|ERROR)\b[^\n]*\.py:\d+ -- |\(raylet\)|Stop signal received")


def _start(args: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tune_app.cli", *args], cwd=REPO,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"},
                            stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tune_app.cli", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300)


def _no_ray_lines(out: str) -> None:
    leaked = [line for line in out.splitlines() if RAY_LINE.search(line)]
    assert not leaked, "Ray's own logging on the console:\n" + "\n".join(leaked[:10])


def _fifo_sweep(tmp_path: Path) -> Path:
    """No early_terminate: FIFO, so nothing may be called early-stopped; only the budget cuts."""
    sweep = tmp_path / "fifo.yaml"
    sweep.write_text("method: random\nmetric: {name: val_sisdr, goal: maximize}\n"
                     "parameters:\n  lr: {distribution: log_uniform_values, min: 1e-3, max: 1e-2}\n"
                     "tune: {seed: 0}\n")
    return sweep


def test_a_budget_cut_is_budget_cut_everywhere_not_early_stopped(demo_corpus, tmp_path):
    """Two trials of 6 epochs at once, FIFO, a budget of 8 trial-epochs: the budget ends both mid-way."""
    log = tmp_path / "run.log"
    proc = _start(["run", "--space", str(_fifo_sweep(tmp_path)), "--data-root", str(demo_corpus),
                   "--storage", str(tmp_path), "--name", "cut", "--budget-epochs", "8", "--max-concurrent", "2",
                   "--wandb", "offline", "--set", "num_epochs=6", *TINY], log)
    assert proc.wait(timeout=900) == 0, log.read_text()[-3000:]
    out = log.read_text()
    _no_ray_lines(out)
    folder = tmp_path / "cut"
    exp = load_experiment(folder)
    statuses = {t.trial_id: t.status for t in exp.trials}
    assert EARLY_STOPPED not in statuses.values(), statuses  # FIFO stops nothing early
    assert BUDGET_CUT in statuses.values(), statuses
    for t in exp.trials:
        assert t.status in (COMPLETED, BUDGET_CUT, NOT_STARTED), (t.trial_id, t.status)
        assert (t.status == NOT_STARTED) == (t.epochs == 0), (t.trial_id, t.status, t.epochs)
        assert t.status != BUDGET_CUT or 0 < t.epochs < 6
        if t.status == BUDGET_CUT:
            assert f"trial {t.trial_id} cut at epoch {t.epochs}: the budget is spent (budget-cut)" in out
    # results: the table, the summary line and --json say the same.
    shown = _cli("results", str(folder))
    assert shown.returncode == 0, shown.stderr
    for trial_id, status in statuses.items():
        assert re.search(rf"^{trial_id}\s+{status}\s", shown.stdout, re.M), shown.stdout
    counted = sum(s == BUDGET_CUT for s in statuses.values())
    assert f"{counted} budget-cut" in shown.stdout and f"{counted} budget-cut" in out
    data = json.loads(_cli("results", str(folder), "--json").stdout)
    assert {t["trial_id"]: t["status"] for t in data["trials"]} == statuses
    assert data["counts"].get(BUDGET_CUT) == counted
    # W&B: each run's end state (summary and tag) is the trial's status.
    runs = {r.run_id: r for r in find_offline_runs(folder / "wandb-runs")}
    for t in exp.trials:
        if t.trial_id in runs:
            assert runs[t.trial_id].summary.get("end_state") == status_label(t.status), t.trial_id
            assert status_label(t.status) in runs[t.trial_id].tags
    assert all(runs.get(t) is not None for t, s in statuses.items() if s == BUDGET_CUT)
    # The study: a cut trial is PRUNED (Optuna has no state of its own for it) and says budget-cut.
    study = load_study(json.loads((folder / "search.json").read_text()), folder)
    by_id = {ot.user_attrs["ray_trial_id"]: ot for ot in study.get_trials(deepcopy=False)}
    for trial_id, status in statuses.items():
        if status in (BUDGET_CUT, NOT_STARTED):
            assert by_id[trial_id].user_attrs.get("end_state") == status_label(status)
            assert by_id[trial_id].state.name == ("PRUNED" if status == BUDGET_CUT else "FAIL")
        else:
            assert by_id[trial_id].state.name == "COMPLETE"


def _checkpoint_epochs_are_true(folder: Path, data: dict) -> None:
    """Every checkpoint ``results --json`` names holds the epoch it says (read from the checkpoint)."""
    for t in data["trials"]:
        for key in ("checkpoint", "latest_checkpoint"):
            if t[key]:
                held = load_checkpoint(Path(t[key]) / "trainer.pt")["epoch"]
                assert t[f"{key}_epoch"] == held, (t["trial_id"], key, t[key], held)


def test_sigterm_and_resume_print_no_ray_lines_no_tensorboard_and_true_checkpoint_epochs(demo_corpus, tmp_path):
    folder = tmp_path / "term"
    proc = _start(["run", "--data-root", str(demo_corpus), "--storage", str(tmp_path), "--name", "term",
                   "--num-samples", "2", "--max-concurrent", "2", "--wandb", "disabled",
                   "--grace-period", "3", "--set", "num_epochs=5", *TINY], tmp_path / "run.log")
    sessions = [proc.pid]
    try:
        wait_for(lambda: list(folder.glob("trial_*/checkpoint_000001")) or proc.poll() is not None, 600,
                 "a trial's second checkpoint")
        assert proc.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=120) == 130
        out = (tmp_path / "run.log").read_text()
        _no_ray_lines(out)
        assert "SIGTERM: stopping the search and saving its state" in out
        resume = _start(["resume", str(folder)], tmp_path / "resume.log")
        sessions.append(resume.pid)
        assert resume.wait(timeout=900) == 0, (tmp_path / "resume.log").read_text()[-3000:]
    finally:
        for sid in sessions:
            kill_session(sid)
    out = (tmp_path / "resume.log").read_text()
    _no_ray_lines(out)
    assert not list(folder.glob("trial_*/events.out.tfevents*")), "Tune's TensorBoard logger ran on resume"
    data = json.loads(_cli("results", str(folder), "--json").stdout)
    _checkpoint_epochs_are_true(folder, data)
    best = data["best"]
    assert best["checkpoint_epoch"] == load_checkpoint(Path(best["checkpoint"]) / "trainer.pt")["epoch"]
    line = f"checkpoint {best['checkpoint']} (epoch {best['checkpoint_epoch']}; score it: "
    assert line in out and line in _cli("results", str(folder)).stdout


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the trial's worker in /proc")
def test_a_dead_worker_is_said_in_our_own_line(demo_corpus, tmp_path):
    proc = _start(["run", "--data-root", str(demo_corpus), "--storage", str(tmp_path), "--name", "dead",
                   "--num-samples", "1", "--wandb", "disabled", "--max-failures", "2",
                   "--set", "num_epochs=12", "--set", "segment_seconds=0.5", *MODEL],
                  tmp_path / "run.log")
    try:
        # Any checkpoint (num_to_keep deletes each older one), of 12 epochs: on an idle machine an epoch
        # takes under half a second, and with 6 the trial had finished before its worker was found.
        wait_for(lambda: list((tmp_path / "dead").glob("trial_*/checkpoint_*")) or proc.poll() is not None,
                 600, "the trial's first checkpoint")
        assert proc.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
        wait_for(lambda: len(trial_workers(proc.pid)) == 1, 60, "the trial's worker process")
        (worker,) = trial_workers(proc.pid)
        os.kill(worker, signal.SIGKILL)
        assert proc.wait(timeout=900) == 0, (tmp_path / "run.log").read_text()[-3000:]
    finally:
        kill_session(proc.pid)
    out = (tmp_path / "run.log").read_text()
    _no_ray_lines(out)
    (trial,) = load_experiment(tmp_path / "dead").trials
    said = re.search(rf"trial {trial.trial_id}: its worker process died \(pid {worker}: [^)]*\); retrying from its "
                     r"checkpoint of epoch (\d+) \(attempt 1 of 2\)", out)
    assert said, out[-3000:]
    assert f"trial {trial.trial_id} restarted from its checkpoint of epoch {said.group(1)}" in out
    assert trial.status == COMPLETED and trial.epochs == 12
