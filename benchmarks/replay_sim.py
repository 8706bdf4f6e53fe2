"""The replay benchmark's parts: the table of real curves, a surrogate fitted on it, and a simulated
clock on which each engine's real decision code runs a search.

- :class:`Table` — ``benchmarks/data/replay_curves.json.gz`` (``replay_curves.py``): per (config,
  seed) the per-epoch val SI-SDR and seconds of a real training.
- :class:`Surrogate` — config → per-epoch mean (a GP per epoch over the unit-scaled parameters,
  scikit-learn's ``GaussianProcessRegressor``, Matérn + white noise) and the seed spread: a run's
  curve is ``mean + offset + ε_epoch`` with the offset shared by all its epochs (a bad seed stays
  bad) and ε independent, both normal, their variances read off the two seeds of every config
  (var(y₁−y₂) = 2(σ_run² + σ_ε²), cov across epochs = 2σ_run²). Epoch seconds: a GP on log seconds.
- :func:`simulate` — W workers on a simulated clock. A free worker asks its arm for a config; each
  epoch takes the surrogate's seconds; every epoch is reported to the arm, which says continue or
  stop; the search ends when the budget of trial-epochs is spent (running trials are cut there, as
  ``--budget-epochs`` cuts them). The arms are the engines' own code: polsess-tune's sampler as
  ``tune_app.space`` builds it (with or without the prior) and its ``ResumableASHA`` fed trial
  stand-ins; W&B's ``sweeps`` engine (bayes + hyperband, ``wandb_engine.Engine``); no Ray start.

A search's quality at any moment is the surrogate's mean final-epoch score of its incumbent (the
config with the best score seen so far): what retraining the exported config would give, free of
the noise that flatters whoever tried more seeds of luck.
"""

from __future__ import annotations

import gzip
import heapq
import json
import math
import random
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from tune_app.space.param import Param

TABLE = Path(__file__).resolve().parent / "data" / "replay_curves.json.gz"


# --------------------------------------------------------------------------- the table


@dataclass
class Table:
    params: dict[str, Param]  # config path → parameter, in the table's order
    rows: list[dict[str, Any]]  # {"config": {path: value}, "seed", "val_sisdr": [..], "seconds": [..]}
    provenance: list[dict[str, Any]]  # one entry per piece of the table (replay_curves.py)

    @classmethod
    def load(cls, path: Path = TABLE) -> Table:
        with gzip.open(path, "rt") as f:
            raw = json.load(f)
        params = {p: Param.from_dict(p, info) for p, info in raw["params"].items()}
        provenance = raw.get("provenance", [])
        return cls(params, raw["rows"], provenance if isinstance(provenance, list) else [provenance])

    @property
    def epochs(self) -> int:
        return max(len(r["val_sisdr"]) for r in self.rows)

    def unit(self, config: dict[str, Any]) -> np.ndarray:
        """A config on the unit cube, in :attr:`params` order (:meth:`Param.to_unit`)."""
        return np.array([p.to_unit(config[path]) for path, p in self.params.items()])

    def by_config(self) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
        """The full-length rows grouped by config: ``[(config, [row per seed])]``."""
        groups: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
        for row in self.rows:
            if len(row["val_sisdr"]) < self.epochs:
                continue
            key = json.dumps(row["config"], sort_keys=True)
            groups.setdefault(key, (row["config"], []))[1].append(row)
        return list(groups.values())


# --------------------------------------------------------------------------- the surrogate


