"""W&B sweep files as polsess-tune search spaces.

Users already own W&B sweep YAML, so that syntax *is* our search-space format
(see ``shared/docs/wandb-sweep-format.md``). This module reads a sweep file into a
:class:`SearchSpec`: Optuna distributions keyed by config path, the fixed overrides, the
sampler, the metric and the trial scheduler (ASHA / median / FIFO).

It is pure (yaml + optuna + polsess.config, never ray) so ``run --dry-run`` and the tests can
check a sweep without starting Ray; the driver hands :func:`optuna_space` and
:func:`make_sampler` to Ray's ``OptunaSearch``.

Errors: every problem is a :class:`SearchSpaceError` whose one-line message names the sweep
file, the key, and the fix. Problems in the *base experiment config* (a ConfigError from
polsess.config) are re-raised as SearchSpaceError with the sweep file and
``parameters.config`` (or the parameter that set the bad value) in front of the original
message, so callers catch one type.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from polsess.config import (
    FIELD_PATHS,
    FIELD_TYPES,
    ConfigError,
    config_from_flat,
    load_config,
    load_yaml,
    resolve_name,
    to_flat,
)

__all__ = [
    "DISTRIBUTIONS",
    "METRICS",
    "Param",
    "SchedulerSpec",
    "SearchSpaceError",
    "SearchSpec",
    "describe",
    "format_dry_run",
    "load_search",
    "make_sampler",
    "optuna_space",
    "resolve_param_name",
    "sample_configs",
    "search_from_dict",
]


class SearchSpaceError(ValueError):
    """A sweep-file problem the user can fix; the message names the file, the key and the fix."""


# What the trainable reports once per epoch; anything else would never reach the searcher.
METRICS = ("val_sisdr", "val_sisdri", "best_val_sisdr", "train_sisdr")
DEFAULT_METRIC = "val_sisdr"

DISTRIBUTIONS = (
    "constant",
    "categorical",
    "categorical_w_probabilities",
    "int_uniform",
    "uniform",
    "q_uniform",
    "log_uniform",
    "log_uniform_values",
    "q_log_uniform",
    "q_log_uniform_values",
    "inv_log_uniform",
    "inv_log_uniform_values",
    "normal",
    "q_normal",
    "log_normal",
    "q_log_normal",
    "beta",
    "q_beta",
)

# Keys each distribution takes (W&B's schema forbids the others, and so do we: a stray `q` on a
# `uniform` is almost always a typo for `q_uniform`).
_RANGE = frozenset({"min", "max"})
_DIST_KEYS: dict[str, frozenset[str]] = {
    "constant": frozenset({"value"}),
    "categorical": frozenset({"values"}),
    "categorical_w_probabilities": frozenset({"values", "probabilities"}),
    "int_uniform": _RANGE,
    "uniform": _RANGE,
    "q_uniform": _RANGE | {"q"},
    "log_uniform": _RANGE,
    "log_uniform_values": _RANGE,
    "q_log_uniform": _RANGE | {"q"},
    "q_log_uniform_values": _RANGE | {"q"},
    "inv_log_uniform": _RANGE,
    "inv_log_uniform_values": _RANGE,
    "normal": frozenset({"mu", "sigma"}),
    "q_normal": frozenset({"mu", "sigma", "q"}),
    "log_normal": frozenset({"mu", "sigma"}),
    "q_log_normal": frozenset({"mu", "sigma", "q"}),
    "beta": frozenset({"a", "b"}),
    "q_beta": frozenset({"a", "b", "q"}),
}
_PARAM_KEYS = frozenset({"distribution", "value", "values", "probabilities", "min", "max", "mu", "sigma",
                         "q", "a", "b", "parameters"})
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")

_TOP_KEYS = ("method", "metric", "parameters", "early_terminate", "run_cap", "count", "program", "command",
             "project", "entity", "name", "description", "tune", "stages")
# W&B knows these, we do not act on them; a specific message beats "unknown key".
_WANDB_ONLY_KEYS = ("apiVersion", "kind", "controller", "job", "image_uri", "metrics", "scheduler")
_METHODS = ("bayes", "random", "grid")
_TUNE_KEYS = ("num_samples", "max_concurrent_trials", "resources_per_trial", "seed", "points_to_evaluate",
              "tags", "grace_period", "reduction_factor", "scheduler")
_SCHEDULERS = ("asha", "median", "fifo")
GRID_EXPAND_LIMIT = 100

Scalar = str | int | float | bool | None


# --------------------------------------------------------------------------- data model


@dataclass
class Param:
    """One searched config field, after conversion to what Optuna can sample."""

    path: str
    name: str
    kind: str  # "float" | "int" | "categorical"
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    q: float | int | None = None
    values: list[Any] | None = None
    distribution: str = ""


@dataclass
class SchedulerSpec:
    """Which Ray trial scheduler to build; one iteration = one epoch."""

    type: str = "fifo"  # "asha" | "median" | "fifo"
    grace_period: int | None = None
    reduction_factor: float | None = None
    max_t: int | None = None
    brackets: int = 1
    notes: list[str] = field(default_factory=list)


@dataclass
class SearchSpec:
    """Everything the driver needs to run one search, with paths instead of W&B names."""

    file: Path | None
    base_config: Path | None
    space: dict[str, Param]
    fixed: dict[str, Any]
    method: str
    metric: str
    mode: str
    target: float | None
    scheduler: SchedulerSpec
    num_samples: int | None
    max_concurrent: int | None = None
    resources_per_trial: dict[str, float] | None = None
    seed: int | None = None
    points_to_evaluate: list[dict[str, Any]] = field(default_factory=list)
    project: str | None = None
    entity: str | None = None
    name: str | None = None
    description: str | None = None
    tags: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    stages: list[dict[str, Any]] = field(default_factory=list)  # raw `stages:`; see tune_app.stages

    @property
    def grid_size(self) -> int | None:
        """Points in the grid (1 when nothing is searched); None for bayes/random."""
        if self.method != "grid":
            return None
        return math.prod(len(p.values or ()) for p in self.space.values())


# --------------------------------------------------------------------------- helpers


class _Ctx:
    """Parsing state: the file label for messages and the notes collected on the way."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.notes: list[str] = []

    def fail(self, key: str, msg: str) -> typing.NoReturn:
        raise SearchSpaceError(f"{self.source}: {key}: {msg}")

    def note(self, msg: str) -> None:
        self.notes.append(msg)


