"""Shared fixtures. Tests run on real files: small corpora made by polsess.synth, no mocks."""

from __future__ import annotations

import os
import shutil
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
