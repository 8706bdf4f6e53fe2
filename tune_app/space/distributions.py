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
from dataclasses import dataclass
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


@dataclass(frozen=True)
class _Entry:
    """One ``parameters.<name>`` entry on its way to a Param: where it is, what it says, what field it sets."""

    ctx: Ctx
    key: str  # "parameters.lr", for messages
    name: str  # as written in the sweep
    path: str  # the config path it sets
    dist: str
    spec: dict[str, Any]
    kind: str  # the field's type: int | float | bool | str | list | dict
    flat: dict[str, Any]  # base + fixed values, to check candidate values against

    def fail(self, msg: str) -> typing.NoReturn:
        self.ctx.fail(self.key, msg)

    def param(self, kind: str, low: Any = None, high: Any = None, **kw: Any) -> Param:
        return Param(self.path, self.name, kind, low, high, distribution=kw.pop("distribution", self.dist), **kw)


def make_param(
    ctx: Ctx, key: str, name: str, path: str, dist: str, spec: dict[str, Any], flat: dict[str, Any]
) -> Param:
    """One W&B distribution → a Param, by its handler in :data:`_HANDLERS`; a range's bounds are then
    checked against the config, so a bound the config refuses fails here, naming the sweep key."""
    entry = _Entry(ctx, key, name, path, dist, spec, _field_kind(path), flat)
    param = _HANDLERS[dist](entry)
    if param.kind != "categorical":
        for bound in (param.low, param.high):
            check_value(ctx, key, flat, path, bound)
    return param


def _categorical(e: _Entry) -> Param:
    for v in e.spec["values"]:
        if not (v is None or isinstance(v, (str, int, float, bool))):
            e.fail(f"choice {v!r} is not a scalar; Optuna's choices are numbers, strings, true/false or null — "
                   "fix a list-valued field with value: (one search per choice)")
        check_value(e.ctx, e.key, e.flat, e.path, v)
    return e.param("categorical", values=list(e.spec["values"]))


def _weighted(e: _Entry) -> Param:
    _check_probabilities(e.ctx, e.key, e.spec)
    e.fail("Optuna's samplers cannot weight categories; drop probabilities: to sample the values uniformly")


def _normal(e: _Entry) -> Param:
    mu, sigma = e.ctx.number(e.key, e.spec, "mu", 0.0), e.ctx.number(e.key, e.spec, "sigma", 1.0)
    lo, hi = mu - 2 * sigma, mu + 2 * sigma
    if e.dist.endswith("log_normal"):
        e.fail(f"Optuna's samplers cannot honour a log-normal prior; use distribution: log_uniform_values with "
               f"min/max, e.g. exp(mu±2σ) = [{fmt(math.exp(lo))}, {fmt(math.exp(hi))}]")
    e.fail(f"Optuna's samplers cannot honour a normal prior; use distribution: uniform with min/max, "
           f"e.g. mu±2σ = [{fmt(lo)}, {fmt(hi)}]")


def _beta(e: _Entry) -> Param:
    e.fail("Optuna's samplers cannot honour a beta prior; use distribution: uniform with min: 0, max: 1 (the "
           "beta's support) or a narrower range")


_FLOAT_RANGES = ("uniform", "log_uniform", "log_uniform_values", "inv_log_uniform", "inv_log_uniform_values")


def _ranged(handler: typing.Callable[[_Entry, float, float], Param]) -> typing.Callable[[_Entry], Param]:
    """A range handler, behind the checks every range shares: a numeric field, finite min <= max, and
    no float draw for an integer field."""
    def read(e: _Entry) -> Param:
        if e.kind not in ("int", "float"):
            hint = "values: [true, false]" if e.kind == "bool" else "values: [...]"
            e.fail(f"{e.path} is a {e.kind} field and cannot take a numeric range; use {hint}")
        lo, hi = e.ctx.number(e.key, e.spec, "min"), e.ctx.number(e.key, e.spec, "max")
        if lo > hi:
            e.fail(f"min {fmt(lo)} > max {fmt(hi)}; swap them")
        if e.kind == "int" and e.dist in _FLOAT_RANGES:
            inferred = "" if "distribution" in e.spec else " (float min/max mean uniform)"
            e.fail(f"{e.path} is an integer field but {e.dist}{inferred} draws floats; use distribution: "
                   "int_uniform, or q_uniform with q: 1"
                   + (", or q_log_uniform_values with q: 1 for a log scale" if "log" in e.dist else ""))
        return handler(e, lo, hi)
    return read


@_ranged
def _int_uniform(e: _Entry, lo: float, hi: float) -> Param:
    if not (is_integral(lo) and is_integral(hi)):
        e.fail(f"int_uniform needs integer min/max, got {fmt(lo)}..{fmt(hi)}; use uniform for floats")
    if "distribution" not in e.spec and e.kind == "float":
        e.ctx.note(f"{e.key}: integer min/max with no distribution is int_uniform in W&B (whole numbers only); "
                   f"write min: {fmt(float(lo))} or distribution: uniform for a float range")
    return e.param("int", int(lo), int(hi))


@_ranged
def _uniform(e: _Entry, lo: float, hi: float) -> Param:
    return e.param("float", float(lo), float(hi))


