"""Shared fixtures. Tests run on real files: small corpora made by polsess.synth, no mocks.

``tests/unit`` starts no Ray and runs in under a minute; ``tests/integration`` (marked
``integration`` by its own conftest) runs real Ray searches, W&B offline runs and subprocesses.
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

# Set at import, before any test module asks for the cache: no test may write to ~/.cache.
_CACHE = tempfile.mkdtemp(prefix="polsess-tune-test-cache-")
os.environ["POLSESS_TUNE_CACHE"] = _CACHE

DEMO_ROWS = {"train": 16, "val": 8, "test": 8}


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


REPO = Path(__file__).resolve().parents[1]
SHARED = (REPO.parent / "shared").resolve()
EXAMPLES = SHARED / "examples/polsess_separation"
_NO_SHARED = f"the research examples are not at {EXAMPLES} (a plain clone has no ../shared)"
needs_shared = pytest.mark.skipif(not EXAMPLES.is_dir(), reason=_NO_SHARED)


def skip_without_shared() -> None:
    """For fixtures and module-level code that read ``../shared``: skip, naming where it was looked for."""
    if not EXAMPLES.is_dir():
        pytest.skip(_NO_SHARED)


TINY_MODEL = ["--set", "N=16", "--set", "B=8", "--set", "H=16", "--set", "X=2", "--set", "R=1",
              "--set", "batch_size=4", "--set", "segment_seconds=0.25", "--set", "num_workers=0"]
SEARCH_EPOCHS = 4
# Secrets in the driver's environment: the search must keep them out of every file and the console.
SECRET_ENV = {"WANDB_API_KEY": "sk-test-0123456789abcdef", "MY_SERVICE_TOKEN": "tok-fedcba9876543210"}


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