@dataclass
class Surrogate:
    """config → per-epoch mean curve, seed noise, seconds per epoch (see the module docstring)."""

    table: Table
    sigma_run: float = 0.0
    sigma_eps: np.ndarray = field(default_factory=lambda: np.zeros(0))
    _curve: Any = None
    _seconds: Any = None

    @classmethod
    def fit(cls, table: Table, configs: list[int] | None = None) -> Surrogate:
        """Fitted on the table's configs (those with index in ``configs``; all when None)."""
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        groups = table.by_config()
        chosen = [groups[i] for i in (configs if configs is not None else range(len(groups)))]
        x = np.array([table.unit(cfg) for cfg, _ in chosen])
        curves = np.array([np.mean([r["val_sisdr"] for r in rows], axis=0) for _, rows in chosen])
        secs = np.array([math.log(np.mean([np.median(r["seconds"]) for r in rows])) for _, rows in chosen])
        kernel = ConstantKernel(1.0) * Matern(length_scale=np.full(x.shape[1], 0.3), nu=2.5) + WhiteKernel(0.1)
        with warnings.catch_warnings():  # the optimiser's bound notes on small tables
            warnings.simplefilter("ignore")
            curve = GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=2, random_state=0)
            curve.fit(x, curves)
            seconds = GaussianProcessRegressor(kernel, normalize_y=True, random_state=0).fit(x, secs)
        sigma_run, sigma_eps = seed_noise(chosen)
        return cls(table, sigma_run, sigma_eps, curve, seconds)

    def mean_curve(self, config: dict[str, Any]) -> np.ndarray:
        return np.asarray(self._curve.predict(self.table.unit(config)[None, :]))[0]

    def final(self, config: dict[str, Any]) -> float:
        return float(self.mean_curve(config)[-1])

    def epoch_seconds(self, config: dict[str, Any]) -> float:
        return float(math.exp(self._seconds.predict(self.table.unit(config)[None, :])[0]))

    def draw_curve(self, config: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        """One training's curve: the mean plus a run offset and per-epoch noise."""
        mean = self.mean_curve(config)
        return mean + rng.normal(0.0, self.sigma_run) + rng.normal(0.0, self.sigma_eps)


def seed_noise(groups: list[tuple[dict[str, Any], list[dict[str, Any]]]]) -> tuple[float, np.ndarray]:
    """(σ_run, σ_ε per epoch) from the differences d between the two seeds of each config.

    Robust to the odd config whose seeds part ways (one diverges early): the per-epoch variance
    σ_run² + σ_ε² is var(d)/2 estimated from the median absolute deviation, and the share of it that
    a run carries through all its epochs is ρ, the median correlation of d between epochs; σ_run² is
    ρ times the smallest per-epoch variance, so every σ_ε² stays positive.
    """
    diffs = np.array([np.asarray(rows[0]["val_sisdr"]) - np.asarray(rows[1]["val_sisdr"])
                      for _, rows in groups if len(rows) >= 2])
    if len(diffs) < 3:
        return 0.0, np.zeros(len(groups[0][1][0]["val_sisdr"]))
    mad = np.median(np.abs(diffs - np.median(diffs, axis=0)), axis=0)
    var = (1.4826 * mad) ** 2 / 2  # σ_run² + σ_ε², per epoch
    corr = np.corrcoef(diffs.T)
    rho = float(np.clip(np.median(corr[~np.eye(len(corr), dtype=bool)]), 0.0, 0.95))
    run_var = rho * float(var.min())
    return math.sqrt(run_var), np.sqrt(np.maximum(var - run_var, 1e-6))


def held_out_spearman(table: Table, fraction: float = 0.2, seed: int = 0) -> tuple[float, int]:
    """Spearman of the surrogate's final-epoch mean against the table's on held-out configs."""
    from scipy.stats import spearmanr

    groups = table.by_config()
    order = list(range(len(groups)))
    random.Random(seed).shuffle(order)
    n_out = max(3, round(len(groups) * fraction))
    held, kept = order[:n_out], order[n_out:]
    sur = Surrogate.fit(table, kept)
    predicted = [sur.final(groups[i][0]) for i in held]
    observed = [float(np.mean([r["val_sisdr"][-1] for r in groups[i][1]])) for i in held]
    return float(spearmanr(predicted, observed).statistic), n_out


# --------------------------------------------------------------------------- arms and the clock


class Arm(Protocol):
    """One engine's decision code: propose a config, judge each epoch, learn from the end."""

    def propose(self, name: str) -> dict[str, Any]: ...

    def report(self, name: str, epoch: int, value: float) -> set[str]:
        """The running trials to stop now (W&B's hyperband may name others than ``name``)."""
        ...

    def finish(self, name: str, completed: bool) -> None: ...


@dataclass
class Trace:
    """What one simulated search did: per trial-epoch spent, the incumbent's true final score."""

    spent: int = 0
    trials: int = 0
    incumbent: dict[str, Any] | None = None
    best_seen: float = -math.inf
    curve: list[float] = field(default_factory=list)  # index k: after k + 1 trial-epochs
    stops: list[tuple[str, int]] = field(default_factory=list)  # (trial, epoch) of each early stop
    sources: dict[str, str] = field(default_factory=dict)

    def epochs_to(self, target: float) -> float:
        """Trial-epochs spent when the incumbent first reached ``target`` (inf if never)."""
        for k, value in enumerate(self.curve):
            if value >= target:
                return float(k + 1)
        return math.inf

    @property
    def final(self) -> float:
        return self.curve[-1] if self.curve else -math.inf


def simulate(arm: Arm, surrogate: Surrogate, budget: int, workers: int, seed: int, max_t: int) -> Trace:
    """Run one search on the simulated clock until ``budget`` trial-epochs are spent."""
    rng = np.random.default_rng(seed)
    trace = Trace()
    clock: list[tuple[float, int, str]] = []  # (time the epoch ends, tie-break, trial)
    running: dict[str, dict[str, Any]] = {}
    tick = 0

    def start(now: float) -> None:
        nonlocal tick
        name = f"t{trace.trials:04d}"
        trace.trials += 1
        config = arm.propose(name)
        running[name] = {"config": config, "curve": surrogate.draw_curve(config, rng), "epoch": 0,
                         "seconds": surrogate.epoch_seconds(config)}
        tick += 1
        heapq.heappush(clock, (now + running[name]["seconds"], tick, name))

    for _ in range(workers):
        start(0.0)
    while trace.spent < budget and clock:
        now, _, name = heapq.heappop(clock)
        if name not in running:
            continue  # stopped while this epoch was under way
        run = running[name]
        run["epoch"] += 1
        value = float(run["curve"][run["epoch"] - 1])
        trace.spent += 1
        if value > trace.best_seen:
            trace.best_seen, trace.incumbent = value, run["config"]
        trace.curve.append(surrogate.final(trace.incumbent))
        stops = arm.report(name, run["epoch"], value) & set(running)
        if run["epoch"] >= max_t:
            stops.add(name)
        for ended in sorted(stops):
            epoch = running[ended]["epoch"]
            if epoch < max_t:
                trace.stops.append((ended, epoch))
            arm.finish(ended, completed=epoch >= max_t)
            del running[ended]
            if trace.spent < budget:
                start(now)
        if name in running:
            tick += 1
            heapq.heappush(clock, (now + run["seconds"], tick, name))
    for name in list(running):  # cut by the budget, as --budget-epochs cuts them
        arm.finish(name, completed=False)
    return trace
