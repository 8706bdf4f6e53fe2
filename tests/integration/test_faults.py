"""Faults stay inside one trial: a dead worker is retried from its checkpoint, a NaN loss ends
only the trial that hits it (with the reason), and the search reports what happened."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from helpers import REPO, TINY_MODEL, polsess_tune, start_polsess_tune
from processes import trial_workers, wait_for

from tune_app.experiment.results import load_experiment


def _rows(result_file: Path) -> list[dict]:
    rows = []
    for line in result_file.read_text().splitlines() if result_file.exists() else []:
        with contextlib.suppress(ValueError):
            rows.append(json.loads(line))
    return rows


def test_a_killed_worker_is_retried_from_its_checkpoint(demo_corpus, tmp_path):
    proc = start_polsess_tune(["run", "--data-root", str(demo_corpus), "--storage", str(tmp_path), "--name", "crash",
                               "--num-samples", "1", "--wandb", "disabled", "--max-failures", "2",
                               "--set", "num_epochs=10", "--set", "segment_seconds=0.5", "--set", "batch_size=4"],
                              tmp_path / "run.log")
    try:
        deadline = time.monotonic() + 300
        # Checkpoints reach storage when reported (result.json only at the next sync): wait for epoch 2's.
        while not list((tmp_path / "crash").glob("trial_*/checkpoint_000001")):
            assert proc.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "no trial reported"
            time.sleep(0.1)  # polling for a condition
        wait_for(lambda: len(trial_workers(proc.pid)) == 1, 60, "the trial's worker process")
        (worker,) = trial_workers(proc.pid)
        os.kill(worker, signal.SIGKILL)  # the trial's worker process, mid-training
        assert proc.wait(timeout=600) == 0, (tmp_path / "run.log").read_text()[-3000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    (trial,) = load_experiment(tmp_path / "crash").trials
    assert trial.status == "COMPLETED"
    assert [int(r["epoch"]) for r in trial.history] == list(range(1, 11))
    pids = [r["pid"] for r in _rows(trial.path / "result.json")]
    assert pids[0] == worker and len(set(pids)) == 2 and pids[-1] != worker  # a new worker took over


def test_a_nan_loss_ends_one_trial_with_its_reason_and_the_search_goes_on(demo_corpus, tmp_path):
    corpus = tmp_path / "PolSESS_test"
    shutil.copytree(demo_corpus, corpus)
    meta = pd.read_csv(corpus / "train" / "corpus_PolSESS_test_train_final.csv")
    bad = corpus / "train" / "mix" / meta.loc[0, "mixFile"]
    info = sf.info(bad)
    sf.write(bad, np.full(info.frames, np.nan, dtype=np.float32), info.samplerate, subtype="FLOAT")
    space = tmp_path / "space.yaml"
    space.write_text(
        "method: grid\nmetric: {name: val_sisdr, goal: maximize}\n"
        f"parameters:\n  config: {{value: {REPO / 'configs/demo.yaml'}}}\n"
        "  max_bad_batches: {values: [1, 1000]}\n"
    )
    proc = polsess_tune("run", "--space", str(space), "--data-root", str(corpus), "--storage", str(tmp_path),
                        "--name", "nan", "--max-concurrent", "2", "--wandb", "disabled", "--max-failures", "0",
                        "--set", "num_epochs=2", *TINY_MODEL, timeout=600)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]  # a trial errored: the search says so
    exp = load_experiment(tmp_path / "nan")
    by_limit = {t.config["training"]["max_bad_batches"]: t for t in exp.trials}
    assert by_limit[1].status == "ERROR"
    assert "NaN/Inf" in by_limit[1].error and "training.lr" in by_limit[1].error
    assert by_limit[1000].status == "COMPLETED" and by_limit[1000].epochs == 2
    assert f"trial {by_limit[1].trial_id} errored: " in proc.stdout
    assert "2 trials: 1 completed, 0 early-stopped, 1 error" in proc.stdout
    assert "search failed: 1 of 2 trials errored, all with TrainingDiverged: loss was NaN/Inf" in proc.stdout
    assert [t.trial_id for t in exp.ranked()] == [by_limit[1000].trial_id]  # the errored trial is not ranked
    assert f"trial {by_limit[1000].trial_id}" in (tmp_path / "nan" / "best_config.yaml").read_text()

    # Errored trials are the user's call on resume: --restart-errored runs them again from scratch
    # (a new trial id); the completed trial is left as it was.
    done_before = (by_limit[1000].path / "result.json").read_bytes()
    again = polsess_tune("resume", str(tmp_path / "nan"), "--restart-errored", timeout=600)
    assert again.returncode == 1, again.stdout[-3000:] + again.stderr[-3000:]
    after = {t.trial_id: t for t in load_experiment(tmp_path / "nan").trials}
    assert by_limit[1].trial_id not in after and len(after) == 2
    (restarted,) = [t for t in after.values() if t.trial_id != by_limit[1000].trial_id]
    assert restarted.status == "ERROR" and restarted.config["training"]["max_bad_batches"] == 1
    assert (by_limit[1000].path / "result.json").read_bytes() == done_before


def _poisoned_copy(demo_corpus: Path, tmp_path: Path) -> Path:
    """The demo corpus with every train mix NaN: every batch's loss is NaN."""
    corpus = tmp_path / "PolSESS_test"
    shutil.copytree(demo_corpus, corpus)
    for bad in (corpus / "train" / "mix").glob("*.wav"):
        info = sf.info(bad)
        sf.write(bad, np.full(info.frames, np.nan, dtype=np.float32), info.samplerate, subtype="FLOAT")
    return corpus


