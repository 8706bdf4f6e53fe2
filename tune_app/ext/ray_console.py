"""Lines Ray puts on the driver's console that no logging handler sees: the raylet's, and its C++ core's.

Ray's driver runs a thread that prints what the raylet publishes for the job (a worker that died,
a task killed for memory) straight to stdout, ``(raylet) A worker died or was killed …``, through
the log deduplicator of ``ray._private.worker``. Its skip pattern is public only as the environment
variable ``RAY_DEDUP_LOGS_SKIP_REGEX``, read once when ray is imported, which in a driver has
happened long before the search starts; so the pattern is set on the deduplicator itself.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import sys
import tempfile
import threading
from pathlib import Path


def skip_raylet_lines(pattern: str) -> None:
    """Drop the raylet's console lines that match ``pattern`` (a regex), beside any the user skips."""
    from ray._private import worker

    dedup = worker.stdout_deduplicator
    own = dedup.skip_re.pattern if dedup.skip_re is not None else None
    if own is not None and pattern in own:
        return
    dedup.skip_re = re.compile(pattern if own is None else f"(?:{own})|(?:{pattern})")


# Ray's C++ log line: ``[2026-12-03 14:37:34,655 E 22348 22496] task_manager.cc:1545: …``.
NATIVE_LINE = re.compile(rb"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [DIWEF] \d+ \d+\] ")
_NATIVE_LOG = Path(tempfile.gettempdir()) / "ray" / "session_latest" / "logs"  # Ray's documented default
_installed: list[int] = []  # the console's own descriptor, once fd 2 is the pipe


def native_lines_off_console(log_dir: Path = _NATIVE_LOG) -> None:
    """Move the lines Ray's C++ core in this driver writes to file descriptor 2 off the console.

    The driver's core worker prints its errors to fd 2 itself, past Python: at the end of a search
    whose disk filled, ``task_manager.cc:1545: Failed to push error to driver for task …`` under our
    one ``error:`` line. No logging handler sees them, and ``RAY_BACKEND_LOG_LEVEL`` is inherited by
    the raylet and GCS too, whose log files would lose their errors. So fd 2 becomes a pipe that a
    thread reads: lines in Ray's C++ format go to ``<log_dir>/polsess-tune-driver-<pid>.log`` (Ray's
    session logs, beside its own log of the core worker), all else to the console unchanged. Python's
    ``sys.stderr`` writes to the console directly, so our lines never wait on the thread; at exit fd 2
    is put back and the pipe drained. Idempotent; not for a stderr that is not fd 2 (pytest's capture).
    """
    try:
        if _installed or sys.stderr is None or sys.stderr.fileno() != 2:
            return
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        return
    sys.stderr.flush()
    console = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    sys.stderr = open(console, "w", buffering=1, encoding=sys.stderr.encoding,  # noqa: SIM115 (lives as long as the process)
                      errors=sys.stderr.errors, closefd=False)
    _installed.append(console)
    pump = threading.Thread(target=_pump, args=(read_end, console, log_dir / f"polsess-tune-driver-{os.getpid()}.log"),
                            name="ray-native-lines", daemon=True)
    pump.start()

    def restore() -> None:
        sys.stderr.flush()
        os.dup2(console, 2)  # closes the pipe's last write end: the pump reads to its end and stops
        pump.join(timeout=2.0)

    atexit.register(restore)


def _pump(read_end: int, console: int, log_path: Path) -> None:
    """Copy the pipe to the console line by line, Ray's C++ lines to ``log_path`` instead."""
    pending = b""
    while chunk := os.read(read_end, 65536):
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            _route(line + b"\n", console, log_path)
        if len(pending) > 4096 or (pending and not pending.startswith(b"[")):  # no line coming: pass it on
            _route(pending, console, log_path)
            pending = b""
    if pending:
        _route(pending, console, log_path)
    os.close(read_end)


def _route(data: bytes, console: int, log_path: Path) -> None:
    if NATIVE_LINE.match(data):
        # No session folder here (a remote cluster) or a full disk: Ray's own log of the core worker has it.
        with contextlib.suppress(OSError), log_path.open("ab") as log:
            log.write(data)
        return
    with contextlib.suppress(OSError):  # the console is gone (a closed terminal)
        os.write(console, data)
