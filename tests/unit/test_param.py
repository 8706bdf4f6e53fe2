"""Param: the one home of a value's membership of the space and of its Optuna distribution."""

from __future__ import annotations

import optuna
import pytest

from tune_app.space import Param

LR = Param("training.lr", "lr", "float", 1e-4, 1e-2, log=True, distribution="log_uniform_values")
X = Param("model.convtasnet.X", "X", "int", 2, 10, q=2, distribution="q_uniform")
CLIP = Param("training.grad_clip_norm", "grad_clip_norm", "float", 1.0, 5.0, q=0.5, distribution="q_uniform")
B = Param("model.convtasnet.B", "B", "categorical", values=[32, 64, None, True], distribution="categorical")


@pytest.mark.parametrize(("param", "value", "why"), [
    (LR, 1e-3, None), (LR, 1e-2, None), (LR, 2e-2, "is outside [0.0001, 0.01]"), (LR, "x", "is not a number"),
    (X, 4, None), (X, 5, "is not on the q = 2 steps from 2"), (X, 4.5, "is not a whole number"),
    (CLIP, 2.5, None), (CLIP, 2.25, "is not on the q = 0.5 steps"),
    (B, 64, None), (B, 64.0, None), (B, None, None), (B, 1, "is not one of"), (B, "64", "is not one of"),
])
def test_why_outside_and_contains(param, value, why):
    problem = param.why_outside(value)
    assert (problem is None) if why is None else (problem is not None and problem.startswith(why))
    assert param.contains(value) == (why is None)


def test_fit_forgives_file_noise_and_snaps_to_the_step():
    assert LR.fit(1e-2 * (1 + 1e-10)) == 1e-2  # clamped
    assert LR.fit(1e-2 * 1.01) is None
    assert CLIP.fit(2.5000000001) == 2.5
    assert CLIP.fit(2.3) is None
    assert X.fit(4.0) == 4 and isinstance(X.fit(4.0), int)
    assert X.fit(5) is None
    assert B.fit(64.0) == 64 and B.fit(True) is True and B.fit(1) is None
    assert LR.fit(1.0e-3 * (1 + 1e-7), rel_tol=1e-6) == pytest.approx(1e-3)


@pytest.mark.parametrize("param", [LR, X, CLIP, B])
def test_to_optuna_samples_only_values_the_param_contains(param):
    dist = param.to_optuna()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(50):
        value = study.ask({"p": dist}).params["p"]
        assert param.contains(value), value


@pytest.mark.parametrize("param", [LR, X, CLIP, B])
def test_as_dict_round_trips_through_from_dict(param):
    back = Param.from_dict(param.path, param.as_dict())
    assert back.to_optuna() == param.to_optuna()
    assert (back.kind, back.low, back.high, back.log, back.q, back.values) == \
        (param.kind, param.low, param.high, param.log, param.q, param.values)