def _fmt(x: Any) -> str:
    """Short, exact-enough number text for messages (``0.0003`` not ``0.00030000000000000003``)."""
    if isinstance(x, float):
        return f"{x:.6g}"
    return repr(x) if isinstance(x, str) else str(x)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _is_integral(x: Any) -> bool:
    return _is_number(x) and float(x).is_integer()


def _is_multiple(x: float, q: float) -> bool:
    k = x / q
    return abs(k - round(k)) <= 1e-9 * max(1.0, abs(k))


def _num(ctx: _Ctx, key: str, spec: dict[str, Any], name: str, default: float | None = None) -> Any:
    if name not in spec:
        if default is None:
            ctx.fail(key, f"'{name}' is missing; add {name}: <number>")
        return default
    value = spec[name]
    if not _is_number(value) or not math.isfinite(value):
        ctx.fail(key, f"{name} must be a finite number, got {value!r}")
    return value


def _field_kind(path: str) -> str:
    """'int' | 'float' | 'bool' | 'str' | 'list' | 'dict' for a config path (Optional unwrapped)."""
    tp = FIELD_TYPES[path]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
    origin = typing.get_origin(tp) or tp
    names = {int: "int", float: "float", bool: "bool", str: "str", list: "list", dict: "dict"}
    return names.get(origin, "str")


def resolve_param_name(name: str, *, source: str, key: str, paths: typing.Iterable[str] = FIELD_PATHS) -> str:
    """polsess.config.resolve_name, with the sweep file and the key in front of its message."""
    try:
        return resolve_name(name, paths)
    except ConfigError as exc:
        msg = str(exc)
        if msg.startswith(f"{name}: "):
            msg = msg[len(name) + 2:]
        raise SearchSpaceError(f"{source}: {key}: {msg}") from None


# --------------------------------------------------------------------------- loading


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
    ctx = _Ctx(source)
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

    tune = _read_tune(ctx, raw.get("tune"))

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
        dist = _distribution_name(ctx, key, spec)
        _check_keys(ctx, key, dist, spec)
        if dist == "constant":
            fixed[path] = spec["value"]
        elif dist == "categorical" and isinstance(spec["values"], list) and len(spec["values"]) == 1:
            fixed[path] = spec["values"][0]
            ctx.note(f"{key}: values has one element, so it is fixed at {_fmt(fixed[path])}")
        else:
            searched[path] = (name, dist, spec)
    for path, value in fixed.items():
        _check_value(ctx, f"parameters.{resolved[path][0]}", base_flat, path, value)
    try:
        cfg = config_from_flat({**base_flat, **fixed})
    except ConfigError as exc:
        ctx.fail("parameters", f"the fixed values together are invalid: {exc}")
    effective = to_flat(cfg)

    space: dict[str, Param] = {}
    for path, (name, dist, spec) in searched.items():
        space[path] = _make_param(ctx, f"parameters.{name}", name, path, dist, spec, effective)

    # ---- method specifics
    if method == "grid":
        for param in space.values():
            _grid_expand(ctx, f"parameters.{param.name}", param)
    if not space:
        ctx.note("nothing is searched: every parameter is fixed")

    metric, mode, target = _read_metric(ctx, raw.get("metric"))

    max_t = int(effective["training.num_epochs"])
    if "training.num_epochs" in space:
        p = space["training.num_epochs"]
        max_t = int(max(p.values) if p.values else p.high)
        ctx.note(f"training.num_epochs is searched; the scheduler's max_t is its largest value, {max_t}")
    scheduler = _read_scheduler(ctx, raw.get("early_terminate"), tune, max_t)

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
        scheduler=scheduler,
        num_samples=num_samples,
        max_concurrent=tune.get("max_concurrent_trials"),
        resources_per_trial=tune.get("resources_per_trial"),
        seed=tune.get("seed"),
        points_to_evaluate=points,
        project=meta["project"],
        entity=meta["entity"],
        name=meta["name"],
        description=meta["description"],
        tags=tune.get("tags", []),
        notes=ctx.notes,
        stages=_read_stages(ctx, raw.get("stages")),
    )
    return spec_out


