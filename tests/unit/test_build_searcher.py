"""The driver builds Ray's objects from a plan without changing the plan (no Ray start)."""

from __future__ import annotations

import copy

from tune_app.builtin import default_config, default_space
from tune_app.cli.parser import build_parser
from tune_app.commands.options import run_request
from tune_app.space.prior import PriorSampler
from tune_app.tune.driver import build_scheduler, build_searcher, space_key
from tune_app.tune.plan import prepare_run


def _plan(tmp_path, *flags: str):
    args = build_parser().parse_args(["run", "--storage", str(tmp_path), "--wandb", "disabled", *flags])
    return prepare_run(run_request(args), default_space(), default_config())


def test_build_searcher_sizes_tpe_by_the_plan_and_leaves_the_plan_alone(tmp_path):
    plan = _plan(tmp_path, "--num-samples", "20")
    before = copy.deepcopy(plan.spec)
    searcher = build_searcher(plan)
    assert plan.spec == before  # the sweep's run_cap stays what the file says
    assert plan.spec.num_samples == 8 and plan.num_samples == 20
    sampler = searcher._sampler  # the base config as the prior (on by default) wraps TPE
    assert isinstance(sampler, PriorSampler) and sampler.startup == 5
    assert sampler.inner._n_startup_trials == 5  # a quarter of the 20 trials asked for
    assert set(searcher._space) == {space_key(p) for p in plan.spec.space}


def test_build_scheduler_follows_the_sweep(tmp_path):
    plan = _plan(tmp_path, "--grace-period", "2")
    sched = build_scheduler(plan)
    assert type(sched).__name__ == "ResumableASHA"
    assert (sched._max_t, sched._brackets[0]._rungs[-1][0]) == (plan.base.training.num_epochs, 2)


def test_the_study_lives_in_the_experiment_folder_with_warm_points_marked(tmp_path):
    import optuna

    from tune_app.experiment.warm_start import WarmStart

    plan = _plan(tmp_path, "--name", "kept")
    point = {p: plan.spec.space[p].fit(v) if plan.spec.space[p].kind != "categorical" else v
             for p, v in {"training.lr": 1e-3, "training.weight_decay": 1e-5, "training.grad_clip_norm": 5.0,
                          "model.convtasnet.B": 32}.items()}
    plan.warm_start = WarmStart([point], [3.25], 1, {}, "earlier.csv")
    build_searcher(plan)
    assert plan.optuna_storage == f"sqlite:///{tmp_path}/kept/optuna-study.db"
    trials = optuna.load_study(study_name="kept", storage=plan.optuna_storage).trials
    (trial,) = [t for t in trials if t.state.name == "COMPLETE"]  # beside it: the base config, enqueued (WAITING)
    assert (trial.value, trial.user_attrs) == (3.25, {"warm_start": "earlier.csv", "source": "warm-start"})
    assert [t.state.name for t in trials].count("WAITING") == 1


def test_a_pareto_plan_gives_optuna_every_objective(tmp_path):
    from tune_app.builtin import sweep_files

    (pareto_demo,) = [f for f in sweep_files() if f.name == "demo_pareto.yaml"]
    plan = _plan(tmp_path, "--space", str(pareto_demo), "--name", "front")
    searcher = build_searcher(plan)
    assert (searcher.metric, searcher.mode) == (["val_sisdr", "params_m"], ["max", "min"])
    assert [d.name for d in searcher._ot_study.directions] == ["MAXIMIZE", "MINIMIZE"]
