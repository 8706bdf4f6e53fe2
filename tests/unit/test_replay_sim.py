"""The replay benchmark's bookkeeping (benchmarks/replay_sim.py, replay_arms.py) on a synthetic table.

The simulated clock must spend the budget of trial-epochs exactly, stop trials only where the arm's
ASHA said so, and the surrogate must recover the seed noise it is told to model. No Ray start.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

from replay_arms import TuneArm, base_flat  # noqa: E402
from replay_sim import Surrogate, Table, seed_noise, simulate  # noqa: E402

from tune_app.space import load_search  # noqa: E402
from tune_app.space.prior import resolve_prior  # noqa: E402

EPOCHS = 8


def _table(n_configs: int = 40, sigma_run: float = 0.3, sigma_eps: float = 0.2, seed: int = 0) -> Table:
    """Curves that rise to a peak at lr = 3e-3 (unit 0.66), with known seed noise."""
    spec = load_search(REPO / "search_spaces" / "demo.yaml")
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n_configs):
        config = {path: p.from_unit(rng.random()) for path, p in spec.space.items()}
        quality = 4.0 - 6.0 * (spec.space["training.lr"].to_unit(config["training.lr"]) - 0.66) ** 2
        mean = quality * (1 - np.exp(-np.arange(1, EPOCHS + 1) / 3))
        for s in (1, 2):
            curve = mean + rng.normal(0, sigma_run) + rng.normal(0, sigma_eps, EPOCHS)
            seconds = [2.0 if config["model.convtasnet.B"] == 32 else 3.0] * EPOCHS
            rows.append({"config": config, "seed": s, "val_sisdr": curve.tolist(), "seconds": seconds})
    return Table(spec.space, rows, [])


@pytest.fixture(scope="module")
def surrogate() -> Surrogate:
    return Surrogate.fit(_table())


def test_seed_noise_is_read_off_the_pairs_of_seeds():
    sigma_run, sigma_eps = seed_noise(_table(n_configs=400).by_config())
    assert sigma_run == pytest.approx(0.3, abs=0.06)
    assert np.median(sigma_eps) == pytest.approx(0.2, abs=0.05)


def test_the_surrogate_ranks_held_out_configs_and_times_epochs(surrogate):
    spec = load_search(REPO / "search_spaces" / "demo.yaml")
    near, far = dict(base_flat(spec)), dict(base_flat(spec))
    near["training.lr"], far["training.lr"] = 3e-3, 3e-4
    near["training.weight_decay"] = far["training.weight_decay"] = 1e-5
    assert surrogate.final(near) > surrogate.final(far) + 1.0
    near["model.convtasnet.B"] = 64
    assert surrogate.epoch_seconds(near) == pytest.approx(3.0, rel=0.15)


@pytest.mark.parametrize("budget", [16, 41, 80])
def test_the_budget_is_spent_exactly_and_stops_follow_asha(surrogate, budget):
    spec = load_search(REPO / "search_spaces" / "demo.yaml")
    arm = TuneArm(spec, seed=1, trials_expected=budget // 4)
    trace = simulate(arm, surrogate, budget=budget, workers=2, seed=1, max_t=EPOCHS)
    assert trace.spent == budget and len(trace.curve) == budget
    grace = spec.scheduler.grace_period
    assert trace.stops and all(grace <= epoch < EPOCHS for _, epoch in trace.stops)
    # Every trial the study holds ended: told its best epoch (completed) or PRUNED (stopped or cut).
    states = {t.state.name for t in arm.study.trials}
    assert states <= {"COMPLETE", "PRUNED"} and len(arm.study.trials) == trace.trials
    # The epochs each trial reported add up to the budget.
    assert sum(len(t.intermediate_values) for t in arm.study.trials) == budget


def test_simulations_are_seeded_and_the_prior_arm_starts_at_the_base(surrogate):
    spec = load_search(REPO / "search_spaces" / "demo.yaml")
    prior = resolve_prior(spec.space, spec.prior, base_flat(spec), spec.method)

    def run(seed):
        arm = TuneArm(spec, seed=seed, trials_expected=10, prior=prior)
        return arm, simulate(arm, surrogate, budget=40, workers=2, seed=seed, max_t=EPOCHS)

    (arm_a, a), (_, b) = run(5), run(5)
    assert a.curve == b.curve and a.stops == b.stops
    assert arm_a.sources["t0000"] == "base"
    assert arm_a.study.trials[0].params == prior.base_point
    assert math.isfinite(a.final)
