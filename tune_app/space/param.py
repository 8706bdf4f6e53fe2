"""One searched config field (:class:`Param`): the one home of "is this value inside the space".

Every part that meets a value from outside the sampler asks the parameter: a sweep's
``points_to_evaluate`` and the base config (:meth:`Param.why_outside`, strict), a stage's starting
points (:meth:`Param.contains`), a warm-start run or a finished trial read back from disk
(:meth:`Param.fit`, which forgives float noise and snaps to the step). :meth:`Param.to_optuna` is
the one mapping to an Optuna distribution; :meth:`Param.from_dict` reads back what
:meth:`Param.as_dict` wrote into ``search.json``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import optuna

Scalar = str | int | float | bool | None


def fmt(x: Any) -> str:
    """Short, exact-enough number text for messages (``0.0003`` not ``0.00030000000000000003``)."""
    if isinstance(x, float):
        return f"{x:.6g}"
    return repr(x) if isinstance(x, str) else str(x)


def is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def is_integral(x: Any) -> bool:
    return is_number(x) and float(x).is_integer()


def is_multiple(x: float, q: float, rel_tol: float = 1e-9) -> bool:
    k = x / q
    return abs(k - round(k)) <= rel_tol * max(1.0, abs(k))


@dataclass
class Param:
    """One searched config field, after conversion to what Optuna can sample.

    ``kind`` is ``"float"``, ``"int"`` or ``"categorical"``; a numeric range is ``[low, high]`` on a
    linear or ``log`` scale with an optional step ``q`` (never both: Optuna refuses a log step).
    ``name`` is the name the sweep file used, ``distribution`` the W&B distribution it came from.
    """

    path: str
    name: str
    kind: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    q: float | int | None = None
    values: list[Any] | None = None
    distribution: str = ""

    # ------------------------------------------------------------------ membership

    def why_outside(self, value: Any) -> str | None:
        """Why ``value`` is not a value this parameter can take (strict: a user typed it), or None."""
        if self.kind == "categorical":
            return None if self._choice_index(value) is not None else f"is not one of {self.values}"
        if not is_number(value):
            return f"is not a number in [{fmt(self.low)}, {fmt(self.high)}]"
        if not (self.low - 1e-12 * abs(self.low) <= value <= self.high + 1e-12 * abs(self.high)):
            return f"is outside [{fmt(self.low)}, {fmt(self.high)}]"
        if self.kind == "int" and not is_integral(value):
            return "is not a whole number"
        if self.q is not None and not is_multiple(value - self.low, self.q):
            return f"is not on the q = {fmt(self.q)} steps from {fmt(self.low)}"
        return None

    def contains(self, value: Any) -> bool:
        return self.why_outside(value) is None

    def fit(self, value: Any, rel_tol: float = 1e-9) -> Any:
        """``value`` as the exact point this parameter takes, or None when it is not one.

        For values read back from files (a CSV keeps ~9 digits, JSON may turn 3 into 3.0): a number
        within ``rel_tol`` of the range (of its span; multiplicatively on a log scale) is clamped into
        it and snapped to the step; a whole number (to 1e-9) becomes an int; a choice equal
        to one of the values (3.0 names 3; True never names 1) becomes that value.
        """
        if self.kind == "categorical":
            i = self._choice_index(value, rel_tol)
            return None if i is None else (self.values or [])[i]
        if not is_number(value) or not math.isfinite(value):
            return None
        low, high = float(self.low), float(self.high)
        if self.kind == "int":
            n = round(value)
            if abs(value - n) > 1e-9 * max(1.0, abs(value)) or not (low <= n <= high):
                return None
            if self.q is not None and (n - self.low) % self.q:
                return None
            return int(n)
        if self.log:
            inside = low * (1 - rel_tol) <= value <= high * (1 + rel_tol)
        else:
            slack = rel_tol * ((high - low) or abs(low) or 1.0)
            inside = low - slack <= value <= high + slack
        if not inside:
            return None
        x = min(max(float(value), low), high)
        if self.q is not None:
            k = (x - low) / self.q
            if abs(k - round(k)) > max(rel_tol, 1e-9) * max(1.0, abs(k)):
                return None
            x = min(max(low + round(k) * self.q, low), high)
        return x

    def _choice_index(self, value: Any, rel_tol: float = 0.0) -> int | None:
        choices = list(self.values or ())
        for i, c in enumerate(choices):  # same type first: True must not match 1
            if type(c) is type(value) and c == value:
                return i
        if is_number(value):
            for i, c in enumerate(choices):
                if is_number(c) and math.isclose(value, c, rel_tol=rel_tol, abs_tol=0.0):
                    return i
        return None

    # ------------------------------------------------------------------ the unit scale

    def to_unit(self, value: Any) -> float:
        """``value`` on [0, 1] in the parameter's own scale (log for a log range): where a prior's
        width, a design's points and a surrogate's inputs are measured. A choice maps to the middle
        of its equal share of [0, 1]."""
        if self.kind == "categorical":
            n = len(self.values or ())
            i = self._choice_index(value)
            if i is None:
                raise ValueError(f"{self.path}: {fmt(value)} is not one of {self.values}")
            return (i + 0.5) / n
        low, high, x = float(self.low), float(self.high), float(value)
        if self.log:
            low, high, x = math.log(low), math.log(high), math.log(x)
        return 0.0 if high == low else (x - low) / (high - low)

    def from_unit(self, u: float) -> Any:
        """The value at ``u`` in [0, 1] (clipped), the inverse of :meth:`to_unit`, on the step of an
        int or ``q`` range; a choice is the value whose share holds ``u``."""
        u = min(max(float(u), 0.0), 1.0)
        if self.kind == "categorical":
            choices = list(self.values or ())
            return choices[min(int(u * len(choices)), len(choices) - 1)]
        low, high = float(self.low), float(self.high)
        x = math.exp(math.log(low) + u * (math.log(high) - math.log(low))) if self.log else low + u * (high - low)
        if self.kind == "int":
            step = int(self.q or 1)
            return int(min(max(int(self.low) + round((x - self.low) / step) * step, self.low), self.high))
        if self.q is not None:
            x = low + round((x - low) / self.q) * self.q
        return min(max(x, low), high)

    # ------------------------------------------------------------------ Optuna and search.json

    def to_optuna(self) -> optuna.distributions.BaseDistribution:
        """The Optuna distribution that samples exactly this parameter's values."""
        if self.kind == "categorical":
            return optuna.distributions.CategoricalDistribution(list(self.values or ()))
        if self.kind == "int":
            return optuna.distributions.IntDistribution(int(self.low), int(self.high), log=self.log,
                                                        step=1 if self.log else int(self.q or 1))
        step = None if self.q is None or self.log else float(self.q)
        return optuna.distributions.FloatDistribution(float(self.low), float(self.high), log=self.log, step=step)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready view (``run --dry-run --json``, ``search.json``); :meth:`from_dict` reads it back."""
        out: dict[str, Any] = {"kind": self.kind, "distribution": self.distribution}
        if self.kind == "categorical":
            out["values"] = self.values
        else:
            out.update(low=self.low, high=self.high, log=self.log)
            if self.q is not None:
                out["q"] = self.q
        return out

    @classmethod
    def from_dict(cls, path: str, info: dict[str, Any]) -> Param:
        """A parameter from its :meth:`as_dict` view; ValueError/KeyError when it is not one."""
        kind = info.get("kind")
        if kind == "categorical":
            return cls(path, path, kind, values=list(info.get("values") or ()),
                       distribution=str(info.get("distribution", "")))
        if kind not in ("int", "float"):
            raise ValueError(f"unknown parameter kind {kind!r}")
        log = bool(info.get("log", False))
        q = None if log else info.get("q")
        return cls(path, path, kind, info["low"], info["high"], log=log, q=q,
                   distribution=str(info.get("distribution", "")))