def _flatten_params(ctx: _Ctx, block: dict[Any, Any], prefix: str) -> dict[str, dict[str, Any]]:
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
    ctx: _Ctx, entry: dict[str, Any] | None, override: str | Path | None, cwd: Path, sweep_dir: Path | None
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


def _distribution_name(ctx: _Ctx, key: str, spec: dict[str, Any]) -> str:
    """The W&B distribution as written, or inferred the way W&B infers it."""
    unknown = sorted(set(spec) - _PARAM_KEYS, key=str)
    if unknown:
        known = ", ".join(sorted(_PARAM_KEYS - {"parameters"}))
        ctx.fail(key, f"unknown key '{unknown[0]}'; a parameter takes {known} (or a nested parameters:)")
    if "distribution" in spec:
        dist = spec["distribution"]
        if dist not in DISTRIBUTIONS:
            ctx.fail(key, f"unknown distribution {dist!r}; known: {', '.join(DISTRIBUTIONS)}")
        return dist
    if "value" in spec and "values" in spec:
        ctx.fail(key, "has both value and values; keep value (fixed) or values (searched)")
    if "value" in spec:
        return "constant"
    if "values" in spec:
        return "categorical_w_probabilities" if "probabilities" in spec else "categorical"
    if "min" in spec and "max" in spec:
        lo, hi = spec["min"], spec["max"]
        if all(isinstance(x, int) and not isinstance(x, bool) for x in (lo, hi)):
            return "int_uniform"
        return "uniform"
    ctx.fail(key, "cannot tell the distribution; give value, values, or min and max (or add distribution:)")


def _check_keys(ctx: _Ctx, key: str, dist: str, spec: dict[str, Any]) -> None:
    allowed = _DIST_KEYS[dist]
    extra = sorted(set(spec) - allowed - {"distribution"})
    if extra:
        takes = ", ".join(sorted(allowed))
        ctx.fail(key, f"'{extra[0]}' does not apply to distribution {dist} (it takes {takes}); "
                      "remove it or pick another distribution")
    if "values" in allowed:
        values = spec.get("values")
        if not isinstance(values, list) or not values:
            ctx.fail(key, f"values must be a non-empty list, got {values!r}")
    if "value" in allowed and "value" not in spec:
        ctx.fail(key, "distribution constant needs value:")
    if allowed >= _RANGE:
        for bound in ("min", "max"):
            if bound not in spec:
                ctx.fail(key, f"distribution {dist} needs {bound}:")


def _check_value(ctx: _Ctx, key: str, flat: dict[str, Any], path: str, value: Any) -> None:
    """A value the config would refuse fails here, naming the sweep key rather than a trial."""
    try:
        config_from_flat({**flat, path: value})
    except ConfigError as exc:
        ctx.fail(key, str(exc))


