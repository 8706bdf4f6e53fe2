"""What the shared flags mean for a config: ``--set``, the short flags, ``--data-root``; the corpus.

Used by ``train`` and ``run`` now and by ``resume`` of a staged search, which rebuilds its plan from
the saved arguments: the same interpretation each time.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import UsageError

# Short flags for the keys people change most; anything else goes through --set.
SHORT_FLAGS = {
    "lr": "training.lr",
    "epochs": "training.num_epochs",
    "batch_size": "data.batch_size",
    "task": "data.task",
    "seed": "training.seed",
    "device": "training.device",
}


def parse_sets(items: list[str]) -> dict[str, Any]:
    """``["training.lr=3e-4", …]`` → ``{"training.lr": 0.0003, …}`` (values read as YAML scalars)."""
    from polsess.config import parse_value

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set {item!r}: expected KEY=VALUE, e.g. --set training.lr=3e-4")
        out[key.strip()] = parse_value(value)
    return out


def config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """--set values, then the short flags (which win), then --data-root."""
    overrides = parse_sets(getattr(args, "sets", []) or [])
    for flag, path in SHORT_FLAGS.items():
        value = getattr(args, flag, None)
        if value is not None:
            overrides[path] = value
    if getattr(args, "data_root", None):
        overrides["data.data_root"] = str(Path(args.data_root).expanduser().resolve())
    return overrides


def resolve_data_root(cfg_root: str | None, log=print) -> str:
    """The configured corpus, or the embedded demo corpus (made once in a cache folder)."""
    if cfg_root:
        return cfg_root
    from polsess.synth import ensure_demo_corpus

    return str(ensure_demo_corpus(log=log))
