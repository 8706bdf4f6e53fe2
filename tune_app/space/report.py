"""What ``run --dry-run`` shows: a search as text, or as one JSON object (``--json``, ``search.json``)."""

from __future__ import annotations

import dataclasses
from typing import Any

from .param import fmt
from .spec import SearchSpec


def describe(spec: SearchSpec) -> dict[str, Any]:
    """JSON-ready view for ``run --dry-run --json``."""
    return {
        "file": None if spec.file is None else str(spec.file),
        "base_config": None if spec.base_config is None else str(spec.base_config),
        "space": {path: p.as_dict() for path, p in spec.space.items()},
        "fixed": spec.fixed,
        "method": spec.method,
        "sampler": spec.sampler if spec.method == "bayes" else spec.method,
        "metric": spec.metric,
        "mode": spec.mode,
        "objectives": [list(o) for o in spec.objectives],
        "target": spec.target,
        "num_samples": spec.num_samples,
        "grid_size": spec.grid_size,
        "scheduler": dataclasses.asdict(spec.scheduler),
        "max_concurrent": spec.max_concurrent,
        "resources_per_trial": spec.resources_per_trial,
        "seed": spec.seed,
        "points_to_evaluate": spec.points_to_evaluate,
        "project": spec.project,
        "entity": spec.entity,
        "name": spec.name,
        "description": spec.description,
        "tags": spec.tags,
        "notes": spec.notes,
        "validate": spec.validate,
    }


def format_dry_run(spec: SearchSpec, samples: list[dict[str, Any]], num_samples: int | None = None) -> str:
    """Human-readable summary of the search and a few sampled configs; ``num_samples`` overrides the file's."""
    num_samples = spec.num_samples if num_samples is None else num_samples
    lines = [f"search space: {spec.file or '<sweep>'}",
             f"base config:  {spec.base_config or '(config defaults)'}",
             f"method:       {spec.method}" + (f" (sampler {spec.sampler})" if spec.method == "bayes" else ""),
             "metric:       " + ", ".join(f"{name} ({mode})" for name, mode in spec.objectives)
             + (f", target {fmt(spec.target)}" if spec.target is not None else ""),
             f"num_samples:  {num_samples if num_samples is not None else '(driver default)'}"
             + (f" (grid of {spec.grid_size})" if spec.method == "grid" else "")]
    s = spec.scheduler
    sched = s.type
    if s.type == "asha":
        sched += (f": grace_period {s.grace_period}, reduction_factor {fmt(s.reduction_factor)}, "
                  f"max_t {s.max_t}")
    elif s.type == "median":
        sched += f": grace_period {s.grace_period}"
    lines.append(f"scheduler:    {sched}")
    if spec.max_concurrent or spec.resources_per_trial:
        lines.append(f"concurrency:  {spec.max_concurrent or '(unlimited)'} trials, "
                     f"resources per trial {spec.resources_per_trial or '(driver default)'}")
    lines.append("searched:" if spec.space else "searched:     (nothing)")
    width = max((len(p) for p in spec.space), default=0)
    for path, p in spec.space.items():
        if p.kind == "categorical":
            what = f"categorical {p.values}"
        else:
            what = f"{p.kind}{' log' if p.log else ''} [{fmt(p.low)}, {fmt(p.high)}]"
            if p.q is not None:
                what += f" step {fmt(p.q)}"
        lines.append(f"  {path:<{width}}  {what}  ({p.distribution}, as {p.name})")
    if spec.fixed:
        lines.append("fixed:")
        for path, v in spec.fixed.items():
            lines.append(f"  {path} = {fmt(v)}")
    if spec.points_to_evaluate:
        lines.append("points to evaluate first:")
        lines += [f"  {pt}" for pt in spec.points_to_evaluate]
    if spec.notes:
        lines.append("notes:")
        lines += [f"  - {n}" for n in spec.notes]
    if samples:
        lines.append(f"sample configs ({len(samples)}):")
        for i, sample in enumerate(samples):
            lines.append(f"  [{i}] " + ", ".join(f"{k}={fmt(v)}" for k, v in sample.items()))
    return "\n".join(lines)

