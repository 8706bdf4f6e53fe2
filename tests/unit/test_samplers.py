"""tune.sampler: the sweep file picks what method: bayes samples with, and trials asked while others
run (Ray runs 2+ at once) never get the same proposal."""

from __future__ import annotations

import textwrap
from pathlib import Path

import optuna
import pytest

from tune_app.errors import SearchSpaceError
from tune_app.space import format_dry_run, load_search, make_sampler, optuna_space

BASE = "training: {num_epochs: 4, lr: 0.003, device: cpu}\n"


def spec_with(tmp_path: Path, tune: str, method: str = "bayes"):
    (tmp_path / "base.yaml").write_text(BASE)
    (tmp_path / "s.yaml").write_text(textwrap.dedent(f"""\
        method: {method}
        metric: {{name: val_sisdr, goal: maximize}}
        parameters:
          config: {{value: base.yaml}}
          lr: {{distribution: log_uniform_values, min: 1.0e-4, max: 1.0e-2}}
          grad_clip_norm: {{min: 1.0, max: 10.0}}
          B: {{values: [16, 32, 64]}}
        run_cap: 20
        {tune}
        """))
    return load_search(tmp_path / "s.yaml", cwd=tmp_path)


@pytest.mark.parametrize(("tune", "kind"), [("", optuna.samplers.TPESampler),
                                            ("tune: {sampler: tpe}", optuna.samplers.TPESampler),
                                            ("tune: {sampler: gp}", optuna.samplers.GPSampler),
                                            ("tune: {sampler: random}", optuna.samplers.RandomSampler)])
def test_the_sweep_file_chooses_the_sampler(tmp_path, tune, kind):
    spec = spec_with(tmp_path, tune)
    sampler = make_sampler(spec, seed=0)
    assert type(sampler) is kind
    if kind is not optuna.samplers.RandomSampler:
        assert sampler._n_startup_trials == 5  # a quarter of run_cap 20
    assert f"(sampler {spec.sampler})" in format_dry_run(spec, [])


def test_an_unknown_sampler_is_one_error_line(tmp_path):
    with pytest.raises(SearchSpaceError, match=r"s\.yaml: tune\.sampler: unknown sampler 'cmaes'; use tpe"):
        spec_with(tmp_path, "tune: {sampler: cmaes}")


def test_a_sampler_under_random_or_grid_is_noted_as_ignored(tmp_path):
    spec = spec_with(tmp_path, "tune: {sampler: gp}", method="random")
    assert any("tune.sampler gp ignored" in n for n in spec.notes)
    assert type(make_sampler(spec, seed=0)) is optuna.samplers.RandomSampler


@pytest.mark.parametrize("sampler", ["tpe", "gp", "random"])
def test_trials_asked_while_others_run_get_distinct_proposals(tmp_path, sampler):
    """After the start-up trials, 4 trials asked at once (none told yet, as with 4 running trials)."""
    spec = spec_with(tmp_path, f"tune: {{sampler: {sampler}}}")
    space = optuna_space(spec)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(direction="maximize", sampler=make_sampler(spec, seed=0))
    for _ in range(8):
        t = study.ask(space)
        study.tell(t, -abs(t.params["training.lr"] - 3e-3) * 100 - abs(t.params["training.grad_clip_norm"] - 5))
    running = [study.ask(space).params for _ in range(4)]
    keys = [tuple(sorted(p.items())) for p in running]
    assert len(set(keys)) == 4, running
