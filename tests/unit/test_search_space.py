"""Search spaces: W&B sweep files become the Optuna space, scheduler and budget we promise.

Real YAML files throughout (written to tmp_path, or the shared research sweeps read in place).
"""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

import optuna
import pytest
from helpers import EXAMPLES, REPO, needs_shared

from polsess.config import load_config
from tune_app.errors import SearchSpaceError
from tune_app.space import (
    Param,
    describe,
    format_dry_run,
    load_search,
    make_sampler,
    optuna_space,
    resolve_param_name,
    sample_configs,
)

RESEARCH_SWEEPS = sorted((EXAMPLES / "sweeps").glob("**/*.yaml"))
SB_TASK = EXAMPLES / "experiments/convtasnet/sb_task.yaml"

# A stand-in for configs/demo.yaml: tiny ConvTasNet, ES task, 4 epochs.
BASE = """\
data: {task: ES, batch_size: 2, num_workers: 0, segment_seconds: 1.0}
model:
  convtasnet: {N: 64, B: 32, H: 64, P: 3, X: 4, R: 2, kernel_size: 16}
training: {num_epochs: 4, lr: 0.003, device: cpu}
"""

HEAD = """\
method: {method}
metric: {{name: val_sisdr, goal: maximize}}
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "base.yaml").write_text(BASE)
    return tmp_path


def write(root: Path, text: str, name: str = "sweep.yaml") -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def load(root: Path, params: str, *, method: str = "random", extra: str = "", head: str | None = None):
    """A sweep with the stand-in base config and the given (dedented) parameters block."""
    body = (HEAD.format(method=method) if head is None else head) + "parameters:\n  config: {value: base.yaml}\n"
    body += textwrap.indent(textwrap.dedent(params).rstrip("\n") + "\n", "  ") + textwrap.dedent(extra)
    return load_search(write(root, body), cwd=root)


def values_of(spec, path: str, n: int = 300, seed: int = 0) -> list:
    return [s[path] for s in sample_configs(spec, n, seed)]


# --------------------------------------------------------------------------- distributions


@pytest.mark.parametrize(
    ("params", "path", "kind", "low", "high", "log", "q"),
    [
        ("lr_patience: {distribution: int_uniform, min: 1, max: 4}", "training.lr_patience", "int", 1, 4, False,
         None),
        ("lr_patience: {min: 1, max: 4}", "training.lr_patience", "int", 1, 4, False, None),  # inferred
        ("lr_factor: {min: 0.2, max: 0.8}", "training.lr_factor", "float", 0.2, 0.8, False, None),  # inferred
        ("lr_factor: {distribution: uniform, min: 0.2, max: 0.8}", "training.lr_factor", "float", 0.2, 0.8, False,
         None),
        ("N: {distribution: q_uniform, min: 64, max: 256, q: 64}", "model.convtasnet.N", "int", 64, 256, False,
         64),
        ("lr_patience: {distribution: q_uniform, min: 1, max: 5}", "training.lr_patience", "int", 1, 5, False, 1),
        ("grad_clip_norm: {distribution: q_uniform, min: 0.5, max: 5.0, q: 0.5}", "training.grad_clip_norm",
         "float", 0.5, 5.0, False, 0.5),
        ("grad_clip_norm: {distribution: q_uniform, min: 1, max: 10, q: 1}", "training.grad_clip_norm", "int", 1,
         10, False, 1),
        ("lr: {distribution: log_uniform, min: -9.0, max: -4.0}", "training.lr", "float", math.exp(-9),
         math.exp(-4), True, None),
        ("lr: {distribution: log_uniform_values, min: 1e-4, max: 1e-2}", "training.lr", "float", 1e-4, 1e-2, True,
         None),
        ("lr: {distribution: inv_log_uniform, min: 4, max: 9}", "training.lr", "float", math.exp(-9),
         math.exp(-4), True, None),
        ("lr: {distribution: inv_log_uniform_values, min: 1e-4, max: 1e-2}", "training.lr", "float", 1e-4, 1e-2,
         True, None),
        ("batch_size: {distribution: q_log_uniform_values, min: 2, max: 64, q: 1}", "data.batch_size", "int", 2,
         64, True, None),
        ("batch_size: {distribution: q_log_uniform, min: 0.6931471805599453, max: 4.1588830833596715}",
         "data.batch_size", "int", 2, 64, True, None),
    ],
)
def test_every_range_distribution_maps_to_these_bounds(root, params, path, kind, low, high, log, q):
    spec = load(root, params)
    p = spec.space[path]
    assert (p.kind, p.log, p.q) == (kind, log, q)
    assert p.low == pytest.approx(low) and p.high == pytest.approx(high)
    dist = optuna_space(spec)[path]
    expected = optuna.distributions.IntDistribution if kind == "int" else optuna.distributions.FloatDistribution
    assert type(dist) is expected and dist.log is log
    assert dist.low == pytest.approx(low) and dist.high == pytest.approx(high)
    drawn = values_of(spec, path, n=100)
    assert all(low - 1e-12 <= v <= high + 1e-12 for v in drawn)
    if kind == "int":
        assert all(isinstance(v, int) for v in drawn)


def test_int_uniform_includes_both_ends(root):
    spec = load(root, "lr_patience: {distribution: int_uniform, min: 1, max: 4}")
    assert set(values_of(spec, "training.lr_patience")) == {1, 2, 3, 4}


def test_int_q_uniform_draws_every_step_and_nothing_else(root):
    spec = load(root, "N: {distribution: q_uniform, min: 64, max: 256, q: 64}")
    assert set(values_of(spec, "model.convtasnet.N")) == {64, 128, 192, 256}


def test_float_q_uniform_draws_multiples_of_q_including_both_ends(root):
    spec = load(root, "grad_clip_norm: {distribution: q_uniform, min: 0.5, max: 2.0, q: 0.5}")
    drawn = set(values_of(spec, "training.grad_clip_norm"))
    assert {round(v, 9) for v in drawn} == {0.5, 1.0, 1.5, 2.0}


def _wandb_inv_log_uniform_values_ppf(x: float, lo: float, hi: float) -> float:
    """wandb/sweeps params.py: inv_log_uniform_v1_ppf(x, -log(max), -log(min)) = exp(-U), U ~ U[a, b]."""
    a, b = -math.log(hi), -math.log(lo)
    return math.exp(-(a + (1 - x) * (b - a)))


def _wandb_inv_log_uniform_ppf(x: float, lo: float, hi: float) -> float:
    return math.exp(-(lo + (1 - x) * (hi - lo)))


def test_inverse_log_forms_match_wandbs_own_quantiles(root):
    """Both inverse forms are log-uniform laws: ends and median agree with W&B's ppf."""
    spec = load(root, """\
        lr: {distribution: inv_log_uniform_values, min: 1e-4, max: 1e-2}
        weight_decay: {distribution: inv_log_uniform, min: 4, max: 9}
        """)
    lr, wd = spec.space["training.lr"], spec.space["training.weight_decay"]
    for p, ppf, lo, hi in ((lr, _wandb_inv_log_uniform_values_ppf, 1e-4, 1e-2),
                           (wd, _wandb_inv_log_uniform_ppf, 4, 9)):
        assert p.log
        assert ppf(0.0, lo, hi) == pytest.approx(p.low)
        assert ppf(1.0, lo, hi) == pytest.approx(p.high)
        assert ppf(0.5, lo, hi) == pytest.approx(math.sqrt(p.low * p.high))  # a log scale's median


