"""The sweep file's ``metric:``: one objective (W&B's form), or a list of them (a Pareto search).

``metric: {name: val_sisdr, goal: maximize}`` is a search as W&B runs it. A list,
``[{name: val_sisdr, goal: maximize}, {name: params_m, goal: minimize}]``, makes Optuna search the
front of quality against cost (W&B Sweeps has no multi-objective search, wandb#3032). Ray's
schedulers take one metric, so the first entry must be a quality metric that changes during
training: ASHA and the median rule prune on it alone, checkpoints are kept by it, and a ``target``
may only be given there.
"""

from __future__ import annotations

import math
from typing import Any

from ..names import COST_METRICS, DEFAULT_METRIC, METRICS
from .context import Ctx
from .param import is_number

_KEYS = ("name", "goal", "target", "impute", "impute_while_running")


def read_metric(ctx: Ctx, block: Any) -> tuple[list[tuple[str, str]], float | None]:
    """``([(name, "max"|"min"), …], target)``; the first objective is the one Ray's scheduler uses."""
    if block is None:
        ctx.note(f"no metric block: searching {DEFAULT_METRIC}, maximize")
        return [(DEFAULT_METRIC, "max")], None
    if isinstance(block, dict):
        name, mode, target = _read_one(ctx, "metric", block, first=True)
        return [(name, mode)], target
    if not isinstance(block, list) or not block:
        ctx.fail("metric", "expected a mapping {name, goal} or a list of them")
    objectives: list[tuple[str, str]] = []
    target = None
    for i, item in enumerate(block):
        key = f"metric[{i}]"
        if not isinstance(item, dict):
            ctx.fail(key, "expected a mapping {name, goal}")
        name, mode, item_target = _read_one(ctx, key, item, first=i == 0)
        if any(name == seen for seen, _ in objectives):
            ctx.fail(f"{key}.name", f"{name} is listed twice; keep one")
        if i == 0:
            target = item_target
        elif item_target is not None:
            ctx.fail(f"{key}.target", "a target stops trials by the first metric only; remove it here")
        objectives.append((name, mode))
    if len(objectives) > 1:
        ctx.note(f"multi-objective search ({', '.join(n for n, _ in objectives)}): early stopping, checkpoint "
                 f"ranking and a target use {objectives[0][0]} alone; results show the Pareto front")
    return objectives, target


def _read_one(ctx: Ctx, where: str, block: dict[str, Any], first: bool) -> tuple[str, str, float | None]:
    for k in block:
        if k not in _KEYS:
            ctx.fail(f"{where}.{k}", "unknown key; metric takes name, goal, target")
    for k in ("impute", "impute_while_running"):
        if k in block:
            ctx.note(f"{where}.{k} ignored — Ray Tune only sees what the trainable reports")
    known = (*METRICS, *COST_METRICS)
    name = block.get("name")
    if name is None:
        ctx.fail(f"{where}.name", f"missing; use one of {', '.join(known)}")
    if name not in known:
        ctx.fail(f"{where}.name", f"{name!r} is not reported by the trainable; use one of {', '.join(known)}")
    if first and name in COST_METRICS:
        ctx.fail(f"{where}.name", f"{name} does not change during training, and early stopping uses the first "
                                  f"metric; put a quality metric ({', '.join(METRICS)}) first")
    goal = block.get("goal")
    if goal is None:
        if name in COST_METRICS:
            ctx.fail(f"{where}.goal", f"missing; a cost such as {name} is searched with goal: minimize")
        ctx.note(f"warning: {where}.goal missing — W&B's default goal is minimize, so this search MINIMIZES "
                 f"{name} (higher SI-SDR is better); add goal: maximize")
        mode = "min"
    elif goal in ("maximize", "minimize"):
        mode = "max" if goal == "maximize" else "min"
        if mode == "min" and name in METRICS:
            ctx.note(f"warning: goal: minimize on {name}, an SI-SDR where higher is better; "
                     "did you mean maximize?")
        if mode == "max" and name in COST_METRICS:
            ctx.note(f"warning: goal: maximize on {name}, a cost where lower is cheaper; did you mean minimize?")
    else:
        ctx.fail(f"{where}.goal", f"{goal!r} is not a goal; use maximize or minimize")
    target = block.get("target")
    if target is not None and (not is_number(target) or not math.isfinite(target)):
        ctx.fail(f"{where}.target", f"expected a number, got {target!r}")
    return name, mode, None if target is None else float(target)
