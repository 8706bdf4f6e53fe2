"""What the tests share besides fixtures: paths, the tiny model, the secrets a search must not leak.

A module of its own (not conftest.py) so test files in both tests/unit and tests/integration can
import it by one name.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
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
# The model and data sizes every search in the tests trains with: a trial-epoch takes about a second.
TINY_SETS: dict[str, object] = {"N": 16, "B": 8, "H": 16, "X": 2, "R": 1, "batch_size": 4, "segment_seconds": 0.25,
                                "num_workers": 0}


def tiny(epochs: int | None = None, **changes: object) -> list[str]:
    """``--set`` arguments for :data:`TINY_SETS`, plus ``num_epochs`` when given; ``changes`` add or
    replace keys, and a key set to None is left out (a key the test's sweep searches)."""
    sets = {**TINY_SETS, **({"num_epochs": epochs} if epochs is not None else {}), **changes}
    return [arg for key, value in sets.items() if value is not None for arg in ("--set", f"{key}={value}")]


TINY_MODEL = tiny()
SEARCH_EPOCHS = 4
# Secrets in the driver's environment: the search must keep them out of every file and the console.
SECRET_ENV = {"WANDB_API_KEY": "sk-test-0123456789abcdef", "MY_SERVICE_TOKEN": "tok-fedcba9876543210"}


def _child_env(env: Mapping[str, str] | None, base: Mapping[str, str] | None) -> dict[str, str]:
    return {**(os.environ if base is None else base), "PYTHONUNBUFFERED": "1", **(env or {})}


def polsess_tune(*args: str | Path, env: Mapping[str, str] | None = None, base: Mapping[str, str] | None = None,
                 cwd: Path = REPO, timeout: float = 600) -> subprocess.CompletedProcess:
    """``polsess-tune ARGS`` (as ``python -m tune_app.cli``) in a process of its own, stdout and stderr
    captured as text. Its environment: ``base`` (default: this process's), unbuffered, ``env`` on top."""
    return subprocess.run([sys.executable, "-m", "tune_app.cli", *map(str, args)], cwd=cwd, env=_child_env(env, base),
                          capture_output=True, text=True, timeout=timeout)


def start_polsess_tune(args: list[str], log: Path, env: Mapping[str, str] | None = None,
                       base: Mapping[str, str] | None = None, cwd: Path = REPO) -> subprocess.Popen:
    """``polsess-tune ARGS`` started in a session of its own (``processes.kill_session`` ends exactly it
    and the Ray processes it starts), stdout and stderr into ``log``; the environment as :func:`polsess_tune`."""
    return subprocess.Popen([sys.executable, "-m", "tune_app.cli", *map(str, args)], cwd=cwd,
                            env=_child_env(env, base), stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


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
        want = {"COMPLETED": TrialState.COMPLETE, "EARLY_STOPPED": TrialState.PRUNED, "ERROR": TrialState.FAIL,
                "BUDGET_CUT": TrialState.PRUNED, "NOT_STARTED": TrialState.FAIL}
        got = {t.trial_id: by_id[t.trial_id].name for t in exp.trials}
        expected = {t.trial_id: want[t.status].name for t in exp.trials}
        assert got == expected, f"study states {got}, results {expected}"
