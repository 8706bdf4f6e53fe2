"""The base config as the search's prior (tune_app/space/prior.py): real Optuna studies, no Ray."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from polsess.config import load_config, to_flat
from tune_app.errors import SearchSpaceError
from tune_app.space import load_search, optuna_space
from tune_app.space.prior import BASE, MODEL, PRIOR, RANDOM, PriorSampler, PriorSetting, resolve_prior
from tune_app.space.report import format_dry_run
from tune_app.space.sampling import first_points, make_sampler, sample_configs, search_prior

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "search_spaces" / "demo.yaml"

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _spec(tmp_path: Path, **tune):
    raw = yaml.safe_load(DEMO.read_text())
    raw["parameters"]["config"] = {"value": str(REPO / "configs" / "demo.yaml")}
    raw["tune"].update(tune)
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_search(path)


def _base(spec):
    return to_flat(load_config(spec.base_config, spec.fixed))


def _study(spec, prior, seed=0, n_samples=20):
    sampler = make_sampler(spec, seed, num_samples=n_samples, prior=prior)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    for point in first_points(spec, prior):
        study.enqueue_trial(point)
    return study


def test_the_prior_is_on_by_default_and_centred_on_the_base_config(tmp_path):
    spec = _spec(tmp_path)
    prior = search_prior(spec, _base(spec))
    assert prior is not None and prior.origin == "base"
    assert prior.params["training.lr"].mode == 0.003
    assert prior.params["model.convtasnet.B"].mode == 32
    # weight_decay 0.0 lies outside the log range [1e-7, 1e-3]: no prior on it, trial 0 at the nearest end
    assert "training.weight_decay" not in prior.params
    assert prior.base_point["training.weight_decay"] == pytest.approx(1e-7)
    assert any("weight_decay" in note for note in prior.notes)


def test_trial_0_is_the_base_config_then_seeded_proposals_inside_the_ranges(tmp_path):
    spec = _spec(tmp_path)
    prior = search_prior(spec, _base(spec))
    space = optuna_space(spec)
    first = sample_configs(spec, 30, seed=3, base_flat=_base(spec))
    again = sample_configs(spec, 30, seed=3, base_flat=_base(spec))
    assert first == again  # seeded
    assert first[0] == prior.base_point
    assert first[1:] != sample_configs(spec, 30, seed=4, base_flat=_base(spec))[1:]
    for config in first:
        for path, value in config.items():
            assert spec.space[path].contains(value), (path, value)
    study = _study(spec, prior)
    sources = []
    for _ in range(12):
        trial = study.ask(space)
        sources.append(study.sampler.source(trial.number))
        study.tell(trial, 1.0)
    assert sources[0] == BASE
    assert PRIOR in sources[1:] and set(sources) <= {BASE, PRIOR, RANDOM, MODEL}


def test_prior_draws_concentrate_around_the_mode(tmp_path):
    spec = _spec(tmp_path)
    prior = search_prior(spec, _base(spec))
    lr = prior.params["training.lr"]
    import random

    rng = random.Random(0)
    units = [lr.param.to_unit(lr.draw(rng)) for _ in range(2000)]
    centre = lr.param.to_unit(lr.mode)
    near = sum(abs(u - centre) <= 0.25 for u in units) / len(units)
    assert 0.7 < near < 0.8  # ±1 sigma of the normal truncated to [0, 1] about 0.66: 75 %; a uniform draw: 50 %
    b = prior.params["model.convtasnet.B"]
    share = sum(b.draw(rng) == 32 for _ in range(2000)) / 2000
    assert 0.7 < share < 0.8  # the base value favoured (0.75), the other still drawn


def _told(spec, prior, scores):
    """A study whose trials (after the base) got ``scores`` by their distance to the prior's mode."""
    study = _study(spec, prior)
    space = optuna_space(spec)
    for score_of in scores:
        trial = study.ask(space)
        study.tell(trial, score_of(trial.params))
    return study


def test_a_prior_the_evidence_supports_is_kept_and_a_wrong_one_fades(tmp_path):
    spec = _spec(tmp_path, prior_policy="priorband")
    prior = search_prior(spec, _base(spec))
    lr = spec.space["training.lr"]
    near = [lambda p: -abs(lr.to_unit(p["training.lr"]) - lr.to_unit(0.003))] * 12
    far = [lambda p: abs(lr.to_unit(p["training.lr"]) - lr.to_unit(0.003))] * 12
    good, bad = _told(spec, prior, near), _told(spec, prior, far)
    w_good, w_bad = good.sampler.prior_weight(good, 12), bad.sampler.prior_weight(bad, 12)
    assert w_good > 0.5 > w_bad
    assert w_bad < 0.3


