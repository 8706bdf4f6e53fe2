"""The driver builds Ray's objects from a plan without changing the plan (no Ray start)."""

from __future__ import annotations

import copy

from tune_app.builtin import default_config, default_space
from tune_app.cli.parser import build_parser
from tune_app.commands.options import config_overrides
from tune_app.tune.driver import build_scheduler, build_searcher, space_key
from tune_app.tune.plan import prepare_run


def _plan(tmp_path, *flags: str):
    args = build_parser().parse_args(["run", "--storage", str(tmp_path), "--wandb", "disabled", *flags])
    return prepare_run(args, default_space(), default_config(), config_overrides(args))


def test_build_searcher_sizes_tpe_by_the_plan_and_leaves_the_plan_alone(tmp_path):
    plan = _plan(tmp_path, "--num-samples", "20")
    before = copy.deepcopy(plan.spec)
    searcher = build_searcher(plan)
    assert plan.spec == before  # the sweep's run_cap stays what the file says
    assert plan.spec.num_samples == 8 and plan.num_samples == 20
    assert searcher._sampler._n_startup_trials == 5  # a quarter of the 20 trials asked for
    assert set(searcher._space) == {space_key(p) for p in plan.spec.space}


def test_build_scheduler_follows_the_sweep(tmp_path):
    plan = _plan(tmp_path, "--grace-period", "2")
    sched = build_scheduler(plan)
    assert type(sched).__name__ == "ResumableASHA"
    assert (sched._max_t, sched._brackets[0]._rungs[-1][0]) == (plan.base.training.num_epochs, 2)
