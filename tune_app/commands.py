"""The Ray Tune commands: run, resume, results."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .errors import TuneInputError
from .plan import RunPlan, prepare_run
from .results import (
    SEARCH_FILE,
    error_lines,
    export_best,
    has_experiment_state,
    load_experiment,
    summary_line,
    table,
    write_csv,
)
from .search_space import describe, format_dry_run, sample_configs
from .stages import parse_stages

STAGES_FILE = "stages.json"

DRY_RUN_SAMPLES = 3


def check_corpus(plan: RunPlan) -> None:
    """The corpus must be in PolSESS layout before a single trial is scheduled."""
    from polsess.data import PolSESSDataset

    cfg = plan.base
    for subset, limit in (("train", cfg.data.train_max_samples), ("val", cfg.data.val_max_samples)):
        PolSESSDataset(cfg.data.data_root, subset=subset, task=cfg.data.task, max_samples=limit).check_files()


def write_search_file(plan: RunPlan) -> None:
    folder = Path(plan.experiment_path)
    folder.mkdir(parents=True, exist_ok=True)
    info = describe(plan.spec)
    info.update({
        "space_paths": list(plan.spec.space),
        "name": plan.name,
        "num_samples": plan.num_samples,
        "max_concurrent": plan.max_concurrent,
        "resources_per_trial": {"cpu": plan.cpus_per_trial, "gpu": plan.gpus_per_trial},
        "seed": plan.seed,
        "wandb_mode": plan.wandb_mode,
        "wandb_project": plan.wandb_project,
        "max_failures": plan.max_failures,
        "data_root": plan.base.data.data_root,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
    })
    (folder / SEARCH_FILE).write_text(json.dumps(info, indent=2, default=str))


def print_dry_run(plan: RunPlan, as_json: bool, stages: list[dict] | None = None) -> None:
    plan.spec.num_samples = plan.num_samples
    warm = []
    if plan.warm_start is not None:
        from .warm_start import warm_trials

        warm = warm_trials(plan.warm_start, plan.spec)
    samples = sample_configs(plan.spec, DRY_RUN_SAMPLES, plan.seed, warm) if plan.spec.space else []
    if as_json:
        info = describe(plan.spec)
        if plan.warm_start is not None:
            info["warm_start"] = {"used": plan.warm_start.used, "skipped": plan.warm_start.skipped,
                                  "line": plan.warm_start.summary_line()}
        info["samples"] = samples
        info["resources_per_trial"] = {"cpu": plan.cpus_per_trial, "gpu": plan.gpus_per_trial}
        info["seed"] = plan.seed
        if stages:
            info["stages"] = stages
        print(json.dumps(info, indent=2, default=str))
        return
    print(format_dry_run(plan.spec, samples))
    print(f"resources per trial: {plan.cpus_per_trial:g} CPU, {plan.gpus_per_trial:g} GPU; "
          f"max concurrent: {plan.max_concurrent or 'as resources allow'}; seed {plan.seed}")
    for note in plan.notes:
        if note not in plan.spec.notes:
            print(f"note: {note}")
    if plan.warm_start is not None:
        print(plan.warm_start.summary_line())
    if stages:
        print("stages: " + ", ".join(f"{s['name']} ({s['num_samples']} trials)" for s in stages))


def cmd_run(args: argparse.Namespace) -> int:
    from .cli import DEFAULT_CONFIG, DEFAULT_SPACE, config_overrides, resolve_data_root

    if args.resume:
        if not args.name:
            raise TuneInputError("--resume needs --name (and --storage if not ./runs) of the experiment")
        folder = Path(args.storage or "runs").expanduser().resolve() / args.name
        return resume_experiment(folder, restart_errored=False, address=args.address)
    plan = prepare_run(args, DEFAULT_SPACE, DEFAULT_CONFIG, config_overrides(args))
    if plan.spec.stages:
        from .staged import run_staged

        stages = parse_stages(plan.spec)  # checked before anything starts
        if args.dry_run:
            print_dry_run(plan, args.json, stages=[{"name": s.name, "num_samples": s.num_samples,
                                                     "overrides": s.overrides, "top_k": s.top_k} for s in stages])
            return 0
        plan.base.data.data_root = resolve_data_root(plan.base.data.data_root)
        check_corpus(plan)
        return run_staged(plan, stages, list(getattr(args, "argv", [])))
    if args.dry_run:
        print_dry_run(plan, args.json)
        return 0
    plan.base.data.data_root = resolve_data_root(plan.base.data.data_root)
    check_corpus(plan)
    if plan.wandb_note:
        print(plan.wandb_note)
    for note in plan.notes:
        print(f"note: {note}")
    if plan.warm_start is not None:
        print(plan.warm_start.summary_line())
    print(f"search {plan.name}: {plan.num_samples} trials of {len(plan.spec.space)} parameters "
          f"({plan.spec.method}, {plan.spec.scheduler.type}), metric {plan.spec.metric} ({plan.spec.mode}); "
          f"corpus {plan.base.data.data_root}", flush=True)
    write_search_file(plan)

    from .driver import execute

    start = time.perf_counter()
    execute(plan)
    return finish(Path(plan.experiment_path), time.perf_counter() - start, plan.num_samples)


def finish(folder: Path, wall_s: float, num_samples: int, resume_hint: Path | None = None) -> int:
    """Summarise; an interrupted search (Ctrl-C, SIGTERM) says how to resume and exits 130."""
    exp = load_experiment(folder)
    write_csv(exp, folder / "results.csv")
    print()
    print(table(exp, top=5))
    for line in error_lines(exp):
        print(line)
    print(f"\n{summary_line(exp)} in {wall_s / 60:.1f} min")
    unfinished = len(exp.trials) < num_samples or any(
        t.status in ("PENDING", "RUNNING", "PAUSED", "UNKNOWN") for t in exp.trials
    )
    if unfinished:
        print(f"search interrupted; state saved. Resume it with: polsess-tune resume {resume_hint or folder}")
        return 130
    if exp.best_trial() is None:
        print("no trial reported a score; see the errors above")
        return 1
    best = export_best(exp, folder / "best_config.yaml")
    print(f"best config: {best}")
    print(f"results: polsess-tune results {folder}")
    return 0


def resume_experiment(folder: Path, restart_errored: bool, address: str | None) -> int:
    from .results import has_experiment_state

    folder = folder.expanduser().resolve()
    if not folder.is_dir():
        raise TuneInputError(f"{folder}: no such experiment folder; check the path (storage/name)")
    if (folder / STAGES_FILE).exists():
        from .staged import resume_staged

        return resume_staged(folder, address)
    if not has_experiment_state(folder):
        raise TuneInputError(
            f"{folder}: holds no Ray Tune experiment state (experiment_state-*.json); it never got as far "
            "as its first trial, or it is not an experiment folder: start it again with `polsess-tune run`"
        )
    from .state_backup import repair, restore_missing_checkpoints

    for line in repair(folder) + restore_missing_checkpoints(folder):
        print(f"note: {line}")
    search = json.loads((folder / SEARCH_FILE).read_text()) if (folder / SEARCH_FILE).exists() else {}
    num_samples = int(search.get("num_samples", 0))
    exp = load_experiment(folder)
    # Errored trials count as unfinished: resume retries them from their last checkpoint, or from
    # scratch with --restart-errored.
    if len(exp.trials) >= num_samples and all(t.status in ("COMPLETED", "EARLY_STOPPED") for t in exp.trials):
        print(f"nothing to resume: {folder.name} already finished ({summary_line(exp)}); "
              f"see `polsess-tune results {folder}`")
        return 0
    if address:
        from .cluster import check_address

        check_address(address)
    resources = search.get("resources_per_trial", {"cpu": 1, "gpu": 0})
    print(f"resuming {folder.name}: {summary_line(exp)} so far, {num_samples} asked for", flush=True)

    from .driver import restore

    start = time.perf_counter()
    restore(str(folder), resources, search.get("wandb_mode", "offline"), restart_errored, address)
    return finish(folder, time.perf_counter() - start, num_samples)


def cmd_resume(args: argparse.Namespace) -> int:
    return resume_experiment(args.experiment, args.restart_errored, args.address)


def cmd_results(args: argparse.Namespace) -> int:
    if (Path(args.experiment) / STAGES_FILE).exists():
        return staged_results(Path(args.experiment), args)
    exp = load_experiment(args.experiment)
    ranking = _importance(exp)
    if args.export_best:
        out = export_best(exp, args.export_best)
        print(f"wrote {out}")
    if args.json:
        from .results import to_json

        print(json.dumps({**to_json(exp), "importance": dict(ranking)}, indent=2, default=str))
    elif not args.export_best:
        print(table(exp, top=args.top))
        print(summary_line(exp))
        if ranking:
            from .importance import format_importance

            print(f"\nparameter importance (fANOVA over {exp.metric}):")
            print(format_importance(ranking))
    if args.plots:
        from .plots import write_plots

        for path in write_plots(exp, importance=ranking):
            print(f"wrote {path}", file=sys.stderr if args.json else sys.stdout)
    return 0


def _importance(exp) -> list[tuple[str, float]]:
    """The ranking, or [] with a note when the experiment has too few finished trials."""
    from .importance import parameter_importance

    try:
        return parameter_importance(exp)
    except TuneInputError as exc:
        print(f"note: no parameter importance: {exc}", file=sys.stderr)
        return []


def staged_results(parent: Path, args: argparse.Namespace) -> int:
    """The stages side by side, then the final best config (the best trial of the last stage)."""
    from .results import to_json

    names = json.loads((parent / STAGES_FILE).read_text())["stages"]
    stages = [(name, load_experiment(parent / name)) for name in names if has_experiment_state(parent / name)]
    if not stages:
        raise TuneInputError(f"{parent}: no stage has started yet")
    final = stages[-1][1]
    if args.export_best:
        print(f"wrote {export_best(final, args.export_best)}")
    if args.json:
        print(json.dumps({"experiment": str(parent), "stages": [{"name": n, **to_json(e)} for n, e in stages],
                          "best": to_json(final)["best"]}, indent=2, default=str))
        return 0
    for name, exp in stages:
        best = exp.best_trial()
        score = f"best {exp.metric} {best.best(exp.metric, exp.mode):.2f} dB" if best else "no score yet"
        print(f"== {name}: {summary_line(exp)}; {score}")
        print(table(exp, top=args.top))
        print()
    if len(stages) < len(names):
        print(f"stages not started: {', '.join(names[len(stages):])}")
    return 0
