"""The W&B sweep engine adapter of benchmarks/vs_wandb_sweeps.py, with the real ``sweeps`` package:
its proposals lie inside the sweep's space, and its stop decisions are ``sweeps.stop_runs``'s."""

from __future__ import annotations

import sys

import pytest
import yaml
from helpers import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
from wandb_engine import ENV, Engine, engine_config, load_sweeps

from polsess.config import resolve_name
from tune_app.space import load_search

sweeps = load_sweeps(install=False)
pytestmark = pytest.mark.skipif(sweeps is None, reason=f"the benchmark environment is absent ({ENV}); "
                                "`python benchmarks/vs_wandb_sweeps.py` installs it")
DEMO = REPO / "search_spaces/demo.yaml"


def test_the_engine_config_is_what_sweeps_accepts():
    config = engine_config(yaml.safe_load(DEMO.read_text()))
    assert config["parameters"]["lr"]["min"] == 3e-4  # YAML's "3e-4" string, as a number
    assert "model.B" in config["parameters"] and "model" not in config["parameters"]  # nested, flattened


@pytest.mark.parametrize("seed", [0, 1])
def test_proposals_lie_inside_the_sweeps_space(seed):
    spec = load_search(DEMO, cwd=REPO)
    engine = Engine(yaml.safe_load(DEMO.read_text()), seed=seed)
    for i in range(12):
        params = engine.propose(f"r{i}")
        engine.report(f"r{i}", {"val_sisdr": float(i % 5), "epoch": 1})
        engine.finish(f"r{i}")
        searched = {resolve_name(k): v for k, v in params.items() if k != "config"}
        assert set(searched) == set(spec.space)
        for path, value in searched.items():
            assert spec.space[path].contains(value), (path, value)


def test_stop_decisions_are_sweeps_stop_runs():
    engine = Engine(yaml.safe_load(DEMO.read_text()), seed=0)
    for name, score in (("good", 3.0), ("mid", 2.0), ("bad", 1.0)):
        engine.propose(name)
        engine.report(name, {"val_sisdr": score})
        engine.report(name, {"val_sisdr": score + 0.1})
    engine.finish("good")
    direct = [r.name for r in sweeps.stop_runs(engine.config, list(engine.runs.values()))]
    assert engine.to_stop() == direct == ["bad"]  # hyperband at 2 epochs, eta 2: the worst running run


@pytest.mark.parametrize("min_iter", [1, 2, 3])
def test_asha_judges_a_trial_at_the_epoch_w_and_bs_hyperband_first_judges_a_run(min_iter, tmp_path):
    """``early_terminate: {min_iter: m}`` becomes grace period m + 1: `sweeps` stops no run with m epochs
    and stops the worst once the runs have m + 1 (it reads history[m], 0-based)."""
    sweep = yaml.safe_load(DEMO.read_text())
    sweep["early_terminate"]["min_iter"] = min_iter
    sweep["parameters"]["config"]["value"] = str(REPO / "configs/demo.yaml")
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(sweep))
    grace = load_search(tmp_path / "s.yaml").scheduler.grace_period
    engine = Engine(sweep, seed=0)
    scores = {f"r{i}": float(i) for i in range(6)}
    for name in scores:
        engine.propose(name)
    first_judged = None
    for epoch in range(1, min_iter + 3):
        for name, score in scores.items():
            engine.report(name, {"val_sisdr": score + 0.1 * epoch, "epoch": epoch})
        if engine.to_stop():
            first_judged = epoch
            break
    assert first_judged == grace == min_iter + 1
