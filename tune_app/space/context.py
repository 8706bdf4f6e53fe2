"""Parsing state shared by the sweep-file readers: the file label for messages, the notes collected."""

from __future__ import annotations

import math
import typing
from typing import Any

from ..errors import SearchSpaceError
from .param import is_integral, is_number


class Ctx:
    """Every failure names the file and the key: ``demo.yaml: parameters.lr: <what and the fix>``."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.notes: list[str] = []

    def fail(self, key: str, msg: str) -> typing.NoReturn:
        raise SearchSpaceError(f"{self.source}: {key}: {msg}")

    def note(self, msg: str) -> None:
        self.notes.append(msg)

    def number(self, key: str, spec: dict[str, Any], name: str, default: float | None = None) -> Any:
        """``spec[name]`` as a finite number (``default`` when absent and given)."""
        if name not in spec:
            if default is None:
                self.fail(key, f"'{name}' is missing; add {name}: <number>")
            return default
        value = spec[name]
        if not is_number(value) or not math.isfinite(value):
            self.fail(key, f"{name} must be a finite number, got {value!r}")
        return value

    def pos_int(self, key: str, value: Any, minimum: int = 1) -> int:
        if not is_integral(value) or value < minimum:
            self.fail(key, f"expected an integer >= {minimum}, got {value!r}")
        return int(value)