def _make_param(
    ctx: _Ctx, key: str, name: str, path: str, dist: str, spec: dict[str, Any], flat: dict[str, Any]
) -> Param:
    kind = _field_kind(path)
    if dist == "categorical_w_probabilities":
        _check_probabilities(ctx, key, spec)
        ctx.fail(key, "Optuna's samplers cannot weight categories; drop probabilities: to sample the "
                      "values uniformly")
    if dist == "categorical":
        values = spec["values"]
        for v in values:
            if not (v is None or isinstance(v, (str, int, float, bool))):
                ctx.fail(key, f"choice {v!r} is not a scalar; Optuna's choices are numbers, strings, "
                              "true/false or null — fix a list-valued field with value: "
                              "(one search per choice)")
            _check_value(ctx, key, flat, path, v)
        return Param(path, name, "categorical", values=list(values), distribution=dist)
    if dist in ("normal", "q_normal", "log_normal", "q_log_normal"):
        mu, sigma = _num(ctx, key, spec, "mu", 0.0), _num(ctx, key, spec, "sigma", 1.0)
        lo, hi = mu - 2 * sigma, mu + 2 * sigma
        if dist.endswith("log_normal"):
            ctx.fail(key, f"Optuna's samplers cannot honour a log-normal prior; use distribution: "
                          f"log_uniform_values with min/max, e.g. exp(mu±2σ) = [{_fmt(math.exp(lo))}, "
                          f"{_fmt(math.exp(hi))}]")
        ctx.fail(key, f"Optuna's samplers cannot honour a normal prior; use distribution: uniform with "
                      f"min/max, e.g. mu±2σ = [{_fmt(lo)}, {_fmt(hi)}]")
    if dist in ("beta", "q_beta"):
        ctx.fail(key, "Optuna's samplers cannot honour a beta prior; use distribution: uniform with min: 0, "
                      "max: 1 (the beta's support) or a narrower range")

    # ---- ranges
    if kind not in ("int", "float"):
        hint = "values: [true, false]" if kind == "bool" else "values: [...]"
        ctx.fail(key, f"{path} is a {kind} field and cannot take a numeric range; use {hint}")
    lo = _num(ctx, key, spec, "min")
    hi = _num(ctx, key, spec, "max")
    if lo > hi:
        ctx.fail(key, f"min {_fmt(lo)} > max {_fmt(hi)}; swap them")
    float_ranges = ("uniform", "log_uniform", "log_uniform_values", "inv_log_uniform",
                    "inv_log_uniform_values")
    if kind == "int" and dist in float_ranges:
        inferred = "" if "distribution" in spec else " (float min/max mean uniform)"
        ctx.fail(key, f"{path} is an integer field but {dist}{inferred} draws floats; use distribution: "
                      "int_uniform, or q_uniform with q: 1"
                 + (", or q_log_uniform_values with q: 1 for a log scale" if "log" in dist else ""))
    param: Param
    if dist == "int_uniform":
        if not (_is_integral(lo) and _is_integral(hi)):
            ctx.fail(key, f"int_uniform needs integer min/max, got {_fmt(lo)}..{_fmt(hi)}; "
                          "use uniform for floats")
        if "distribution" not in spec and kind == "float":
            ctx.note(f"{key}: integer min/max with no distribution is int_uniform in W&B (whole numbers "
                     f"only); write min: {_fmt(float(lo))} or distribution: uniform for a float range")
        param = Param(path, name, "int", int(lo), int(hi), distribution=dist)
    elif dist == "uniform":
        param = Param(path, name, "float", float(lo), float(hi), distribution=dist)
    elif dist == "q_uniform":
        param = _q_uniform(ctx, key, name, path, kind, spec, lo, hi)
    elif dist in ("log_uniform", "inv_log_uniform"):
        # Exponent forms: log_uniform is e^U, inv_log_uniform is e^-U, U ~ U[min, max].
        low, high = (math.exp(lo), math.exp(hi)) if dist == "log_uniform" else (math.exp(-hi), math.exp(-lo))
        param = Param(path, name, "float", low, high, log=True, distribution=dist)
    elif dist in ("log_uniform_values", "inv_log_uniform_values"):
        # W&B draws inv_log_uniform_values as exp(-U), U ~ U[-log max, -log min]: X is log-uniform on
        # [min, max], the same law as log_uniform_values (1/X is log-uniform on [1/max, 1/min]).
        if lo <= 0:
            ctx.fail(key, f"{dist} needs min > 0 (got {_fmt(lo)}); a log scale cannot reach 0 — use a "
                          "small positive min such as 1e-8")
        param = Param(path, name, "float", float(lo), float(hi), log=True, distribution=dist)
    else:  # q_log_uniform, q_log_uniform_values
        param = _q_log_uniform(ctx, key, name, path, dist, spec, lo, hi)

    for bound in (param.low, param.high):
        _check_value(ctx, key, flat, path, bound)
    return param


def _check_probabilities(ctx: _Ctx, key: str, spec: dict[str, Any]) -> None:
    probs = spec["probabilities"]
    if not isinstance(probs, list) or not all(_is_number(p) and p >= 0 for p in probs):
        ctx.fail(key, f"probabilities must be a list of numbers >= 0, got {probs!r}")
    if len(probs) != len(spec["values"]):
        ctx.fail(key, f"{len(probs)} probabilities for {len(spec['values'])} values; give one per value")
    if abs(sum(probs) - 1.0) > 1e-6:
        ctx.fail(key, f"probabilities sum to {_fmt(float(sum(probs)))}, not 1; fix them")


