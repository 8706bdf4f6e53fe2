"""W&B distributions → :class:`Param`: every distribution of W&B's sweep format mapped or refused.

A prior Optuna's samplers cannot honour (normal, beta, weighted categories, a log scale with a
step) is an error that names the alternative, never a silent approximation; a value the config
would refuse fails here, naming the sweep key rather than a trial an hour later.
"""

from __future__ import annotations

import difflib
import math
import types
import typing
from typing import Any

from polsess.config import FIELD_TYPES, ConfigError, config_from_flat

from .context import Ctx
from .param import Param, fmt, is_integral, is_multiple, is_number

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


GRID_EXPAND_LIMIT = 100


def _field_kind(path: str) -> str:
    """'int' | 'float' | 'bool' | 'str' | 'list' | 'dict' for a config path (Optional unwrapped)."""
    tp = FIELD_TYPES[path]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
    origin = typing.get_origin(tp) or tp
    names = {int: "int", float: "float", bool: "bool", str: "str", list: "list", dict: "dict"}
    return names.get(origin, "str")


def distribution_name(ctx: Ctx, key: str, spec: dict[str, Any]) -> str:
    """The W&B distribution as written, or inferred the way W&B infers it."""
    unknown = sorted(set(spec) - _PARAM_KEYS, key=str)
    if unknown:
        known = ", ".join(sorted(_PARAM_KEYS - {"parameters"}))
        ctx.fail(key, f"unknown key '{unknown[0]}'; a parameter takes {known} (or a nested parameters:)")
    if "distribution" in spec:
        dist = spec["distribution"]
        if dist not in DISTRIBUTIONS:
            close = difflib.get_close_matches(str(dist), DISTRIBUTIONS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            ctx.fail(key, f"unknown distribution {dist!r}; {hint}known: {', '.join(DISTRIBUTIONS)}")
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


def check_keys(ctx: Ctx, key: str, dist: str, spec: dict[str, Any]) -> None:
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


def check_value(ctx: Ctx, key: str, flat: dict[str, Any], path: str, value: Any) -> None:
    """A value the config would refuse fails here, naming the sweep key rather than a trial."""
    try:
        config_from_flat({**flat, path: value})
    except ConfigError as exc:
        ctx.fail(key, str(exc))


def make_param(
    ctx: Ctx, key: str, name: str, path: str, dist: str, spec: dict[str, Any], flat: dict[str, Any]
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
            check_value(ctx, key, flat, path, v)
        return Param(path, name, "categorical", values=list(values), distribution=dist)
    if dist in ("normal", "q_normal", "log_normal", "q_log_normal"):
        mu, sigma = ctx.number(key, spec, "mu", 0.0), ctx.number(key, spec, "sigma", 1.0)
        lo, hi = mu - 2 * sigma, mu + 2 * sigma
        if dist.endswith("log_normal"):
            ctx.fail(key, f"Optuna's samplers cannot honour a log-normal prior; use distribution: "
                          f"log_uniform_values with min/max, e.g. exp(mu±2σ) = [{fmt(math.exp(lo))}, "
                          f"{fmt(math.exp(hi))}]")
        ctx.fail(key, f"Optuna's samplers cannot honour a normal prior; use distribution: uniform with "
                      f"min/max, e.g. mu±2σ = [{fmt(lo)}, {fmt(hi)}]")
    if dist in ("beta", "q_beta"):
        ctx.fail(key, "Optuna's samplers cannot honour a beta prior; use distribution: uniform with min: 0, "
                      "max: 1 (the beta's support) or a narrower range")

    # ---- ranges
    if kind not in ("int", "float"):
        hint = "values: [true, false]" if kind == "bool" else "values: [...]"
        ctx.fail(key, f"{path} is a {kind} field and cannot take a numeric range; use {hint}")
    lo = ctx.number(key, spec, "min")
    hi = ctx.number(key, spec, "max")
    if lo > hi:
        ctx.fail(key, f"min {fmt(lo)} > max {fmt(hi)}; swap them")
    float_ranges = ("uniform", "log_uniform", "log_uniform_values", "inv_log_uniform",
                    "inv_log_uniform_values")
    if kind == "int" and dist in float_ranges:
        inferred = "" if "distribution" in spec else " (float min/max mean uniform)"
        ctx.fail(key, f"{path} is an integer field but {dist}{inferred} draws floats; use distribution: "
                      "int_uniform, or q_uniform with q: 1"
                 + (", or q_log_uniform_values with q: 1 for a log scale" if "log" in dist else ""))
    param: Param
    if dist == "int_uniform":
        if not (is_integral(lo) and is_integral(hi)):
            ctx.fail(key, f"int_uniform needs integer min/max, got {fmt(lo)}..{fmt(hi)}; "
                          "use uniform for floats")
        if "distribution" not in spec and kind == "float":
            ctx.note(f"{key}: integer min/max with no distribution is int_uniform in W&B (whole numbers "
                     f"only); write min: {fmt(float(lo))} or distribution: uniform for a float range")
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
            ctx.fail(key, f"{dist} needs min > 0 (got {fmt(lo)}); a log scale cannot reach 0 — use a "
                          "small positive min such as 1e-8")
        param = Param(path, name, "float", float(lo), float(hi), log=True, distribution=dist)
    else:  # q_log_uniform, q_log_uniform_values
        param = _q_log_uniform(ctx, key, name, path, dist, spec, lo, hi)

    for bound in (param.low, param.high):
        check_value(ctx, key, flat, path, bound)
    return param


def _check_probabilities(ctx: Ctx, key: str, spec: dict[str, Any]) -> None:
    probs = spec["probabilities"]
    if not isinstance(probs, list) or not all(is_number(p) and p >= 0 for p in probs):
        ctx.fail(key, f"probabilities must be a list of numbers >= 0, got {probs!r}")
    if len(probs) != len(spec["values"]):
        ctx.fail(key, f"{len(probs)} probabilities for {len(spec['values'])} values; give one per value")
    if abs(sum(probs) - 1.0) > 1e-6:
        ctx.fail(key, f"probabilities sum to {fmt(float(sum(probs)))}, not 1; fix them")


def _q_uniform(ctx: Ctx, key: str, name: str, path: str, kind: str, spec: dict[str, Any],
               lo: float, hi: float) -> Param:
    """W&B draws round(U[min,max]/q)*q; Optuna steps low + k*q. Same grid iff min, max are multiples of q."""
    q = ctx.number(key, spec, "q", 1)
    if q <= 0:
        ctx.fail(key, f"q must be > 0, got {fmt(q)}")
    integral = all(is_integral(x) for x in (lo, hi, q))
    if kind == "int" and not integral:
        ctx.fail(key, f"{path} is an integer field; q_uniform needs integer min, max and q "
                      f"(got {fmt(lo)}, {fmt(hi)}, q {fmt(q)})")
    for bound, value in (("min", lo), ("max", hi)):
        if not is_multiple(value, q):
            down, up = math.floor(value / q) * q, math.ceil(value / q) * q
            if integral:
                down, up = int(down), int(up)
            else:
                down, up = round(down, 12), round(up, 12)
            ctx.fail(key, f"{bound} {fmt(value)} is not a multiple of q {fmt(q)}, so Optuna's steps "
                          f"(min + k·q) would differ from W&B's (multiples of q); use {bound}: {fmt(down)} "
                          f"or {fmt(up)}")
    if integral:
        return Param(path, name, "int", int(lo), int(hi), q=int(q), distribution="q_uniform")
    return Param(path, name, "float", float(lo), float(hi), q=float(q), distribution="q_uniform")


def _q_log_uniform(ctx: Ctx, key: str, name: str, path: str, dist: str, spec: dict[str, Any],
                   lo: float, hi: float) -> Param:
    """Optuna has no float log+step; q: 1 is an integer log scale, which IntDistribution(log=True) is."""
    q = ctx.number(key, spec, "q", 1)
    if q <= 0:
        ctx.fail(key, f"q must be > 0, got {fmt(q)}")
    if dist == "q_log_uniform":
        vlo, vhi = math.exp(lo), math.exp(hi)
    else:
        if lo <= 0:
            ctx.fail(key, f"{dist} needs min > 0 (got {fmt(lo)}); a log scale cannot reach 0")
        vlo, vhi = float(lo), float(hi)
    ilo, ihi = round(vlo), round(vhi)
    if q == 1 and ilo >= 1:
        return Param(path, name, "int", int(ilo), int(ihi), log=True, distribution=dist)
    plain = f"log_uniform_values with min: {fmt(vlo)}, max: {fmt(vhi)}"
    if q == 1:
        ctx.fail(key, f"q: 1 rounds to whole numbers, but the range [{fmt(vlo)}, {fmt(vhi)}] starts below 1; "
                      f"use distribution: {plain} for a float log scale, or start the range at 1 or more")
    ctx.fail(key, f"Optuna cannot combine a log scale with a step (q: {fmt(q)}); use distribution: {plain} "
                  "(no step), or a values: list")


def grid_expand(ctx: Ctx, key: str, param: Param) -> None:
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

