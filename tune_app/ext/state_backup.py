"""A last readable copy of Tune's experiment state, for drivers killed mid-write.

Works around Tune's non-atomic copy of its state files (no upstream fix in ray 2.60); relies on
their names and on the layout of ``trial_data`` entries in ``experiment_state-*.json``.

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

from ..errors import TuneInputError
from ..experiment import layout
from ..experiment.layout import BACKUP_DIR, newest
from ..experiment.location import copy_tree

PATTERNS = layout.STATE_GLOBS


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
    """Put back the whole backed-up set (the files must agree with each other: trials, generated-trial
    count, Optuna study) when a state file is cut short or every experiment state file is gone; say
    what was done."""
    current = [newest(folder, pattern) for pattern in PATTERNS]
    store = folder / BACKUP_DIR
    if current[0] is None:  # every experiment_state-*.json deleted
        saved = [newest(store, pattern) for pattern in PATTERNS]
        if saved[0] is None or not all(readable(path) for path in saved if path is not None):
            return []
        for path in saved:
            if path is not None:
                shutil.copy2(path, folder / path.name)
        return [f"{layout.EXPERIMENT_STATE_GLOB} was missing; restored the backup from {_when(saved[0])} "
                "(with the other state files of that moment)"]
    broken = [path for path in current if path is not None and not readable(path)]
    if not broken:
        return []
    saved = [store / path.name for path in current if path is not None]
    if not all(readable(path) for path in saved):
        raise TuneInputError(
            f"{broken[0]}: cut short while it was written (a killed driver or a full disk) and no readable backup "
            "exists; this search cannot be resumed — start it again with `polsess-tune run`"
        )
    for path in saved:
        shutil.copy2(path, folder / path.name)
    return [f"{path.name}: cut short while it was written (a killed driver or a full disk); restored the copy "
            f"from {_when(saved[0])} (with the other state files of that moment)" for path in broken]


def _when(path: Path) -> str:
    return time.strftime("%H:%M:%S", time.localtime(path.stat().st_mtime))


def end_cut_lines(folder: Path) -> list[str]:
    """A kill mid-write can leave a trial's result.json with a half-written last line; Tune would
    append the next report to it, and pandas, ``jq`` or a user's script reading the file as JSON
    lines would stop there. Remove the cut line: the trainable reports that epoch again from its
    checkpoint (the epochs the checkpoint holds after the last whole line of result.json)."""
    fixed = []
    for trial in layout.trial_dirs(folder):
        results = trial / layout.RESULT_FILE
        try:
            data = results.read_bytes()
            if data and not data.endswith(b"\n"):
                with results.open("rb+") as fh:
                    fh.truncate(data.rfind(b"\n") + 1)
                fixed.append(f"{trial.name}/{layout.RESULT_FILE}: its last report was cut by the kill; removed "
                             "that line (the epoch is reported again from the trial's checkpoint)")
        except FileNotFoundError:  # a trial that never reported
            continue
    return fixed


def named_checkpoints(folder: Path) -> dict[str, set[str]]:
    """Trial id → the checkpoint folder names the newest experiment state gives it (see
    :func:`_named_checkpoints`); empty when there is no readable state."""
    state_file = newest(folder, layout.EXPERIMENT_STATE_GLOB)
    try:
        state = json.loads(state_file.read_text()) if state_file else {}
    except ValueError:
        return {}
    names: dict[str, set[str]] = {}
    for entry in state.get("trial_data", []):
        try:
            trial = json.loads(entry[0])
            runtime = json.loads(entry[1])
        except (ValueError, TypeError, IndexError):
            continue
        names[str(trial.get("trial_id"))] = _named_checkpoints(runtime)
    return names


def restore_missing_checkpoints(folder: Path, uri: str | None = None) -> list[str]:
    """A stale snapshot can name a checkpoint that ``num_to_keep`` deleted after it was taken, and
    Tune then refuses to restore the trial. Put the newest kept checkpoint of the trial under that
    name; the trainable resumes from the newest epoch it finds anyway. For a URI experiment,
    ``folder`` is its pulled driver folder (checkpoint folders by name) and the copy is made in the bucket."""
    done = []
    for trial_id, names in named_checkpoints(folder).items():
        trial_dir = folder / layout.trial_dirname(trial_id)
        kept = layout.checkpoint_dirs(trial_dir)
        for name in sorted(names):
            if (trial_dir / name).exists() or not kept:
                continue
            if uri:
                copy_tree(uri, f"{trial_dir.name}/{kept[-1].name}", f"{trial_dir.name}/{name}")
            shutil.copytree(kept[-1], trial_dir / name)
            done.append(f"trial {trial_id}: {name} was deleted after the last snapshot; "
                        f"resuming from {kept[-1].name}")
    return done


def _named_checkpoints(runtime: dict[str, Any]) -> set[str]:
    """The checkpoint folders a trial's snapshot names: its last result's, and its checkpoint
    manager's (Tune restores from the manager's latest). A SIGKILL between the two updates leaves
    them apart: the last result naming the newest folder, the manager the one ``num_to_keep`` then
    deleted. The manager is Ray's ``_CheckpointManager``, cloudpickled as hex in the state file."""
    names = {(runtime.get("last_result") or {}).get(layout.CHECKPOINT_DIR_KEY)}
    packed = runtime.get("checkpoint_manager")
    if isinstance(packed, dict) and packed.get("_type") == "CLOUDPICKLE_FALLBACK":
        from ray import cloudpickle

        try:
            manager = cloudpickle.loads(bytes.fromhex(packed["value"]))
            results = [manager.latest_checkpoint_result, *manager.best_checkpoint_results]
            names.update(os.path.basename(r.checkpoint.path.rstrip("/")) for r in results if r is not None)
        except (KeyError, ValueError, TypeError, AttributeError, EOFError, ImportError, pickle.UnpicklingError):
            pass  # another Ray's layout: the last result's name is still checked
    return {name for name in names if isinstance(name, str) and name}


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
