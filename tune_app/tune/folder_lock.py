"""One polsess-tune process per experiment folder: a second ``run``/``resume`` on a folder in use is
refused at once, instead of two drivers racing on Tune's state files (``filelock``: an OS lock, so
a killed holder releases it)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from ..errors import TuneInputError
from ..experiment.layout import LOCK_FILE
from ..experiment.location import shown


@contextlib.contextmanager
def holding(folder: Path | str, command: str) -> Iterator[None]:
    """Hold the folder's lock for the whole command. A URI experiment is locked in its driver folder
    (``RunPlan.local_path``): two drivers on one machine are refused; object storage has no lock
    that would stop a driver on another machine."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder / LOCK_FILE))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise TuneInputError(f"{shown(folder)}: in use by another polsess-tune run or resume; wait for it to "
                             f"end (or stop it) before `polsess-tune {command}` on this folder") from None
    try:
        yield
    finally:
        lock.release()
