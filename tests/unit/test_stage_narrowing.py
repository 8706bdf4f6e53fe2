"""Stage narrowing: ranges shrink to the previous stage's top-K (plus a margin, in log space for log
parameters, on the step grid, never past the original), categories to those used; the top-K start
the next stage as points inside the narrowed space."""

from __future__ import annotations

import math

import pytest

from tune_app.space import Param
from tune_app.space.spec import SchedulerSpec, SearchSpec
from tune_app.space.stages import Stage, narrow_param, stage_spec


def test_log_range_narrows_in_log_space_within_the_original():
    lr = Param("training.lr", "lr", "float", 1e-5, 1e-2, log=True)
    out = narrow_param(lr, [1e-4, 1e-3], margin=0.25)
    span = math.log(1e-3) - math.log(1e-4)
    assert out.low == pytest.approx(math.exp(math.log(1e-4) - 0.25 * span))
    assert out.high == pytest.approx(math.exp(math.log(1e-3) + 0.25 * span))
    wide = narrow_param(lr, [1e-5, 1e-2], margin=0.25)
    assert (wide.low, wide.high) == (1e-5, 1e-2)  # clipped to the original range


def test_stepped_int_range_stays_on_its_grid():
    p = Param("model.convtasnet.X", "X", "int", 2, 12, q=2)
    out = narrow_param(p, [6, 8], margin=0.5)
    assert (out.low, out.high) == (4, 10)
    assert all(out.contains(v) for v in (4, 6, 8, 10)) and not out.contains(5)


def test_one_value_gets_a_tenth_of_the_range_as_span():
    p = Param("training.grad_clip_norm", "grad_clip_norm", "float", 0.0, 10.0)
    out = narrow_param(p, [5.0], margin=1.0)
    assert (out.low, out.high) == pytest.approx((4.0, 6.0))


def _spec(space: dict[str, Param]) -> SearchSpec:
    return SearchSpec(file=None, base_config=None, space=space, fixed={}, method="bayes", metric="val_sisdr",
                      mode="max", target=None, scheduler=SchedulerSpec("asha", 1, 2.0, 10), num_samples=8)


def test_stage_spec_narrows_fixes_single_categories_and_starts_from_the_top():
    spec = _spec({"training.lr": Param("training.lr", "lr", "float", 1e-5, 1e-2, log=True),
                  "model.convtasnet.B": Param("model.convtasnet.B", "B", "categorical", values=[32, 64, 128])})
    top = [{"training.lr": 3e-4, "model.convtasnet.B": 64}, {"training.lr": 1e-3, "model.convtasnet.B": 64}]
    stage = Stage(1, "narrow", 4, overrides={"training.num_epochs": 20}, top_k=2)
    out = stage_spec(spec, stage, top)
    assert out.fixed == {"training.num_epochs": 20, "model.convtasnet.B": 64}
    assert list(out.space) == ["training.lr"] and out.num_samples == 4
    assert out.points_to_evaluate == [{"training.lr": 3e-4}, {"training.lr": 1e-3}]
    assert all(out.space["training.lr"].contains(p["training.lr"]) for p in out.points_to_evaluate)
    assert spec.space["model.convtasnet.B"].values == [32, 64, 128]  # the original is untouched


def test_grace_period_is_clamped_to_the_stage_epochs_in_one_place():
    sched = SchedulerSpec("asha", grace_period=5, reduction_factor=2.0)
    sched.fit_to(3)
    assert (sched.max_t, sched.grace_period) == (3, 3)
    assert sched.notes == ["grace period 5 > max_t 3 epochs; clamped to 3, so ASHA stops nothing: every trial "
                           "trains all 3 epochs before it is first judged; lower the grace period below 3 or train "
                           "more epochs"]


def test_a_stage_with_a_fraction_of_the_last_ones_optimizer_steps_gets_a_note():
    from tune_app.space.stages import Stage, step_notes

    wide = Stage(0, "wide", 8, {"training.num_epochs": 4, "data.train_max_samples": 50})
    narrow = Stage(1, "narrow", 4, {"training.num_epochs": 4, "data.train_max_samples": None})
    (note,) = step_notes([wide, narrow], base_epochs=8, base_max_samples=None, train_rows=200)
    assert note.startswith("stage wide trains 0.25 of the optimizer steps per trial of stage narrow")
    assert "about 4× the epochs" in note
    wide.overrides["training.num_epochs"] = 16  # the same steps on a quarter of the rows: no note
    assert step_notes([wide, narrow], base_epochs=8, base_max_samples=None, train_rows=200) == []
