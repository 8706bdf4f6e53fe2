"""Ray's C++ lines written to the driver's fd 2 go to a log file; every other byte reaches the
console unchanged and none is lost at exit. A real process writing to its fd 2, as Ray's core does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from helpers import REPO

NATIVE = "[2026-12-03 14:37:34,655 E 22348 22496] task_manager.cc:1545: Failed to push error to driver"

SCRIPT = f"""
import os, sys
from pathlib import Path
from tune_app.ext.ray_console import native_lines_off_console
native_lines_off_console(Path(sys.argv[1]))
native_lines_off_console(Path(sys.argv[1]))  # a second start (resume after run) changes nothing
os.write(2, b"before {NATIVE}? no: a line of another library\\n")
os.write(2, {NATIVE!r}.encode() + b"\\n")
os.write(2, b"a native line cut mid-")
os.write(2, b"way\\n")
print("error: --storage /x: disk full", file=sys.stderr)
os.write(2, b"no newline at the end")
"""


def test_ray_native_lines_leave_the_console_and_nothing_else_does(tmp_path: Path):
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert NATIVE not in proc.stderr.replace(f"before {NATIVE}", "")
    lines = proc.stderr.splitlines()
    assert "error: --storage /x: disk full" in lines  # Python's own, straight to the console: first, here
    assert [line for line in lines if not line.startswith("error:")] == [
        f"before {NATIVE}? no: a line of another library", "a native line cut mid-way", "no newline at the end"]
    (log,) = tmp_path.glob("polsess-tune-driver-*.log")
    assert log.read_text() == NATIVE + "\n"


def test_a_stderr_that_is_not_fd_2_is_left_alone(tmp_path: Path):
    script = ("import io, sys\nsys.stderr = io.StringIO()\nfrom pathlib import Path\n"
              "from tune_app.ext.ray_console import native_lines_off_console, _installed\n"
              "native_lines_off_console(Path(sys.argv[1]))\nassert not _installed\n")
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