def test_values_are_categorical_and_value_is_fixed(root):
    spec = load(root, """\
        lr_patience: {values: [1, 3, 5]}
        mask_nonlinear: {values: [relu, sigmoid]}
        grad_clip_norm: {values: [null, 1.0, 5.0]}
        use_amp: {distribution: categorical, values: [true, false]}
        seed: {values: [7]}
        lr: {value: 1e-3}
        num_epochs: {distribution: constant, value: 3}
        """)
    assert spec.space["training.lr_patience"] == Param("training.lr_patience", "lr_patience", "categorical",
                                                       values=[1, 3, 5], distribution="categorical")
    assert spec.space["training.grad_clip_norm"].values == [None, 1.0, 5.0]
    assert spec.space["training.use_amp"].values == [True, False]
    assert spec.fixed == {"training.seed": 7, "training.lr": 1e-3, "training.num_epochs": 3}
    assert any("values has one element" in n for n in spec.notes)
    assert isinstance(optuna_space(spec)["model.convtasnet.mask_nonlinear"],
                      optuna.distributions.CategoricalDistribution)


def test_integer_min_max_on_a_float_field_is_int_uniform_with_a_note(root):
    spec = load(root, "grad_clip_norm: {min: 1, max: 10}")
    assert spec.space["training.grad_clip_norm"].kind == "int"
    assert any("int_uniform in W&B" in n for n in spec.notes)


# --------------------------------------------------------------------------- names


def test_bare_shortened_exact_and_nested_names_resolve(root):
    spec = load(root, """\
        lr: {values: [0.001, 0.002]}
        model.H: {values: [32, 64]}
        training.weight_decay: {values: [0.0, 0.1]}
        model:
          parameters:
            N: {values: [32, 64]}
            convtasnet:
              parameters:
                X: {values: [2, 3]}
        data:
          parameters:
            batch_size: {value: 3}
        """)
    assert list(spec.space) == ["training.lr", "model.convtasnet.H", "training.weight_decay",
                                "model.convtasnet.N", "model.convtasnet.X"]
    assert spec.space["model.convtasnet.N"].name == "model.N"
    assert spec.fixed == {"data.batch_size": 3}


def test_ambiguous_name_lists_candidates_with_file_and_key():
    with pytest.raises(SearchSpaceError) as err:
        resolve_param_name("lr", source="s.yaml", key="parameters.lr", paths=["a.lr", "b.lr", "b.wd"])
    assert str(err.value) == "s.yaml: parameters.lr: ambiguous name, matches a.lr, b.lr; write the full path"


def test_unknown_name_suggests_candidates(root):
    with pytest.raises(SearchSpaceError, match=r"sweep\.yaml: parameters\.weight_decy: .*did you mean.*weight_decay"):
        load(root, "weight_decy: {values: [0.0, 0.1]}")


# --------------------------------------------------------------------------- base config


def test_base_config_is_found_in_the_sweep_folders_parents(tmp_path):
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments/tiny.yaml").write_text(BASE)
    sweep = write(tmp_path, """\
        method: random
        parameters:
          config: {value: experiments/tiny.yaml}
          lr: {values: [0.001, 0.01]}
        """, name="sweeps/stage/one/sweep.yaml")
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    spec = load_search(sweep, cwd=empty)
    assert spec.base_config == tmp_path / "experiments/tiny.yaml"
    assert spec.scheduler.max_t == 4  # from the base config's num_epochs


