"""Run a staged search: one Ray Tune experiment per stage under a parent folder, each resumable.

``stages.json`` in the parent folder records the stage names and the ``run`` command's request
(:class:`~tune_app.tune.requests.RunRequest`, saved as plain data with its version), so ``resume`` can
rebuild the plan through the same type (see :mod:`tune_app.commands.resume`); a stage that already
finished is not run again.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from polsess.config import config_from_flat, to_flat

from ..experiment.layout import BEST_CONFIG, SEARCH_FILE, STAGES_FILE, read_json
from ..experiment.report import export_best, summary_line
from ..experiment.results import Experiment, has_experiment_state, load_experiment
from ..experiment.transfer import stage_transfer_line
from ..space.stages import Stage, stage_spec, top_configs
from .plan import RunPlan, write_search_file
from .requests import RunRequest, ValidateRequest
from .summary import finish


def _stage_plan(plan: RunPlan, stage: Stage, previous: tuple[Experiment, RunPlan] | None) -> RunPlan:
    top = top_configs(previous[0], previous[1].spec, stage.top_k or 0) if previous and stage.top_k else []
    spec = stage_spec(plan.spec, stage, top)
    base = config_from_flat({**to_flat(plan.base), **stage.overrides}, source=f"stage {stage.name}")
    spec.scheduler.fit_to(base.training.num_epochs)
    return dataclasses.replace(plan, spec=spec, base=base, storage=plan.experiment_path, name=stage.name,
                               num_samples=stage.num_samples, resume=False, study_prefix=f"{plan.name}/")


def _finished(folder: Path, num_samples: int) -> bool:
    return has_experiment_state(folder) and load_experiment(folder).is_finished(num_samples)


def run_staged(plan: RunPlan, stages: list[Stage], request: RunRequest, address: str | None = None) -> int:
    """Run (or continue) every stage in order; ``request``: the ``run`` command's, saved for resume."""
    from .driver import execute, restore

    parent = Path(plan.experiment_path)
    parent.mkdir(parents=True, exist_ok=True)
    if not (parent / STAGES_FILE).exists():
        saved = {"argv": list(request.argv), "request": request.to_saved(), "stages": [s.name for s in stages]}
        (parent / STAGES_FILE).write_text(json.dumps(saved, indent=2, default=str))
    previous: tuple[Experiment, RunPlan] | None = None
    failed = False
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
                    stage_plan.wandb_mode, False, address or plan.address, plan.verbose)
        else:
            write_search_file(stage_plan)
            execute(stage_plan)
        code = finish(folder, time.perf_counter() - start, stage.num_samples, resume_hint=parent)
        exp = load_experiment(folder)
        if code == 130 or exp.best_trial() is None:
            return code  # interrupted, or nothing to narrow around: the next stage cannot start
        failed = failed or code != 0  # some trials errored; the stage still has a best to go on from
        if previous is not None and (line := stage_transfer_line((previous[1].name, previous[0]), (stage.name, exp))):
            print(line)
        previous = (exp, stage_plan)
    assert previous is not None
    return _final_best(plan, parent, previous[0], address, failed)


VALIDATE_STAGE = "validate"  # the folder of a staged search's `validate:` step, beside its stages


def _final_best(plan: RunPlan, parent: Path, last: Experiment, address: str | None, failed: bool) -> int:
    """The parent's ``best_config.yaml``: the validation's best mean over seeds (with ``validate:``),
    else the last stage's best; the staged search's exit status (``failed``: some stage's trials errored)."""
    best = parent / BEST_CONFIG
    if plan.spec.validate:
        code = _validate_last_stage(plan, parent, last.path, address)
        if code == 130:
            return code
        failed = failed or code != 0
        validated = parent / VALIDATE_STAGE / BEST_CONFIG
        if validated.exists():
            best.write_text(validated.read_text())
        else:
            export_best(last, best)
    else:
        best = export_best(last, best)
    print(f"\nstaged search done; final best config: {best}" + ("; some trials errored (see above)" if failed else ""))
    return 1 if failed else 0


def _validate_last_stage(plan: RunPlan, parent: Path, last: Path, address: str | None) -> int:
    """The sweep's ``validate:``: the last stage's top-K configs × seeds (started, continued or done)."""
    from polsess.config import resolve_name

    from .driver import restore
    from .validate import prepare_validation, report_validation, run_validation

    folder = parent / VALIDATE_STAGE
    spec = plan.spec.validate or {}
    print(f"\n== validate: the top {spec['top_k']} of {last.name} × seeds {', '.join(map(str, spec['seeds']))}",
          flush=True)
    if has_experiment_state(folder):  # started before: continued, or only summarised when done
        start = time.perf_counter()
        saved = read_json(folder / SEARCH_FILE) or {}
        count = int(saved.get("num_samples", 0))
        if not _finished(folder, count):
            restore(str(folder), {"cpu": plan.cpus_per_trial, "gpu": plan.gpus_per_trial}, plan.wandb_mode, False,
                    address or plan.address, plan.verbose)
        code = finish(folder, time.perf_counter() - start, count, resume_hint=parent, best=False)
        if code != 130:
            report_validation(folder)
        return code
    request = ValidateRequest(experiment=str(last), top=spec["top_k"], seeds=tuple(spec["seeds"]),
                              overrides={resolve_name(k): v for k, v in spec["set"].items()}, name=VALIDATE_STAGE,
                              storage=str(parent), max_concurrent=plan.max_concurrent,
                              cpus_per_trial=plan.cpus_per_trial, gpus_per_trial=plan.gpus_per_trial,
                              wandb=plan.wandb_mode, max_failures=plan.max_failures)
    vplan, configs = prepare_validation(request)
    return run_validation(vplan, configs, resume_hint=parent)
