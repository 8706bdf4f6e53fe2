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

from ..builtin import DEMO, default_config
from ..errors import SearchSpaceError
from .context import Ctx
from .distributions import check_keys, check_value, distribution_name, grid_expand, make_param
from .objectives import read_metric
from .param import Param, fmt
from .prior import read_prior
from .schedule import read_scheduler
from .spec import SearchSpec
from .stages import read_stages
from .tune_section import read_tune, read_validate

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


_TOP_KEYS = ("method", "metric", "parameters", "early_terminate", "run_cap", "count", "program", "command",
             "project", "entity", "name", "description", "tune", "stages", "validate")


# W&B knows these, we do not act on them; a specific message beats "unknown key".
_WANDB_ONLY_KEYS = ("apiVersion", "kind", "controller", "job", "image_uri", "metrics", "scheduler")


_METHODS = ("bayes", "random", "grid")
DEFAULT_CONFIG_NAME = f"configs/{DEMO}"  # where the built-in base config lives in a checkout
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
    """The parser behind :func:`load_search`, for a sweep already in memory.

    One step per part of the file, in the order a reader meets them: the top level, the method, the
    parameters (the base config, the names, the fixed values, then the searched ones checked against
    base + fixed), the metric and the scheduler, then the trial count and the ``tune:`` extras."""
    ctx = Ctx(source)
    raw = _read_top_level(ctx, raw)
    meta = _read_meta(ctx, raw)
    method = _read_method(ctx, raw.get("method"))
    tune = read_tune(ctx, raw.get("tune"))
    entries = _read_parameters(ctx, raw.get("parameters"))
    base_path, base_flat = _read_base(ctx, entries.pop("config", None), base_config_override,
                                      Path.cwd() if cwd is None else Path(cwd),
                                      None if sweep_dir is None else Path(sweep_dir))
    named = _name_params(ctx, entries)
    fixed, searched = _split_fixed(ctx, named)
    effective = _check_fixed(ctx, base_flat, fixed, named)
    space = {path: make_param(ctx, f"parameters.{name}", name, path, dist, spec, effective)
             for path, (name, dist, spec) in searched.items()}
    _check_method(ctx, method, space)
    objectives, target = read_metric(ctx, raw.get("metric"))
    scheduler = read_scheduler(ctx, raw.get("early_terminate"), tune, _max_t(ctx, effective, space))
    return SearchSpec(
        file=file, base_config=base_path, space=space, fixed=fixed, method=method,
        metric=objectives[0][0], mode=objectives[0][1], target=target, objectives=objectives,
        scheduler=scheduler, num_samples=_num_samples(ctx, raw, tune, method, space),
        sampler=_sampler(ctx, tune, method),
        max_concurrent=tune.get("max_concurrent_trials"), resources_per_trial=tune.get("resources_per_trial"),
        seed=tune.get("seed"), budget_epochs=tune.get("budget_epochs"),
        points_to_evaluate=[_read_point(ctx, i, point, space, fixed, method)
                            for i, point in enumerate(tune.get("points_to_evaluate", []))],
        **meta, tags=tune.get("tags", []), notes=ctx.notes,
        stages=read_stages(ctx, raw.get("stages"), lambda block, where: search_from_dict(
            {"method": method, "parameters": block}, source=where, base_config_override=base_path).space),
        validate=read_validate(ctx, raw.get("validate"), staged=raw.get("stages") is not None),
        prior=read_prior(ctx, tune, space, method,
                         lambda name, key: resolve_param_name(name, source=ctx.source, key=key)),
    )


