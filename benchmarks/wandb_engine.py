"""W&B's own sweep engine, driven locally: the PyPI package ``sweeps`` (the code behind ``wandb sweep``
and ``wandb agent``), with no W&B server.

``sweeps.next_run(config, runs)`` proposes the next run for bayes/random/grid and
``sweeps.stop_runs(config, runs)`` is W&B's hyperband early termination; :class:`Engine` keeps the
runs the way W&B's server would and feeds both. A benchmark dependency only: it is installed into
``benchmarks/.sweeps-env`` (``pip install --target``, gitignored), never into the runtime.

Quirks handled here (sweeps 0.2.0 under pydantic 2): ``SweepRun``'s fields are set by their aliases
(``summaryMetrics=``, ``sampledHistory=``; the field names are silently dropped); a YAML ``3e-4`` is
read as a string, which ``next_run`` refuses, so numbers are converted first; and nested
``parameters:`` blocks are dropped silently, so they are flattened to dotted names (``model.B``),
which polsess.config resolves like the sweep loader does.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

ENV = Path(__file__).resolve().parent / ".sweeps-env"
PACKAGES = ("sweeps==0.2.0", "jsonref")  # its other dependencies (pydantic, jsonschema, scipy, sklearn) are ours
ENGINE_KEYS = ("method", "metric", "parameters", "early_terminate")


def load_sweeps(install: bool = True) -> Any | None:
    """The ``sweeps`` module from ``benchmarks/.sweeps-env`` (installed there first if ``install``)."""
    if str(ENV) not in sys.path:
        sys.path.insert(0, str(ENV))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydantic 2's notes on sweeps' v1-style models
            return importlib.import_module("sweeps")
    except ImportError:
        if not install:
            return None
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--target", str(ENV), "--no-deps", *PACKAGES],
                   check=True)
    importlib.invalidate_caches()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return importlib.import_module("sweeps")


def _numbers(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _flat_parameters(block: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, spec in block.items():
        if isinstance(spec, dict) and set(spec) == {"parameters"}:
            out.update(_flat_parameters(spec["parameters"], f"{prefix}{name}."))
        else:
            out[f"{prefix}{name}"] = spec
    return out


def engine_config(sweep: dict[str, Any]) -> dict[str, Any]:
    """A W&B sweep file's dict as ``sweeps`` takes it: engine keys only, numbers as numbers, flat names."""
    config = {k: _numbers(sweep[k]) for k in ENGINE_KEYS if k in sweep}
    config["parameters"] = _flat_parameters(config.get("parameters", {}))
    return config


class Engine:
    """The runs of one W&B sweep, kept as W&B's server keeps them, for ``next_run`` and ``stop_runs``."""

    def __init__(self, sweep: dict[str, Any], seed: int) -> None:
        import numpy as np

        self.sweeps = load_sweeps()
        # Validated (and its defaults filled) once, as W&B's server does when the sweep is created;
        # validating again on every next_run cost a third of a simulated search (jsonschema).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.config = self.sweeps.SweepConfig(engine_config(sweep))
        self.metric = self.config["metric"]["name"]
        self.runs: dict[str, Any] = {}
        np.random.seed(seed)  # W&B's bayes and random search draw from numpy's global generator

    def propose(self, name: str) -> dict[str, Any]:
        """The next run's parameters, ``{sweep parameter name: value}`` (constants included)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            proposal = self.sweeps.next_run(self.config, list(self.runs.values()), validate=False)
        params = {k: _plain(v["value"]) for k, v in proposal.config.items()}
        self.runs[name] = self.sweeps.SweepRun(name=name, state=self.sweeps.RunState.running, config=proposal.config,
                                               summaryMetrics={}, sampledHistory=[])
        return params

    def add(self, name: str, params: dict[str, Any]) -> None:
        """A run of the caller's choosing, ``{sweep parameter name: value}``: the users' workaround for
        a baseline (wandb#1809), their base config run as the sweep's first run, which bayes then sees."""
        config = {k: {"value": v} for k, v in params.items()}
        self.runs[name] = self.sweeps.SweepRun(name=name, state=self.sweeps.RunState.running, config=config,
                                               summaryMetrics={}, sampledHistory=[])

    def report(self, name: str, metrics: dict[str, float]) -> None:
        run = self.runs[name]
        run.history.append(dict(metrics))
        run.summary_metrics = dict(metrics)  # W&B's summary: the last value logged

    def finish(self, name: str, stopped: bool = False) -> None:
        run = self.runs[name]
        run.state = self.sweeps.RunState.finished
        run.stopped = stopped

    def to_stop(self) -> list[str]:
        """Names of running runs W&B's early termination (``stop_runs``) would stop now."""
        running = [r for r in self.runs.values() if r.state == self.sweeps.RunState.running]
        if not running or "early_terminate" not in self.config:
            return []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return [r.name for r in self.sweeps.stop_runs(self.config, list(self.runs.values()))]


def _plain(value: Any) -> Any:
    """numpy scalars (what sweeps returns) as Python numbers, so they pass polsess.config."""
    return value.item() if hasattr(value, "item") else value
