"""The state backup: the last readable copy of Tune's state files is kept, put back together when a
kill cut one, and a checkpoint a stale snapshot names is recreated. Real files, no Ray start."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from tune_app.errors import TuneInputError
from tune_app.ext.state_backup import BACKUP_DIR, backup, end_cut_lines, repair, restore_missing_checkpoints

STAMP = "2026-12-01_10-00-00"


def _state(folder: Path, trials: int) -> dict[str, bytes]:
    """A consistent set of the three state files for ``trials`` trials."""
    files = {
        f"experiment_state-{STAMP}.json": json.dumps({"trial_data": [], "trials": trials}).encode(),
        f"search_gen_state-{STAMP}.json": json.dumps({"counter": trials}).encode(),
        f"searcher-state-{STAMP}.pkl": pickle.dumps({"told": list(range(trials))}),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return files


def test_a_cut_state_file_brings_back_the_whole_backed_up_set(tmp_path):
    saved = _state(tmp_path, 3)
    backup(tmp_path)
    _state(tmp_path, 5)  # the search went on...
    state = tmp_path / f"experiment_state-{STAMP}.json"
    state.write_bytes(state.read_bytes()[:7])  # ...and the kill cut this one mid-copy
    notes = repair(tmp_path)
    assert len(notes) == 1 and state.name in notes[0] and "cut short while it was written" in notes[0]
    # All three are from the same moment: trials, trial counter and Optuna study agree.
    assert {name: (tmp_path / name).read_bytes() for name in saved} == saved


def test_nothing_is_touched_when_every_file_reads(tmp_path):
    _state(tmp_path, 3)
    backup(tmp_path)
    current = _state(tmp_path, 4)
    assert repair(tmp_path) == []
    assert {name: (tmp_path / name).read_bytes() for name in current} == current


def test_a_cut_file_without_a_readable_backup_is_one_clear_error(tmp_path):
    _state(tmp_path, 3)
    (tmp_path / f"searcher-state-{STAMP}.pkl").write_bytes(b"\x80\x04")
    with pytest.raises(TuneInputError, match="no readable backup exists; this search cannot be resumed"):
        repair(tmp_path)


def test_backup_skips_an_unreadable_file_and_keeps_the_last_good_copy(tmp_path):
    good = _state(tmp_path, 2)
    backup(tmp_path)
    (tmp_path / f"experiment_state-{STAMP}.json").write_text("{\"trial_da")
    backup(tmp_path)
    name = f"experiment_state-{STAMP}.json"
    assert (tmp_path / BACKUP_DIR / name).read_bytes() == good[name]


def test_a_checkpoint_named_by_a_stale_snapshot_is_recreated_from_the_newest_kept(tmp_path):
    trial = tmp_path / "trial_abc"
    kept = trial / "checkpoint_000004"
    kept.mkdir(parents=True)
    (kept / "trainer.pt").write_bytes(b"epoch 5")
    entry = [json.dumps({"trial_id": "abc"}), json.dumps({"last_result": {"checkpoint_dir_name": "checkpoint_000002"}})]
    (tmp_path / f"experiment_state-{STAMP}.json").write_text(json.dumps({"trial_data": [entry]}))
    notes = restore_missing_checkpoints(tmp_path)
    assert notes == ["trial abc: checkpoint_000002 was deleted after the last snapshot; "
                     "resuming from checkpoint_000004"]
    assert (trial / "checkpoint_000002" / "trainer.pt").read_bytes() == b"epoch 5"
    assert restore_missing_checkpoints(tmp_path) == []  # once is enough


def test_a_checkpoint_only_the_checkpoint_manager_names_is_recreated_too(tmp_path):
    """A SIGKILL between Tune's two updates: the last result names the newest folder (which exists),
    the checkpoint manager Tune restores from names the one num_to_keep deleted (seen in CI). A real
    Ray checkpoint manager, serialised as Tune serialises it."""
    from ray.train import Checkpoint, CheckpointConfig
    from ray.train._internal.checkpoint_manager import _CheckpointManager, _TrainingResult
    from ray.tune.utils.serialization import TuneFunctionEncoder

    trial = tmp_path / "trial_abc"
    kept = trial / "checkpoint_000002"
    kept.mkdir(parents=True)
    (kept / "trainer.pt").write_bytes(b"epoch 3")
    manager = _CheckpointManager(CheckpointConfig(num_to_keep=1))
    manager.register_checkpoint(_TrainingResult(checkpoint=Checkpoint(str(trial / "checkpoint_000001")), metrics={}))
    runtime = {"last_result": {"checkpoint_dir_name": "checkpoint_000002"}, "checkpoint_manager": manager}
    entry = [json.dumps({"trial_id": "abc"}), json.dumps(runtime, cls=TuneFunctionEncoder)]
    (tmp_path / f"experiment_state-{STAMP}.json").write_text(json.dumps({"trial_data": [entry]}))
    assert restore_missing_checkpoints(tmp_path) == ["trial abc: checkpoint_000001 was deleted after the last "
                                                     "snapshot; resuming from checkpoint_000002"]
    assert (trial / "checkpoint_000001" / "trainer.pt").read_bytes() == b"epoch 3"


def test_every_state_file_gone_but_the_backup_readable_brings_the_backup_back(tmp_path):
    saved = _state(tmp_path, 3)
    backup(tmp_path)
    for name in saved:
        (tmp_path / name).unlink()
    notes = repair(tmp_path)
    assert len(notes) == 1 and "was missing; restored the backup" in notes[0]
    assert {name: (tmp_path / name).read_bytes() for name in saved} == saved


def test_a_result_line_cut_by_a_kill_is_removed_so_the_file_stays_json_lines(tmp_path):
    whole, cut = tmp_path / "trial_a", tmp_path / "trial_b"
    for trial in (whole, cut):
        trial.mkdir()
    (whole / "result.json").write_text('{"epoch": 1}\n')
    (cut / "result.json").write_text('{"epoch": 1}\n{"epoch": 2, "val_s')
    notes = end_cut_lines(tmp_path)
    assert len(notes) == 1 and notes[0].startswith("trial_b/result.json: its last report was cut by the kill; removed")
    assert (cut / "result.json").read_text() == '{"epoch": 1}\n'
    with (cut / "result.json").open("a") as fh:
        fh.write('{"epoch": 2, "val_sisdr": 1.0}\n')  # what Tune appends on resume
    assert [json.loads(line)["epoch"] for line in (cut / "result.json").read_text().splitlines()] == [1, 2]
    assert (whole / "result.json").read_text() == '{"epoch": 1}\n'
    assert end_cut_lines(tmp_path) == []
