"""The built-in demo config and search spaces, read as package data.

They live in the repository's top-level ``configs/`` and ``search_spaces/`` (where users look for
them) and ship inside the wheel as ``tune_app.builtin.configs`` / ``tune_app.builtin.search_spaces``
(a setuptools package-dir mapping in pyproject.toml), so an installed ``polsess-tune`` runs from
any directory. A sweep's ``config: {value: configs/demo.yaml}`` resolves from the sweep's folder's
parents, which is ``builtin/`` in an install and the repository root in a checkout.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

DEMO = "demo.yaml"


def _file(package: str, name: str) -> Path:
    # Installed as plain files (a wheel unpacks; an editable install maps the folders), never zipped.
    return Path(str(files(package).joinpath(name)))


def default_config() -> Path:
    """``configs/demo.yaml``: the base experiment config of ``run``, ``train`` and ``--dry-run``."""
    return _file("tune_app.builtin.configs", DEMO)


def default_space() -> Path:
    """``search_spaces/demo.yaml``: the sweep file ``run`` searches when given no ``--space``."""
    return _file("tune_app.builtin.search_spaces", DEMO)


def sweep_files() -> list[Path]:
    """Every built-in sweep file."""
    folder = Path(str(files("tune_app.builtin.search_spaces")))
    return sorted(folder.glob("*.yaml"))
