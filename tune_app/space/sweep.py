"""W&B sweep files as polsess-tune search spaces: a sweep file → a validated :class:`SearchSpec`.

Users already own W&B sweep YAML, so that syntax *is* our search-space format (see
``shared/docs/wandb-sweep-format.md``). This module reads the file's structure (top-level keys,
nested ``parameters:``, the base ``config``, ``metric`` (:mod:`.objectives`), ``run_cap``, ``tune:``, ``stages:``);
:mod:`.distributions` turns each parameter into a :class:`Param`, :mod:`.schedule` reads
``early_terminate``. Pure (yaml + optuna + polsess.config, never ray), so ``run --dry-run`` and the
tests check a sweep without starting Ray.

Errors: every problem is a :class:`SearchSpaceError` whose one-line message names the sweep file,
the key and the fix. Problems in the *base experiment config* (a ConfigError from polsess.config)
are re-raised as SearchSpaceError with the sweep file and ``parameters.config`` (or the parameter
that set the bad value) in front of the original message, so callers catch one type.
"""

from __future__ import annotations

import math
import re
import typing
from pathlib import Path
from typing import Any

from polsess.config import FIELD_PATHS, ConfigError, config_from_flat, load_config, load_yaml, resolve_name, to_flat

from ..errors import SearchSpaceError
from .context import Ctx
from .distributions import check_keys, check_value, distribution_name, grid_expand, make_param
from .objectives import read_metric
from .param import Param, fmt
from .schedule import read_scheduler
from .spec import SearchSpec
from .tune_section import read_tune, read_validate

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


_TOP_KEYS = ("method", "metric", "parameters", "early_terminate", "run_cap", "count", "program", "command",
             "project", "entity", "name", "description", "tune", "stages", "validate")


# W&B knows these, we do not act on them; a specific message beats "unknown key".
_WANDB_ONLY_KEYS = ("apiVersion", "kind", "controller", "job", "image_uri", "metrics", "scheduler")


_METHODS = ("bayes", "random", "grid")
GRID_POINTS_LIMIT = 100_000  # Optuna's GridSampler builds the whole product in memory


def resolve_param_name(name: str, *, source: str, key: str, paths: typing.Iterable[str] = FIELD_PATHS) -> str:
    """polsess.config.resolve_name, with the sweep file and the key in front of its message."""
    try:
        return resolve_name(name, paths)
    except ConfigError as exc:
        msg = str(exc)
        if msg.startswith(f"{name}: "):
            msg = msg[len(name) + 2:]
        raise SearchSpaceError(f"{source}: {key}: {msg}") from None


def load_search(
    path: str | Path, base_config_override: str | Path | None = None, cwd: str | Path | None = None
) -> SearchSpec:
    """Read a W&B sweep file into a validated SearchSpec.

    ``base_config_override`` replaces the file's ``config: {value: ...}`` (a relative override is
    taken from ``cwd``). ``cwd`` (default: the process's) is where a relative ``config`` path is
    tried first, before the sweep file's folder and each of its parents.
    """
    path = Path(path)
    try:
        raw = load_yaml(path)
    except ConfigError as exc:
        raise SearchSpaceError(str(exc)) from None
    return search_from_dict(raw, source=str(path), sweep_dir=path.resolve().parent,
                            base_config_override=base_config_override, cwd=cwd, file=path)


