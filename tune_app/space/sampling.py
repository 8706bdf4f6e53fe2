"""The Optuna side of a search: distributions, the sampler, and the first suggestions of a study.

The driver hands :func:`optuna_space` and :func:`make_sampler` to Ray's ``OptunaSearch``;
``run --dry-run`` and the pre-start checks call :func:`sample_configs` on a study of their own,
so what they show is what the search will try first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optuna

from .prior import Prior, PriorSampler, resolve_prior
from .spec import SearchSpec


def optuna_space(spec: SearchSpec) -> dict[str, optuna.distributions.BaseDistribution]:
    """The searched parameters as Optuna distributions, keyed by config path."""
    return {path: p.to_optuna() for path, p in spec.space.items()}


def make_sampler(spec: SearchSpec, seed: int | None = None, key: Callable[[str], str] = str,
                 num_samples: int | None = None, prior: Prior | None = None) -> optuna.samplers.BaseSampler:
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
    ``prior`` (:func:`.prior.resolve_prior`): the sampler is wrapped in a :class:`.prior.PriorSampler`;
    the caller enqueues ``prior.base_point`` as the first trial.
    """
    seed = spec.seed if seed is None else seed
    inner = _plain_sampler(spec, seed, key, num_samples)
    if prior is None:
        return inner
    maximize = spec.objectives[0][1] == "max"
    return PriorSampler(inner, prior, 0 if seed is None else seed, key=key, budget=num_samples or spec.num_samples,
                        startup=startup_trials(spec, num_samples), maximize=maximize)


def _plain_sampler(spec: SearchSpec, seed: int | None, key: Callable[[str], str],
                   num_samples: int | None) -> optuna.samplers.BaseSampler:
    if spec.method == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if spec.method == "grid":
        return optuna.samplers.GridSampler({key(path): list(p.values or ()) for path, p in spec.space.items()},
                                           seed=seed)
    startup = startup_trials(spec, num_samples)
    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if spec.sampler == "gp":
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=startup)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, constant_liar=True)



def startup_trials(spec: SearchSpec, num_samples: int | None = None) -> int:
    """The random start-up trials of TPE and GP (see :func:`make_sampler`); 0 for the other samplers."""
    if spec.method != "bayes" or spec.sampler == "random":
        return 0
    budget = spec.num_samples if num_samples is None else num_samples
    return 10 if budget is None else min(10, max(2, budget // 4))


def first_points(spec: SearchSpec, prior: Prior | None) -> list[dict[str, Any]]:
    """The points a search enqueues before sampling: the prior's base point (trial 0), then the
    file's ``points_to_evaluate`` (the base point once, where a point repeats it)."""
    points = [dict(p) for p in spec.points_to_evaluate]
    if prior is not None and prior.base_point not in points:
        points.insert(0, dict(prior.base_point))
    return points


def search_prior(spec: SearchSpec, base_flat: dict[str, Any] | None) -> Prior | None:
    """The prior ``spec`` asks for, resolved against the base config (None without one)."""
    return None if base_flat is None else resolve_prior(spec.space, spec.prior, base_flat, spec.method)


def sample_configs(spec: SearchSpec, n: int, seed: int,
                   evaluated: list[optuna.trial.FrozenTrial] | None = None,
                   num_samples: int | None = None, base_flat: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The first ``n`` suggestions of a fresh study (searched paths only), as ``run --dry-run`` shows.

    The prior's base point (with ``base_flat``, the base config) and points_to_evaluate come first,
    as in the driver; no results are told, so a bayes search shows its random startup phase and the
    prior's draws. A grid yields at most its size. ``evaluated``: finished trials (a warm start) the
    study holds first, as the real search's does.
    """
    if spec.method == "grid":
        n = min(n, spec.grid_size or 0)
    space = optuna_space(spec)
    prior = search_prior(spec, base_flat)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(directions=["maximize" if mode == "max" else "minimize"
                                                for _, mode in spec.objectives],
                                    sampler=make_sampler(spec, seed, num_samples=num_samples, prior=prior))
        study.add_trials(evaluated or [])
        for point in first_points(spec, prior):
            study.enqueue_trial(point)
        return [dict(study.ask(space).params) for _ in range(n)]
    finally:
        optuna.logging.set_verbosity(verbosity)
