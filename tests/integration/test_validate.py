"""`polsess-tune validate` for real: a finished demo search's top 2 configs × 2 seeds as Ray Tune
trials; the report, the W&B runs and best_config.yaml agree."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml
from helpers import REPO

from polsess.config import flatten, load_config
from tune_app.experiment import validation
from tune_app.experiment.results import load_experiment
from tune_app.ext.wandb_offline import find_offline_runs, metric_history


def test_validate_retrains_the_top_two_with_two_seeds(finished_search, tmp_path: Path):
    source, _ = finished_search
    proc = subprocess.run(
        [sys.executable, "-m", "tune_app.cli", "validate", str(source), "--top", "2", "--seeds", "7,8",
         "--storage", str(tmp_path), "--name", "v", "--wandb", "offline", "--max-concurrent", "2",
         "--set", "num_epochs=2"],
        cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"}, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    folder = tmp_path / "v"
    exp = load_experiment(folder)
    top = [t.trial_id for t in load_experiment(source).ranked() if t.finished][:2]
    assert len(exp.trials) == 4 and all(t.status == "COMPLETED" and t.epochs == 2 for t in exp.trials)
    origins = sorted((t.config["validation"]["source_trial"], t.config["validation"]["seed"]) for t in exp.trials)
    assert origins == sorted((s, seed) for s in top for seed in (7, 8))
    for t in exp.trials:
        assert t.config["training"]["seed"] == t.config["validation"]["seed"]  # the seed is the one trained with

    ranked = validation.scores_by_config(exp)
    assert [c.source_trial for c in ranked] and {c.source_trial for c in ranked} == set(top)
    assert f"1     {ranked[0].source_trial}" in proc.stdout and validation.verdict(ranked, "val_sisdr") in proc.stdout
    # One verdict: the only best named is the config ranked first, the one best_config.yaml holds
    bests = [line for line in proc.stdout.splitlines() if line.startswith("best")]
    assert len(bests) == 2 and bests[0].startswith(f"best: trial {ranked[0].source_trial}'s config"), bests
    assert bests[1] == f"best config (best mean): {folder / 'best_config.yaml'}", bests
    shown = subprocess.run([sys.executable, "-m", "tune_app.cli", "results", str(folder)], cwd=REPO,
                           capture_output=True, text=True, timeout=300)
    assert [line for line in shown.stdout.splitlines() if line.startswith("best")] == bests[:1], shown.stdout

    runs = {r.run_id: r for r in find_offline_runs(folder / "wandb-runs")}
    assert set(runs) == {t.trial_id for t in exp.trials}
    for t in exp.trials:
        run = runs[t.trial_id]
        origin = t.config["validation"]
        assert {f"source-trial:{origin['source_trial']}", f"seed:{origin['seed']}", "validation"} <= set(run.tags)
        assert run.config["validation"]["seed"] == origin["seed"]
        best_logged = max(v for _, v in metric_history(run, "val_sisdr"))
        by_seed = next(c for c in ranked if c.source_trial == origin["source_trial"]).scores
        assert best_logged == by_seed[origin["seed"]]

    best = folder / "best_config.yaml"
    header = best.read_text().splitlines()[0]
    assert f"trial {ranked[0].source_trial}'s config" in header and f"{ranked[0].mean:.3f}" in header
    want = flatten(next(t for t in load_experiment(source).trials if t.trial_id == ranked[0].source_trial).config)
    got = flatten(yaml.safe_load(best.read_text()))
    assert got["training.num_epochs"] == 2  # --set applies to every validated config
    assert {k: v for k, v in got.items() if k not in ("training.num_epochs", "training.seed")} == \
        {k: v for k, v in want.items() if k not in ("training.num_epochs", "training.seed")}
    load_config(best)  # trainable as it is
    # `results --export-best` of the validation writes that same config, not the single best run's.
    exported = tmp_path / "exported.yaml"
    proc = subprocess.run([sys.executable, "-m", "tune_app.cli", "results", str(folder), "--export-best",
                           str(exported)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert flatten(yaml.safe_load(exported.read_text())) == got
    assert exported.read_text().splitlines()[0] == header and "--config exported.yaml" in exported.read_text()
