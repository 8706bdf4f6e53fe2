"""The sweep file's ``tune:`` section: Ray settings W&B's format has no place for.

``num_samples``, ``max_concurrent_trials``, ``resources_per_trial: {cpu, gpu}``, ``seed``,
``points_to_evaluate``, ``tags``, ``grace_period``, ``reduction_factor``, ``scheduler``, ``sampler``
(``tpe`` | ``gp`` | ``random``: which Optuna sampler ``method: bayes`` uses; see :mod:`.sampling`),
``budget_epochs`` (trials are proposed until this many trial-epochs are trained; tune_app.tune.budget),
``prior`` / ``prior_width`` / ``prior_policy`` (the base config as the search's prior; :mod:`.prior`).
"""

from __future__ import annotations

import math
from typing import Any

from .context import Ctx
from .param import is_number
from .prior import POLICIES
from .schedule import SCHEDULERS

MAX_SEED = 2**32 - 1


_TUNE_KEYS = ("num_samples", "max_concurrent_trials", "resources_per_trial", "seed", "points_to_evaluate",
              "tags", "grace_period", "reduction_factor", "scheduler", "sampler", "budget_epochs", "prior",
              "prior_width", "prior_policy")
SAMPLERS = ("tpe", "gp", "random")


def read_tune(ctx: Ctx, block: Any) -> dict[str, Any]:
    """Our own `tune:` section: things W&B's format has no place for."""
    if block is None:
        return {}
    if not isinstance(block, dict):
        ctx.fail("tune", "expected a mapping")
    out: dict[str, Any] = {}
    for k, v in block.items():
        key = f"tune.{k}"
        if k not in _TUNE_KEYS:
            ctx.fail(key, f"unknown key; tune: takes {', '.join(_TUNE_KEYS)}")
        if k in ("num_samples", "max_concurrent_trials", "grace_period", "budget_epochs"):
            out[k] = ctx.pos_int(key, v)
        elif k == "seed":
            out[k] = ctx.pos_int(key, v, minimum=0)
            if out[k] > MAX_SEED:
                ctx.fail(key, f"{v} is above {MAX_SEED}; samplers take seeds in 0..{MAX_SEED}")
        elif k == "reduction_factor":
            if not is_number(v) or not math.isfinite(v) or v <= 1:
                ctx.fail(key, f"expected a number > 1, got {v!r}")
            out[k] = float(v)
        elif k == "sampler":
            if v not in SAMPLERS:
                ctx.fail(key, f"unknown sampler {v!r}; use tpe (the default), gp or random")
            out[k] = v
        elif k == "scheduler":
            if v not in SCHEDULERS:
                ctx.fail(key, f"unknown scheduler {v!r}; use asha, median or fifo")
            out[k] = v
        elif k == "resources_per_trial":
            if not isinstance(v, dict):
                ctx.fail(key, "expected {cpu: N, gpu: N}")
            for rk, rv in v.items():
                if rk not in ("cpu", "gpu"):
                    ctx.fail(f"{key}.{rk}", "unknown resource; use cpu and gpu")
                if not is_number(rv) or not math.isfinite(rv) or rv < 0:
                    ctx.fail(f"{key}.{rk}", f"expected a number >= 0, got {rv!r}")
            out[k] = {"cpu": float(v.get("cpu", 1)), "gpu": float(v.get("gpu", 0))}
        elif k.startswith("prior"):
            out[k] = _read_prior_key(ctx, key, k, v)
        elif k == "tags":
            if not isinstance(v, list) or not all(isinstance(t, str) for t in v):
                ctx.fail(key, f"expected a list of strings, got {v!r}")
            out[k] = list(v)
        else:  # points_to_evaluate
            if not isinstance(v, list):
                ctx.fail(key, "expected a list of {name: value} mappings")
            out[k] = v
    return out



def _read_prior_key(ctx: Ctx, key: str, k: str, v: Any) -> Any:
    """``prior`` / ``prior_width`` / ``prior_policy`` (their values in the space: :func:`.prior.read_prior`)."""
    if k == "prior":
        if v not in ("base", "none") and not (isinstance(v, dict) and v):
            ctx.fail(key, f"expected base (the base config, the default), none, or a mapping of searched "
                          f"parameters to values such as {{lr: 3e-4}}; got {v!r}")
        return v
    if k == "prior_width":
        if not is_number(v) or not math.isfinite(v) or not 0.01 <= v <= 0.5:
            ctx.fail(key, f"expected a number in [0.01, 0.5]: the prior's sigma as a fraction of each "
                          f"range (on its own scale); got {v!r}")
        return float(v)
    if v not in POLICIES:
        ctx.fail(key, f"unknown policy {v!r}; use {' or '.join(POLICIES)}")
    return v


def read_validate(ctx: Ctx, block: Any, staged: bool) -> dict[str, Any] | None:
    """``validate: {top_k: 3, seeds: [42, 123, 456], set: {…}}``: a staged search's last step, the
    final stage's top-K configs retrained with each seed (tune_app.tune.validate)."""
    if block is None:
        return None
    if not staged:
        ctx.fail("validate", "runs after the last stage of a staged search; for one search run "
                             "`polsess-tune validate EXPERIMENT` once it has finished")
    if not isinstance(block, dict):
        ctx.fail("validate", "expected {top_k: 3, seeds: [42, 123, 456]}")
    for k in block:
        if k not in ("top_k", "seeds", "set"):
            ctx.fail(f"validate.{k}", "unknown key; validate takes top_k, seeds, set")
    top_k = ctx.pos_int("validate.top_k", block.get("top_k", 3))
    seeds = block.get("seeds", [42, 123, 456])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(x, int) and not isinstance(x, bool)
                                                            and 0 <= x <= MAX_SEED for x in seeds) \
            or len(set(seeds)) != len(seeds):
        ctx.fail("validate.seeds", f"expected a list of distinct seeds in 0..{MAX_SEED}, got {seeds!r}")
    extra = block.get("set") or {}
    if not isinstance(extra, dict):
        ctx.fail("validate.set", "expected a mapping of config keys to values")
    return {"top_k": top_k, "seeds": list(seeds), "set": dict(extra)}