def test_base_config_tries_the_working_directory_first(tmp_path):
    (tmp_path / "base.yaml").write_text(BASE)
    here = tmp_path / "here"
    here.mkdir()
    (here / "base.yaml").write_text(BASE.replace("num_epochs: 4", "num_epochs: 9"))
    sweep = write(tmp_path, "method: random\nparameters:\n  config: {value: base.yaml}\n  lr: {value: 0.1}\n",
                  name="s/sweep.yaml")
    assert load_search(sweep, cwd=here).base_config == here / "base.yaml"
    assert load_search(sweep, cwd=here).scheduler.max_t == 9
    assert load_search(sweep, cwd=tmp_path / "s").base_config == tmp_path / "base.yaml"


def test_base_config_override_replaces_the_files_config(root):
    (root / "other.yaml").write_text(BASE.replace("num_epochs: 4", "num_epochs: 7"))
    sweep = write(root, "method: random\nparameters:\n  config: {value: base.yaml}\n  lr: {value: 0.1}\n")
    spec = load_search(sweep, base_config_override="other.yaml", cwd=root)
    assert spec.base_config == root / "other.yaml" and spec.scheduler.max_t == 7
    assert any("replaced by" in n for n in spec.notes)


def test_missing_base_config_lists_where_it_looked(tmp_path):
    sweep = write(tmp_path, "method: random\nparameters:\n  config: {value: nope.yaml}\n  lr: {value: 0.1}\n",
                  name="a/b/sweep.yaml")
    with pytest.raises(SearchSpaceError) as err:
        load_search(sweep, cwd=tmp_path / "a")
    msg = str(err.value)
    assert msg.startswith(f"{sweep}: parameters.config: nope.yaml not found; looked in ")
    assert str(tmp_path / "a/b") in msg and str(tmp_path) in msg


def test_without_a_config_parameter_the_builtin_config_is_the_base(tmp_path):
    """The trials of such a sweep run the built-in configs/demo.yaml (tune.plan falls back to it), so
    the spec, its checks and max_t say that file, not the dataclass defaults (50 epochs, N 256)."""
    from tune_app.builtin import default_config

    spec = load_search(write(tmp_path, "method: random\nparameters:\n  lr: {values: [0.001, 0.01]}\n"),
                       cwd=tmp_path)
    assert spec.base_config == default_config()
    assert spec.scheduler.max_t == load_config(default_config()).training.num_epochs == 8
    (note,) = [n for n in spec.notes if "no base config" in n]
    assert "the trials use the built-in configs/demo.yaml" in note and str(default_config()) in note


# --------------------------------------------------------------------------- errors


BAD_PARAMS = [
    ("lr: {distribution: uniform, min: 0.01, max: 0.001}", "parameters.lr", "min 0.01 > max 0.001; swap them"),
    ("lr: {distribution: log_uniform_values, min: 0, max: 0.1}", "parameters.lr", "needs min > 0"),
    ("lr: {distribution: inv_log_uniform_values, min: -1, max: 0.1}", "parameters.lr", "needs min > 0"),
    ("lr: {distribution: q_log_uniform_values, min: 1e-4, max: 1e-2, q: 1e-4}", "parameters.lr",
     "use distribution: log_uniform_values with min: 0.0001, max: 0.01"),
    ("lr: {distribution: q_log_uniform, min: -9, max: -4}", "parameters.lr", "starts below 1; use distribution: "
     "log_uniform_values with min: 0.00012341, max: 0.0183156 for a float log scale"),
    ("lr: {distribution: normal, mu: 0.005, sigma: 0.001}", "parameters.lr",
     "cannot honour a normal prior; use distribution: uniform with min/max, e.g. mu±2σ = [0.003, 0.007]"),
    ("lr: {distribution: q_normal, mu: 1, sigma: 1, q: 1}", "parameters.lr", "normal prior"),
    ("lr: {distribution: log_normal, mu: -7, sigma: 1}", "parameters.lr", "log-normal prior; use distribution: "
     "log_uniform_values"),
    ("lr_factor: {distribution: beta, a: 2, b: 2}", "parameters.lr_factor", "beta prior"),
    ("lr_factor: {distribution: q_beta, a: 2, b: 2, q: 0.1}", "parameters.lr_factor", "beta prior"),
    ("lr_patience: {values: [1, 2], probabilities: [0.5, 0.5]}", "parameters.lr_patience",
     "cannot weight categories; drop probabilities"),
    ("lr_patience: {values: [1, 2], probabilities: [0.5, 0.4]}", "parameters.lr_patience", "sum to 0.9, not 1"),
    ("lr_patience: {values: [1, 2], probabilities: [1.0]}", "parameters.lr_patience",
     "1 probabilities for 2 values"),
    ("lr: {distribution: lognormal, min: 1, max: 2}", "parameters.lr",
     "unknown distribution 'lognormal'; did you mean 'log_normal'? known: constant, categorical"),
    ("lr: {values: []}", "parameters.lr", "values must be a non-empty list"),
    ("lr_patience: {distribution: uniform, min: 1, max: 5}", "parameters.lr_patience",
     "integer field but uniform draws floats; use distribution: int_uniform, or q_uniform with q: 1"),
    ("lr_patience: {min: 1.0, max: 5.0}", "parameters.lr_patience", "(float min/max mean uniform)"),
    ("N: {distribution: log_uniform_values, min: 16, max: 512}", "parameters.N",
     "or q_log_uniform_values with q: 1"),
    ("grad_clip_norm: {distribution: q_uniform, min: 0.2, max: 5.0, q: 0.5}", "parameters.grad_clip_norm",
     "min 0.2 is not a multiple of q 0.5"),
    ("grad_clip_norm: {distribution: q_uniform, min: 0.5, max: 4.8, q: 0.5}", "parameters.grad_clip_norm",
     "use max: 4.5 or 5"),
    ("lr_patience: {distribution: int_uniform, min: 1.5, max: 4}", "parameters.lr_patience",
     "int_uniform needs integer min/max"),
    ("N: {distribution: q_uniform, min: 60, max: 260, q: 64}", "parameters.N", "use min: 0 or 64"),
    ("task: {min: 1, max: 2}", "parameters.task", "str field and cannot take a numeric range; use values"),
    ("use_amp: {min: 0, max: 1}", "parameters.use_amp", "use values: [true, false]"),
    ("lr: {value: 0}", "parameters.lr", "training.lr: 0.0 is not allowed; the learning rate must be > 0"),
    ("num_epochs: {value: ten}", "parameters.num_epochs", "expected an integer"),
    ("task: {values: [ES, XX]}", "parameters.task", "use one of ES, EB, SB"),
    ("lr_factor: {distribution: uniform, min: 0.5, max: 1.0}", "parameters.lr_factor",
     "use a factor between 0 and 1"),
    ("validation_variants: {values: [[SER], [SE]]}", "parameters.validation_variants", "is not a scalar"),
    ("lr: {distribution: uniform, min: 0.1, max: 0.2, step: 0.1}", "parameters.lr", "unknown key 'step'"),
    ("lr: {distribution: uniform, min: 0.1, max: 0.2, q: 0.1}", "parameters.lr",
     "'q' does not apply to distribution uniform"),
    ("lr: {value: 0.1, values: [0.1, 0.2]}", "parameters.lr", "has both value and values"),
    ("lr: {distribution: uniform, min: 0.1}", "parameters.lr", "needs max"),
    ("lr: {distribution: uniform, min: low, max: 0.2}", "parameters.lr", "min must be a finite number"),
    ("lr: {mu: 1}", "parameters.lr", "cannot tell the distribution"),
    ("lr: 0.1", "parameters.lr", "expected a mapping"),
    ("1lr: {value: 0.1}", "parameters.1lr", "must match"),
    ("weight_decay: {value: 0.1}\ntraining.weight_decay: {value: 0.2}", "parameters.training.weight_decay",
     "sets training.weight_decay again"),
    ("model: {parameters: {N: {value: 64}}, value: 3}", "parameters.model", "cannot also have value"),
    ("kernel_size: {values: [16, 32]}\nstride: {value: 8}", "parameters.kernel_size",
     "torchaudio fixes the stride at kernel_size/2 = 16"),
]