def _read_top_level(ctx: Ctx, raw: Any) -> dict[str, Any]:
    """The file is a mapping of known keys; W&B-only keys and ``program``/``command`` are named."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        ctx.fail("top level", "expected a mapping (method, metric, parameters, ...)")
    for key in raw:
        if key in _WANDB_ONLY_KEYS:
            ctx.fail(key, f"W&B key '{key}' is not supported by polsess-tune; remove it")
        if key not in _TOP_KEYS:
            ctx.fail(key, f"unknown top-level key '{key}'; known keys: {', '.join(_TOP_KEYS)}")
    for key in ("program", "command"):
        if key in raw:
            ctx.note(f"{key}: {raw[key]!r} ignored — the trainable is the program")
    return raw


def _read_meta(ctx: Ctx, raw: dict[str, Any]) -> dict[str, str | None]:
    """``project``, ``entity``, ``name``, ``description``: strings (W&B's run grouping), or None."""
    meta = {}
    for key in ("project", "entity", "name", "description"):
        value = raw.get(key)
        if value is not None and not isinstance(value, (str, int, float)):
            ctx.fail(key, f"expected a string, got {value!r}")
        meta[key] = None if value is None else str(value)
    return meta


def _read_method(ctx: Ctx, method: Any) -> str:
    if method is None:
        ctx.fail("method", "missing; add method: bayes (or random, grid)")
    if method == "custom":
        ctx.fail("method", "'custom' (W&B's plug-in engines) is not supported; use bayes, random or grid")
    if method not in _METHODS:
        ctx.fail("method", f"unknown method {method!r}; use bayes, random or grid")
    return method


def _read_parameters(ctx: Ctx, block: Any) -> dict[str, dict[str, Any]]:
    """The ``parameters:`` block, nested blocks flattened (``model.N``); ``config`` still among them."""
    if block is None:
        ctx.fail("parameters", "missing; add a parameters: block (W&B requires one)")
    if not isinstance(block, dict) or not block:
        ctx.fail("parameters", "expected a non-empty mapping of name → {value | values | distribution ...}")
    return _flatten_params(ctx, block, "")


def _read_base(
    ctx: Ctx, entry: dict[str, Any] | None, override: str | Path | None, cwd: Path, sweep_dir: Path | None
) -> tuple[Path, dict[str, Any]]:
    """The base config the trials start from, and its values (flat). Without ``parameters.config``
    (or an override) it is the built-in config, the one the trials then run: the note names it."""
    path = _base_config(ctx, entry, override, cwd, sweep_dir)
    if path is None:
        path = default_config()
        ctx.note(f"no base config (parameters.config): the trials use the built-in {DEFAULT_CONFIG_NAME} "
                 f"({path}); add config: {{value: path/to.yaml}} to use your own")
    try:
        return path, to_flat(load_config(path))
    except ConfigError as exc:
        ctx.fail("parameters.config", str(exc))


def _name_params(ctx: Ctx, entries: dict[str, dict[str, Any]]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Sweep names → config paths ({path: (name, spec)}); every unknown name is listed at once."""
    paths = ctx.resolve(entries, "parameters")
    named: dict[str, tuple[str, dict[str, Any]]] = {}
    for name, spec in entries.items():
        path = paths[name]
        if path in named:
            ctx.fail(f"parameters.{name}", f"sets {path} again (also set by parameters.{named[path][0]}); keep one")
        named[path] = (name, spec)
    return named


def _split_fixed(
    ctx: Ctx, named: dict[str, tuple[str, dict[str, Any]]]
) -> tuple[dict[str, Any], dict[str, tuple[str, str, dict[str, Any]]]]:
    """(fixed {path: value}, searched {path: (name, distribution, spec)}); one-element values are fixed."""
    fixed: dict[str, Any] = {}
    searched: dict[str, tuple[str, str, dict[str, Any]]] = {}
    for path, (name, spec) in named.items():
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
    return fixed, searched


def _check_fixed(ctx: Ctx, base_flat: dict[str, Any], fixed: dict[str, Any],
                 named: dict[str, tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Each fixed value, then all of them together, against the base; the result (flat) is what the
    searched values are checked against."""
    for path, value in fixed.items():
        check_value(ctx, f"parameters.{named[path][0]}", base_flat, path, value)
    try:
        return to_flat(config_from_flat({**base_flat, **fixed}))
    except ConfigError as exc:
        ctx.fail("parameters", f"the fixed values together are invalid: {exc}")


def _check_method(ctx: Ctx, method: str, space: dict[str, Param]) -> None:
    """Grid: every range expanded to a finite list, and the product counted (never built)."""
    if method == "grid":
        for param in space.values():
            grid_expand(ctx, f"parameters.{param.name}", param)
        points = math.prod(len(p.values or ()) for p in space.values())
        if points > GRID_POINTS_LIMIT:
            ctx.fail("parameters", f"the grid has {points:.3g} points (limit {GRID_POINTS_LIMIT:,}); list fewer "
                                   "values, or use method: random or bayes with a run_cap")
    if not space:
        ctx.note("nothing is searched: every parameter is fixed")


def _max_t(ctx: Ctx, effective: dict[str, Any], space: dict[str, Param]) -> int:
    """The epochs a trial trains (the scheduler's max_t): the config's, or the largest searched."""
    if "training.num_epochs" not in space:
        return int(effective["training.num_epochs"])
    p = space["training.num_epochs"]
    max_t = int(max(p.values) if p.values else p.high)
    ctx.note(f"training.num_epochs is searched; the scheduler's max_t is its largest value, {max_t}")
    return max_t


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
        if path.is_dir():
            ctx.fail("base config override", f"{path}: a folder, not a file; give the config YAML inside it")
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
    """``tune.sampler`` (what ``method: bayes`` samples with); the other methods sample on their own."""
    chosen = tune.get("sampler", "tpe")
    if "sampler" in tune and method != "bayes":
        ctx.note(f"tune.sampler {chosen} ignored: method {method} samples on its own terms")
    return chosen


def _num_samples(ctx: Ctx, raw: dict[str, Any], tune: dict[str, Any], method: str,
                 space: dict[str, Param]) -> int | None:
    """The file's trial count: tune.num_samples, else run_cap, else count; a grid's size by default."""
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
    elif n is None and "budget_epochs" not in tune and raw.get("stages") is None:  # stages count their own
        # True whatever the command line adds: the CLI's --num-samples / --budget-epochs are read later.
        ctx.note("the sweep sets no trial count (run_cap, count or tune.num_samples): --num-samples or "
                 "--budget-epochs decides it, else the driver's default")
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
