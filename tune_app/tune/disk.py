"""A full disk under ``--storage``: noticed wherever the write failed, one line, exit status 2.

Ray Tune, W&B and SQLite each fail their own way when the disk is full, and most of them do not
stop the search: Tune's driver logs a failed sync of the trials' files and goes on (the search can
end with exit 0 while ``result.json`` lags in storage), a worker whose checkpoint cannot be written
fails its trial (retried, or errored), Optuna's SQLite study raises ``database or disk is full``,
and W&B's offline writer drops what it cannot write. So every path ends here:

- :class:`DiskFullWatch` is a ``logging.Handler`` on Ray's ``ray`` logger for the length of the
  search: every record Ray logs (its message and traceback) is checked for "no space left";
- no stopper ends the search early: Tune's ``stop_all`` would end the pending trials as TERMINATED,
  so a resume after space was freed would have nothing left to run (the trials stay resumable);
- after the search, each trial's ``error.txt`` (retried failures included) and every W&B offline
  run's own log are searched too, and the free space is measured;
- :func:`guard` turns any of it, or an ``OSError`` ENOSPC from our own writers (``search.json``,
  ``results.csv``, ``best_config.yaml``), into :class:`DiskFullError`: ``error: --storage …: disk
  full (N MB free); free space and run polsess-tune resume …``, exit 2.
"""

from __future__ import annotations

import errno
import logging
import shutil
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import TuneInputError
from ..experiment import layout, location

# How each writer says it: the OS (and pyarrow, which copies Tune's files), SQLite through Optuna.
FULL_TEXTS = ("No space left on device", "[Errno 28]", "database or disk is full")


class DiskFullError(TuneInputError):
    """The disk under the experiment filled up; the message gives the free space and the resume command."""


def says_full(text: str) -> bool:
    return any(t in text for t in FULL_TEXTS)


def disk_full(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or anything in its chain, Ray's ``cause`` included) is "no space left"."""
    seen = 0
    while exc is not None and seen < 20:
        if (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or says_full(str(exc)):
            return True
        exc = exc.__cause__ or exc.__context__ or getattr(exc, "cause", None)
        seen += 1
    return False


def free_mb(path: str | Path) -> float | None:
    """Free space on the filesystem holding ``path`` (its nearest existing parent), in MB."""
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free / 1e6
    except OSError:
        return None


def message(storage: str, folder: str) -> str:
    free = None if location.is_uri(folder) else free_mb(folder)
    room = f" ({free:.1f} MB free)" if free is not None else ""
    return f"--storage {storage}: disk full{room}; free space and run polsess-tune resume {folder}"


def file_message(exc: OSError) -> str:
    """The line for one of our own files that did not fit: resume where the search has state to
    resume from (its folder holds the file), else run the command again."""
    if not exc.filename:
        return f"disk full ({exc.strerror}); free space and run the command again"
    path = Path(str(exc.filename))
    free = free_mb(path.parent)
    room = f" ({free:.1f} MB free)" if free is not None else ""
    then = (f"run polsess-tune resume {path.parent}" if layout.has_experiment_state(path.parent)
            else "run the command again")
    return f"{path}: disk full{room}; free space and {then}"


STILL_ROOM_MB = 16.0  # a "no space" record while this much is free is an old failure re-logged, not a full disk


class DiskFullWatch(logging.Handler):
    """Notes the first record of Ray's that says the disk is full (what failed, for ``--verbose``).

    Only while the experiment's disk is in fact (nearly) full: a resumed search re-logs the failures
    its trials recorded before the space was freed, and those must not stop it again."""

    def __init__(self, folder: Path | None = None) -> None:
        super().__init__(level=logging.DEBUG)
        self.first: str | None = None
        self.folder = folder

    def _room(self) -> bool:
        free = None if self.folder is None else free_mb(self.folder)
        return free is not None and free >= STILL_ROOM_MB

    def emit(self, record: logging.LogRecord) -> None:
        if self.first is None and record_says_full(record) and not self._room():
            self.first = record.getMessage().strip().splitlines()[0][:200] if record.getMessage().strip() else "?"
            _SEEN.append(self.first)


def record_says_full(record: logging.LogRecord) -> bool:
    """Whether a log record (its message or its traceback) says the disk is full. The console drops
    such a record of Ray's (tune.progress): this module ends the search with one line instead."""
    text = record.getMessage()
    if record.exc_info:
        text += "".join(traceback.format_exception(*record.exc_info))
    return says_full(text)


_SEEN: list[str] = []  # what a DiskFullWatch noted in this process; read by guard


def _logs(folder: Path) -> list[Path]:
    """Files that record a failed write: trials' ``error.txt`` (every failure Tune retried is in
    it) and W&B's own logs of its offline runs."""
    return [*(t / layout.ERROR_FILE for t in layout.trial_dirs(folder)),
            *(folder / layout.WANDB_DIR / "wandb").glob("*/logs/debug*.log")]


def log_sizes(folder: Path) -> dict[Path, int]:
    """The size of each of those files now: what a search adds after this is its own."""
    sizes = {}
    for path in _logs(folder):
        try:
            sizes[path] = path.stat().st_size
        except OSError:
            continue
    return sizes


def failed_writes(folder: Path, before: dict[Path, int]) -> list[str]:
    """The files among those that say, in what was added since ``before``, that a write failed for want of space."""
    found = []
    for path in _logs(folder):
        try:
            with path.open("rb") as fh:
                fh.seek(before.get(path, 0))
                text = fh.read().decode(errors="replace")
        except OSError:
            continue
        if says_full(text):
            found.append(str(path.relative_to(folder)))
    return found


@contextmanager
def guard(storage: str, folder: str) -> Iterator[None]:
    """Run a search under the watch; a full disk anywhere (an exception, a record of Ray's, a trial's
    failure, W&B's log) becomes DiskFullError."""
    local = None if location.is_uri(folder) else Path(folder)
    before = log_sizes(local) if local is not None else {}
    watch = DiskFullWatch(local)
    ray_logger = logging.getLogger("ray")
    ray_logger.addHandler(watch)
    _SEEN.clear()
    try:
        yield
    except DiskFullError:
        raise
    except Exception as exc:
        if disk_full(exc) or _SEEN:
            raise DiskFullError(message(storage, folder)) from None
        raise
    finally:
        ray_logger.removeHandler(watch)
    if _SEEN or (local is not None and failed_writes(local, before)):
        raise DiskFullError(message(storage, folder))
