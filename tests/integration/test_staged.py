"""A two-stage search end to end: stage 2 searches inside stage 1's ranges, around its best."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from helpers import REPO, polsess_tune, tiny

from polsess.config import flatten, load_config
from tune_app.experiment.results import load_experiment

TINY = tiny(X=None)  # X is searched


@pytest.fixture(scope="module")
def staged(demo_corpus, tmp_path_factory):
    root = tmp_path_factory.mktemp("staged")
    space = root / "staged.yaml"
    space.write_text(
        "method: bayes\nmetric: {name: val_sisdr, goal: maximize}\n"
        "early_terminate: {type: hyperband, min_iter: 1, eta: 2}\n"
        f"parameters:\n  config: {{value: {REPO / 'configs/demo.yaml'}}}\n"
        "  lr: {distribution: log_uniform_values, min: 1e-4, max: 3e-2}\n"
        "  grad_clip_norm: {distribution: uniform, min: 1.0, max: 10.0}\n"
        "  model.X: {values: [1, 2]}\n"
        "stages:\n"
        "  - {name: wide, num_samples: 5, epochs: 2, train_max_samples: 8}\n"
        "  - {name: narrow, num_samples: 3, epochs: 2, train_max_samples: null, narrow: {top_k: 3}}\n"
    )
    proc = polsess_tune("run", "--space", str(space), "--data-root", str(demo_corpus), "--storage", str(root),
                        "--name", "two", "--max-concurrent", "2", "--wandb", "disabled", "--seed", "2", *TINY,
                        base={**os.environ, "PYTHONUNBUFFERED": "1"}, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return root / "two", proc


def _space(folder: Path) -> dict:
    return json.loads((folder / "search.json").read_text())["space"]


def test_each_stage_is_an_experiment_with_its_own_fidelity(staged):
    parent, proc = staged
    wide, narrow = load_experiment(parent / "wide"), load_experiment(parent / "narrow")
    assert len(wide.trials) == 5 and len(narrow.trials) == 3
    assert {t.config["data"]["train_max_samples"] for t in wide.trials} == {8}
    assert {t.config["data"]["train_max_samples"] for t in narrow.trials} == {None}
    assert max(t.epochs for t in wide.trials) <= 2 and max(t.epochs for t in narrow.trials) <= 2
    assert "final best config" in proc.stdout
    # 8 of the corpus's 16 train rows, the same 2 epochs: half the optimizer steps of the last stage
    assert "note: stage wide trains 0.5 of the optimizer steps per trial of stage narrow" in proc.stdout
    best = narrow.best_trial()
    assert load_config(parent / "best_config.yaml") == load_config(None, flatten(best.config), env={})


def test_stage_two_ranges_sit_inside_stage_one_and_hold_its_best(staged):
    parent, _ = staged
    wide_space, narrow_space = _space(parent / "wide"), _space(parent / "narrow")
    best = flatten(load_experiment(parent / "wide").best_trial().config)
    for path, entry in narrow_space.items():
        outer = wide_space[path]
        if entry["kind"] == "categorical":
            assert set(map(repr, entry["values"])) <= set(map(repr, outer["values"]))
            assert best[path] in entry["values"]
        else:
            assert outer["low"] <= entry["low"] <= best[path] <= entry["high"] <= outer["high"], path
    narrowed = [p for p in narrow_space if narrow_space[p].get("low") is not None
                and (narrow_space[p]["low"], narrow_space[p]["high"]) != (wide_space[p]["low"], wide_space[p]["high"])]
    assert narrowed  # something actually got narrower


def test_stage_two_starts_from_stage_one_top_configs(staged):
    parent, _ = staged
    wide, narrow = load_experiment(parent / "wide"), load_experiment(parent / "narrow")
    top = [flatten(t.config)["training.lr"] for t in wide.ranked()[:3]]
    first = sorted(narrow.trials, key=lambda t: t.history[0]["timestamp"] if t.history else 0)[:3]
    assert sorted(flatten(t.config)["training.lr"] for t in first) == pytest.approx(sorted(top))


def test_the_run_says_how_well_stage_one_ranked_the_configs_stage_two_retrained(staged):
    """Kendall's tau of the top 3's wide and narrow scores, matched here by their lr, is the one printed."""
    from scipy.stats import kendalltau

    parent, proc = staged
    wide, narrow = load_experiment(parent / "wide"), load_experiment(parent / "narrow")
    by_lr = {round(flatten(t.config)["training.lr"], 12): t.best("val_sisdr", "max") for t in narrow.trials}
    pairs = [(t.best("val_sisdr", "max"), by_lr[round(flatten(t.config)["training.lr"], 12)])
             for t in wide.ranked()[:3]]
    tau = kendalltau([a for a, _ in pairs], [b for _, b in pairs]).statistic
    line = f"rank transfer wide → narrow: Kendall's tau {tau:+.2f} over its top 3 configs retrained"
    assert line in proc.stdout
    text = polsess_tune("results", str(parent), timeout=120).stdout
    assert line in text


def test_results_show_the_stages_side_by_side(staged):
    parent, _ = staged
    proc = polsess_tune("results", str(parent), "--json", timeout=120)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert [s["name"] for s in data["stages"]] == ["wide", "narrow"]
    assert data["best"]["trial_id"] == load_experiment(parent / "narrow").best_trial().trial_id
    text = polsess_tune("results", str(parent), timeout=120).stdout
    assert "== wide:" in text and "== narrow:" in text


def test_a_staged_search_can_end_with_seed_validation(demo_corpus, tmp_path):
    """`validate:` after the stages: the last stage's top 2 × 2 seeds, in the parent folder; the final
    best config is the best mean's, and `results` of the validation shows the ranking."""
    space = tmp_path / "staged.yaml"
    space.write_text(
        "method: random\nmetric: {name: val_sisdr, goal: maximize}\n"
        f"parameters:\n  config: {{value: {REPO / 'configs/demo.yaml'}}}\n"
        "  lr: {distribution: log_uniform_values, min: 1e-3, max: 1e-2}\n"
        "stages:\n"
        "  - {name: wide, num_samples: 2, epochs: 1, train_max_samples: 8}\n"
        "  - {name: narrow, num_samples: 2, epochs: 1, narrow: {top_k: 2}}\n"
        "validate: {top_k: 2, seeds: [5, 6], set: {num_epochs: 2}}\n"
    )
    proc = polsess_tune("run", "--space", str(space), "--data-root", str(demo_corpus), "--storage", str(tmp_path),
                        "--name", "sv", "--max-concurrent", "2", "--wandb", "disabled", *TINY,
                        base={**os.environ, "PYTHONUNBUFFERED": "1"}, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    parent = tmp_path / "sv"
    check = load_experiment(parent / "validate")
    narrow = load_experiment(parent / "narrow")
    assert len(check.trials) == 4 and all(t.status == "COMPLETED" and t.epochs == 2 for t in check.trials)
    assert {t.config["validation"]["source_trial"] for t in check.trials} == {t.trial_id for t in narrow.trials}
    assert {t.config["validation"]["seed"] for t in check.trials} == {5, 6}
    assert "== validate: the top 2 of narrow" in proc.stdout and "Welch's t-test" in proc.stdout
    assert (parent / "best_config.yaml").read_text() == (parent / "validate" / "best_config.yaml").read_text()
    assert (parent / "best_config.yaml").read_text().startswith("# Best mean of validate")
