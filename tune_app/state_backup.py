"""A last readable copy of Tune's experiment state, for drivers killed mid-write.

Tune copies its state files (``experiment_state-*.json``, ``search_gen_state-*.json``,
``searcher-state-*.pkl``) into the experiment folder with a plain, non-atomic copy, and with
``num_to_keep`` set it does so after every checkpoint. A driver SIGKILLed during that copy leaves a
truncated file, and ``Tuner.restore`` then starts the search over without its trials and base
config. The callback keeps the last copy of each file that parsed, written atomically into
``.state-backup/``; :func:`repair` puts it back before a resume.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import time
from pathlib import Path
from typing import Any

from ray.tune import Callback

from .errors import TuneInputError

PATTERNS = ("experiment_state-*.json", "search_gen_state-*.json", "searcher-state-*.pkl")
BACKUP_DIR = ".state-backup"


def readable(path: Path) -> bool:
    try:
        data = path.read_bytes()
        if not data:
            return False
    except OSError:
        return False
    # Ray writes some "*.json" state as pickles: either form that loads is readable.
    try:
        json.loads(data)
        return True
    except ValueError:
        pass
    try:
        pickle.loads(data)
        return True
    except Exception:
        return False


def newest(folder: Path, pattern: str) -> Path | None:
    files = sorted(folder.glob(pattern), key=lambda p: p.name)  # Ray names them by start time
    return files[-1] if files else None


def backup(folder: Path) -> None:
    store = folder / BACKUP_DIR
    for pattern in PATTERNS:
        src = newest(folder, pattern)
        if src is None:
            continue
        dst = store / src.name
        stat = src.stat()
        if dst.exists() and dst.stat().st_size == stat.st_size and dst.stat().st_mtime >= stat.st_mtime:
            continue
        if not readable(src):
            continue
        store.mkdir(exist_ok=True)
        tmp = dst.with_name(dst.name + ".tmp")
        shutil.copy2(src, tmp)
        os.replace(tmp, dst)


def repair(folder: Path) -> list[str]:
    """Replace truncated state files by their backups; say what was done. Unrecoverable → error."""
    done = []
    for pattern in PATTERNS:
        current = newest(folder, pattern)
        if current is None or readable(current):
            continue
        saved = folder / BACKUP_DIR / current.name
        if not readable(saved):
            raise TuneInputError(
                f"{current}: truncated (the driver was killed while writing it) and no readable backup exists; "
                "this search cannot be resumed — start it again with `polsess-tune run`"
            )
        shutil.copy2(saved, current)
        done.append(f"{current.name}: truncated by the kill; restored the copy from {saved.stat().st_mtime:.0f}")
    return done


class StateBackupCallback(Callback):
    def __init__(self, folder: str, every_s: float = 2.0) -> None:
        self.folder = folder
        self.every_s = every_s
        self._last = 0.0

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        now = time.monotonic()
        if now - self._last >= self.every_s:
            self._last = now
            backup(Path(self.folder))

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        backup(Path(self.folder))