def _reported(spec, prior, score_by_source, n=8):
    """A study of ``n`` trials, each reporting epochs 1 and 2 at the score its source gets."""
    study = _study(spec, prior)
    space = optuna_space(spec)
    for _ in range(n):
        trial = study.ask(space)
        score = score_by_source[study.sampler.source(trial.number)]
        for epoch in (1, 2):
            trial.report(score, epoch)
        study.tell(trial, score)
    return study


def test_standing_keeps_a_base_config_that_beats_the_search_and_drops_one_that_does_not(tmp_path):
    spec = _spec(tmp_path)  # the default policy
    prior = search_prior(spec, _base(spec))
    assert prior.policy == "standing"
    fresh = _study(spec, prior)
    decay = min(1.0, (1 + 20 / 10) / 5)
    assert fresh.sampler.prior_weight(fresh, 5) == pytest.approx(decay / 2)  # nothing compared yet
    # The prior's own draws score best of all: they lie near the base config, so they are not its evidence.
    wins = _reported(spec, prior, {BASE: 3.0, PRIOR: 9.0, RANDOM: 1.0, MODEL: 1.0})
    loses = _reported(spec, prior, {BASE: 1.0, PRIOR: 9.0, RANDOM: 3.0, MODEL: 3.0})
    level = _reported(spec, prior, {BASE: 2.0, PRIOR: 2.0, RANDOM: 2.0, MODEL: 2.0})
    rest = sum(wins.sampler.source(t.number) in (RANDOM, MODEL) for t in wins.trials)
    assert rest >= 2  # the comparison has trials to stand against
    pairs = 2 * rest
    assert wins.sampler.standing(wins, 8) == pytest.approx(2 * (pairs + 1) / (pairs + 2) - 1)
    assert wins.sampler.prior_weight(wins, 8) == pytest.approx(min(1.0, 3 / 8) * wins.sampler.standing(wins, 8))
    assert loses.sampler.standing(loses, 8) == 0.0 == loses.sampler.prior_weight(loses, 8)
    assert level.sampler.standing(level, 8) == 0.0  # only matching the search's own draws: no reason to stay


def test_the_decay_counts_restored_trials_after_a_resume(tmp_path):
    """A resumed search (its sampler unpickled, as Tune restores the searcher; its study the same
    trials) weighs the prior and picks each trial's source exactly as the uninterrupted one."""
    spec = _spec(tmp_path, prior_policy="pibo")
    prior = search_prior(spec, _base(spec))
    study = _told(spec, prior, [lambda p: 1.0] * 6)
    restored = pickle.loads(pickle.dumps(study.sampler))
    assert restored.prior_weight(study, 7) == study.sampler.prior_weight(study, 7) < 1.0
    assert study.sampler.prior_weight(study, 1) > study.sampler.prior_weight(study, 7)  # πBO: fades with n
    # A fresh sampler on the restored study (resume rebuilds nothing else) decides the same sources.
    fresh = make_sampler(spec, 0, num_samples=20, prior=prior)
    space = optuna_space(spec)
    twin = optuna.create_study(direction="maximize", sampler=fresh)
    for t in study.trials:
        twin.add_trial(t)
    trial_a = study.ask(space)
    trial_b = twin.ask(space)
    assert trial_a.number == trial_b.number
    assert study.sampler.source(trial_a.number) == twin.sampler.source(trial_b.number)
    assert trial_a.params == trial_b.params


def test_explicit_prior_values_width_and_none(tmp_path):
    spec = _spec(tmp_path, prior={"lr": 5e-4, "model.B": 64}, prior_width=0.1)
    prior = search_prior(spec, _base(spec))
    assert prior.origin == "explicit"
    assert prior.params["training.lr"].mode == 5e-4 and prior.params["training.lr"].width == 0.1
    assert prior.base_point["training.lr"] == 5e-4 and prior.base_point["model.convtasnet.B"] == 64
    assert prior.base_point["training.grad_clip_norm"] == 5.0  # the base config's, where none is given
    assert search_prior(_spec(tmp_path, prior="none"), _base(spec)) is None
    assert first_points(_spec(tmp_path, prior="none"), None) == []


@pytest.mark.parametrize(("tune", "message"), [
    ({"prior": {"lr": 0.5}}, "tune.prior.lr: 0.5 is outside"),
    ({"prior": {"batch_size": 4}}, "is not searched"),
    ({"prior": "yes"}, "tune.prior: expected base"),
    ({"prior_width": 0.0}, "tune.prior_width: expected a number in [0.01, 0.5]"),
    ({"prior_policy": "bohb"}, "tune.prior_policy: unknown policy"),
])
def test_bad_prior_settings_name_the_key(tmp_path, tune, message):
    with pytest.raises(SearchSpaceError, match=re.escape(message)):
        _spec(tmp_path, **tune)


