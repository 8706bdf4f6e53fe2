"""End to end: `polsess-tune run` on a real corpus with real Ray, read back from disk.

One small search (module-scoped) feeds most checks: W&B offline runs read from their .wandb
files, Tune's result files, our results export, and the Optuna study Ray pickled.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import EXAMPLES, REPO, SECRET_ENV, TINY_MODEL, needs_shared, polsess_tune
from optuna.trial import TrialState

from polsess.config import flatten, load_config, to_dict
from tune_app.experiment.results import load_experiment
from tune_app.ext.wandb_offline import find_offline_runs, metric_history

SWEEPS = EXAMPLES / "sweeps"
SECRET, TOKEN = SECRET_ENV["WANDB_API_KEY"], SECRET_ENV["MY_SERVICE_TOKEN"]


@pytest.fixture(scope="module")
def search(finished_search):
    return finished_search


def test_run_ends_with_a_top_table_and_the_best_config(search):
    folder, proc = search
    out = proc.stdout
    assert "best config:" in out and str(folder / "best_config.yaml") in out
    assert "6 trials:" in out
    table_lines = [line for line in out.splitlines() if line.startswith(("trial ", "trial\t"))]
    assert table_lines, out[-2000:]
    exp = load_experiment(folder)
    best = exp.best_trial()
    exported = load_config(folder / "best_config.yaml")
    assert to_dict(exported) == to_dict(load_config(None, flatten(best.config), env={}))
    assert (folder / "results.csv").read_text().count("\n") == 7  # header + 6 trials


def test_every_trial_has_a_wandb_run_with_its_config_and_history(search):
    folder, _ = search
    exp = load_experiment(folder)
    runs = {r.run_id: r for r in find_offline_runs(folder / "wandb-runs")}
    assert set(runs) == {t.trial_id for t in exp.trials}
    for trial in exp.trials:
        run = runs[trial.trial_id]
        assert run.group == "e2e"
        for section in ("data", "model", "training"):
            assert run.config[section] == trial.config[section]
        logged = [v for _, v in metric_history(run, "val_sisdr")]
        assert logged == pytest.approx(trial.scores("val_sisdr"))
        assert [int(s) for s, _ in metric_history(run, "epoch")] == list(range(1, trial.epochs + 1))
        # Completed and early-stopped runs both exit 0: the summary and the tags tell them apart.
        state = trial.status.lower().replace("_", "-")
        assert (run.summary.get("end_state"), run.summary.get("epochs")) == (state, trial.epochs), run.run_id
        assert state in run.tags


def test_asha_stopped_some_trials_and_results_json_agrees_with_wandb(search):
    folder, _ = search
    proc = polsess_tune("results", str(folder), "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    statuses = [t["status"] for t in data["trials"]]
    assert "EARLY_STOPPED" in statuses and "COMPLETED" in statuses
    runs = {r.run_id: r for r in find_offline_runs(folder / "wandb-runs")}
    for t in data["trials"]:
        history = [v for _, v in metric_history(runs[t["trial_id"]], "val_sisdr")]
        assert t["best_val_sisdr"] == pytest.approx(max(history))
        assert t["last_val_sisdr"] == pytest.approx(history[-1])
        assert t["epochs"] == len(history)
        assert t["status"] != "EARLY_STOPPED" or t["epochs"] < 4
        assert Path(t["checkpoint"]).is_dir()
    best = max(data["trials"], key=lambda t: t["best_val_sisdr"])
    assert data["best"]["trial_id"] == best["trial_id"]


def test_trials_reuse_worker_processes(search):
    """reuse_actors: a trial slot keeps its worker (torch and the trainable already imported), so the six
    trials of a search two at a time (the `finished_search` fixture) run in two worker processes."""
    folder, _ = search
    pids = {json.loads(line)["pid"] for f in folder.glob("trial_*/result.json") for line in f.read_text().splitlines()}
    assert len(pids) == 2, pids


def test_early_stopped_trials_reach_optuna_as_pruned(search):
    folder, _ = search
    exp = load_experiment(folder)
    (state_file,) = folder.glob("searcher-state-*.pkl")
    state = pickle.loads(state_file.read_bytes())
    study, ot_trials = state["_ot_study"], state["_ot_trials"]
    by_number = {t.number: t for t in study.trials}
    seen = set()
    for trial in exp.trials:
        frozen = by_number[ot_trials[trial.trial_id].number]
        want = TrialState.PRUNED if trial.status == "EARLY_STOPPED" else TrialState.COMPLETE
        assert frozen.state == want, (trial.trial_id, trial.status, frozen.state)
        assert list(frozen.intermediate_values.values()) == pytest.approx(trial.scores("val_sisdr"))
        seen.add(frozen.state)
    assert seen == {TrialState.PRUNED, TrialState.COMPLETE}


def test_no_secret_reaches_the_experiment_folder_or_the_console(search):
    folder, proc = search
    assert SECRET not in proc.stdout + proc.stderr and TOKEN not in proc.stdout + proc.stderr
    for path in folder.rglob("*"):
        if path.is_file():
            blob = path.read_bytes()
            assert SECRET.encode() not in blob and TOKEN.encode() not in blob, path


def test_no_secret_reaches_rays_session_logs(search, search_ray_tmpdir):
    """Ray's own WandbLoggerCallback puts WANDB_API_KEY in the logging actors' runtime_env, and Ray's
    runtime-env agent logs every runtime_env it creates: ours must not."""
    files = [p for p in search_ray_tmpdir.rglob("*") if p.is_file() and not p.is_symlink()]
    assert any(p.name == "runtime_env_agent.log" for p in files), "no Ray session logs found"
    for path in files:
        try:
            blob = path.read_bytes()
        except OSError:  # sockets and the like
            continue
        assert SECRET.encode() not in blob and TOKEN.encode() not in blob, path


def test_results_export_best_writes_a_trainable_config(search, tmp_path):
    folder, _ = search
    out = tmp_path / "best.yaml"
    proc = polsess_tune("results", str(folder), "--export-best", str(out))
    assert proc.returncode == 0, proc.stderr
    assert load_config(out) == load_config(folder / "best_config.yaml")
    table = polsess_tune("results", str(folder), "--top", "3")
    assert table.returncode == 0
    lines = table.stdout.strip().splitlines()
    assert lines[0].startswith("trial") and lines[4].startswith("6 trials:")  # header, 3 rows, summary
    assert "parameter importance" in table.stdout and "training.lr" in table.stdout
    assert "6 finished trials; with fewer than 10, a hint rather than a measurement" in table.stdout

    # Nothing a user made is overwritten: the same export again needs --force.
    out.write_text("# my edits\n")
    again = polsess_tune("results", str(folder), "--export-best", str(out))
    assert again.returncode == 2 and "--force" in again.stderr and out.read_text() == "# my edits\n"
    assert polsess_tune("results", str(folder), "--export-best", str(out), "--force").returncode == 0
    assert load_config(out) == load_config(folder / "best_config.yaml")


def test_the_local_clusters_token_file_is_private(search):
    token = Path.home() / ".ray" / "auth_token"
    if not token.exists():
        pytest.skip("this Ray wrote no token file for a local cluster")
    assert token.stat().st_mode & 0o077 == 0, oct(token.stat().st_mode)


def test_results_into_a_closed_pipe_ends_quietly(search):
    folder, _ = search
    # `true` exits without reading, so every write of `results` meets a closed pipe.
    proc = subprocess.run(f"{sys.executable} -m tune_app.cli results {folder} --json | true", shell=True, cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert "BrokenPipeError" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


@needs_shared
def test_a_research_sweep_runs_for_real_when_made_tiny(demo_corpus, tmp_path):
    sweep = SWEEPS / "3-hyperparam-opt/convtasnet/stage1.yaml"
    proc = polsess_tune(
        "run", "--space", str(sweep), "--data-root", str(demo_corpus), "--storage", str(tmp_path),
        "--name", "stage1", "--num-samples", "2", "--max-concurrent", "2", "--wandb", "disabled",
        "--set", "num_epochs=2", "--set", "train_max_samples=8", *TINY_MODEL,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    exp = load_experiment(tmp_path / "stage1")
    assert len(exp.trials) == 2 and all(t.epochs >= 1 for t in exp.trials)
    cfg = exp.trials[0].config
    assert cfg["data"]["task"] == "SB" and cfg["training"]["early_stopping_patience"] == 10
    assert cfg["training"]["curriculum_learning"][0]["variants"] == ["C", "R"]


def test_evaluate_takes_the_checkpoint_folder_results_names(search, demo_corpus):
    folder, proc = search
    info = json.loads(polsess_tune("results", str(folder), "--json").stdout)
    best = next(t for t in info["trials"] if t["trial_id"] == info["best"]["trial_id"])
    ckpt = Path(best["checkpoint"])
    assert ckpt.is_dir() and ckpt.name.startswith("checkpoint_")
    # The best checkpoint is the best epoch's: it scores what the search ranked the trial by.
    (trial,) = [t for t in load_experiment(folder).trials if t.trial_id == best["trial_id"]]
    best_epoch = max(trial.history, key=lambda r: r["val_sisdr"])["epoch"]
    assert torch.load(ckpt / "trainer.pt", weights_only=False)["epoch"] == best_epoch
    assert f"best: trial {best['trial_id']}" in proc.stdout and f"polsess-tune evaluate {ckpt}" in proc.stdout
    table = polsess_tune("results", str(folder))
    assert f"checkpoint {ckpt}" in table.stdout
    scored = polsess_tune("evaluate", str(ckpt), "--data-root", str(demo_corpus), "--subset", "val", "--json")
    assert scored.returncode == 0, scored.stderr
    result = json.loads(scored.stdout)
    assert result["checkpoint"] == str(ckpt / "trainer.pt")
    assert result["validation"]["validation_variants"] == ["SER", "SE"]


def test_the_sampler_a_sweep_file_names_is_the_one_ray_runs(demo_corpus, tmp_path):
    """tune: {sampler: gp} reaches Ray's OptunaSearch; the trials it ran two at a time got distinct configs."""
    text = (REPO / "search_spaces/demo.yaml").read_text().replace("  seed: 0\n", "  seed: 0\n  sampler: gp\n")
    assert "sampler: gp" in text
    sweep = tmp_path / "gp.yaml"
    sweep.write_text(text.replace("value: configs/demo.yaml", f"value: {REPO / 'configs/demo.yaml'}"))
    proc = polsess_tune("run", "--space", str(sweep), "--data-root", str(demo_corpus), "--storage", str(tmp_path),
                        "--name", "gp", "--num-samples", "4", "--max-concurrent", "2", "--wandb", "disabled",
                        "--set", "num_epochs=1", *TINY_MODEL)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (state_file,) = (tmp_path / "gp").glob("searcher-state-*.pkl")
    sampler = pickle.loads(state_file.read_bytes())["_sampler"].inner  # inside the prior's sampler
    assert type(sampler).__name__ == "GPSampler" and sampler._n_startup_trials == 2  # a quarter of 4, at least 2
    configs = [json.dumps(flatten(t.config), sort_keys=True) for t in load_experiment(tmp_path / "gp").trials]
    assert len(configs) == len(set(configs)) == 4
    assert json.loads((tmp_path / "gp" / "search.json").read_text())["sampler"] == "gp"
