"""Shared fixtures. Tests run on real files: small corpora made by polsess.synth, no mocks.

``tests/unit`` starts no Ray and runs in under a minute; ``tests/integration`` (marked
``integration`` here) runs real Ray searches, W&B offline runs and subprocesses.
Tests that read the research project's files in ``../shared`` skip with a reason where it is absent.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import DEMO_ROWS, REPO, SEARCH_EPOCHS, SECRET_ENV, TINY_MODEL

# Set at import, before any test module asks for the cache: no test may write to ~/.cache.
_CACHE = tempfile.mkdtemp(prefix="polsess-tune-test-cache-")
os.environ["POLSESS_TUNE_CACHE"] = _CACHE


@pytest.fixture(scope="session", autouse=True)
def _test_cache() -> Iterator[Path]:
    """The session's cache folder (``$POLSESS_TUNE_CACHE``), removed at the end."""
    yield Path(_CACHE)
    shutil.rmtree(_CACHE, ignore_errors=True)


@pytest.fixture(scope="session")
def demo_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small 8 kHz, 1 s corpus (16/8/8 rows, half indoor) shared by the whole session; do not modify it."""
    from polsess.synth import make_corpus

    return make_corpus(tmp_path_factory.mktemp("corpus") / "PolSESS_test", **DEMO_ROWS,
                       sample_rate=8000, seconds=1.0, seed=0)




@pytest.fixture(scope="session")
def search_ray_tmpdir() -> Iterator[Path]:
    """``RAY_TMPDIR`` of the finished search: its Ray session logs, to search for secrets. Short, as
    Ray's socket paths inside it have a length limit."""
    folder = Path(tempfile.mkdtemp(prefix="pt", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def finished_search(demo_corpus: Path, tmp_path_factory: pytest.TempPathFactory, search_ray_tmpdir: Path):
    """One real `polsess-tune run` (6 trials, ASHA, W&B offline), shared by every test that reads one.

    Returns (experiment folder, CompletedProcess).
    """
    storage = tmp_path_factory.mktemp("runs")
    proc = subprocess.run(
        [sys.executable, "-m", "tune_app.cli", "run", "--data-root", str(demo_corpus), "--storage", str(storage),
         "--name", "e2e", "--num-samples", "6", "--max-concurrent", "2", "--wandb", "offline", "--seed", "3",
         "--grace-period", "1", "--reduction-factor", "2", "--set", f"num_epochs={SEARCH_EPOCHS}", *TINY_MODEL],
        cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1", "RAY_TMPDIR": str(search_ray_tmpdir), **SECRET_ENV},
        capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return storage / "e2e", proc


@pytest.fixture(scope="session")
def finished_experiment(finished_search) -> Path:
    return finished_search[0]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Everything under tests/integration runs real Ray, W&B offline runs or subprocesses."""
    integration = Path(__file__).parent / "integration"
    for item in items:
        if integration in Path(item.fspath).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def offline_wandb(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Keep W&B offline, quiet and away from the user's settings and credentials."""
    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb_config"))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_DIR", raising=False)
    yield
    wandb.teardown()  # stop the wandb-core service this process started