def _q_uniform(ctx: _Ctx, key: str, name: str, path: str, kind: str, spec: dict[str, Any],
               lo: float, hi: float) -> Param:
    """W&B draws round(U[min,max]/q)*q; Optuna steps low + k*q. Same grid iff min, max are multiples of q."""
    q = _num(ctx, key, spec, "q", 1)
    if q <= 0:
        ctx.fail(key, f"q must be > 0, got {_fmt(q)}")
    integral = all(_is_integral(x) for x in (lo, hi, q))
    if kind == "int" and not integral:
        ctx.fail(key, f"{path} is an integer field; q_uniform needs integer min, max and q "
                      f"(got {_fmt(lo)}, {_fmt(hi)}, q {_fmt(q)})")
    for bound, value in (("min", lo), ("max", hi)):
        if not _is_multiple(value, q):
            down, up = math.floor(value / q) * q, math.ceil(value / q) * q
            if integral:
                down, up = int(down), int(up)
            else:
                down, up = round(down, 12), round(up, 12)
            ctx.fail(key, f"{bound} {_fmt(value)} is not a multiple of q {_fmt(q)}, so Optuna's steps "
                          f"(min + k·q) would differ from W&B's (multiples of q); use {bound}: {_fmt(down)} "
                          f"or {_fmt(up)}")
    if integral:
        return Param(path, name, "int", int(lo), int(hi), q=int(q), distribution="q_uniform")
    return Param(path, name, "float", float(lo), float(hi), q=float(q), distribution="q_uniform")


def _q_log_uniform(ctx: _Ctx, key: str, name: str, path: str, dist: str, spec: dict[str, Any],
                   lo: float, hi: float) -> Param:
    """Optuna has no float log+step; q: 1 is an integer log scale, which IntDistribution(log=True) is."""
    q = _num(ctx, key, spec, "q", 1)
    if q <= 0:
        ctx.fail(key, f"q must be > 0, got {_fmt(q)}")
    if dist == "q_log_uniform":
        vlo, vhi = math.exp(lo), math.exp(hi)
    else:
        if lo <= 0:
            ctx.fail(key, f"{dist} needs min > 0 (got {_fmt(lo)}); a log scale cannot reach 0")
        vlo, vhi = float(lo), float(hi)
    ilo, ihi = round(vlo), round(vhi)
    if q == 1 and ilo >= 1:
        return Param(path, name, "int", int(ilo), int(ihi), log=True, distribution=dist)
    plain = f"log_uniform_values with min: {_fmt(vlo)}, max: {_fmt(vhi)}"
    if q == 1:
        ctx.fail(key, f"q: 1 rounds to whole numbers, but the range [{_fmt(vlo)}, {_fmt(vhi)}] starts below 1; "
                      f"use distribution: {plain} for a float log scale, or start the range at 1 or more")
    ctx.fail(key, f"Optuna cannot combine a log scale with a step (q: {_fmt(q)}); use distribution: {plain} "
                  "(no step), or a values: list")


def _grid_expand(ctx: _Ctx, key: str, param: Param) -> None:
    """Grid needs finite choices: int and stepped ranges become their value lists (≤ 100)."""
    if param.kind == "categorical":
        return
    if param.log or (param.kind == "float" and param.q is None):
        ctx.fail(key, f"method grid needs a finite list, but {param.distribution} is continuous; "
                      "use values: [...] (or method: random / bayes)")
    step = param.q or 1
    count = round((param.high - param.low) / step) + 1
    if count > GRID_EXPAND_LIMIT:
        ctx.fail(key, f"{param.distribution} expands to {count} grid values (limit {GRID_EXPAND_LIMIT}); "
                      "list the ones you want with values: or raise q")
    if param.kind == "int":
        values: list[Any] = list(range(int(param.low), int(param.high) + 1, int(step)))
    else:
        values = [round(param.low + k * step, 12) for k in range(count)]
    ctx.note(f"{key}: {param.distribution} expanded to {len(values)} grid values")
    param.kind, param.values = "categorical", values
    param.low = param.high = param.q = None


def _read_metric(ctx: _Ctx, block: Any) -> tuple[str, str, float | None]:
    if block is None:
        ctx.note(f"no metric block: searching {DEFAULT_METRIC}, maximize")
        return DEFAULT_METRIC, "max", None
    if not isinstance(block, dict):
        ctx.fail("metric", "expected a mapping with name and goal")
    for k in block:
        if k not in ("name", "goal", "target", "impute", "impute_while_running"):
            ctx.fail(f"metric.{k}", "unknown key; metric takes name, goal, target")
    for k in ("impute", "impute_while_running"):
        if k in block:
            ctx.note(f"metric.{k} ignored — Ray Tune only sees what the trainable reports")
    name = block.get("name")
    if name is None:
        ctx.fail("metric.name", f"missing; use one of {', '.join(METRICS)}")
    if name not in METRICS:
        ctx.fail("metric.name", f"{name!r} is not reported by the trainable; use one of {', '.join(METRICS)}")
    goal = block.get("goal")
    if goal is None:
        ctx.note(f"warning: metric.goal missing — W&B's default goal is minimize, so this search MINIMIZES "
                 f"{name} (higher SI-SDR is better); add goal: maximize")
        mode = "min"
    elif goal in ("maximize", "minimize"):
        mode = "max" if goal == "maximize" else "min"
        if mode == "min":
            ctx.note(f"warning: goal: minimize on {name}, an SI-SDR where higher is better; "
                     "did you mean maximize?")
    else:
        ctx.fail("metric.goal", f"{goal!r} is not a goal; use maximize or minimize")
    target = block.get("target")
    if target is not None and (not _is_number(target) or not math.isfinite(target)):
        ctx.fail("metric.target", f"expected a number, got {target!r}")
    return name, mode, None if target is None else float(target)


