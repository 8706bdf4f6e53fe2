"""What ``run --dry-run`` shows: a search as text, or as one JSON object (``--json``, ``search.json``)."""

from __future__ import annotations

import dataclasses
from typing import Any

from .param import fmt
from .prior import Prior, expected_from_prior
from .spec import SearchSpec


def describe(spec: SearchSpec, prior: Prior | None = None) -> dict[str, Any]:
    """JSON-ready view for ``run --dry-run --json`` and ``search.json``; ``prior``: the resolved one."""
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
        "prior": spec.prior.as_dict(),
        "prior_resolved": None if prior is None else {
            "origin": prior.origin, "policy": prior.policy, "base_point": prior.base_point,
            "params": prior.describe(), "notes": list(prior.notes)},
    }


def format_dry_run(spec: SearchSpec, samples: list[dict[str, Any]], num_samples: int | None = None,
                   prior: Prior | None = None) -> str:
    """Human-readable summary of the search and a few sampled configs; ``num_samples`` overrides the
    file's; ``prior`` is the resolved prior (:func:`.sampling.search_prior`)."""
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
    lines += prior_lines(spec, prior, num_samples)
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



def prior_lines(spec: SearchSpec, prior: Prior | None, num_samples: int | None) -> list[str]:
    """The prior per parameter (mode, width) and how many of the first proposals it should draw."""
    if prior is None:
        why = ("tune.prior: none" if not spec.prior.on else "method grid" if spec.method == "grid"
               else "nothing searched" if not spec.space else "no searched value of the base config lies in its range")
        return [f"prior:        none ({why})"]
    origin = f"the base config ({spec.base_config or 'built-in'})" if prior.origin == "base" else "tune.prior"
    lines = [f"prior:        {origin}, {prior.policy} policy; trial 0 is its point: "
             + ", ".join(f"{k}={fmt(v)}" for k, v in prior.base_point.items())]
    width = max((len(p) for p in spec.space), default=0)
    for path, belief in prior.params.items():
        if belief.param.kind == "categorical":
            keep = max(0.0, 1.0 - 2 * belief.width)
            share = keep + (1 - keep) / len(belief.param.values or [1])
            lines.append(f"  {path:<{width}}  mode {fmt(belief.mode)} (drawn with p {share:.2f}, "
                         "the others share the rest)")
        else:
            scale = "log range" if belief.param.log else "range"
            lines.append(f"  {path:<{width}}  mode {fmt(belief.mode)}, sigma {fmt(belief.width)} of the {scale}")
    for path in spec.space:
        if path not in prior.params:
            lines.append(f"  {path:<{width}}  no prior (uniform)")
    lines += [f"  note: {n}" for n in prior.notes]
    n = max(0, (num_samples or 10) - 1)
    expected = expected_from_prior(prior, n, num_samples)
    rule = {"priorband": "w = 1/2 until two trials are scored, then the best third's fit to the prior sets it",
            "pibo": "w = min(1, beta/n)",
            "standing": "w = min(1, beta/n) x 1/2 until trial 0 is compared, then x how far it beats the "
                        "search's own draws"}[prior.policy]
    lines.append(f"  expected from the prior: about {expected:.1f} of the {n} proposals after trial 0 ({rule})")
    return lines
