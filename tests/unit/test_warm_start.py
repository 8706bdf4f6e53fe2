"""Warm start: earlier runs (a W&B runs export, an experiment folder) become TPE's first trials.

Real files throughout: the research group's export of 955 W&B runs and their stage-1/stage-2
sweeps, read in place; small CSVs written to tmp_path. No Ray.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml
from helpers import EXAMPLES, REPO, assert_warm_points_inside, needs_shared, skip_without_shared

from polsess.config import load_config, to_flat
from tune_app.errors import TuneInputError
from tune_app.experiment.warm_start import WarmStart, as_evaluated, load_warm_start, warm_trials
from tune_app.space import load_search, make_sampler, optuna_space, search_from_dict
from tune_app.tune.driver import space_key

ALL_RUNS = EXAMPLES / "sweeps/all_runs.csv"
STAGE1 = EXAMPLES / "sweeps/3-hyperparam-opt/convtasnet/stage1.yaml"
STAGE2 = EXAMPLES / "sweeps/3-hyperparam-opt/convtasnet/stage2.yaml"
DEMO_SPACE = REPO / "search_spaces/demo.yaml"

PARAMS = ["lr", "weight_decay", "grad_clip_norm", "lr_factor", "lr_patience"]


def _spec_and_base(sweep: Path):
    skip_without_shared()
    spec = load_search(sweep)
    return spec, to_flat(load_config(spec.base_config, spec.fixed, env={}))


@pytest.fixture(scope="module")
def stage1():
    return _spec_and_base(STAGE1)


@pytest.fixture(scope="module")
def stage2():
    return _spec_and_base(STAGE2)


@pytest.fixture(autouse=True)
def _quiet_optuna():
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    yield
    optuna.logging.set_verbosity(verbosity)


# --------------------------------------------------------------------------- the real export


def _expected_counts(train_max_samples: int, num_epochs: int, bounds: dict[str, tuple[float, float]],
                     lr_patience: list[int]) -> tuple[int, dict[str, int]]:
    """The same selection written as plain pandas filters over the export, independently of the module.

    A run's train_max_samples is its cell, else its experiment file's value (read here with plain
    yaml), else unknown; the research configs agree with the base on val_max_samples, crop length
    and validation variants (asserted), so train_max_samples and num_epochs are the settings that
    separate the groups.
    """
    df = pd.read_csv(ALL_RUNS, sep=";")
    assert len(df) == 955
    assert set(df.task.dropna()) == {"SB"}  # every recorded task is the stages' task
    files = {}
    for name in df.config.dropna().unique():
        if (EXAMPLES / name).is_file():
            raw = yaml.safe_load((EXAMPLES / name).read_text())
            assert raw["data"].get("val_max_samples") is None and "segment_seconds" not in raw["data"]
            assert raw["training"]["validation_variants"] == ["SER", "SE"]
            files[name] = raw["data"].get("train_max_samples", "unknown")
    from_file = df.config.map(lambda n: files.get(n, "unknown"))
    tms = df.train_max_samples.astype(object).where(df.train_max_samples.notna(), from_file)

    other_model = df.model_type.notna() & (df.model_type != "convtasnet")
    rest = ~other_model
    other_settings = rest & (
        (df.num_epochs.notna() & (df.num_epochs != num_epochs))
        | ((tms != "unknown") & (tms != train_max_samples))
    )
    rest &= ~other_settings
    not_completed = rest & ~df.completed
    rest &= ~not_completed
    missing = rest & df[PARAMS].isna().any(axis=1)
    rest &= ~missing
    inside = df.lr_patience.isin(lr_patience)
    for col, (low, high) in bounds.items():
        inside &= df[col].between(low, high)
    outside = rest & ~inside
    rest &= ~outside
    no_metric = rest & ~df.best_val_sisdr.apply(lambda v: math.isfinite(v))
    rest &= ~no_metric
    duplicate = rest & df[PARAMS].duplicated()
    rest &= ~duplicate
    counts = {"other model/task": other_model.sum(), "other settings": other_settings.sum(),
              "not completed": not_completed.sum(), "missing parameter": missing.sum(),
              "outside space": outside.sum(), "no metric": no_metric.sum(), "duplicate": duplicate.sum()}
    return int(rest.sum()), {k: int(v) for k, v in counts.items() if v}


def test_all_runs_into_stage2_space(stage2):
    """Stage 2 (8k samples, 80 epochs): only the old 8k sweep matches, and its weight decays lie below 1e-6."""
    spec, base = stage2
    ws = load_warm_start(ALL_RUNS, spec, base)
    bounds = {"lr": (3e-4, 1.5e-3), "weight_decay": (1e-6, 1e-4), "grad_clip_norm": (1.5, 15.0),
              "lr_factor": (0.3, 0.95)}
    used, skipped = _expected_counts(8000, 80, bounds, [2, 3, 4])
    assert (used, skipped) == (0, {"other model/task": 707, "other settings": 230, "outside space": 16,
                                   "not completed": 2})
    assert (ws.used, ws.skipped) == (used, skipped)
    assert ws.points == [] and ws.rewards == [] and ws.source == str(ALL_RUNS)
    assert ws.summary_line() == ("warm start: 0 used, 955 skipped (other model/task: 707, other settings: 230, "
                                 "outside space: 16, not completed: 2)")
    assert as_evaluated(ws, space_key) == ([], [])


def test_all_runs_into_stage1_space(stage1):
    """Stage 1 (2k samples, 50 epochs): the 21 completed runs of the stage-1 sweep itself; the 4k and
    full-data runs (50 epochs too, train_max_samples known only from their config file) are refused."""
    spec, base = stage1
    ws = load_warm_start(ALL_RUNS, spec, base)
    bounds = {"lr": (1e-4, 1e-2), "weight_decay": (1e-6, 1e-4), "grad_clip_norm": (0.5, 15.0),
              "lr_factor": (0.3, 0.95)}
    used, skipped = _expected_counts(2000, 50, bounds, [1, 2, 3, 4, 5, 6])
    assert (used, skipped) == (21, {"other model/task": 707, "other settings": 221, "not completed": 6})
    assert (ws.used, ws.skipped) == (used, skipped)
    assert ws.summary_line() == "warm start: 21 used, 934 skipped (other model/task: 707, other settings: 221, " \
                                "not completed: 6)"

    df = pd.read_csv(ALL_RUNS, sep=";")
    done = df[(df.sweep_group == "convtasnet-stage1-2k") & df.completed]
    assert sorted(ws.rewards) == sorted(done.best_val_sisdr)
    assert_warm_points_inside(ws, spec)
    assert {type(p["training.lr_patience"]) for p in ws.points} == {int}
    assert ws.notes == ["run config experiments/convtasnet/sb_task_subset.yaml not found: its runs' unrecorded "
                        "settings are unknown"]  # not in shared/; its runs are told apart by num_epochs


def test_other_settings_can_be_allowed(stage2):
    """match_settings=False: stage-1/4k runs feed a stage-2 search (ranking only), identity still holds."""
    spec, base = stage2
    ws = load_warm_start(ALL_RUNS, spec, base, match_settings=False)
    assert "other settings" not in ws.skipped and ws.skipped["other model/task"] == 707
    assert ws.used == 17
    assert_warm_points_inside(ws, spec)


# --------------------------------------------------------------------------- TPE uses the points


def _study(spec, seed: int, ws: WarmStart | None) -> optuna.Study:
    """As Ray's OptunaSearch builds it: our sampler, then each evaluated point as a COMPLETE trial."""
    study = optuna.create_study(sampler=make_sampler(spec, seed),
                                direction="maximize" if spec.mode == "max" else "minimize")
    if ws is not None:
        dists = optuna_space(spec)
        for point, reward in zip(ws.points, ws.rewards, strict=True):
            study.add_trial(optuna.trial.create_trial(params=point, distributions=dists, value=reward))
    return study