def _pos_int(ctx: _Ctx, key: str, value: Any, minimum: int = 1) -> int:
    if not _is_integral(value) or value < minimum:
        ctx.fail(key, f"expected an integer >= {minimum}, got {value!r}")
    return int(value)


def _read_tune(ctx: _Ctx, block: Any) -> dict[str, Any]:
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
        if k in ("num_samples", "max_concurrent_trials", "grace_period"):
            out[k] = _pos_int(ctx, key, v)
        elif k == "seed":
            out[k] = _pos_int(ctx, key, v, minimum=0)
        elif k == "reduction_factor":
            if not _is_number(v) or v <= 1:
                ctx.fail(key, f"expected a number > 1, got {v!r}")
            out[k] = float(v)
        elif k == "scheduler":
            if v not in _SCHEDULERS:
                ctx.fail(key, f"unknown scheduler {v!r}; use asha, median or fifo")
            out[k] = v
        elif k == "resources_per_trial":
            if not isinstance(v, dict):
                ctx.fail(key, "expected {cpu: N, gpu: N}")
            for rk, rv in v.items():
                if rk not in ("cpu", "gpu"):
                    ctx.fail(f"{key}.{rk}", "unknown resource; use cpu and gpu")
                if not _is_number(rv) or rv < 0:
                    ctx.fail(f"{key}.{rk}", f"expected a number >= 0, got {rv!r}")
            out[k] = {"cpu": float(v.get("cpu", 1)), "gpu": float(v.get("gpu", 0))}
        elif k == "tags":
            if not isinstance(v, list) or not all(isinstance(t, str) for t in v):
                ctx.fail(key, f"expected a list of strings, got {v!r}")
            out[k] = list(v)
        else:  # points_to_evaluate
            if not isinstance(v, list):
                ctx.fail(key, "expected a list of {name: value} mappings")
            out[k] = v
    return out


def _read_scheduler(ctx: _Ctx, block: Any, tune: dict[str, Any], max_t: int) -> SchedulerSpec:
    """early_terminate → ASHA (hyperband) / median / FIFO, then the tune: overrides."""
    sched = SchedulerSpec(max_t=max_t)
    if block is not None:
        if not isinstance(block, dict) or "type" not in block:
            ctx.fail("early_terminate", "expected {type: hyperband, min_iter: N, eta: 3}")
        et_type = block["type"]
        if et_type == "hyperband":
            _hyperband(ctx, block, sched)
        elif et_type == "median_stopping":
            for k in block:
                if k not in ("type", "min_iter"):
                    ctx.fail(f"early_terminate.{k}", "unknown key; median_stopping takes min_iter")
            sched.type = "median"
            sched.grace_period = (_pos_int(ctx, "early_terminate.min_iter", block["min_iter"])
                                  if "min_iter" in block else 1)
        else:
            ctx.fail("early_terminate.type", f"unknown type {et_type!r}; use hyperband or median_stopping")

    if "scheduler" in tune and tune["scheduler"] != sched.type:
        sched.notes.append(f"tune.scheduler: {tune['scheduler']} replaces {sched.type}")
        sched.type = tune["scheduler"]
        if sched.type == "fifo":
            sched.grace_period = sched.reduction_factor = None
        elif sched.type == "asha":
            sched.grace_period = sched.grace_period or 1
            sched.reduction_factor = sched.reduction_factor or 3.0
        else:
            sched.grace_period = sched.grace_period or 1
            sched.reduction_factor = None
    for k in ("grace_period", "reduction_factor"):
        if k not in tune:
            continue
        if sched.type == "fifo":
            ctx.fail(f"tune.{k}", "the scheduler is fifo (no early_terminate), which stops nothing; "
                                  "set tune.scheduler: asha or remove it")
        if k == "reduction_factor" and sched.type != "asha":
            ctx.fail(f"tune.{k}", f"only ASHA has a reduction factor (scheduler is {sched.type}); remove it")
        sched.notes.append(f"tune.{k}: {_fmt(tune[k])} replaces {_fmt(getattr(sched, k))}")
        setattr(sched, k, tune[k])
    if sched.grace_period is not None and sched.grace_period > max_t:
        sched.notes.append(f"grace period {sched.grace_period} > max_t {max_t} epochs; clamped to {max_t}")
        sched.grace_period = max_t
    ctx.notes.extend(f"scheduler: {n}" for n in sched.notes)
    return sched