@_ranged
def _exp_uniform(e: _Entry, lo: float, hi: float) -> Param:
    """Exponent forms: log_uniform is e^U, inv_log_uniform is e^-U, U ~ U[min, max]."""
    low, high = (math.exp(lo), math.exp(hi)) if e.dist == "log_uniform" else (math.exp(-hi), math.exp(-lo))
    return e.param("float", low, high, log=True)


@_ranged
def _log_values(e: _Entry, lo: float, hi: float) -> Param:
    """W&B draws inv_log_uniform_values as exp(-U), U ~ U[-log max, -log min]: X is log-uniform on
    [min, max], the same law as log_uniform_values (1/X is log-uniform on [1/max, 1/min])."""
    if lo <= 0:
        e.fail(f"{e.dist} needs min > 0 (got {fmt(lo)}); a log scale cannot reach 0 — use a small positive min "
               "such as 1e-8")
    return e.param("float", float(lo), float(hi), log=True)


def _check_probabilities(ctx: Ctx, key: str, spec: dict[str, Any]) -> None:
    probs = spec["probabilities"]
    if not isinstance(probs, list) or not all(is_number(p) and p >= 0 for p in probs):
        ctx.fail(key, f"probabilities must be a list of numbers >= 0, got {probs!r}")
    if len(probs) != len(spec["values"]):
        ctx.fail(key, f"{len(probs)} probabilities for {len(spec['values'])} values; give one per value")
    if abs(sum(probs) - 1.0) > 1e-6:
        ctx.fail(key, f"probabilities sum to {fmt(float(sum(probs)))}, not 1; fix them")


@_ranged
def _q_uniform(e: _Entry, lo: float, hi: float) -> Param:
    """W&B draws round(U[min,max]/q)*q; Optuna steps low + k*q. Same grid iff min, max are multiples of q."""
    q = e.ctx.number(e.key, e.spec, "q", 1)
    if q <= 0:
        e.fail(f"q must be > 0, got {fmt(q)}")
    integral = all(is_integral(x) for x in (lo, hi, q))
    if e.kind == "int" and not integral:
        e.fail(f"{e.path} is an integer field; q_uniform needs integer min, max and q "
               f"(got {fmt(lo)}, {fmt(hi)}, q {fmt(q)})")
    for bound, value in (("min", lo), ("max", hi)):
        if not is_multiple(value, q):
            down, up = math.floor(value / q) * q, math.ceil(value / q) * q
            down, up = (int(down), int(up)) if integral else (round(down, 12), round(up, 12))
            e.fail(f"{bound} {fmt(value)} is not a multiple of q {fmt(q)}, so Optuna's steps (min + k·q) would "
                   f"differ from W&B's (multiples of q); use {bound}: {fmt(down)} or {fmt(up)}")
    if integral:
        return e.param("int", int(lo), int(hi), q=int(q))
    return e.param("float", float(lo), float(hi), q=float(q))


@_ranged
def _q_log_uniform(e: _Entry, lo: float, hi: float) -> Param:
    """Optuna has no float log+step; q: 1 is an integer log scale, which IntDistribution(log=True) is."""
    q = e.ctx.number(e.key, e.spec, "q", 1)
    if q <= 0:
        e.fail(f"q must be > 0, got {fmt(q)}")
    if e.dist == "q_log_uniform":
        vlo, vhi = math.exp(lo), math.exp(hi)
    else:
        if lo <= 0:
            e.fail(f"{e.dist} needs min > 0 (got {fmt(lo)}); a log scale cannot reach 0")
        vlo, vhi = float(lo), float(hi)
    ilo, ihi = round(vlo), round(vhi)
    if q == 1 and ilo >= 1:
        return e.param("int", int(ilo), int(ihi), log=True)
    plain = f"log_uniform_values with min: {fmt(vlo)}, max: {fmt(vhi)}"
    if q == 1:
        e.fail(f"q: 1 rounds to whole numbers, but the range [{fmt(vlo)}, {fmt(vhi)}] starts below 1; use "
               f"distribution: {plain} for a float log scale, or start the range at 1 or more")
    e.fail(f"Optuna cannot combine a log scale with a step (q: {fmt(q)}); use distribution: {plain} (no step), "
           "or a values: list")


# Every distribution of W&B's format but constant (the sweep reader fixes those) → the handler that
# maps it to a Param or refuses it with the fix.
_HANDLERS: dict[str, typing.Callable[[_Entry], Param]] = {
    "categorical": _categorical,
    "categorical_w_probabilities": _weighted,
    "int_uniform": _int_uniform,
    "uniform": _uniform,
    "q_uniform": _q_uniform,
    "log_uniform": _exp_uniform,
    "inv_log_uniform": _exp_uniform,
    "log_uniform_values": _log_values,
    "inv_log_uniform_values": _log_values,
    "q_log_uniform": _q_log_uniform,
    "q_log_uniform_values": _q_log_uniform,
    **dict.fromkeys(("normal", "q_normal", "log_normal", "q_log_normal"), _normal),
    **dict.fromkeys(("beta", "q_beta"), _beta),
}


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

