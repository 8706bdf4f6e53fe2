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
