"""``polsess-tune validate``: a finished search's top-K configs, retrained with each seed, as one
Ray Tune experiment (resumable like any other).

It replaces the users' export → analysis → YAML-per-pick → shell loop over seeds: the K×S runs
train in parallel as trials (FIFO: no early stopping, every run to its last epoch), each a W&B run
tagged with its source trial and seed, and the report (:mod:`tune_app.experiment.validation`) ranks
the configs by their mean over seeds and says whether the winner's lead exceeds seed noise.
"""

from __future__ import annotations

import json
import pickle
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ray.tune.search import Searcher

from polsess.config import ConfigError, config_from_flat, flatten, to_dict

from ..errors import TuneInputError
from ..experiment import layout, location, validation
from ..experiment.layout import BEST_CONFIG
from ..experiment.location import open_experiment
from ..experiment.results import Experiment, load_experiment
from ..names import VALIDATION_KEY
from ..space import SchedulerSpec, SearchSpec
from . import checks
from .plan import RunPlan, Validation, choose_wandb_mode, write_search_file
from .requests import DEFAULT_CPUS_PER_TRIAL, DEFAULT_WANDB_PROJECT, ValidateRequest


class ConfigList(Searcher):
    """Hands Tune a fixed list of full trial configs, one per trial, in order. Ray's
    BasicVariantGenerator resolves a search space; a validation has no space, only its runs."""

    def __init__(self, configs: list[dict[str, Any]], metric: str, mode: str) -> None:
        super().__init__(metric=metric, mode=mode)
        self.configs = configs
        self.handed_out = 0

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if self.handed_out >= len(self.configs):
            return Searcher.FINISHED
        self.handed_out += 1
        return self.configs[self.handed_out - 1]

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        pass

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as fh:
            pickle.dump({"configs": self.configs, "handed_out": self.handed_out}, fh)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as fh:
            self.__dict__.update(pickle.load(fh))


def parse_seeds(text: str) -> list[int]:
    """``--seeds 42,123,456`` → ``[42, 123, 456]``, checked as :func:`check_seeds` does."""
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise TuneInputError(f"--seeds {text}: expected integers separated by commas, e.g. 42,123,456") from None
    check_seeds(seeds, text)
    return seeds


def check_seeds(seeds: list[int] | tuple[int, ...], shown: str | None = None) -> None:
    """One or more distinct seeds, each one a sampler takes; ``shown``: how the user wrote them."""
    label = shown if shown is not None else ",".join(map(str, seeds))
    if not seeds or len(set(seeds)) != len(seeds):
        raise TuneInputError(f"--seeds {label}: give one or more distinct seeds, e.g. 42,123,456")
    for seed in seeds:
        checks.check_seed(seed)


def top_configs(exp: Experiment, k: int) -> list[tuple[str, dict[str, Any]]]:
    """(trial id, flat config) of the ``k`` best finished trials, a config repeated (another seed
    of the same point) counted once."""
    seen, out = set(), []
    for trial in exp.ranked():
        if not trial.finished or not trial.config:
            continue
        flat = flatten({key: v for key, v in trial.config.items() if key != VALIDATION_KEY})
        point = json.dumps({p: v for p, v in flat.items() if p != "training.seed"}, sort_keys=True, default=str)
        if point in seen:
            continue
        seen.add(point)
        out.append((trial.trial_id, flat))
        if len(out) == k:
            break
    return out


def prepare_validation(request: ValidateRequest) -> tuple[RunPlan, list[dict[str, Any]]]:
    """The plan and the K×S trial configs; every mistake is one error line before Ray starts."""
    source_path, source_shown = open_experiment(request.experiment)
    if (source_path / layout.STAGES_FILE).exists():
        raise TuneInputError(f"{source_shown}: a staged search; validate its last stage's folder, e.g. "
                             f"{source_shown}/<last stage>")
    source = load_experiment(source_path)
    if request.top < 1:
        raise TuneInputError(f"--top {request.top}: must be at least 1")
    check_seeds(request.seeds)
    picks = top_configs(source, request.top)
    if not picks:
        raise TuneInputError(f"{source_shown}: no trial finished with a score; nothing to validate")
    configs = _trial_configs(picks, request.seeds, request.overrides, source_shown)
    name = request.name or f"{source_path.name}-validate"
    checks.check_name(name)
    plan = _validation_plan(request, source, name, _storage(request.storage or location.parent(source_shown)),
                            configs)
    target = location.pull(plan.experiment_path) if plan.is_uri else Path(plan.experiment_path)
    plan.notes += checks.check_experiment_folder(target, False)
    plan.validation = Validation(source=source_shown, top=tuple(t for t, _ in picks), seeds=tuple(request.seeds),
                                 overrides=dict(request.overrides))
    return plan, configs