def test_a_grid_refuses_an_explicit_prior_and_has_none_by_default(tmp_path):
    raw = yaml.safe_load(DEMO.read_text())
    raw["method"] = "grid"
    raw["parameters"] = {"config": {"value": str(REPO / "configs" / "demo.yaml")}, "lr": {"values": [1e-3, 3e-3]}}
    raw["tune"]["prior"] = "base"
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(SearchSpaceError, match=r"tune\.prior: method grid tries every point"):
        load_search(path)
    del raw["tune"]["prior"]
    path.write_text(yaml.safe_dump(raw))
    spec = load_search(path)
    assert search_prior(spec, _base(spec)) is None
    assert "prior:        none (method grid)" in format_dry_run(spec, [], prior=None)


def test_dry_run_text_shows_mode_width_and_expected_draws(tmp_path):
    spec = _spec(tmp_path)
    text = format_dry_run(spec, [], num_samples=8, prior=search_prior(spec, _base(spec)))
    assert "prior:        the base config" in text and "trial 0 is its point" in text
    assert "training.lr              mode 0.003, sigma 0.25 of the log range" in text
    assert "training.weight_decay    no prior (uniform)" in text
    assert ("expected from the prior: about 1.9 of the 7 proposals after trial 0 (w = min(1, beta/n) x 1/2 "
            "until trial 0 is compared") in text
    text = format_dry_run(spec, [], num_samples=8, prior=search_prior(_spec(tmp_path, prior_policy="pibo"),
                                                                      _base(spec)))
    assert "expected from the prior: about 3.9 of the 7 proposals after trial 0 (w = min(1, beta/n))" in text
    text = format_dry_run(spec, [], num_samples=8, prior=search_prior(_spec(tmp_path, prior_policy="priorband"),
                                                                      _base(spec)))
    assert "about 3.5 of the 7 proposals after trial 0 (w = 1/2 until two trials are scored" in text


def test_pruned_trials_count_as_evidence_by_their_best_epoch(tmp_path):
    spec = _spec(tmp_path, prior_policy="priorband")
    prior = search_prior(spec, _base(spec))
    study = _study(spec, prior)
    space = optuna_space(spec)
    for i in range(4):
        trial = study.ask(space)
        trial.report(float(i), 1)
        study.tell(trial, state=TrialState.PRUNED)
    sampler: PriorSampler = study.sampler
    assert sampler.prior_weight(study, 4) != 0.5  # scored: the evidence, not the no-evidence default


def test_resolve_prior_skips_parameters_pinned_out_of_the_space(tmp_path):
    spec = _spec(tmp_path)
    space = {p: v for p, v in spec.space.items() if p != "training.lr"}
    prior = resolve_prior(space, PriorSetting(), _base(spec))
    assert "training.lr" not in prior.params and "training.lr" not in prior.base_point


def test_a_later_stage_takes_the_stage_befores_best_as_its_prior():
    from tune_app.space.stages import parse_stages, stage_spec

    spec = load_search(REPO / "search_spaces" / "demo_staged.yaml")
    stages = parse_stages(spec)
    top = [{"training.lr": 2e-3, "training.weight_decay": 1e-5, "training.grad_clip_norm": 3.0},
           {"training.lr": 4e-3, "training.weight_decay": 1e-6, "training.grad_clip_norm": 6.0}]
    first, second = stage_spec(spec, stages[0], []), stage_spec(spec, stages[1], top)
    assert first.prior.values == "base"
    assert second.prior.values == top[0]
    prior = search_prior(second, _base(second))
    assert prior.origin == "explicit" and prior.base_point == top[0]
    assert first_points(second, prior)[0] == top[0] and len(first_points(second, prior)) == 2  # not twice


def test_standing_in_a_pareto_search_compares_the_first_objective_of_finished_trials(tmp_path):
    """A multi-objective study keeps no epochs, so the base config stands by its final first objective."""
    spec = _spec(tmp_path)
    prior = search_prior(spec, _base(spec))
    space = optuna_space(spec)
    sampler = PriorSampler(optuna.samplers.RandomSampler(seed=0), prior, 0, budget=20)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    study.enqueue_trial(prior.base_point)
    for _ in range(6):
        trial = study.ask(space)
        first = 5.0 if sampler.source(trial.number) == BASE else 1.0
        study.tell(trial, (first, 0.0))
    others = sum(sampler.source(t.number) not in (BASE, PRIOR) for t in study.trials)
    assert others >= 1
    assert sampler.standing(study, 6) == pytest.approx(2 * (others + 1) / (others + 2) - 1)
