"""Process helpers for tests that start Ray drivers and clusters in their own sessions.

A test ends exactly the processes it started (every process of a session it created), never
`ray stop`, which would end every Ray process on the machine.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path


def session_pids(sid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getsid(int(entry.name)) == sid:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def trial_workers(sid: int) -> list[int]:
    """PIDs of the Ray trial workers (``ray::ImplicitFunc``) in session ``sid``."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and os.getsid(int(entry.name)) == sid and \
                    (entry / "cmdline").read_bytes().startswith(b"ray::ImplicitFunc"):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] == "Z"
    except OSError:
        return True


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)  # polling a condition, not a guess at how long something takes


def kill_session(sid: int) -> None:
    """SIGKILL every process of session ``sid`` and wait until none is left running."""
    for pid in session_pids(sid):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not [p for p in session_pids(sid) if not is_zombie(p)], 30, "session processes to exit")