@pytest.mark.parametrize(("params", "key", "fix"), BAD_PARAMS, ids=[b[1] + ":" + b[2][:30] for b in BAD_PARAMS])
def test_bad_parameters_name_the_file_the_key_and_the_fix(root, params, key, fix):
    with pytest.raises(SearchSpaceError) as err:
        load(root, params)
    msg = str(err.value)
    assert msg.startswith(f"{root / 'sweep.yaml'}: {key}: "), msg
    assert fix in msg
    assert "\n" not in msg


BAD_TOP = [
    ("foo: 1\n", "foo", "unknown top-level key 'foo'"),
    ("controller: {type: local}\n", "controller", "not supported by polsess-tune"),
    ("run_cap: 0\n", "run_cap", "expected an integer >= 1"),
    ("early_terminate: {type: envelope}\n", "early_terminate.type", "use hyperband or median_stopping"),
    ("early_terminate: {type: hyperband, eta: 3}\n", "early_terminate", "needs min_iter"),
    ("early_terminate: {type: hyperband, max_iter: 27}\n", "early_terminate.s", "max_iter needs s"),
    ("early_terminate: {type: hyperband, min_iter: 1, eta: 1}\n", "early_terminate.eta", "a number > 1"),
    ("early_terminate: {type: hyperband, min_iter: 1, bands: 3}\n", "early_terminate.bands", "unknown key"),
    ("tune: {gpus: 1}\n", "tune.gpus", "unknown key; tune: takes num_samples"),
    ("tune: {resources_per_trial: {cpu: 1, tpu: 1}}\n", "tune.resources_per_trial.tpu", "use cpu and gpu"),
    ("tune: {scheduler: pbt}\n", "tune.scheduler", "use asha, median or fifo"),
    ("tune: {grace_period: 2}\n", "tune.grace_period", "set tune.scheduler: asha"),
    ("tune: {points_to_evaluate: [{lr: 0.5}]}\n", "tune.points_to_evaluate[0].lr",
     "0.5 is outside [0.0001, 0.01]; pick a point inside the space"),
    ("tune: {points_to_evaluate: [{lr_patience: 2}]}\n", "tune.points_to_evaluate[0].lr_patience",
     "training.lr_patience is not searched"),
    ("tune: {points_to_evaluate: [{lr: 0.001, seed: 3}]}\n", "tune.points_to_evaluate[0].seed",
     "training.seed is fixed by the sweep"),
]


@pytest.mark.parametrize(("extra", "key", "fix"), BAD_TOP, ids=[b[1] for b in BAD_TOP])
def test_bad_sections_name_the_file_the_key_and_the_fix(root, extra, key, fix):
    params = "lr: {distribution: log_uniform_values, min: 1e-4, max: 1e-2}\nseed: {value: 1}\n"
    with pytest.raises(SearchSpaceError) as err:
        load(root, params, extra=extra)
    msg = str(err.value)
    assert msg.startswith(f"{root / 'sweep.yaml'}: {key}: "), msg
    assert fix in msg


