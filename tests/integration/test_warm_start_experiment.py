"""Warm start from an earlier experiment folder: a real finished search (Ray wrote it) is the source."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import assert_warm_points_inside

from polsess.config import flatten
from tune_app.experiment.results import load_experiment
from tune_app.experiment.warm_start import load_warm_start
from tune_app.space import load_search

# --------------------------------------------------------------------------- TPE uses the points




def _check_experiment_source(folder: Path) -> None:
    """An experiment folder warm-starts its own search: COMPLETED trials with their last metric report."""
    exp = load_experiment(folder)
    search = json.loads((folder / "search.json").read_text())
    spec = load_search(search["file"])
    for path in list(spec.space):
        if path not in search["space"]:
            del spec.space[path]  # pinned by --set in that run
    trials = [t for t in exp.trials if t.config]
    base = flatten(trials[0].config)
    ws = load_warm_start(folder, spec, base)
    assert ws.used + sum(ws.skipped.values()) == len(exp.trials)
    statuses = exp.counts()
    assert ws.skipped.get("early-stopped", 0) == statuses.get("EARLY_STOPPED", 0)
    assert ws.skipped.get("errored", 0) == statuses.get("ERROR", 0)
    completed = [t for t in exp.trials if t.status == "COMPLETED" and t.scores(spec.metric)]
    assert ws.used == len({tuple(flatten(t.config)[p] for p in spec.space) for t in completed})
    sign = 1 if spec.mode == "max" else -1
    for t in completed:
        point = {p: flatten(t.config)[p] for p in spec.space}
        reward = ws.rewards[ws.points.index(point)]
        assert sign * t.scores(spec.metric)[-1] <= sign * reward  # the last report, or a duplicate's better one
    assert_warm_points_inside(ws, spec)


def test_experiment_folder_source(finished_experiment):
    _check_experiment_source(Path(finished_experiment))
