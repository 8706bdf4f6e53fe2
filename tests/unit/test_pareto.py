"""Multi-objective searches without Ray: the metric list of a sweep file, the Pareto front of an
experiment, the choice --export-best makes, the cost figures of a model, the study's storage and
Optuna's views drawn without touching pyplot's state."""

from __future__ import annotations

import json
import random
import textwrap
from pathlib import Path

import matplotlib
import optuna
import pytest
import torch
from helpers import REPO

from polsess.config import load_config
from polsess.cost import gmacs_per_second, model_cost, params_millions
from polsess.model import build_model, count_parameters
from tune_app.errors import SearchSpaceError, TuneInputError
from tune_app.experiment import pareto
from tune_app.experiment.results import Experiment, TrialRecord
from tune_app.experiment.study import check_new_study, default_storage_url, open_storage, redact, study_counts
from tune_app.experiment.study_plots import CONTOUR_PNG, PARALLEL_PNG, SLICE_PNG, write_study_plots
from tune_app.space import format_dry_run, load_search, sample_configs

BASE = """\
data: {task: ES, batch_size: 2, num_workers: 0, segment_seconds: 1.0}
model:
  convtasnet: {N: 64, B: 32, H: 64, P: 3, X: 4, R: 2, kernel_size: 16}
training: {num_epochs: 4, lr: 0.003, device: cpu}
"""


def sweep(tmp_path: Path, metric: str, early: str = "early_terminate: {type: hyperband, min_iter: 1}\n"):
    (tmp_path / "base.yaml").write_text(BASE)
    text = textwrap.dedent(f"""\
        method: bayes
        metric: {metric}
        parameters:
          config: {{value: base.yaml}}
          N: {{values: [32, 64]}}
          B: {{values: [16, 32]}}
        """) + early
    (tmp_path / "sweep.yaml").write_text(text)
    return load_search(tmp_path / "sweep.yaml", cwd=tmp_path)


# --------------------------------------------------------------------------- metric: a list


def test_a_metric_list_is_a_pareto_search_whose_first_metric_drives_asha(tmp_path):
    spec = sweep(tmp_path, "[{name: val_sisdr, goal: maximize}, {name: params_m, goal: minimize}]")
    assert spec.multi_objective and spec.objectives == [("val_sisdr", "max"), ("params_m", "min")]
    assert (spec.metric, spec.mode) == ("val_sisdr", "max") and spec.scheduler.type == "asha"
    text = format_dry_run(spec, [])
    assert "metric:       val_sisdr (max), params_m (min)" in text
    assert "early stopping, checkpoint ranking and a target use val_sisdr alone" in text
    assert len(sample_configs(spec, 3, seed=0)) == 3


def test_one_metric_is_a_search_as_before(tmp_path):
    spec = sweep(tmp_path, "{name: val_sisdr, goal: maximize}")
    assert not spec.multi_objective and spec.objectives == [("val_sisdr", "max")]


@pytest.mark.parametrize(("metric", "key", "says"), [
    ("[{name: params_m, goal: minimize}, {name: val_sisdr, goal: maximize}]", "metric[0].name", "put a quality metric"),
    ("{name: rtf, goal: minimize}", "metric.name", "does not change during training"),
    ("[{name: val_sisdr, goal: maximize}, {name: flops, goal: minimize}]", "metric[1].name", "not reported"),
    ("[{name: val_sisdr, goal: maximize}, {name: val_sisdr, goal: maximize}]", "metric[1].name", "listed twice"),
    ("[{name: val_sisdr, goal: maximize}, {name: params_m}]", "metric[1].goal", "goal: minimize"),
    ("[{name: val_sisdr, goal: maximize}, {name: params_m, goal: minimize, target: 1}]", "metric[1].target",
     "first metric only"),
    ("[]", "metric", "a list of them"),
    ("[val_sisdr]", "metric[0]", "expected a mapping"),
])
def test_bad_metric_lists_name_the_key(tmp_path, metric, key, says):
    with pytest.raises(SearchSpaceError) as info:
        sweep(tmp_path, metric)
    assert f": {key}: " in str(info.value) and says in str(info.value), str(info.value)


def test_the_shipped_pareto_demo_searches_size(tmp_path):
    spec = load_search(REPO / "search_spaces/demo_pareto.yaml", cwd=REPO)
    assert spec.objectives == [("val_sisdr", "max"), ("params_m", "min")]
    assert {"model.convtasnet.N", "model.convtasnet.B"} <= set(spec.space)


# --------------------------------------------------------------------------- the front


def _experiment(rows: list[tuple[str, str, float, float]], objectives=(("val_sisdr", "max"), ("params_m", "min"))):
    trials = [TrialRecord(tid, status, {}, [{"epoch": 1, "val_sisdr": sisdr - 1, "params_m": size},
                                            {"epoch": 2, "val_sisdr": sisdr, "params_m": size}])
              for tid, status, sisdr, size in rows]
    return Experiment(Path("/x/exp"), "val_sisdr", "max", [], trials, {"objectives": [list(o) for o in objectives]})


def test_the_front_is_what_nothing_dominates_best_first():
    exp = _experiment([("a", "COMPLETED", 5.0, 2.0), ("b", "COMPLETED", 4.0, 1.0), ("c", "COMPLETED", 3.5, 1.5),
                       ("d", "EARLY_STOPPED", 3.0, 0.5), ("e", "ERROR", 9.0, 0.1), ("f", "COMPLETED", 4.0, 1.0)])
    front = pareto.front(exp)
    assert [t.trial_id for t, _ in front] == ["a", "b", "f", "d"]  # c is beaten by b; e errored; ties stay
    assert front[0][1] == (5.0, 2.0)  # the best epoch's SI-SDR, the last report's size


