"""Staged multi-fidelity search: a wide, cheap stage, then narrower, costlier ones.

The research workflow by hand was: stage 1 on 2k training samples over wide ranges, read the top
runs, write narrower ranges into a stage-2 sweep on 8k samples. A sweep file's ``stages:`` does
that in one command::

    stages:
      - {name: wide, num_samples: 24, epochs: 15, train_max_samples: 2000}
      - {name: narrow, num_samples: 12, epochs: 50, train_max_samples: 8000, narrow: {top_k: 5}}

Each stage after the first searches the space narrowed around the previous stage's top-K configs
(continuous ranges to the top-K's span widened by ``margin`` of that span — in log space for log
parameters — and clipped to the original range; categorical values to those the top-K used), or
the explicit ``parameters:`` it gives. It starts from the previous stage's top-K configs, retrained
at its own fidelity (scores at another training-set size or epoch count are not comparable, so they
are not handed to Optuna as finished results). Each stage is its own Ray Tune experiment under one
parent folder, resumable like any other.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import typing
from typing import Any

from ..errors import TuneInputError
from .context import Ctx
from .param import Param
from .spec import DEFAULT_MARGIN, SearchSpec, Stage

__all__ = ["DEFAULT_MARGIN", "STAGE_KEYS", "Stage", "narrow_param", "parse_stages", "read_stages", "stage_spec",
           "step_notes", "top_configs"]

STAGE_KEYS = ("name", "num_samples", "epochs", "train_max_samples", "grace_period", "set", "narrow", "parameters")


def step_notes(stages: list[Stage], base_epochs: int, base_max_samples: int | None, train_rows: int) -> list[str]:
    """A note for each stage that trains at most half the optimizer steps per trial of the last one.

    Why: on a share of the rows with the same epochs a trial takes that share of the steps, and the
    configs that win with few steps (high learning rates) lose with many; on the demo corpus a
    quarter-of-the-rows first stage narrowed lr onto [7.7e-3, 9.6e-3] while the flat search's best had
    1.38e-3 (benchmarks/README.md, staged against flat). Steps are counted as epochs × rows (the
    batch size is the same across stages unless a stage sets it)."""
    def steps(stage: Stage) -> int:
        limit = stage.overrides.get("data.train_max_samples", base_max_samples)
        rows = train_rows if limit is None else min(int(limit), train_rows)
        return int(stage.overrides.get("training.num_epochs", base_epochs)) * rows

    last = stages[-1]
    notes = []
    for stage in stages[:-1]:
        mine, theirs = steps(stage), steps(last)
        if mine > 0 and 2 * mine <= theirs:
            notes.append(f"stage {stage.name} trains {mine / theirs:.2g} of the optimizer steps per trial of "
                         f"stage {last.name} (epochs × rows); configs that win with few steps (high learning "
                         f"rates) tend to lose with many, so its ranking may not carry over: give it about "
                         f"{math.ceil(theirs / mine)}× the epochs, or see the README on when staging pays")
    return notes


def read_stages(ctx: Ctx, raw: Any, explicit_space: typing.Callable[[Any, str], dict[str, Param]]) -> list[Stage]:
    """A sweep's ``stages:`` → checked :class:`Stage` records (``[]`` without one). ``explicit_space``
    reads a stage's own ``parameters:`` block the way the sweep reader reads the file's (given the
    block and the message prefix ``<file>: stages[i]``), so this module needs no sweep reader."""
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(stage, dict) for stage in raw) or len(raw) < 2:
        ctx.fail("stages", "expected a list of at least two stages, e.g. - {num_samples: 16, epochs: 10}")
    return [_read_stage(ctx, i, entry, explicit_space) for i, entry in enumerate(raw)]


def _read_stage(ctx: Ctx, i: int, raw: dict[str, Any],
                explicit_space: typing.Callable[[Any, str], dict[str, Param]]) -> Stage:
    where = f"stages[{i}]"
    unknown = sorted(set(raw) - set(STAGE_KEYS), key=str)
    if unknown:
        ctx.fail(where, f"unknown key {unknown[0]!r}; stages take {', '.join(STAGE_KEYS)}")
    num = raw.get("num_samples")
    if not isinstance(num, int) or isinstance(num, bool) or num < 1:
        ctx.fail(f"{where}.num_samples", f"{num!r}; give each stage a positive number of trials")
    overrides: dict[str, Any] = {}
    if raw.get("epochs") is not None:
        overrides["training.num_epochs"] = raw["epochs"]
    if "train_max_samples" in raw:
        overrides["data.train_max_samples"] = raw["train_max_samples"]
    sets = raw.get("set") or {}
    if not isinstance(sets, dict):
        ctx.fail(f"{where}.set", f"expected a mapping {{name: value}}, got {sets!r}")
    paths = ctx.resolve([str(name) for name in sets], f"{where}.set")
    overrides.update({paths[str(name)]: value for name, value in sets.items()})
    top_k, margin = _read_narrow(ctx, i, raw.get("narrow"))
    explicit = explicit_space(raw["parameters"], f"{ctx.source}: {where}") if raw.get("parameters") else {}
    if i > 0 and top_k is None and not explicit:
        ctx.fail(where, "give narrow: {top_k: K} or explicit parameters: for a later stage")
    grace = raw.get("grace_period")
    return Stage(i, str(raw.get("name") or f"stage{i + 1}"), num, overrides,
                 None if grace is None else ctx.pos_int(f"{where}.grace_period", grace), top_k, margin, explicit)


def _read_narrow(ctx: Ctx, i: int, narrow: Any) -> tuple[int | None, float]:
    """``narrow: {top_k: K, margin: m}`` → (K, m); absent → (None, the default margin)."""
    key = f"stages[{i}].narrow"
    if narrow is None:
        return None, DEFAULT_MARGIN
    if i == 0:
        ctx.fail(key, "the first stage has nothing to narrow around; remove it")
    top_k = narrow.get("top_k") if isinstance(narrow, dict) else None
    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
        ctx.fail(key, "expected {top_k: K} with K >= 1 (and optional margin)")
    return top_k, float(ctx.number(key, narrow, "margin", DEFAULT_MARGIN))


def parse_stages(spec: SearchSpec) -> list[Stage]:
    """The stages of a search: read and checked with the sweep file (:func:`read_stages`)."""
    return list(spec.stages)


def narrow_param(param: Param, values: list[Any], margin: float) -> Param:
    """The original range shrunk to the span of ``values`` plus ``margin`` of that span."""
    if param.kind == "categorical":
        used = {repr(v) for v in values}
        return dataclasses.replace(param, values=[v for v in param.values or [] if repr(v) in used])
    fwd = math.log if param.log else float
    back = math.exp if param.log else float
    lo_orig, hi_orig = fwd(param.low), fwd(param.high)
    lo, hi = fwd(min(values)), fwd(max(values))
    span = hi - lo or (hi_orig - lo_orig) * 0.1
    lo, hi = max(lo_orig, lo - margin * span), min(hi_orig, hi + margin * span)
    low, high = back(lo), back(hi)
    if param.kind == "int" or param.q:
        step = param.q or 1
        low = param.low + math.floor((low - param.low) / step + 1e-9) * step
        high = param.low + math.ceil((high - param.low) / step - 1e-9) * step
        if param.kind == "int":
            low, high = int(low), int(high)
    else:
        low, high = max(low, param.low), min(high, param.high)
    return dataclasses.replace(param, low=low, high=high)


def stage_spec(spec: SearchSpec, stage: Stage, top: list[dict[str, Any]]) -> SearchSpec:
    """The search of one stage; ``top``: the previous stage's top-K configs (flat), best first."""
    out = copy.deepcopy(spec)
    out.stages = []
    out.num_samples = stage.num_samples
    for path, value in stage.overrides.items():
        out.fixed[path] = value
        out.space.pop(path, None)
    if stage.grace_period is not None:
        out.scheduler.grace_period = stage.grace_period
    if stage.index == 0:
        return out
    if stage.top_k:
        if not top:
            raise TuneInputError(f"stage {stage.name}: the previous stage has no finished trial to narrow around")
        for path, param in list(out.space.items()):
            values = [cfg[path] for cfg in top if path in cfg]
            if values:
                out.space[path] = narrow_param(param, values, stage.margin)
    out.space.update(copy.deepcopy(stage.explicit))
    for path, param in list(out.space.items()):
        if param.kind == "categorical" and len(param.values or []) == 1:
            out.fixed[path] = param.values[0]
            del out.space[path]
            out.notes.append(f"{path}: the top-{stage.top_k} all used {param.values[0]!r}; fixed in this stage")
    out.points_to_evaluate = [{p: cfg[p] for p in out.space if p in cfg} for cfg in top
                              if all(p in cfg and out.space[p].contains(cfg[p]) for p in out.space)]
    # The prior of a later stage is the stage before's best config (where it lies in the narrowed space).
    if out.prior.on and top:
        best = {p: top[0][p] for p in out.space if p in top[0] and out.space[p].contains(top[0][p])}
        if best:
            out.prior = dataclasses.replace(out.prior, values=best)
    return out


def top_configs(experiment: Any, spec: SearchSpec, k: int) -> list[dict[str, Any]]:
    """The searched values of the best ``k`` trials of a finished stage (an Experiment)."""
    from polsess.config import flatten

    return [{p: flatten(t.config).get(p) for p in spec.space} for t in experiment.ranked()[:k]]