def search_from_dict(
    raw: Any,
    *,
    source: str = "<sweep>",
    sweep_dir: str | Path | None = None,
    base_config_override: str | Path | None = None,
    cwd: str | Path | None = None,
    file: Path | None = None,
) -> SearchSpec:
    """The parser behind :func:`load_search`, for a sweep already in memory."""
    ctx = Ctx(source)
    cwd_path = Path.cwd() if cwd is None else Path(cwd)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        ctx.fail("top level", "expected a mapping (method, metric, parameters, ...)")
    for key in raw:
        if key in _TOP_KEYS:
            continue
        if key in _WANDB_ONLY_KEYS:
            ctx.fail(key, f"W&B key '{key}' is not supported by polsess-tune; remove it")
        ctx.fail(key, f"unknown top-level key '{key}'; known keys: {', '.join(_TOP_KEYS)}")
    for key in ("program", "command"):
        if key in raw:
            ctx.note(f"{key}: {raw[key]!r} ignored — the trainable is the program")
    meta = {}
    for key in ("project", "entity", "name", "description"):
        value = raw.get(key)
        if value is not None and not isinstance(value, (str, int, float)):
            ctx.fail(key, f"expected a string, got {value!r}")
        meta[key] = None if value is None else str(value)

    method = raw.get("method")
    if method is None:
        ctx.fail("method", "missing; add method: bayes (or random, grid)")
    if method == "custom":
        ctx.fail("method", "'custom' (W&B's plug-in engines) is not supported; use bayes, random or grid")
    if method not in _METHODS:
        ctx.fail("method", f"unknown method {method!r}; use bayes, random or grid")

    tune = read_tune(ctx, raw.get("tune"))

    # ---- parameters: flatten nested blocks, pull out `config`, resolve names
    params_raw = raw.get("parameters")
    if params_raw is None:
        ctx.fail("parameters", "missing; add a parameters: block (W&B requires one)")
    if not isinstance(params_raw, dict) or not params_raw:
        ctx.fail("parameters", "expected a non-empty mapping of name → {value | values | distribution ...}")
    entries = _flatten_params(ctx, params_raw, "")

    config_entry = entries.pop("config", None)
    base_path = _base_config(ctx, config_entry, base_config_override, cwd_path,
                             None if sweep_dir is None else Path(sweep_dir))
    try:
        base_flat = to_flat(load_config(base_path))
    except ConfigError as exc:
        ctx.fail("parameters.config", str(exc))
    if base_path is None:
        ctx.note("no base config (parameters.config): the config's defaults are the base")

    resolved: dict[str, tuple[str, dict[str, Any]]] = {}
    for name, spec in entries.items():
        key = f"parameters.{name}"
        path = resolve_param_name(name, source=source, key=key)
        if path in resolved:
            ctx.fail(key, f"sets {path} again (also set by parameters.{resolved[path][0]}); keep one")
        resolved[path] = (name, spec)

    # ---- fixed values first: the searched ones are checked against base + fixed
    fixed: dict[str, Any] = {}
    searched: dict[str, tuple[str, str, dict[str, Any]]] = {}
    for path, (name, spec) in resolved.items():
        key = f"parameters.{name}"
        dist = distribution_name(ctx, key, spec)
        check_keys(ctx, key, dist, spec)
        if dist == "constant":
            fixed[path] = spec["value"]
        elif dist == "categorical" and isinstance(spec["values"], list) and len(spec["values"]) == 1:
            fixed[path] = spec["values"][0]
            ctx.note(f"{key}: values has one element, so it is fixed at {fmt(fixed[path])}")
        else:
            searched[path] = (name, dist, spec)
    for path, value in fixed.items():
        check_value(ctx, f"parameters.{resolved[path][0]}", base_flat, path, value)
    try:
        cfg = config_from_flat({**base_flat, **fixed})
    except ConfigError as exc:
        ctx.fail("parameters", f"the fixed values together are invalid: {exc}")
    effective = to_flat(cfg)

    space: dict[str, Param] = {}
    for path, (name, dist, spec) in searched.items():
        space[path] = make_param(ctx, f"parameters.{name}", name, path, dist, spec, effective)

    # ---- method specifics
    if method == "grid":
        for param in space.values():
            grid_expand(ctx, f"parameters.{param.name}", param)
        points = math.prod(len(p.values or ()) for p in space.values())  # counted, never built
        if points > GRID_POINTS_LIMIT:
            ctx.fail("parameters", f"the grid has {points:.3g} points (limit {GRID_POINTS_LIMIT:,}); list fewer "
                                   "values, or use method: random or bayes with a run_cap")
    if not space:
        ctx.note("nothing is searched: every parameter is fixed")

    objectives, target = read_metric(ctx, raw.get("metric"))
    metric, mode = objectives[0]

    max_t = int(effective["training.num_epochs"])
    if "training.num_epochs" in space:
        p = space["training.num_epochs"]
        max_t = int(max(p.values) if p.values else p.high)
        ctx.note(f"training.num_epochs is searched; the scheduler's max_t is its largest value, {max_t}")
    scheduler = read_scheduler(ctx, raw.get("early_terminate"), tune, max_t)

    num_samples = _num_samples(ctx, raw, tune, method, space)

    points = [_read_point(ctx, i, point, space, fixed, method)
              for i, point in enumerate(tune.get("points_to_evaluate", []))]

    spec_out = SearchSpec(
        file=file,
        base_config=base_path,
        space=space,
        fixed=fixed,
        method=method,
        metric=metric,
        mode=mode,
        target=target,
        objectives=objectives,
        sampler=_sampler(ctx, tune, method),
        scheduler=scheduler,
        num_samples=num_samples,
        max_concurrent=tune.get("max_concurrent_trials"),
        resources_per_trial=tune.get("resources_per_trial"),
        seed=tune.get("seed"),
        budget_epochs=tune.get("budget_epochs"),
        points_to_evaluate=points,
        project=meta["project"],
        entity=meta["entity"],
        name=meta["name"],
        description=meta["description"],
        tags=tune.get("tags", []),
        notes=ctx.notes,
        stages=_read_stages(ctx, raw.get("stages")),
        validate=read_validate(ctx, raw.get("validate"), staged=raw.get("stages") is not None),
    )
    return spec_out


def _flatten_params(ctx: Ctx, block: dict[Any, Any], prefix: str) -> dict[str, dict[str, Any]]:
    """``model: {parameters: {N: ...}}`` → ``{"model.N": {...}}``, checking names on the way."""
    out: dict[str, dict[str, Any]] = {}
    for name, spec in block.items():
        full = f"{prefix}{name}"
        key = f"parameters.{full}"
        if not isinstance(name, str) or not _NAME_RE.match(name):
            ctx.fail(key, "a parameter name must match ^[A-Za-z_][A-Za-z0-9_.-]*$; rename it")
        if not isinstance(spec, dict):
            ctx.fail(key, f"expected a mapping such as {{value: ...}} or {{values: [...]}}, got {spec!r}")
        if "parameters" in spec:
            if set(spec) != {"parameters"}:
                extra = ", ".join(sorted(set(spec) - {"parameters"}))
                ctx.fail(key, f"a nested parameters: block cannot also have {extra}; move them inside it")
            inner = spec["parameters"]
            if not isinstance(inner, dict) or not inner:
                ctx.fail(f"{key}.parameters", "expected a non-empty mapping of parameters")
            out.update(_flatten_params(ctx, inner, full + "."))
        else:
            out[full] = spec
    return out