def _run_on(corpus: Path, tmp_path: Path, name: str, samples: int, max_failures: int) -> subprocess.CompletedProcess:
    """A 2-epoch search of the tiny model, 2 trials at a time, W&B off, one NaN batch ends a trial."""
    return polsess_tune("run", "--data-root", str(corpus), "--storage", str(tmp_path), "--name", name,
                        "--num-samples", str(samples), "--max-concurrent", "2", "--wandb", "disabled",
                        "--max-failures", str(max_failures), "--set", "num_epochs=2", "--set", "max_bad_batches=1",
                        *TINY_MODEL, timeout=600)


def test_trials_that_all_fail_alike_stop_the_search_and_are_not_retried(demo_corpus, tmp_path):
    proc = _run_on(_poisoned_copy(demo_corpus, tmp_path), tmp_path, "same", samples=8, max_failures=1)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "search stopped: the first 3 trials all failed with TrainingDiverged and none finished" in proc.stdout
    exp = load_experiment(tmp_path / "same")
    errored = [t for t in exp.trials if t.status == "ERROR"]
    assert len(errored) >= 3 and len(exp.trials) < 8  # stopped early: the rest never started
    state = json.loads(max((tmp_path / "same").glob("experiment_state-*.json")).read_text())
    failures = {json.loads(t)["trial_id"]: json.loads(r).get("num_failures") for t, r in state["trial_data"]}
    for trial in errored:
        # Tune retried it (it cannot be told not to), and the retry re-raised the recorded error at
        # once: the trial never got past its first epoch's first batch, and the retry did not train.
        assert failures[trial.trial_id] == 2, failures
        assert (trial.path / "not_retried.pkl").is_file() and trial.history == []
        assert "TrainingDiverged" in trial.error


def test_a_search_whose_every_trial_errors_exits_1_exports_nothing_and_restarts_once_fixed(demo_corpus, tmp_path):
    """Every trial errors on a broken corpus: exit 1, one line of why, nothing exported. Once the
    corpus is fixed, `resume --restart-errored` reruns them (new trial ids, unknown to the Optuna study
    until adopted) and the search ends well."""
    corpus = _poisoned_copy(demo_corpus, tmp_path)
    first = _run_on(corpus, tmp_path, "fixed", samples=2, max_failures=0)
    assert first.returncode == 1, first.stdout[-3000:] + first.stderr[-3000:]
    assert "search failed: 2 of 2 trials errored, all with TrainingDiverged: loss was NaN/Inf" in first.stdout
    assert "no trial finished with a score: no best config exported" in first.stdout
    assert not (tmp_path / "fixed" / "best_config.yaml").exists()
    export = polsess_tune("results", str(tmp_path / "fixed"), "--export-best", str(tmp_path / "best.yaml"))
    assert export.returncode == 2 and "every trial errored; nothing to export" in export.stderr
    assert not (tmp_path / "best.yaml").exists()

    shutil.rmtree(corpus)
    shutil.copytree(demo_corpus, corpus)  # the data is fixed
    again = polsess_tune("resume", str(tmp_path / "fixed"), "--restart-errored", timeout=600)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "KeyError" not in again.stdout + again.stderr
    exp = load_experiment(tmp_path / "fixed")
    assert len(exp.trials) == 2 and all(t.status in ("COMPLETED", "EARLY_STOPPED") for t in exp.trials)
    assert (tmp_path / "fixed" / "best_config.yaml").is_file()