def test_tpe_proposals_follow_the_warm_points(stage1):
    spec, base = stage1
    ws = load_warm_start(ALL_RUNS, spec, base)
    assert spec.num_samples is None and ws.used >= 10  # TPE's 10 start-up trials are all warm ones
    space = optuna_space(spec)
    best_lr = math.log10(ws.points[max(range(ws.used), key=ws.rewards.__getitem__)]["training.lr"])

    warm_dist = cold_dist = 0.0
    for seed in range(3):
        cold_study, warm_study = _study(spec, seed, None), _study(spec, seed, ws)
        cold = [cold_study.ask(space).params for _ in range(10)]  # nothing told: 10 random start-up draws
        warm = [warm_study.ask(space).params for _ in range(10)]
        assert warm[:3] != cold[:3]
        assert warm[0] not in cold  # modelled by TPE, not a start-up draw
        warm_dist += sum(abs(math.log10(p["training.lr"]) - best_lr) for p in warm)
        cold_dist += sum(abs(math.log10(p["training.lr"]) - best_lr) for p in cold)
    # the good stage-1 runs sit near lr 7e-4; TPE with them proposes closer to it than random search
    assert warm_dist < 0.6 * cold_dist


def test_as_evaluated_and_warm_trials_match_optuna_search(stage1):
    """Every point sets every '/'-keyed space key (Ray's validate_warmstart) and create_trial accepts it."""
    spec, base = stage1
    ws = load_warm_start(ALL_RUNS, spec, base)
    points, rewards = as_evaluated(ws, space_key)
    keys = {space_key(p) for p in spec.space}
    assert len(points) == len(rewards) == 21 and all(set(p) == keys for p in points)
    assert points[0]["training/lr"] == ws.points[0]["training.lr"] and rewards == ws.rewards
    trials = warm_trials(ws, spec, space_key)
    assert [t.value for t in trials] == rewards and trials[0].params == points[0]


