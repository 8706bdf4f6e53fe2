"""Parsing state shared by the sweep-file readers: the file label for messages, the notes collected."""

from __future__ import annotations

import math
import typing
from typing import Any

from polsess.config import FIELD_PATHS, ConfigError, resolve_names

from ..errors import SearchSpaceError
from .param import is_integral, is_number

MAX_MESSAGE = 1000  # characters of an error message after the file and the key


class Ctx:
    """Every failure names the file and the key: ``demo.yaml: parameters.lr: <what and the fix>``."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.notes: list[str] = []

    def fail(self, key: str, msg: str) -> typing.NoReturn:
        """Raise the one-line error; a message that quotes a huge value (a 10⁵-element list) keeps its
        start (what is wrong) and its end (the fix) around an ellipsis, so the line stays readable."""
        if len(msg) > MAX_MESSAGE:
            msg = f"{msg[:MAX_MESSAGE * 2 // 3]} … {msg[-MAX_MESSAGE // 4:]}"
        raise SearchSpaceError(f"{self.source}: {key}: {msg}")

    def note(self, msg: str) -> None:
        self.notes.append(msg)

    def resolve(self, names: typing.Iterable[str], where: str,
                paths: typing.Iterable[str] = FIELD_PATHS) -> dict[str, str]:
        """Sweep names under ``where`` (``parameters``, ``stages[1].set``) → config paths; every
        name that matches no single path is listed in one error (polsess.config.resolve_names, the
        rule ``--set`` uses too), so a user fixes them all at once."""
        try:
            return resolve_names(names, paths, label=lambda name: f"{where}.{name}")
        except ConfigError as exc:
            raise SearchSpaceError(f"{self.source}: {exc}") from None

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
