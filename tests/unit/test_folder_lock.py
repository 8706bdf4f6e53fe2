"""One driver per experiment folder: the second is refused with one clear line; a released (or
killed) holder frees the folder."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tune_app.errors import TuneInputError
from tune_app.tune.folder_lock import holding


def test_a_second_driver_on_a_folder_in_use_is_refused(tmp_path):
    with holding(tmp_path / "exp", "run"):
        with pytest.raises(TuneInputError, match="in use by another polsess-tune run or resume") as info, \
                holding(tmp_path / "exp", "resume"):
            pass
        assert "\n" not in str(info.value) and "polsess-tune resume" in str(info.value)
    with holding(tmp_path / "exp", "resume"):  # released: free again
        pass


def test_a_killed_holder_frees_the_folder(tmp_path):
    code = (f"from tune_app.tune.folder_lock import holding; import os\n"
            f"with holding({str(tmp_path / 'exp')!r}, 'run'):\n    os._exit(9)")
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 9  # died holding it
    with holding(tmp_path / "exp", "resume"):
        pass
