"""Shared by the benchmark scripts: run a command with its output in a log file, timed."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_logged(cmd: list[str], log: Path) -> tuple[int, float]:
    """(exit status, wall seconds) of ``cmd`` run from the repository root, output in ``log``."""
    start = time.perf_counter()
    with log.open("w") as out:
        rc = subprocess.run(cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"}).returncode
    return rc, time.perf_counter() - start