@pytest.mark.parametrize(
    ("head", "key", "fix"),
    [
        ("metric: {name: val_sisdr, goal: maximize}\n", "method", "missing; add method: bayes"),
        ("method: custom\n", "method", "'custom'"),
        ("method: hyperopt\n", "method", "use bayes, random or grid"),
        ("method: bayes\nmetric: {name: val_loss, goal: minimize}\n", "metric.name",
         "use one of val_sisdr, val_sisdri, best_val_sisdr, train_sisdr"),
        ("method: bayes\nmetric: {name: val_sisdr, goal: max}\n", "metric.goal", "use maximize or minimize"),
        ("method: grid\n", "parameters.lr", "method grid needs a finite list"),
    ],
)
def test_bad_method_and_metric(root, head, key, fix):
    with pytest.raises(SearchSpaceError) as err:
        load(root, "lr: {distribution: uniform, min: 0.001, max: 0.01}\n", head=head)
    assert str(err.value).startswith(f"{root / 'sweep.yaml'}: {key}: ") and fix in str(err.value)


def test_grid_refuses_a_huge_integer_range(root):
    with pytest.raises(SearchSpaceError, match=r"parameters\.N: int_uniform expands to 449 grid values"):
        load(root, "N: {min: 64, max: 512}", method="grid")


def test_malformed_yaml_and_a_bad_base_config_are_search_space_errors(root):
    bad = write(root, "method: [bayes\n", name="bad.yaml")
    with pytest.raises(SearchSpaceError, match=r"bad\.yaml: line \d+: malformed YAML"):
        load_search(bad)
    (root / "broken.yaml").write_text("training: {lrr: 0.1}\n")
    sweep = write(root, "method: random\nparameters:\n  config: {value: broken.yaml}\n  lr: {value: 0.1}\n")
    with pytest.raises(SearchSpaceError, match=r"sweep\.yaml: parameters\.config: .*broken\.yaml: training\.lrr: "
                                               r"unknown key; did you mean lr\?"):
        load_search(sweep, cwd=root)


def test_errors_are_value_errors():
    assert issubclass(SearchSpaceError, ValueError)


# --------------------------------------------------------------------------- metric


def test_no_metric_block_searches_val_sisdr_up(root):
    spec = load(root, "lr: {values: [0.001, 0.01]}", head="method: random\n")
    assert (spec.metric, spec.mode, spec.target) == ("val_sisdr", "max", None)


def test_metric_without_goal_minimizes_like_wandb_and_says_so(root):
    spec = load(root, "lr: {values: [0.001, 0.01]}",
                head="method: bayes\nmetric: {name: best_val_sisdr, target: 12.5}\n")
    assert (spec.metric, spec.mode, spec.target) == ("best_val_sisdr", "min", 12.5)
    assert any("W&B's default goal is minimize" in n and "goal: maximize" in n for n in spec.notes)


# --------------------------------------------------------------------------- scheduler


@pytest.mark.parametrize(
    ("early_terminate", "grace", "rf"),
    [
        # W&B judges a run first after band + 1 epochs (tests/unit/test_wandb_engine.py shows it on `sweeps`)
        ("{type: hyperband, min_iter: 2}", 3, 3.0),  # eta defaults to 3
        ("{type: hyperband, min_iter: 1, eta: 2}", 2, 2.0),
        ("{type: hyperband, min_iter: 2, s: 2}", 3, 3.0),  # s only matters with max_iter
        ("{type: hyperband, max_iter: 27, s: 2, eta: 3}", 4, 3.0),  # bands 9, 3
        ("{type: hyperband, max_iter: 50, s: 2}", 6, 3.0),  # bands 16, 5 (floored)
        ("{type: hyperband, max_iter: 4, s: 3, eta: 2}", 2, 2.0),  # bands 2, 1 (0.5 < 1 is dropped)
    ],
)
def test_hyperband_becomes_asha(root, early_terminate, grace, rf):
    spec = load(root, "lr: {values: [0.001, 0.01]}\nnum_epochs: {value: 40}",
                extra=f"early_terminate: {early_terminate}\n")
    s = spec.scheduler
    assert (s.type, s.grace_period, s.reduction_factor, s.max_t, s.brackets) == ("asha", grace, rf, 40, 1)


def test_grace_period_past_the_last_epoch_is_clamped_with_a_note(root):
    spec = load(root, "lr: {values: [0.001, 0.01]}",
                extra="early_terminate: {type: hyperband, min_iter: 15, strict: true}\n")
    assert (spec.scheduler.grace_period, spec.scheduler.max_t) == (4, 4)
    assert any("clamped to 4" in n for n in spec.notes)
    assert any("strict" in n for n in spec.notes)


def test_median_stopping_and_fifo(root):
    spec = load(root, "lr: {values: [0.001, 0.01]}", extra="early_terminate: {type: median_stopping}\n")
    assert (spec.scheduler.type, spec.scheduler.grace_period) == ("median", 1)
    spec = load(root, "lr: {values: [0.001, 0.01]}",
                extra="early_terminate: {type: median_stopping, min_iter: 2}\n")
    assert (spec.scheduler.type, spec.scheduler.grace_period) == ("median", 2)
    spec = load(root, "lr: {values: [0.001, 0.01]}")
    assert (spec.scheduler.type, spec.scheduler.grace_period, spec.scheduler.max_t) == ("fifo", None, 4)


