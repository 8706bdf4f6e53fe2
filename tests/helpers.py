"""What the tests share besides fixtures: paths, the tiny model, the secrets a search must not leak.

A module of its own (not conftest.py) so test files in both tests/unit and tests/integration can
import it by one name.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = (REPO.parent / "shared").resolve()
EXAMPLES = SHARED / "examples/polsess_separation"
_NO_SHARED = f"the research examples are not at {EXAMPLES} (a plain clone has no ../shared)"
needs_shared = pytest.mark.skipif(not EXAMPLES.is_dir(), reason=_NO_SHARED)


def skip_without_shared() -> None:
    """For fixtures and module-level code that read ``../shared``: skip, naming where it was looked for."""
    if not EXAMPLES.is_dir():
        pytest.skip(_NO_SHARED)


DEMO_ROWS = {"train": 16, "val": 8, "test": 8}
TINY_MODEL = ["--set", "N=16", "--set", "B=8", "--set", "H=16", "--set", "X=2", "--set", "R=1",
              "--set", "batch_size=4", "--set", "segment_seconds=0.25", "--set", "num_workers=0"]
SEARCH_EPOCHS = 4
# Secrets in the driver's environment: the search must keep them out of every file and the console.
SECRET_ENV = {"WANDB_API_KEY": "sk-test-0123456789abcdef", "MY_SERVICE_TOKEN": "tok-fedcba9876543210"}


def assert_warm_points_inside(ws, spec) -> None:
    """A warm start's points: one per distinct vector, every searched path, each value inside its
    Optuna distribution (what ``OptunaSearch.add_evaluated_point`` requires), a finite reward."""
    import math

    from tune_app.space import optuna_space

    dists = optuna_space(spec)
    assert len(ws.points) == len(ws.rewards) == ws.used
    for point, reward in zip(ws.points, ws.rewards, strict=True):
        assert list(point) == list(spec.space)
        for path, value in point.items():
            assert dists[path]._contains(dists[path].to_internal_repr(value)), (path, value)
        assert math.isfinite(reward)
    assert len({tuple(p.values()) for p in ws.points}) == len(ws.points)


def assert_study_agrees(folder: Path, statuses: bool = True) -> None:
    """The Optuna study the search kept holds each Tune trial exactly once (by its ``ray_trial_id``),
    none left RUNNING; with ``statuses``, completed trials are COMPLETE and early-stopped ones PRUNED."""
    import json

    from optuna.trial import TrialState

    from tune_app.experiment.results import load_experiment
    from tune_app.experiment.study import load_study

    exp = load_experiment(folder)
    study = load_study(json.loads((folder / "search.json").read_text()))
    assert study is not None, f"{folder}: no Optuna study recorded"
    trials = study.get_trials(deepcopy=False)
    held = sorted(str(t.user_attrs.get("ray_trial_id")) for t in trials)
    assert held == sorted(t.trial_id for t in exp.trials), (held, [t.trial_id for t in exp.trials])
    assert not [t.number for t in trials if t.state == TrialState.RUNNING]
    if statuses:
        by_id = {t.user_attrs["ray_trial_id"]: t.state for t in trials}
        want = {"COMPLETED": TrialState.COMPLETE, "EARLY_STOPPED": TrialState.PRUNED, "ERROR": TrialState.FAIL}
        got = {t.trial_id: by_id[t.trial_id].name for t in exp.trials}
        expected = {t.trial_id: want[t.status].name for t in exp.trials}
        assert got == expected, f"study states {got}, results {expected}"
