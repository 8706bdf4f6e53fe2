"""restored_state: a restored trial resumes from the newest checkpoint kept in its folder (not the one a
stale snapshot names) and re-reports the epochs that checkpoint holds but result.json never recorded."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from ray import tune

from tune_app.tune.trainable import restored_state


def _checkpoint(trial: Path, index: int, epoch: int) -> Path:
    folder = trial / f"checkpoint_{index:06d}"
    folder.mkdir(parents=True)
    history = [{"epoch": e, "val_sisdr": float(e)} for e in range(1, epoch + 1)]
    torch.save({"flat_config": {}, "model": {}, "epoch": epoch, "history": history}, folder / "trainer.pt")
    return folder


def _recorded(trial: Path, epochs: list[int]) -> None:
    lines = [json.dumps({"epoch": e, "val_sisdr": float(e), "training_iteration": e}) for e in epochs]
    (trial / "result.json").write_text("\n".join(lines) + "\n")


def test_newest_kept_checkpoint_and_the_unrecorded_epochs(tmp_path):
    trial = tmp_path / "trial_a"
    named = _checkpoint(trial, 1, epoch=2)  # what the stale snapshot names
    _checkpoint(trial, 3, epoch=4)
    _recorded(trial, [1, 2, 3])  # the driver died before recording epoch 4
    state, unrecorded = restored_state(tune.Checkpoint.from_directory(named))
    assert state["epoch"] == 4
    assert [m["epoch"] for m in unrecorded] == [4]


def test_everything_recorded_means_nothing_to_report(tmp_path):
    trial = tmp_path / "trial_a"
    named = _checkpoint(trial, 2, epoch=3)
    _recorded(trial, [1, 2, 3])
    assert restored_state(tune.Checkpoint.from_directory(named))[1] == []


def test_no_readable_checkpoint_left_trains_again_from_epoch_1(tmp_path, capsys):
    assert restored_state(None) == (None, [])
    empty = tmp_path / "trial_a" / "checkpoint_000001"
    empty.mkdir(parents=True)
    assert restored_state(tune.Checkpoint.from_directory(empty)) == (None, [])
    assert "no readable checkpoint left; training again from epoch 1" in capsys.readouterr().out


def test_an_unreadable_newest_checkpoint_falls_back_to_the_newest_readable_one(tmp_path, capsys):
    trial = tmp_path / "trial_a"
    older = _checkpoint(trial, 1, epoch=2)
    newest = _checkpoint(trial, 2, epoch=3)
    (newest / "trainer.pt").write_bytes((newest / "trainer.pt").read_bytes()[:100])  # cut by a full disk
    _recorded(trial, [1, 2])
    state, unrecorded = restored_state(tune.Checkpoint.from_directory(newest))
    assert state["epoch"] == 2 and unrecorded == []
    assert "skipping checkpoint_000002, it cannot be read" in capsys.readouterr().out
    assert older.is_dir()