# --------------------------------------------------------------------------- each rule, on a small CSV

HEADER = ("run_id,model_type,task,train_max_samples,num_epochs,seed,early_stopping_patience,config,"
          "lr,weight_decay,grad_clip_norm,lr_factor,lr_patience,completed,best_val_sisdr")
ROWS = """\
ok,convtasnet,SB,8000,80,42,15,,1.0E-3,1e-5,5.0,0.5,3,True,3.0
dprnn,dprnn,SB,8000,80,42,15,,1.1e-3,1e-5,5,0.5,3,True,3.1
task,convtasnet,EB,8000,80,42,15,,1.2e-3,1e-5,5,0.5,3,True,3.1
epochs,convtasnet,SB,8000,50,42,15,,1.3e-3,1e-5,5,0.5,3,True,3.1
samples,convtasnet,SB,2000,80,42,15,,1.4e-3,1e-5,5,0.5,3,True,3.1
file4k,convtasnet,,,80,42,15,experiments/convtasnet/sb_task_4000.yaml,1.0e-3,2e-5,5,0.5,3,True,3.1
file8k,convtasnet,,,80,42,15,experiments/convtasnet/sb_task_8000.yaml,1.0e-3,3e-5,5,0.5,3,True,2.5
seed,convtasnet,SB,8000,80,123,10,,1.0e-3,4e-5,5,0.5,3,True,2.6
killed,convtasnet,SB,8000,80,42,15,,1.0e-3,5e-5,5,0.5,3,False,3.1
nolr,convtasnet,SB,8000,80,42,15,,,1e-5,5,0.5,3,True,3.1
lr_high,convtasnet,SB,8000,80,42,15,,2e-3,1e-5,5,0.5,3,True,3.1
patience5,convtasnet,SB,8000,80,42,15,,1.0e-3,1e-5,5,0.5,5,True,3.1
patience3.5,convtasnet,SB,8000,80,42,15,,1.0e-3,1e-5,5,0.5,3.5,True,3.1
edge,convtasnet,SB,8000,80,42,15,,1.5000001e-3,1e-5,15.0000001,0.5,4.0,True,2.0
nometric,convtasnet,SB,8000,80,42,15,,1.0e-3,6e-5,5,0.5,3,True,
nanmetric,convtasnet,SB,8000,80,42,15,,1.0e-3,7e-5,5,0.5,3,True,nan
dup_better,convtasnet,SB,8000,80,42,15,,0.001,1e-5,5.0,0.5,3,True,3.5
dup_worse,convtasnet,SB,8000,80,42,15,,1e-3,1E-05,5,0.50,3.0,True,1.0
unknown,,,,,,,,1.0e-3,8e-5,5,0.5,2,,1.5
"""


def test_each_rule_on_a_small_csv(tmp_path, stage2):
    spec, base = stage2
    src = tmp_path / "runs.csv"
    src.write_text(HEADER + "\n" + ROWS)
    ws = load_warm_start(src, spec, base)
    assert ws.skipped == {"other model/task": 2, "other settings": 3, "not completed": 1, "missing parameter": 1,
                          "outside space": 3, "no metric": 2, "duplicate": 2}
    assert ws.summary_line() == ("warm start: 5 used, 14 skipped (other settings: 3, outside space: 3, "
                                 "other model/task: 2, no metric: 2, duplicate: 2, not completed: 1, "
                                 "missing parameter: 1)")
    wd = [p["training.weight_decay"] for p in ws.points]
    # ok (its best duplicate's reward), file8k (8000 from its experiment file), seed (seed and patience ignored),
    # edge (clamped into the space), unknown (empty cells are not mismatches)
    assert wd == [1e-5, 3e-5, 4e-5, 1e-5, 8e-5]
    assert ws.rewards == [3.5, 2.5, 2.6, 2.0, 1.5]
    edge = ws.points[3]
    assert edge == {"training.lr": 1.5e-3, "training.weight_decay": 1e-5, "training.grad_clip_norm": 15.0,
                    "training.lr_factor": 0.5, "training.lr_patience": 4}
    assert type(edge["training.lr_patience"]) is int
    assert_warm_points_inside(ws, spec)
    warm_trials(ws, spec, space_key)  # Optuna accepts every point


