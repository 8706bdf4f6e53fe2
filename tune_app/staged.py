"""Run (and resume) a staged search: one Ray Tune experiment per stage under a parent folder."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from polsess.config import config_from_flat, to_flat

from .commands import STAGES_FILE, finish, write_search_file
from .errors import TuneInputError
from .plan import RunPlan
from .results import Experiment, export_best, has_experiment_state, load_experiment, summary_line
from .stages import Stage, stage_spec, top_configs


def _stage_plan(plan: RunPlan, stage: Stage, previous: tuple[Experiment, RunPlan] | None) -> RunPlan:
    top = top_configs(previous[0], previous[1].spec, stage.top_k or 0) if previous and stage.top_k else []
    spec = stage_spec(plan.spec, stage, top)
    base = config_from_flat({**to_flat(plan.base), **stage.overrides}, source=f"stage {stage.name}")
    spec.scheduler.max_t = base.training.num_epochs
    if spec.scheduler.grace_period and spec.scheduler.grace_period > spec.scheduler.max_t:
        spec.scheduler.grace_period = spec.scheduler.max_t
    return dataclasses.replace(plan, spec=spec, base=base, storage=plan.experiment_path, name=stage.name,
                               num_samples=stage.num_samples, resume=False)


def _finished(folder: Path, num_samples: int) -> bool:
    if not has_experiment_state(folder):
        return False
    exp = load_experiment(folder)
    return len(exp.trials) >= num_samples and all(t.status in ("COMPLETED", "EARLY_STOPPED") for t in exp.trials)


def run_staged(plan: RunPlan, stages: list[Stage], argv: list[str], address: str | None = None) -> int:
    from .driver import execute, restore

    parent = Path(plan.experiment_path)
    parent.mkdir(parents=True, exist_ok=True)
    if not (parent / STAGES_FILE).exists():
        (parent / STAGES_FILE).write_text(json.dumps({"argv": argv, "stages": [s.name for s in stages]}, indent=2))
    previous: tuple[Experiment, RunPlan] | None = None
    start = time.perf_counter()
    for stage in stages:
        stage_plan = _stage_plan(plan, stage, previous)
        folder = Path(stage_plan.experiment_path)
        print(f"\n== stage {stage.index + 1}/{len(stages)} {stage.name}: {stage.num_samples} trials, "
              f"{stage_plan.base.training.num_epochs} epochs, train_max_samples "
              f"{stage_plan.base.data.train_max_samples}, {len(stage_plan.spec.space)} parameters", flush=True)
        if _finished(folder, stage.num_samples):
            print(f"already finished: {summary_line(load_experiment(folder))}")
        elif has_experiment_state(folder):
            res = stage_plan.spec.resources_per_trial or {}
            restore(str(folder), {"cpu": stage_plan.cpus_per_trial, "gpu": stage_plan.gpus_per_trial, **res},
                    stage_plan.wandb_mode, False, address or plan.address)
        else:
            write_search_file(stage_plan)
            execute(stage_plan)
        code = finish(folder, time.perf_counter() - start, stage.num_samples, resume_hint=parent)
        if code != 0:
            return code
        previous = (load_experiment(folder), stage_plan)
    assert previous is not None
    best = export_best(previous[0], parent / "best_config.yaml")
    print(f"\nstaged search done; final best config: {best}")
    return 0


def resume_staged(parent: Path, address: str | None) -> int:
    from .cli import DEFAULT_CONFIG, DEFAULT_SPACE, build_parser, config_overrides, resolve_data_root
    from .plan import prepare_run
    from .stages import parse_stages

    saved = json.loads((parent / STAGES_FILE).read_text())
    args = build_parser().parse_args(saved["argv"])
    if args.command != "run":
        raise TuneInputError(f"{parent / STAGES_FILE}: not a staged run")
    args.storage, args.name, args.resume = str(parent.parent), parent.name, True
    plan = prepare_run(args, DEFAULT_SPACE, DEFAULT_CONFIG, config_overrides(args))
    plan.base.data.data_root = resolve_data_root(plan.base.data.data_root)
    return run_staged(plan, parse_stages(plan.spec), saved["argv"], address)