def test_dominance_random_fronts_agree_with_a_brute_force_check():
    rng = random.Random(0)
    for _ in range(50):
        rows = [(str(i), "COMPLETED", round(rng.uniform(0, 5), 1), round(rng.uniform(0, 3), 1)) for i in range(12)]
        exp = _experiment(rows)
        on = {t.trial_id for t, _ in pareto.front(exp)}
        for tid, _, s, p in rows:
            beaten = any(s2 >= s and p2 <= p and (s2 > s or p2 < p) for _, _, s2, p2 in rows)
            assert (tid in on) == (not beaten)


def test_export_picks_a_front_point_or_the_best_within_bounds():
    exp = _experiment([("a", "COMPLETED", 5.0, 2.0), ("b", "COMPLETED", 4.0, 1.0), ("c", "COMPLETED", 3.0, 0.5)])
    assert pareto.pick(exp, 2, {}).trial_id == "b"
    assert pareto.pick(exp, None, {"params_m": 1.0}).trial_id == "b"
    assert pareto.pick(exp, None, {}).trial_id == "a"
    with pytest.raises(TuneInputError, match="the front has 3 points"):
        pareto.pick(exp, 4, {})
    with pytest.raises(TuneInputError, match=r"params_m <= 0\.1"):
        pareto.pick(exp, None, {"params_m": 0.1})
    assert pareto.parse_bounds(["params_m=2", "rtf=0.5"], ["params_m", "rtf"]) == {"params_m": 2.0, "rtf": 0.5}
    for bad in ("params_m", "params_m=inf", "x=1"):
        with pytest.raises(TuneInputError, match=r"^--max "):
            pareto.parse_bounds([bad], ["params_m"])


# --------------------------------------------------------------------------- cost figures


def test_cost_figures_of_a_convtasnet():
    cfg = load_config(None, {"model.convtasnet.N": 32, "model.convtasnet.B": 16, "model.convtasnet.H": 32,
                             "model.convtasnet.X": 2, "model.convtasnet.R": 1})
    model = build_model(cfg)
    assert params_millions(model) == count_parameters(model) / 1e6
    # The encoder alone: N filters of L taps at stride L/2 → N·L MACs per frame, 2·fs/L frames per second.
    encoder_macs = 32 * 16 * (2 * 8000 / 16) / 1e9
    gmacs = gmacs_per_second(model, 8000)
    assert encoder_macs < gmacs < 100 * encoder_macs
    assert gmacs_per_second(model, 16000) == pytest.approx(2 * gmacs, rel=0.01)  # linear in the audio's length
    before = [p.detach().clone() for p in model.parameters()]
    model.train()
    cost = model_cost(model, 8000)
    assert set(cost) == {"params_m", "gmacs_per_s", "rtf"} and 0 < cost["rtf"] < 10
    assert model.training and all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


# --------------------------------------------------------------------------- the study's storage


def test_the_default_storage_is_sqlite_in_the_experiment_folder(tmp_path):
    url = default_storage_url(tmp_path / "runs/exp")
    assert url == f"sqlite:///{tmp_path}/runs/exp/optuna-study.db"
    study = optuna.create_study(storage=open_storage(url), study_name="exp")
    study.enqueue_trial({"x": 1.0})
    study.optimize(lambda t: t.suggest_float("x", 0, 2), n_trials=2)
    assert study_counts(optuna.load_study(study_name="exp", storage=url)) == {"COMPLETE": 2}
    with pytest.raises(TuneInputError, match="a study named 'exp' exists there already"):
        check_new_study(url, "exp")
    check_new_study(url, "other")


def test_storage_errors_are_one_line_and_never_show_a_password():
    assert redact("postgresql://me:s3cret@db.example/tune") == "postgresql://me:***@db.example/tune"
    with pytest.raises(TuneInputError) as info:
        open_storage("nosuchdialect://me:s3cret@127.0.0.1:1/x")
    assert "s3cret" not in str(info.value) and "\n" not in str(info.value)
    assert str(info.value).startswith("--optuna-storage nosuchdialect://me:***@")


@pytest.mark.parametrize("directions", [["maximize"], ["maximize", "minimize"]])
def test_optunas_views_are_written_and_pyplot_is_left_as_found(tmp_path, directions):
    import matplotlib.pyplot as plt

    study = optuna.create_study(directions=directions, sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: [t.suggest_float("lr", 1e-4, 1e-2, log=True) * 100 + t.suggest_int("N", 16, 64)]
                   * len(directions), n_trials=8)
    style, figures = dict(matplotlib.rcParams), plt.get_fignums()
    written, skipped = write_study_plots(study, tmp_path, "val_sisdr", ["N", "lr"])
    assert [p.name for p in written] == [PARALLEL_PNG, SLICE_PNG, CONTOUR_PNG] and not skipped
    assert plt.get_fignums() == figures and dict(matplotlib.rcParams) == style


def test_too_few_trials_for_optunas_views_is_a_reason_not_a_crash(tmp_path):
    study = optuna.create_study()
    assert write_study_plots(study, tmp_path, "val_sisdr") == ([], [
        "Optuna's views need 2 completed study trials; the study has 0"])
    assert json.dumps(study_counts(study)) == "{}"