def _hyperband(ctx: _Ctx, block: dict[str, Any], sched: SchedulerSpec) -> None:
    for k in block:
        if k not in ("type", "min_iter", "max_iter", "s", "eta", "strict"):
            ctx.fail(f"early_terminate.{k}",
                     "unknown key; hyperband takes min_iter, max_iter, s, eta, strict")
    eta = block.get("eta", 3)
    if not _is_number(eta) or eta <= 1:
        ctx.fail("early_terminate.eta", f"expected a number > 1, got {eta!r}")
    sched.type = "asha"
    sched.reduction_factor = float(eta)
    if "min_iter" in block:
        sched.grace_period = _pos_int(ctx, "early_terminate.min_iter", block["min_iter"])
        for k in ("max_iter", "s"):
            if k in block:
                sched.notes.append(f"early_terminate.{k} ignored: min_iter sets the grace period")
    elif "max_iter" in block:
        max_iter = _pos_int(ctx, "early_terminate.max_iter", block["max_iter"])
        if "s" not in block:
            ctx.fail("early_terminate.s", "max_iter needs s (the number of brackets below it); add s: 2, "
                                          "or give min_iter instead")
        s = _pos_int(ctx, "early_terminate.s", block["s"], minimum=0)
        sched.grace_period = max(1, round(max_iter / eta**s))
        sched.notes.append(f"grace period {sched.grace_period} = max_iter {max_iter} / eta^s "
                           f"({_fmt(float(eta))}^{s}), rounded")
    else:
        ctx.fail("early_terminate", "hyperband needs min_iter (or max_iter and s); add min_iter: 1")
    if "strict" in block:
        if not isinstance(block["strict"], bool):
            ctx.fail("early_terminate.strict", f"expected true or false, got {block['strict']!r}")
        sched.notes.append("early_terminate.strict accepted; ASHA has no strict mode")


def _num_samples(ctx: _Ctx, raw: dict[str, Any], tune: dict[str, Any], method: str,
                 space: dict[str, Param]) -> int | None:
    run_cap = _pos_int(ctx, "run_cap", raw["run_cap"]) if raw.get("run_cap") is not None else None
    count = _pos_int(ctx, "count", raw["count"]) if raw.get("count") is not None else None
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
    elif n is None:
        ctx.note("no run_cap, count or tune.num_samples: the driver's default number of trials applies")
    return n