def _trial_configs(picks: list[tuple[str, dict[str, Any]]], seeds: tuple[int, ...], overrides: Mapping[str, Any],
                   source: str) -> list[dict[str, Any]]:
    """Each picked config once per seed, ``--set`` applied, tagged with where it came from."""
    configs = []
    for trial_id, flat in picks:
        for seed in seeds:
            try:
                cfg = config_from_flat({**flat, **overrides, "training.seed": seed}, source=f"trial {trial_id}")
            except ConfigError as exc:
                raise TuneInputError(f"--set: {exc}") from None
            configs.append({**to_dict(cfg), VALIDATION_KEY: {"source_trial": trial_id, "seed": seed,
                                                             "source": source}})
    return configs


def _storage(storage: str) -> str:
    """The validation's parent folder (absolute, creatable) or a writable URI."""
    if location.is_uri(storage):
        location.check_writable(storage, f"--storage {storage}")
        return storage
    storage = str(Path(storage).expanduser().resolve())
    checks.check_storage(storage)
    return storage


def _validation_plan(request: ValidateRequest, source: Experiment, name: str, storage: str,
                     configs: list[dict[str, Any]]) -> RunPlan:
    """A FIFO plan of the listed configs; resources and W&B project from the source search unless given."""
    search = source.search
    resources = search.get("resources_per_trial") or {}
    cpus = request.cpus_per_trial if request.cpus_per_trial is not None else float(
        resources.get("cpu", DEFAULT_CPUS_PER_TRIAL))
    gpus = request.gpus_per_trial if request.gpus_per_trial is not None else float(resources.get("gpu", 0))
    checks.check_resources(cpus, gpus, None)
    spec = SearchSpec(file=None, base_config=None, space={}, fixed=dict(request.overrides), method="grid",
                      metric=source.metric, mode=source.mode, target=None, scheduler=SchedulerSpec("fifo"),
                      num_samples=len(configs), tags=["validation"], name=name)
    mode, note = choose_wandb_mode(request.wandb)
    base = config_from_flat(flatten({k: v for k, v in configs[0].items() if k != VALIDATION_KEY}))
    return RunPlan(spec=spec, base=base, name=name, storage=storage, num_samples=len(configs),
                   max_concurrent=request.max_concurrent, cpus_per_trial=cpus, gpus_per_trial=gpus, seed=0,
                   wandb_mode=mode, wandb_project=search.get("wandb_project") or DEFAULT_WANDB_PROJECT,
                   wandb_note=note, max_failures=request.max_failures, keeps_study=False)


def run_validation(plan: RunPlan, configs: list[dict[str, Any]], resume_hint: str | Path | None = None) -> int:
    """Train the K×S configs as the trials of ``plan`` (its search.json first), then summarise and rank
    them: the one sequence of ``polsess-tune validate`` and of a staged search's ``validate:`` step."""
    from .driver import execute
    from .summary import finish

    write_search_file(plan)
    start = time.perf_counter()
    execute(plan, search_alg=ConfigList(configs, plan.spec.metric, plan.spec.mode))
    code = finish(plan.experiment_path, time.perf_counter() - start, plan.num_samples, resume_hint=resume_hint,
                  best=False)
    if code != 130:
        report_validation(plan.experiment_path)
    return code


def report_validation(where: str | Path) -> None:
    """The ranking by mean over seeds and the verdict, and the one best: the config ranked first, whose
    config ``best_config.yaml`` becomes. ``where``: the validation's folder or URI. (``finish`` is told
    not to name the single best run, so the console gives one verdict.)"""
    folder, shown = open_experiment(where)
    exp = load_experiment(folder)
    ranked = validation.scores_by_config(exp)
    print(f"\nvalidation of {exp.search.get('validation', {}).get('source')}: {exp.metric} by config, over seeds "
          "(each run's best epoch)")
    print(validation.table(ranked, exp.metric))
    print(validation.verdict(ranked, exp.metric))
    out = validation.export_best_mean(exp, ranked, folder / BEST_CONFIG)
    if out is None:
        return
    if location.is_uri(shown):
        location.push(folder, shown, [BEST_CONFIG])
    print(validation.best_line(ranked, exp.metric))
    print(f"best config (best mean): {location.shown(out)}")
