"""The Pareto front of a multi-objective search: trials no other trial beats on every objective.

A trial's point is its best-epoch score on the first objective (the checkpoint ``results`` and
``--export-best`` hand out, which Tune keeps by that metric) and its reported cost for the others
(constant over a trial). Errored trials are left out, as in every ranking; early-stopped ones stay
in: their checkpoint is a real model of that size with that score, and the table says how far each
one trained. Dominance is a few lines written here rather than Optuna's, which is private
(``optuna.study._multi_objective``) and would see each trial's last epoch, not its best.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..errors import TuneInputError
from .location import shown
from .results import Experiment, TrialRecord

Point = tuple[float, ...]


def objectives(exp: Experiment) -> list[tuple[str, str]]:
    """``[(metric, "max"|"min"), …]`` the search recorded; one entry for a single-objective search."""
    saved = exp.search.get("objectives")
    return [(str(n), str(m)) for n, m in saved] if saved else [(exp.metric, exp.mode)]


def is_multi_objective(exp: Experiment) -> bool:
    return len(objectives(exp)) > 1


def point(trial: TrialRecord, objs: Sequence[tuple[str, str]]) -> Point | None:
    """The trial's value of each objective: the best epoch for the first, the last report for the rest."""
    values = []
    for i, (name, mode) in enumerate(objs):
        if i == 0:
            v = trial.best(name, mode)
        else:
            scores = [s for s in trial.scores(name) if math.isfinite(s)]
            v = scores[-1] if scores else None
        if v is None:
            return None
        values.append(float(v))
    return tuple(values)


def dominates(a: Point, b: Point, modes: Sequence[str]) -> bool:
    """``a`` is at least as good as ``b`` on every objective and better on one."""
    signed = [(x if m == "max" else -x, y if m == "max" else -y) for x, y, m in zip(a, b, modes, strict=True)]
    return all(x >= y for x, y in signed) and any(x > y for x, y in signed)


def candidates(exp: Experiment, bounds: dict[str, float] | None = None) -> list[tuple[TrialRecord, Point]]:
    """Ranked trials (no errors) with a value for every objective, within ``bounds`` (metric → max)."""
    objs = objectives(exp)
    out = []
    for trial in exp.ranked():
        p = point(trial, objs)
        if p is not None and within(trial, bounds or {}):
            out.append((trial, p))
    return out


def within(trial: TrialRecord, bounds: dict[str, float]) -> bool:
    for name, limit in bounds.items():
        scores = trial.scores(name)
        if not scores or scores[-1] > limit:
            return False
    return True


def front(exp: Experiment, bounds: dict[str, float] | None = None) -> list[tuple[TrialRecord, Point]]:
    """The non-dominated candidates, best first on the first objective."""
    modes = [m for _, m in objectives(exp)]
    pool = candidates(exp, bounds)
    return [(t, p) for t, p in pool if not any(dominates(q, p, modes) for _, q in pool)]


def parse_bounds(texts: Sequence[str], known: Sequence[str]) -> dict[str, float]:
    """``["params_m=2"]`` → ``{"params_m": 2.0}``; one error line for a bad item."""
    out: dict[str, float] = {}
    for text in texts:
        name, sep, raw = text.partition("=")
        name = name.strip()
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not sep or not math.isfinite(value):
            raise TuneInputError(f"--max {text}: expected METRIC=NUMBER, e.g. --max params_m=2")
        if name not in known:
            raise TuneInputError(f"--max {text}: {name!r} is not a reported metric; use one of {', '.join(known)}")
        out[name] = value
    return out


def pick(exp: Experiment, k: int | None, bounds: dict[str, float]) -> TrialRecord:
    """The trial ``--export-best`` writes: point ``k`` (1-based) of the front, else the best by the
    first objective among trials within ``bounds``."""
    if k is not None:
        points = front(exp, bounds)
        if not points:
            raise TuneInputError(f"{shown(exp.path)}: no trial is on the Pareto front{_bounded(bounds)}; "
                                 "nothing to export")
        if not 1 <= k <= len(points):
            raise TuneInputError(f"--pareto {k}: the front has {len(points)} points; pick 1..{len(points)}")
        return points[k - 1][0]
    pool = [t for t in exp.ranked() if within(t, bounds)]
    if not pool:
        raise TuneInputError(f"{shown(exp.path)}: no scored trial{_bounded(bounds)}; loosen --max or drop it")
    return pool[0]


def _bounded(bounds: dict[str, float]) -> str:
    return "" if not bounds else " with " + ", ".join(f"{n} <= {v:g}" for n, v in bounds.items())
