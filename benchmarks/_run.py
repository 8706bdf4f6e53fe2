"""Shared by the benchmark scripts: a timed command with its output in a log file, a cached corpus."""

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


def bench_corpus(work: Path, prefix: str, train_rows: int, val_rows: int, seconds: float) -> Path:
    """A synthetic 8 kHz corpus in ``work``, made once per size (``--keep DIR`` reruns reuse it)."""
    from polsess.synth import make_corpus

    root = work / f"PolSESS_{prefix}_{train_rows}_{val_rows}_{seconds:g}s"
    if not root.exists():
        start = time.perf_counter()
        make_corpus(root, train=train_rows, val=val_rows, test=0, sample_rate=8000, seconds=seconds, seed=0)
        print(f"made {train_rows}/{val_rows} rows (8 kHz, {seconds:g} s) in {time.perf_counter() - start:.0f} s")
    return root