def test_tune_section_overrides_the_scheduler(root):
    spec = load(root, "lr: {values: [0.001, 0.01]}",
                extra="early_terminate: {type: hyperband, min_iter: 1}\ntune: {grace_period: 2, "
                      "reduction_factor: 4}\n")
    assert (spec.scheduler.grace_period, spec.scheduler.reduction_factor) == (2, 4.0)
    spec = load(root, "lr: {values: [0.001, 0.01]}", extra="tune: {scheduler: asha}\n")
    assert (spec.scheduler.type, spec.scheduler.grace_period, spec.scheduler.reduction_factor) == ("asha", 1, 3.0)
    spec = load(root, "lr: {values: [0.001, 0.01]}",
                extra="early_terminate: {type: hyperband, min_iter: 1}\ntune: {scheduler: fifo}\n")
    assert (spec.scheduler.type, spec.scheduler.grace_period) == ("fifo", None)


# --------------------------------------------------------------------------- budget and tune:


@pytest.mark.parametrize(
    ("extra", "n"),
    [("run_cap: 12\n", 12), ("count: 5\n", 5), ("run_cap: 12\ntune: {num_samples: 3}\n", 3), ("", None)],
)
def test_run_cap_count_and_num_samples(root, extra, n):
    assert load(root, "lr: {values: [0.001, 0.01]}", extra=extra).num_samples == n


def test_tune_section_is_read(root):
    spec = load(root, "lr: {distribution: log_uniform_values, min: 1e-4, max: 1e-2}\nN: {values: [32, 64]}",
                extra="""\
                tune:
                  max_concurrent_trials: 2
                  resources_per_trial: {cpu: 2, gpu: 0.5}
                  seed: 7
                  tags: [demo, cpu]
                  points_to_evaluate:
                    - {lr: 0.001, model.N: 64}
                    - {training.lr: 0.002}
                project: p
                entity: e
                name: n
                description: d
                """)
    assert spec.max_concurrent == 2 and spec.seed == 7 and spec.tags == ["demo", "cpu"]
    assert spec.resources_per_trial == {"cpu": 2.0, "gpu": 0.5}
    assert spec.points_to_evaluate == [{"training.lr": 0.001, "model.convtasnet.N": 64}, {"training.lr": 0.002}]
    assert (spec.project, spec.entity, spec.name, spec.description) == ("p", "e", "n", "d")
    first = sample_configs(spec, 3, seed=0)
    assert first[0] == {"training.lr": 0.001, "model.convtasnet.N": 64}
    assert first[1]["training.lr"] == 0.002


def test_program_and_command_are_ignored_with_a_note(root):
    spec = load(root, "lr: {values: [0.001, 0.01]}", extra="program: train.py\ncommand: [python, train.py]\n")
    assert any(n.startswith("program: 'train.py' ignored") for n in spec.notes)
    assert any(n.startswith("command:") for n in spec.notes)


# --------------------------------------------------------------------------- grid


def test_grid_size_expansion_and_sampler(root):
    spec = load(root, """\
        lr: {values: [0.001, 0.01]}
        lr_patience: {min: 1, max: 3}
        grad_clip_norm: {distribution: q_uniform, min: 0.5, max: 1.0, q: 0.25}
        seed: {values: [42]}
        """, method="grid")
    assert spec.space["training.lr_patience"].values == [1, 2, 3]
    assert spec.space["training.grad_clip_norm"].values == [0.5, 0.75, 1.0]
    assert spec.grid_size == spec.num_samples == 18
    assert spec.fixed == {"training.seed": 42}
    assert isinstance(make_sampler(spec, 0), optuna.samplers.GridSampler)
    drawn = sample_configs(spec, 50, seed=0)
    assert len(drawn) == 18 and len({tuple(sorted(d.items())) for d in drawn}) == 18


def test_grid_points_must_set_every_searched_parameter(root):
    with pytest.raises(SearchSpaceError, match=r"points_to_evaluate\[0\]: under method grid .*model\.convtasnet\.N"):
        load(root, "lr: {values: [0.001, 0.01]}\nN: {values: [32, 64]}", method="grid",
             extra="tune: {points_to_evaluate: [{lr: 0.01}]}\n")


# --------------------------------------------------------------------------- samplers and sampling


def test_samplers_follow_the_method(root):
    bayes = load(root, "lr: {values: [0.001, 0.01]}", method="bayes", extra="run_cap: 8\n")
    sampler = make_sampler(bayes, 0)
    assert isinstance(sampler, optuna.samplers.TPESampler) and sampler._n_startup_trials == 2
    assert isinstance(make_sampler(load(root, "lr: {values: [0.001, 0.01]}"), 0), optuna.samplers.RandomSampler)


@pytest.mark.parametrize("method", ["bayes", "random"])
def test_same_seed_same_samples_other_seed_other_samples(root, method):
    spec = load(root, "lr: {distribution: log_uniform_values, min: 1e-4, max: 1e-2}\nN: {values: [32, 64, 128]}",
                method=method)
    a, b, c = (sample_configs(spec, 5, seed) for seed in (0, 0, 1))
    assert a == b and a != c
    again = load(root, "lr: {distribution: log_uniform_values, min: 1e-4, max: 1e-2}\nN: {values: [32, 64, 128]}",
                 method=method)
    assert sample_configs(again, 5, 0) == a


# --------------------------------------------------------------------------- reporting


