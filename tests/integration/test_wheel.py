"""polsess-tune installs like a package: the wheel, in a fresh venv, runs from any folder.

The fresh venv sees this environment's dependencies through a ``.pth`` line (installing torch and
Ray again would take minutes), but polsess-tune itself only from the wheel: the built-in config and
sweep files must come from inside it.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest
from helpers import REPO


def _isolation() -> list[str]:
    """Build offline with this environment's setuptools when it is recent enough; else pip fetches one."""
    if importlib.util.find_spec("setuptools") is None:
        return []
    from importlib.metadata import version

    return ["--no-build-isolation"] if int(version("setuptools").split(".")[0]) >= 68 else []


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), *_isolation(), str(REPO)],
                   check=True, timeout=600)
    (found,) = out.glob("polsess_tune-*.whl")
    return found


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with only the wheel installed; returns its bin folder."""
    env_dir = tmp_path_factory.mktemp("fresh") / "venv"
    venv.create(env_dir, with_pip=False)
    bin_dir = env_dir / "bin"
    ask = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site = Path(subprocess.run([str(bin_dir / "python"), "-c", ask], check=True, capture_output=True,
                               text=True).stdout.strip())
    (site / "deps-from-the-test-env.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(bin_dir / "python"), "install", "-q", "--no-deps",
                    str(wheel)], check=True, timeout=600)
    return bin_dir


def test_the_wheel_holds_every_module_and_the_builtin_files(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for root in ("polsess", "tune_app"):
        for path in (REPO / root).rglob("*.py"):
            assert path.relative_to(REPO).as_posix() in names
    for folder in ("configs", "search_spaces"):
        package = f"tune_app/builtin/{folder}"
        for path in (REPO / folder).glob("*.yaml"):
            assert f"{package}/{path.name}" in names, path


def _run(bin_dir: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(bin_dir / "polsess-tune"), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def test_dry_run_and_make_data_from_any_folder(installed, tmp_path):
    proc = _run(installed, tmp_path, "run", "--dry-run")
    assert proc.returncode == 0, proc.stderr[-2000:]
    site = installed.parent / "lib"
    lines = dict(line.split(":", 1) for line in proc.stdout.splitlines()[:2])
    space, base = Path(lines["search space"].strip()), Path(lines["base config"].strip())
    assert site in space.parents and space.name == "demo.yaml", proc.stdout  # from the wheel, not the checkout
    assert site in base.parents and base.parent.name == "configs", proc.stdout
    assert "sample configs (3):" in proc.stdout

    proc = _run(installed, tmp_path, "run", "--dry-run", "--space", str(space.with_name("demo_staged.yaml")))
    assert proc.returncode == 0 and "stages:" in proc.stdout, proc.stderr[-2000:]

    proc = _run(installed, tmp_path, "make-data", "corpus", "--train", "2", "--val", "1", "--test", "1",
                "--seconds", "0.5")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "corpus").is_dir() and not (tmp_path / "runs").exists()
