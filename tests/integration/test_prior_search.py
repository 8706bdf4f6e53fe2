"""A real search with the prior on (the default): trial 0 is the base config, every study trial says
where its config came from, and search.json records the prior it used."""

from __future__ import annotations

from tune_app.experiment import layout
from tune_app.experiment.study import load_study, trial_sources
from tune_app.space.prior import BASE, MODEL, PRIOR, RANDOM, SOURCE_ATTR


def test_trial_0_is_the_base_config_and_every_trial_has_a_source(finished_experiment):
    search = layout.read_json(finished_experiment / layout.SEARCH_FILE)
    assert search["prior"] == {"values": "base", "width": 0.25, "policy": "standing"}
    base_point = search["prior_resolved"]["base_point"]
    assert base_point["training.lr"] == 0.003 and base_point["training.grad_clip_norm"] == 5.0
    study = load_study(search, finished_experiment)
    first = min(study.trials, key=lambda t: t.number)
    assert first.user_attrs[SOURCE_ATTR] == BASE
    assert {k.replace("/", "."): v for k, v in first.params.items()} == base_point
    sources = trial_sources(search, finished_experiment)
    assert len(sources) == len(study.trials) == 6
    assert list(sources.values()).count(BASE) == 1
    assert set(sources.values()) <= {BASE, PRIOR, MODEL, RANDOM}


def test_results_show_each_trials_source(finished_experiment):
    import json

    from helpers import polsess_tune

    proc = polsess_tune("results", str(finished_experiment), "--json")
    assert proc.returncode == 0, proc.stderr
    trials = json.loads(proc.stdout)["trials"]
    assert sorted(t["source"] for t in trials).count(BASE) == 1
    assert all(t["source"] in {BASE, PRIOR, MODEL, RANDOM} for t in trials)
    lines = polsess_tune("results", str(finished_experiment)).stdout.splitlines()
    (header,) = [line for line in lines if line.startswith("trial ") and " status " in line]
    assert header.split()[:3] == ["trial", "status", "source"]
