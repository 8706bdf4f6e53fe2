"""``polsess-tune run``: check everything, then one Ray Tune search (or a staged one); ``--dry-run``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from polsess.config import to_flat

from ..builtin import default_config, default_space
from ..errors import TuneInputError
from ..experiment.location import is_uri, join
from ..space import describe, format_dry_run, sample_configs
from ..space.sampling import search_prior
from ..space.stages import Stage, parse_stages, step_notes
from ..tune.folder_lock import holding
from ..tune.packing import pack_gpus
from ..tune.plan import RunPlan, prepare_run, write_search_file
from ..tune.requests import DEFAULT_STORAGE, RunRequest
from ..tune.summary import finish
from .options import resolve_data_root, run_request

DRY_RUN_SAMPLES = 3


def check_corpus(plan: RunPlan) -> list[str]:
    """The corpus must be in PolSESS layout, every WAV header readable, before a trial is scheduled
    (a bad file would otherwise fail each trial and each of its retries). Returns warnings."""
    from polsess.data import PolSESSDataset

    cfg = plan.base
    notes = []
    for subset, limit in (("train", cfg.data.train_max_samples), ("val", cfg.data.val_max_samples)):
        ds = PolSESSDataset(cfg.data.data_root, subset=subset, task=cfg.data.task, max_samples=limit)
        ds.check_files()
        seconds = (ds.shortest_mix or 0) / ds.sample_rate
        if cfg.data.segment_seconds and ds.shortest_mix is not None and cfg.data.segment_seconds > seconds:
            notes.append(f"warning: data.segment_seconds {cfg.data.segment_seconds:g} is longer than the shortest "
                         f"{subset} clip ({seconds:.2f} s); such clips are zero-padded")
    return notes


def print_dry_run(plan: RunPlan, as_json: bool, stages: list[Stage] | None = None) -> None:
    warm = []
    if plan.warm_start is not None:
        from ..experiment.warm_start import warm_trials

        warm = warm_trials(plan.warm_start, plan.spec)
    base_flat = to_flat(plan.base)
    prior = search_prior(plan.spec, base_flat)
    samples = (sample_configs(plan.spec, DRY_RUN_SAMPLES, plan.seed, warm, num_samples=plan.trials_expected,
                              base_flat=base_flat) if plan.spec.space else [])
    if as_json:
        info = describe(plan.spec, prior)
        info["num_samples"] = plan.num_samples
        info["budget_epochs"] = plan.budget_epochs
        if plan.warm_start is not None:
            info["warm_start"] = {"used": plan.warm_start.used, "skipped": plan.warm_start.skipped,
                                  "line": plan.warm_start.summary_line()}
        info["samples"] = samples
        info["resources_per_trial"] = {"cpu": plan.cpus_per_trial, "gpu": plan.gpus_per_trial}
        info["seed"] = plan.seed
        if stages:
            info["stages"] = [{"name": s.name, "num_samples": s.num_samples, "overrides": s.overrides,
                               "top_k": s.top_k} for s in stages]
        print(json.dumps(info, indent=2, default=str))
        return
    print(format_dry_run(plan.spec, samples, num_samples=plan.trials_expected, prior=prior))
    if plan.budget_epochs is not None:
        print(f"budget:       {plan.budget_epochs} trial-epochs (about {plan.trials_expected} trials at "
              f"{plan.spec.scheduler.epochs_per_trial():.1f} epochs each under {plan.spec.scheduler.type})")
    gpu = "auto (one step measured when the search starts)" if plan.gpus_auto else f"{plan.gpus_per_trial:g}"
    print(f"resources per trial: {plan.cpus_per_trial:g} CPU, {gpu} GPU; "
          f"max concurrent: {plan.max_concurrent or 'as resources allow'}; seed {plan.seed}")
    for note in plan.notes:
        if note not in plan.spec.notes:
            print(f"note: {note}")
    if plan.warm_start is not None:
        print(plan.warm_start.summary_line())
    if stages:
        print("stages: " + ", ".join(f"{s.name} ({s.num_samples} trials)" for s in stages))
    v = plan.spec.validate
    if v:
        print(f"then validate: the last stage's top {v['top_k']} × seeds {', '.join(map(str, v['seeds']))} "
              f"= {v['top_k'] * len(v['seeds'])} trials" + (f", with {v['set']}" if v["set"] else ""))


def cmd_run(args: argparse.Namespace) -> int:
    request = run_request(args)
    if request.resume:
        return _resume_named(request)
    plan = prepare_run(request, default_space(), default_config())
    if plan.spec.stages:
        return _run_staged(plan, request)
    if request.dry_run:
        _check_corpus_of_dry_run(plan, request.as_json)
        print_dry_run(plan, request.as_json)
        return 0
    return _run_search(plan)


def _resume_named(request: RunRequest) -> int:
    """``run --resume --name N [--storage S]``: the experiment S/N, resumed."""
    from .resume import resume_experiment

    if not request.name:
        raise TuneInputError("--resume needs --name (and --storage if not ./runs) of the experiment")
    storage = request.storage or DEFAULT_STORAGE
    where = (join(storage, request.name) if is_uri(storage)
             else str(Path(storage).expanduser().resolve() / request.name))
    return resume_experiment(where, restart_errored=False, address=request.address)


def _check_corpus_of_dry_run(plan: RunPlan, as_json: bool) -> None:
    """A dry run checks a configured corpus as the run does (a missing or broken one: one error line).
    Without one the run makes the demo corpus, which a dry run does not write."""
    if not plan.base.data.data_root:
        return
    for note in check_corpus(plan):
        print(note, file=sys.stderr if as_json else sys.stdout)


def _run_staged(plan: RunPlan, request: RunRequest) -> int:
    from ..tune.staged import run_staged

    stages = parse_stages(plan.spec)  # checked before anything starts
    if request.dry_run:
        _check_corpus_of_dry_run(plan, request.as_json)
        print_dry_run(plan, request.as_json, stages=stages)
        return 0
    plan.base.data.data_root = resolve_data_root(plan.base.data.data_root)
    for note in check_corpus(plan):
        print(note)
    from polsess.data import PolSESSDataset

    rows = len(PolSESSDataset(plan.base.data.data_root, subset="train", task=plan.base.data.task))
    for note in step_notes(stages, plan.base.training.num_epochs, plan.base.data.train_max_samples, rows):
        print(f"note: {note}")
    pack_gpus(plan)
    with holding(plan.experiment_path, "run"):
        return run_staged(plan, stages, request)


def _run_search(plan: RunPlan) -> int:
    """One search: the corpus checked, GPUs packed, what runs said in a line, then Ray Tune."""
    plan.base.data.data_root = resolve_data_root(plan.base.data.data_root)
    corpus_notes = check_corpus(plan)
    pack_gpus(plan)
    if plan.wandb_note:
        print(plan.wandb_note)
    for note in plan.notes:
        print(f"note: {note}")
    for note in corpus_notes:
        print(note)
    if plan.warm_start is not None:
        print(plan.warm_start.summary_line())
    size = (f"a budget of {plan.budget_epochs} trial-epochs" if plan.budget_epochs is not None
            else f"{plan.num_samples} trials")
    print(f"search {plan.name}: {size} over {len(plan.spec.space)} parameters "
          f"({plan.spec.method}, {plan.spec.scheduler.type}), metric "
          + ", ".join(f"{n} ({m})" for n, m in plan.spec.objectives)
          + f"; corpus {plan.base.data.data_root}", flush=True)
    from ..tune.driver import execute

    with holding(plan.local_path, "run"):
        write_search_file(plan)
        start = time.perf_counter()
        execute(plan)
        return finish(plan.experiment_path, time.perf_counter() - start, plan.num_samples)