@needs_shared
def test_semicolon_and_int_step_bool_choices(tmp_path):
    """';' export, an int range, a q grid (snapped), bool and string choices, minimize."""
    sweep = {
        "method": "bayes",
        "metric": {"name": "train_sisdr", "goal": "minimize"},
        "parameters": {
            "config": {"value": str(EXAMPLES / "experiments/convtasnet/sb_task_8000.yaml")},
            "lr_patience": {"distribution": "int_uniform", "min": 1, "max": 6},
            "grad_clip_norm": {"distribution": "q_uniform", "min": 1.0, "max": 10.0, "q": 0.5},
            "use_amp": {"values": [True, False]},
            "mask_nonlinear": {"values": ["relu", "sigmoid"]},
        },
    }
    spec = search_from_dict(sweep)
    base = to_flat(load_config(spec.base_config, spec.fixed, env={}))
    src = tmp_path / "runs.csv"
    src.write_text(textwrap.dedent("""\
        name;training.lr_patience;grad_clip_norm;use_amp;mask_nonlinear;train_sisdr;State
        a;2.0;2.5000001;True;sigmoid;-1.5;finished
        b;2.5;2.5;True;relu;-1;finished
        c;2;2.7;false;relu;-1;finished
        d;3;3;false;softmax;-1;finished
        e;7;3;false;relu;-1;finished
        f;3;3;FALSE;relu;-2;finished
        g;3;3;false;relu;-3;
        h;4;4;true;relu;-4;crashed
        """))
    ws = load_warm_start(src, spec, base)
    assert ws.skipped == {"outside space": 4, "duplicate": 1, "not completed": 1}
    assert ws.points == [
        {"training.lr_patience": 2, "training.grad_clip_norm": 2.5, "training.use_amp": True,
         "model.convtasnet.mask_nonlinear": "sigmoid"},
        {"training.lr_patience": 3, "training.grad_clip_norm": 3.0, "training.use_amp": False,
         "model.convtasnet.mask_nonlinear": "relu"},
    ]
    assert ws.rewards == [-1.5, -3.0]  # minimize: the duplicate's lower score is the better one
    assert [type(v) for v in ws.points[0].values()] == [int, float, bool, str]
    assert len(warm_trials(ws, spec, space_key)) == 2


# --------------------------------------------------------------------------- errors


def _fails(pattern: str, source: Path, spec, base) -> None:
    with pytest.raises(TuneInputError, match=pattern) as exc:
        load_warm_start(source, spec, base)
    assert "\n" not in str(exc.value)  # one line: the CLI prints it as `error: ...`


def test_errors(tmp_path, stage2):
    spec, base = stage2
    _fails(r"nope\.csv: no such file or folder; give a W&B runs export", tmp_path / "nope.csv", spec, base)
    _fails(r"not an experiment folder \(no experiment_state-\*\.json\); give an earlier polsess-tune experiment",
           tmp_path, spec, base)

    unrelated = tmp_path / "unrelated.csv"
    unrelated.write_text("run_id;loss;best_val_sisdr\na;1;2\n")
    _fails(r"unrelated\.csv: no column matches a searched parameter \(training\.lr, .*\); export the runs' config "
           r"columns", unrelated, spec, base)

    empty = tmp_path / "empty.csv"
    empty.write_text("\n")
    _fails(r"empty\.csv: empty file", empty, spec, base)

    binary = tmp_path / "runs.csv"
    binary.write_bytes(b"\xff\xfe\x00\x81lr")
    _fails(r"runs\.csv: cannot read it as a text CSV", binary, spec, base)

    demo, demo_base = _spec_and_base(DEMO_SPACE)  # metric val_sisdr; the export has best_val_sisdr only
    _fails(r"all_runs\.csv: no 'val_sisdr' column, the sweep's metric \(it has best_val_sisdr: set metric.name to "
           r"one of them\)", ALL_RUNS, demo, demo_base)

    rnd = search_from_dict({"method": "random", "metric": {"name": "best_val_sisdr", "goal": "maximize"},
                            "parameters": {"lr": {"min": 1e-4, "max": 1e-2}}})
    _fails(r"method random does not learn from earlier results; use method: bayes", ALL_RUNS, rnd, base)
