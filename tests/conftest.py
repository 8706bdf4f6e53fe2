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


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A real S3 server (moto's, in its own process on 127.0.0.1) with one bucket, ``polsess-tune-ci``.

    Yields the environment a driver or a Ray node needs to use it: fake credentials (the secret is
    random per session, so a test can search every file and log for it) and the endpoint.
    """
    import secrets
    import socket
    import urllib.request

    from processes import kill_session, wait_for

    server = Path(sys.executable).with_name("moto_server")
    if not server.exists():
        pytest.skip("moto[server] is not installed (a dev dependency: pip install -e '.[dev]')")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path_factory.mktemp("s3") / "moto.log"
    proc = subprocess.Popen([str(server), "-H", "127.0.0.1", "-p", str(port)], stdout=log.open("w"),
                            stderr=subprocess.STDOUT, start_new_session=True)

    def answers() -> bool:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=2)
            return True
        except OSError:
            return proc.poll() is not None

    try:
        wait_for(answers, 60, "the S3 server to answer")
        assert proc.poll() is None, log.read_text()[-2000:]
        env = {"AWS_ACCESS_KEY_ID": "polsess-ci-" + secrets.token_hex(4),
               "AWS_SECRET_ACCESS_KEY": "s3-secret-" + secrets.token_hex(12),
               "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
               "AWS_EC2_METADATA_DISABLED": "true"}
        subprocess.run([sys.executable, "-c", "import pyarrow.fs as f; fs, _ = f.FileSystem.from_uri("
                        "'s3://polsess-tune-ci?allow_bucket_creation=true'); fs.create_dir('polsess-tune-ci')"],
                       env={**os.environ, **env}, check=True, timeout=60)
        yield env
    finally:
        kill_session(proc.pid)
