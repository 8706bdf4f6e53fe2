"""The wheel carries every package and the built-in configs and sweeps (checked without building it)."""

from __future__ import annotations

import tomllib
import yaml
from helpers import REPO

from tune_app.builtin import default_config, default_space, sweep_files
from tune_app.space import load_search


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def test_every_package_folder_is_listed_for_the_wheel():
    setuptools = _pyproject()["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    found = {".".join(p.parent.relative_to(REPO).parts) for root in ("polsess", "tune_app")
             for p in (REPO / root).rglob("__init__.py")}
    mapped = setuptools["package-dir"]
    assert found | set(mapped) == listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"
    assert {(REPO / folder).is_dir() for folder in mapped.values()} == {True}


def test_builtin_config_and_spaces_resolve_as_package_data():
    assert default_config().is_file() and default_space().is_file()
    names = {p.name for p in sweep_files()}
    assert {"demo.yaml", "demo_staged.yaml"} <= names
    assert names == {p.name for p in (REPO / "search_spaces").glob("*.yaml")}
    # The demo sweep names its base config relative to its folder's parents: inside the wheel
    # that is tune_app/builtin/, which holds configs/ as well.
    assert yaml.safe_load(default_space().read_text())["parameters"]["config"]["value"] == "configs/demo.yaml"
    assert load_search(default_space(), cwd=default_space().parent).base_config.resolve() == default_config().resolve()