def test_describe_is_json_and_the_dry_run_text_lists_everything(root):
    spec = load(root, "lr: {distribution: log_uniform_values, min: 1e-4, max: 1e-2}\n"
                      "N: {distribution: q_uniform, min: 32, max: 64, q: 32}\nseed: {value: 3}",
                method="bayes", extra="early_terminate: {type: hyperband, min_iter: 1}\nrun_cap: 4\n")
    info = json.loads(json.dumps(describe(spec)))
    assert info["space"]["training.lr"] == {"kind": "float", "distribution": "log_uniform_values", "low": 1e-4,
                                            "high": 1e-2, "log": True}
    assert info["space"]["model.convtasnet.N"]["q"] == 32
    assert info["fixed"] == {"training.seed": 3}
    assert (info["method"], info["metric"], info["mode"], info["num_samples"]) == ("bayes", "val_sisdr", "max", 4)
    assert info["scheduler"]["type"] == "asha" and info["base_config"] == str(root / "base.yaml")
    text = format_dry_run(spec, sample_configs(spec, 2, 0))
    for part in ("training.lr", "float log [0.0001, 0.01]", "model.convtasnet.N", "step 32", "training.seed = 3",
                 "asha: grace_period 2", "val_sisdr (max)", "sample configs (2)"):
        assert part in text


# --------------------------------------------------------------------------- real files


@needs_shared
def test_the_research_sweeps_are_there():
    assert len(RESEARCH_SWEEPS) >= 3


@needs_shared
@pytest.mark.parametrize("path", RESEARCH_SWEEPS, ids=lambda p: p.parent.name + "/" + p.name)
def test_every_research_sweep_loads_unchanged(path, tmp_path):
    spec = load_search(path, cwd=tmp_path)
    assert spec.base_config is not None and spec.base_config.is_relative_to(EXAMPLES / "experiments")
    assert spec.mode == "max"
    assert any("ignored" in n for n in spec.notes)  # program: train_sweep.py
    assert sample_configs(spec, 2, 0)


@needs_shared
def test_research_stage1_maps_as_expected(tmp_path):
    spec = load_search(EXAMPLES / "sweeps/3-hyperparam-opt/convtasnet/stage1.yaml", cwd=tmp_path)
    assert spec.base_config == EXAMPLES / "experiments/convtasnet/sb_task_2000.yaml"
    assert spec.fixed == {"training.num_epochs": 50, "training.seed": 42, "training.early_stopping_patience": 10}
    assert set(spec.space) == {"training.lr", "training.weight_decay", "training.grad_clip_norm",
                               "training.lr_factor", "training.lr_patience"}
    assert (spec.metric, spec.method, spec.scheduler.type, spec.scheduler.grace_period, spec.scheduler.max_t) == (
        "best_val_sisdr", "bayes", "asha", 16, 50)  # min_iter 15: W&B judges runs after epoch 16


@needs_shared
def test_research_baseline_is_a_three_seed_grid(tmp_path):
    spec = load_search(EXAMPLES / "sweeps/1-baselines-SB/convtasnet.yaml", cwd=tmp_path)
    assert spec.method == "grid" and spec.grid_size == spec.num_samples == 3
    assert spec.space["training.seed"].values == [42, 123, 456]
    assert spec.fixed["training.curriculum_learning"][2]["lr_scheduler"] == "start"


def test_shipped_demo_space(root):
    spec = load_search(REPO / "search_spaces/demo.yaml", base_config_override=root / "base.yaml")
    assert (spec.method, spec.metric, spec.mode, spec.num_samples) == ("bayes", "val_sisdr", "max", 8)
    assert spec.scheduler.type == "asha" and spec.scheduler.grace_period == 2  # min_iter 1: after epoch 2
    assert spec.space["training.lr"].log and spec.space["training.weight_decay"].log
    assert (spec.max_concurrent, spec.resources_per_trial, spec.seed) == (2, {"cpu": 1.0, "gpu": 0.0}, 0)


@needs_shared
@pytest.mark.parametrize("name", ["convtasnet_training.yaml", "convtasnet_architecture.yaml"])
def test_shipped_convtasnet_spaces_load_on_the_research_sb_config(name):
    spec = load_search(REPO / "search_spaces" / name, base_config_override=SB_TASK)
    assert spec.mode == "max" and spec.space and spec.scheduler.type == "asha"
    assert "model.convtasnet.P" not in spec.space
    assert sample_configs(spec, 2, 0)


# --------------------------------------------------------------------------- #23/#24: names, notes, stages


def test_every_unknown_parameter_is_listed_in_one_line_with_the_hint_set_gets(root):
    """It used to stop at the first, with `did you mean data_root?` for dropout and `see run --dry-run`
    for learning_rate; `--set` and the sweep now share polsess.config.suggest."""
    with pytest.raises(SearchSpaceError) as err:
        load(root, "dropout: {values: [0.1, 0.2]}\nlearning_rate: {min: 0.001, max: 0.01}\nN: {values: [32, 64]}\n"
                   "training.lrr: {values: [1, 2]}\n")
    assert str(err.value) == (
        f"{root / 'sweep.yaml'}: unknown config keys: parameters.dropout (torchaudio's ConvTasNet has no dropout; "
        "remove it), parameters.learning_rate (did you mean lr?), parameters.training.lrr (did you mean training.lr?)")
    with pytest.raises(SearchSpaceError, match=r"sweep\.yaml: parameters\.learning_rate: unknown config key; "
                                               r"did you mean lr\?$"):
        load(root, "learning_rate: {min: 0.001, max: 0.01}\n")


def test_every_w_and_b_distribution_has_a_handler():
    from tune_app.space.distributions import _HANDLERS, DISTRIBUTIONS

    assert set(_HANDLERS) == set(DISTRIBUTIONS) - {"constant"}  # constants are fixed values, never a Param