def _read_point(
    ctx: _Ctx, i: int, point: Any, space: dict[str, Param], fixed: dict[str, Any], method: str
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
        problem = _outside(space[path], value)
        if problem:
            ctx.fail(key, f"{_fmt(value)} {problem}; pick a point inside the space")
        out[path] = value
    missing = [path for path in space if path not in out]
    if method == "grid" and missing:
        ctx.fail(where, "under method grid a point must set every searched parameter; "
                        f"add {', '.join(missing)}")
    return out


def _outside(p: Param, v: Any) -> str | None:
    """Why ``v`` is not a value ``p`` can take, or None."""
    if p.kind == "categorical":
        ok = any(type(v) is type(c) and v == c for c in p.values or ()) or (
            _is_number(v) and any(_is_number(c) and v == c for c in p.values or ()))
        return None if ok else f"is not one of {p.values}"
    if not _is_number(v):
        return f"is not a number in [{_fmt(p.low)}, {_fmt(p.high)}]"
    if not (p.low - 1e-12 * abs(p.low) <= v <= p.high + 1e-12 * abs(p.high)):
        return f"is outside [{_fmt(p.low)}, {_fmt(p.high)}]"
    if p.kind == "int" and not _is_integral(v):
        return "is not a whole number"
    if p.q is not None and not _is_multiple(v - p.low, p.q):
        return f"is not on the q = {_fmt(p.q)} steps from {_fmt(p.low)}"
    return None


# --------------------------------------------------------------------------- optuna


def optuna_space(spec: SearchSpec) -> dict[str, optuna.distributions.BaseDistribution]:
    """The searched parameters as Optuna distributions, keyed by config path."""
    out: dict[str, optuna.distributions.BaseDistribution] = {}
    for path, p in spec.space.items():
        if p.kind == "categorical":
            out[path] = optuna.distributions.CategoricalDistribution(p.values)
        elif p.kind == "int":
            out[path] = optuna.distributions.IntDistribution(int(p.low), int(p.high), log=p.log,
                                                             step=int(p.q or 1))
        else:
            out[path] = optuna.distributions.FloatDistribution(float(p.low), float(p.high), log=p.log,
                                                               step=None if p.q is None else float(p.q))
    return out


def make_sampler(spec: SearchSpec, seed: int | None = None,
                 key: Callable[[str], str] = str) -> optuna.samplers.BaseSampler:
    """The Optuna sampler for ``spec.method``; ``seed`` None means ``spec.seed``.

    bayes → TPE with ``n_startup_trials = min(10, max(2, num_samples // 4))`` (10 when the budget
    is unknown): Optuna's fixed 10 random startup trials would make a run_cap: 8 "bayes" search
    purely random, while a quarter of the budget still gives TPE a spread to model.
    random → RandomSampler. grid → GridSampler over every ``values`` list (seed only shuffles order).
    ``key`` maps a config path to the parameter name the study uses (the driver's '/'-joined names).
    """
    seed = spec.seed if seed is None else seed
    if spec.method == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if spec.method == "grid":
        return optuna.samplers.GridSampler({key(path): list(p.values or ()) for path, p in spec.space.items()},
                                           seed=seed)
    startup = 10 if spec.num_samples is None else min(10, max(2, spec.num_samples // 4))
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)


def sample_configs(spec: SearchSpec, n: int, seed: int,
                   evaluated: list[optuna.trial.FrozenTrial] | None = None) -> list[dict[str, Any]]:
    """The first ``n`` suggestions of a fresh study (searched paths only), as ``run --dry-run`` shows.

    points_to_evaluate come first, as in Ray's OptunaSearch; no results are told, so a bayes search
    shows its random startup phase. A grid yields at most its size. ``evaluated``: finished trials
    (a warm start) the study holds first, as the real search's does.
    """
    if spec.method == "grid":
        n = min(n, spec.grid_size or 0)
    space = optuna_space(spec)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(direction="maximize" if spec.mode == "max" else "minimize",
                                    sampler=make_sampler(spec, seed))
        study.add_trials(evaluated or [])
        for point in spec.points_to_evaluate:
            study.enqueue_trial(point)
        return [dict(study.ask(space).params) for _ in range(n)]
    finally:
        optuna.logging.set_verbosity(verbosity)


# --------------------------------------------------------------------------- reporting


def _param_dict(p: Param) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": p.kind, "distribution": p.distribution}
    if p.kind == "categorical":
        out["values"] = p.values
    else:
        out.update(low=p.low, high=p.high, log=p.log)
        if p.q is not None:
            out["q"] = p.q
    return out


def describe(spec: SearchSpec) -> dict[str, Any]:
    """JSON-ready view for ``run --dry-run --json``."""
    return {
        "file": None if spec.file is None else str(spec.file),
        "base_config": None if spec.base_config is None else str(spec.base_config),
        "space": {path: _param_dict(p) for path, p in spec.space.items()},
        "fixed": spec.fixed,
        "method": spec.method,
        "metric": spec.metric,
        "mode": spec.mode,
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
    }


def format_dry_run(spec: SearchSpec, samples: list[dict[str, Any]]) -> str:
    """Human-readable summary of the search and a few sampled configs."""
    lines = [f"search space: {spec.file or '<sweep>'}",
             f"base config:  {spec.base_config or '(config defaults)'}",
             f"method:       {spec.method}",
             f"metric:       {spec.metric} ({spec.mode})"
             + (f", target {_fmt(spec.target)}" if spec.target is not None else ""),
             f"num_samples:  {spec.num_samples if spec.num_samples is not None else '(driver default)'}"
             + (f" (grid of {spec.grid_size})" if spec.method == "grid" else "")]
    s = spec.scheduler
    sched = s.type
    if s.type == "asha":
        sched += (f": grace_period {s.grace_period}, reduction_factor {_fmt(s.reduction_factor)}, "
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
            what = f"{p.kind}{' log' if p.log else ''} [{_fmt(p.low)}, {_fmt(p.high)}]"
            if p.q is not None:
                what += f" step {_fmt(p.q)}"
        lines.append(f"  {path:<{width}}  {what}  ({p.distribution}, as {p.name})")
    if spec.fixed:
        lines.append("fixed:")
        for path, v in spec.fixed.items():
            lines.append(f"  {path} = {_fmt(v)}")
    if spec.points_to_evaluate:
        lines.append("points to evaluate first:")
        lines += [f"  {pt}" for pt in spec.points_to_evaluate]
    if spec.notes:
        lines.append("notes:")
        lines += [f"  - {n}" for n in spec.notes]
    if samples:
        lines.append(f"sample configs ({len(samples)}):")
        for i, sample in enumerate(samples):
            lines.append(f"  [{i}] " + ", ".join(f"{k}={_fmt(v)}" for k, v in sample.items()))
    return "\n".join(lines)


def _read_stages(ctx: _Ctx, raw: Any) -> list[dict[str, Any]]:
    """Kept raw here; tune_app.stages checks each stage against the space it narrows."""
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(stage, dict) for stage in raw) or len(raw) < 2:
        ctx.fail("stages", "expected a list of at least two stages, e.g. - {num_samples: 16, epochs: 10}")
    return [dict(stage) for stage in raw]