def _base_config(
    ctx: Ctx, entry: dict[str, Any] | None, override: str | Path | None, cwd: Path, sweep_dir: Path | None
) -> Path | None:
    """The `config` parameter → an existing file: cwd first, then the sweep's folder and its parents."""
    if entry is not None:
        if set(entry) - {"value", "distribution"} or "value" not in entry or \
                entry.get("distribution", "constant") != "constant":
            ctx.fail("parameters.config", "the base config is one file: write config: {value: path/to.yaml}")
        if not isinstance(entry["value"], str) or not entry["value"]:
            ctx.fail("parameters.config", f"expected a path string, got {entry['value']!r}")
    if override is not None:
        path = Path(override)
        path = path if path.is_absolute() else cwd / path
        if not path.is_file():
            ctx.fail("base config override", f"{path}: file not found; check the path")
        if entry is not None:
            ctx.note(f"parameters.config: {entry['value']} replaced by {path}")
        return path
    if entry is None:
        return None
    rel = Path(entry["value"])
    if rel.is_absolute():
        if not rel.is_file():
            ctx.fail("parameters.config", f"{rel}: file not found; check the path")
        return rel
    tried = [cwd / rel]
    if sweep_dir is not None:
        tried += [d / rel for d in (sweep_dir, *sweep_dir.parents)]
    for candidate in tried:
        if candidate.is_file():
            return candidate
    where = ", ".join(str(c.parent) for c in tried)
    ctx.fail("parameters.config", f"{rel} not found; looked in {where}; fix the path or pass a base config")


def _sampler(ctx: Ctx, tune: dict[str, Any], method: str) -> str:
    chosen = tune.get("sampler", "tpe")
    if "sampler" in tune and method != "bayes":
        ctx.note(f"tune.sampler {chosen} ignored: method {method} samples on its own terms")
    return chosen


def _num_samples(ctx: Ctx, raw: dict[str, Any], tune: dict[str, Any], method: str,
                 space: dict[str, Param]) -> int | None:
    run_cap = ctx.pos_int("run_cap", raw["run_cap"]) if raw.get("run_cap") is not None else None
    count = ctx.pos_int("count", raw["count"]) if raw.get("count") is not None else None
    if run_cap is not None and count is not None and run_cap != count:
        ctx.note(f"run_cap {run_cap} and count {count} differ; run_cap wins")
    n = tune.get("num_samples", run_cap if run_cap is not None else count)
    if "num_samples" in tune and (run_cap or count) not in (None, n):
        ctx.note(f"tune.num_samples {n} replaces run_cap/count {run_cap or count}")
    if method == "grid":
        size = math.prod(len(p.values or ()) for p in space.values())
        if n is None:
            return size
        if n < size:
            ctx.note(f"the grid has {size} points but only {n} trials run; some points are skipped")
        elif n > size:
            ctx.note(f"the grid has {size} points; {n} trials repeat some of them")
    elif n is None and "budget_epochs" not in tune:
        ctx.note("no run_cap, count or tune.num_samples: the driver's default number of trials applies")
    return n


def _read_point(
    ctx: Ctx, i: int, point: Any, space: dict[str, Param], fixed: dict[str, Any], method: str
) -> dict[str, Any]:
    where = f"tune.points_to_evaluate[{i}]"
    if not isinstance(point, dict) or not point:
        ctx.fail(where, "expected a mapping {name: value} of searched parameters")
    out: dict[str, Any] = {}
    for name, value in point.items():
        key = f"{where}.{name}"
        path = resolve_param_name(str(name), source=ctx.source, key=key)
        if path not in space:
            why = "is fixed by the sweep" if path in fixed else "is not searched"
            searched = ", ".join(space) or "none"
            ctx.fail(key, f"{path} {why}; a point may only set searched parameters ({searched})")
        problem = space[path].why_outside(value)
        if problem:
            ctx.fail(key, f"{fmt(value)} {problem}; pick a point inside the space")
        out[path] = value
    missing = [path for path in space if path not in out]
    if method == "grid" and missing:
        ctx.fail(where, "under method grid a point must set every searched parameter; "
                        f"add {', '.join(missing)}")
    return out


def _read_stages(ctx: Ctx, raw: Any) -> list[dict[str, Any]]:
    """Kept raw here; tune_app.stages checks each stage against the space it narrows."""
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(stage, dict) for stage in raw) or len(raw) < 2:
        ctx.fail("stages", "expected a list of at least two stages, e.g. - {num_samples: 16, epochs: 10}")
    return [dict(stage) for stage in raw]

