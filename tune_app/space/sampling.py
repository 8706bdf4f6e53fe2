"""The Optuna side of a search: distributions, the sampler, and the first suggestions of a study.

The driver hands :func:`optuna_space` and :func:`make_sampler` to Ray's ``OptunaSearch``;
``run --dry-run`` and the pre-start checks call :func:`sample_configs` on a study of their own,
so what they show is what the search will try first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optuna

from .spec import SearchSpec


def optuna_space(spec: SearchSpec) -> dict[str, optuna.distributions.BaseDistribution]:
    """The searched parameters as Optuna distributions, keyed by config path."""
    return {path: p.to_optuna() for path, p in spec.space.items()}


def make_sampler(spec: SearchSpec, seed: int | None = None, key: Callable[[str], str] = str,
                 num_samples: int | None = None) -> optuna.samplers.BaseSampler:
    """The Optuna sampler for ``spec.method``; ``seed`` None means ``spec.seed``.

    bayes → ``spec.sampler`` (``tune.sampler``): TPE by default (with its constant liar, so trials
    running at once get distinct proposals), Optuna's GPSampler (which conditions on running trials,
    to the same end) or RandomSampler. TPE and GP start with
    ``n_startup_trials = min(10, max(2, budget // 4))`` random trials (10 when the budget is unknown),
    the budget being ``num_samples`` or else ``spec.num_samples``: Optuna's fixed 10 would make a
    run_cap: 8 "bayes" search purely random, while a quarter of the budget still gives the model a
    spread to fit.
    random → RandomSampler. grid → GridSampler over every ``values`` list (seed only shuffles order).
    ``key`` maps a config path to the parameter name the study uses (the driver's '/'-joined names).
    """
    seed = spec.seed if seed is None else seed
    if spec.method == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if spec.method == "grid":
        return optuna.samplers.GridSampler({key(path): list(p.values or ()) for path, p in spec.space.items()},
                                           seed=seed)
    budget = spec.num_samples if num_samples is None else num_samples
    startup = 10 if budget is None else min(10, max(2, budget // 4))
    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if spec.sampler == "gp":
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=startup)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, constant_liar=True)



def sample_configs(spec: SearchSpec, n: int, seed: int,
                   evaluated: list[optuna.trial.FrozenTrial] | None = None,
                   num_samples: int | None = None) -> list[dict[str, Any]]:
    """The first ``n`` suggestions of a fresh study (searched paths only), as ``run --dry-run`` shows.

    points_to_evaluate come first, as in Ray's OptunaSearch; no results are told, so a bayes search
    shows its random startup phase. A grid yields at most its size. ``evaluated``: finished trials
    (a warm start) the study holds first, as the real search's does.
    """
    if spec.method == "grid":
        n = min(n, spec.grid_size or 0)
    space = optuna_space(spec)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(directions=["maximize" if mode == "max" else "minimize"
                                                for _, mode in spec.objectives],
                                    sampler=make_sampler(spec, seed, num_samples=num_samples))
        study.add_trials(evaluated or [])
        for point in spec.points_to_evaluate:
            study.enqueue_trial(point)
        return [dict(study.ask(space).params) for _ in range(n)]
    finally:
        optuna.logging.set_verbosity(verbosity)