def test_a_grace_period_at_or_past_max_t_says_asha_stops_nothing(root):
    """A 2-epoch Pareto run noted `grace period 3` and nothing more; with max_t 2 no trial is ever cut."""
    (root / "two.yaml").write_text(BASE.replace("num_epochs: 4", "num_epochs: 2"))
    spec = load_search(REPO / "search_spaces/demo_pareto.yaml", base_config_override=root / "two.yaml")
    assert (spec.scheduler.grace_period, spec.scheduler.max_t) == (2, 2)
    assert any("grace period 3 > max_t 2 epochs; clamped to 2, so ASHA stops nothing: every trial trains all 2 "
               "epochs" in n for n in spec.notes), spec.notes
    spec = load(root, "lr: {values: [0.001, 0.01]}", extra="early_terminate: {type: hyperband, min_iter: 3}\n")
    assert any("grace period 4 = max_t 4 epochs, so ASHA stops nothing" in n for n in spec.notes), spec.notes
    spec = load(root, "lr: {values: [0.001, 0.01]}", extra="early_terminate: {type: hyperband, min_iter: 1}\n")
    assert not any("stops nothing" in n for n in spec.notes)


def test_the_trial_count_note_holds_whatever_the_command_line_adds(root):
    """It said `the driver's default number of trials applies` beside a --budget-epochs that replaced it."""
    (note,) = [n for n in load(root, "lr: {values: [0.001, 0.01]}").notes if "trial count" in n]
    assert note == ("the sweep sets no trial count (run_cap, count or tune.num_samples): --num-samples or "
                    "--budget-epochs decides it, else the driver's default")


def test_a_folder_as_the_base_config_override_is_called_a_folder(root):
    with pytest.raises(SearchSpaceError, match=r"base config override: .*: a folder, not a file"):
        load_search(write(root, "method: random\nparameters:\n  lr: {values: [0.1, 0.2]}\n"),
                    base_config_override=root, cwd=root)


STAGED = """\
method: random
parameters:
  config: {value: base.yaml}
  lr: {distribution: log_uniform_values, min: 0.0001, max: 0.01}
stages:
  - {name: wide, num_samples: 4, epochs: 2, train_max_samples: 20, set: {batch_size: 4}}
  - {name: narrow, num_samples: 2, epochs: 4, grace_period: 2, narrow: {top_k: 2, margin: 0.5}}
  - {num_samples: 1, parameters: {lr: {values: [0.001, 0.002]}, N: {values: [32, 64]}}}
"""


def test_stages_are_records_read_with_the_sweep(root):
    from tune_app.space.stages import Stage, parse_stages

    spec = load_search(write(root, STAGED), cwd=root)
    wide, narrow, last = spec.stages
    assert all(isinstance(s, Stage) for s in spec.stages) and parse_stages(spec) == spec.stages
    assert (wide.name, wide.num_samples, wide.top_k) == ("wide", 4, None)
    assert wide.overrides == {"training.num_epochs": 2, "data.train_max_samples": 20, "data.batch_size": 4}
    assert (narrow.grace_period, narrow.top_k, narrow.margin) == (2, 2, 0.5)
    assert last.name == "stage3" and set(last.explicit) == {"training.lr", "model.convtasnet.N"}


@pytest.mark.parametrize("stage, needle", [
    ("{num_samples: 2, set: [lr]}", "stages[1].set: expected a mapping {name: value}, got ['lr']"),
    ("{num_samples: 2, narrow: {top_k: 1}, set: {lrr: 1, dropout: 0}}",
     "unknown config keys: stages[1].set.lrr (did you mean lr?), stages[1].set.dropout"),
    ("{num_samples: 2, narrow: {top_k: 1, margin: wide}}", "stages[1].narrow: margin must be a finite number"),
    ("{num_samples: 2, narrow: {top_k: 1}, grace_period: 0}", "stages[1].grace_period: expected an integer >= 1"),
    ("{num_samples: 0, narrow: {top_k: 1}}", "stages[1].num_samples: 0; give each stage a positive number"),
    ("{num_samples: 2}", "stages[1]: give narrow: {top_k: K} or explicit parameters: for a later stage"),
    ("{num_samples: 2, parameters: {lrr: {values: [1, 2]}}}", "stages[1]: parameters.lrr: unknown config key"),
])
def test_a_bad_stage_is_a_search_space_error_naming_it(root, stage, needle):
    """Read with the sweep, a stage's mistake is one line before anything starts (a list as `set:` and a
    word as `margin` used to raise AttributeError / ValueError)."""
    text = STAGED.split("stages:")[0] + f"stages:\n  - {{num_samples: 4}}\n  - {stage}\n"
    with pytest.raises(SearchSpaceError) as err:
        load_search(write(root, text), cwd=root)
    assert str(err.value).startswith(str(root / "sweep.yaml")) and needle in str(err.value), str(err.value)


def test_a_huge_value_quoted_in_an_error_is_cut_in_the_middle(root):
    """A 50,000-element list where a mapping belongs: the line names the key and what it expects, and
    stays a line (it used to print the whole list)."""
    sweep = write(root, "method: random\nparameters:\n  lr: [" + ", ".join(["1"] * 50_000) + "]\n")
    with pytest.raises(SearchSpaceError) as err:
        load_search(sweep, cwd=root)
    msg = str(err.value)
    assert msg.startswith(f"{sweep}: parameters.lr: expected a mapping such as {{value: ...}}") and " … " in msg
    assert len(msg) < 1000 + len(f"{sweep}: parameters.lr: ") + 10
