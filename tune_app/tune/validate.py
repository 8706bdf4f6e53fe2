"""``polsess-tune validate``: a finished search's top-K configs, retrained with each seed, as one
Ray Tune experiment (resumable like any other).

It replaces the users' export → analysis → YAML-per-pick → shell loop over seeds: the K×S runs
train in parallel as trials (FIFO: no early stopping, every run to its last epoch), each a W&B run
tagged with its source trial and seed, and the report (:mod:`tune_app.experiment.validation`) ranks
the configs by their mean over seeds and says whether the winner's lead exceeds seed noise.
"""

from __future__ import annotations

import argparse
import json
import pickle
import time
from pathlib import Path
from typing import Any

from ray.tune.search import Searcher

from polsess.config import ConfigError, config_from_flat, flatten, save_config, to_dict

from ..errors import TuneInputError
from ..experiment import layout, location, validation
from ..experiment.layout import BEST_CONFIG
from ..experiment.location import open_experiment
from ..experiment.results import Experiment, load_experiment
from ..names import VALIDATION_KEY
from ..space import SchedulerSpec, SearchSpec
from . import checks
from .plan import RunPlan, choose_wandb_mode, write_search_file

DEFAULT_SEEDS = (42, 123, 456)  # the users' own shell loop


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
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise TuneInputError(f"--seeds {text}: expected integers separated by commas, e.g. 42,123,456") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise TuneInputError(f"--seeds {text}: give one or more distinct seeds, e.g. 42,123,456")
    for seed in seeds:
        checks.check_seed(seed)
    return seeds


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


def prepare_validation(args: argparse.Namespace, overrides: dict[str, Any]) -> tuple[RunPlan, list[dict[str, Any]]]:
    """The plan and the K×S trial configs; every mistake is one error line before Ray starts."""
    source_path, source_shown = open_experiment(args.experiment)
    if (source_path / layout.STAGES_FILE).exists():
        raise TuneInputError(f"{source_shown}: a staged search; validate its last stage's folder, e.g. "
                             f"{source_shown}/<last stage>")
    source = load_experiment(source_path)
    if args.top < 1:
        raise TuneInputError(f"--top {args.top}: must be at least 1")
    seeds = parse_seeds(args.seeds)
    picks = top_configs(source, args.top)
    if not picks:
        raise TuneInputError(f"{source_shown}: no trial finished with a score; nothing to validate")
    configs = []
    for trial_id, flat in picks:
        for seed in seeds:
            try:
                cfg = config_from_flat({**flat, **overrides, "training.seed": seed}, source=f"trial {trial_id}")
            except ConfigError as exc:
                raise TuneInputError(f"--set: {exc}") from None
            configs.append({**to_dict(cfg), VALIDATION_KEY: {"source_trial": trial_id, "seed": seed,
                                                             "source": source_shown}})
    name = args.name or f"{source_path.name}-validate"
    checks.check_name(name)
    storage = args.storage or location.parent(source_shown)
    if location.is_uri(storage):
        location.check_writable(storage, f"--storage {storage}")
    else:
        storage = str(Path(storage).expanduser().resolve())
        checks.check_storage(storage)
    search = source.search
    resources = search.get("resources_per_trial") or {}
    cpus = args.cpus_per_trial if args.cpus_per_trial is not None else float(resources.get("cpu", 1))
    gpus = args.gpus_per_trial if args.gpus_per_trial is not None else float(resources.get("gpu", 0))
    checks.check_resources(cpus, gpus, None)
    spec = SearchSpec(file=None, base_config=None, space={}, fixed=dict(overrides), method="grid",
                      metric=source.metric, mode=source.mode, target=None, scheduler=SchedulerSpec("fifo"),
                      num_samples=len(configs), tags=["validation"], name=name)
    mode, note = choose_wandb_mode(args.wandb)
    plan = RunPlan(spec=spec, base=config_from_flat(flatten({k: v for k, v in configs[0].items()
                                                             if k != VALIDATION_KEY})),
                   name=name, storage=storage, num_samples=len(configs), max_concurrent=args.max_concurrent,
                   cpus_per_trial=cpus, gpus_per_trial=gpus, seed=0, wandb_mode=mode,
                   wandb_project=search.get("wandb_project") or "polsess-tune", wandb_note=note,
                   max_failures=args.max_failures, keeps_study=False)
    target = location.pull(plan.experiment_path) if plan.is_uri else Path(plan.experiment_path)
    plan.notes += checks.check_experiment_folder(target, False)
    plan.validation = {"source": source_shown, "top": [t for t, _ in picks], "seeds": seeds,
                       "overrides": {k: v for k, v in overrides.items()}}
    return plan, configs


def run_validation(plan: RunPlan, configs: list[dict[str, Any]], resume_hint: str | Path | None = None) -> int:
    """Train the K×S configs as the trials of ``plan`` (its search.json first), then summarise and rank
    them: the one sequence of ``polsess-tune validate`` and of a staged search's ``validate:`` step."""
    from .driver import execute
    from .summary import finish

    write_search_file(plan)
    start = time.perf_counter()
    execute(plan, search_alg=ConfigList(configs, plan.spec.metric, plan.spec.mode))
    code = finish(plan.experiment_path, time.perf_counter() - start, plan.num_samples, resume_hint=resume_hint)
    if code != 130:
        report_validation(plan.experiment_path)
    return code


def report_validation(where: str | Path) -> None:
    """The ranking by mean over seeds and the verdict; ``best_config.yaml`` becomes the best mean's config
    (``finish`` wrote the single best run's). ``where``: the validation's folder or URI."""
    folder, shown = open_experiment(where)
    exp = load_experiment(folder)
    ranked = validation.scores_by_config(exp)
    print(f"\nvalidation of {exp.search.get('validation', {}).get('source')}: {exp.metric} by config, over seeds "
          "(each run's best epoch)")
    print(validation.table(ranked, exp.metric))
    print(validation.verdict(ranked, exp.metric))
    if ranked and ranked[0].scores:
        best = ranked[0]
        header = (f"Best mean of {exp.path.name}: trial {best.source_trial}'s config, {exp.metric} "
                  f"{best.mean:.3f} ± {best.std:.3f} dB over seeds {', '.join(map(str, best.scores))}\n"
                  f"Train it: polsess-tune train --config {BEST_CONFIG}")
        out = save_config(config_from_flat(flatten(best.config)), folder / BEST_CONFIG, header=header)
        if location.is_uri(shown):
            location.push(folder, shown, [BEST_CONFIG])
        print(f"best config (best mean): {location.shown(out)}")
