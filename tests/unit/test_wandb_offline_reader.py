"""The offline-run reader must give back exactly what W&B logged (runs written by wandb itself)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tune_app.experiment.results import Experiment, TrialRecord
from tune_app.ext.wandb_offline import (
    BLOCK_SIZE,
    ReadStats,
    find_offline_runs,
    incomplete_runs,
    incomplete_runs_line,
    metric_history,
    read_offline_run,
    read_records,
)

wandb = pytest.importorskip("wandb")

BLOB_LEN = 40_000  # one history record larger than a 32 KiB block, so it must be fragmented


@pytest.fixture(autouse=True)
def _offline(offline_wandb):
    """Every test here: W&B offline, quiet, away from the user's settings (conftest.offline_wandb)."""


def _write_run(root: Path, run_id: str, steps: int = 5, **init_kwargs) -> list[dict]:
    """Log `steps` rows (each with a ~40 KB string) and return what was logged."""
    run = wandb.init(
        project="polsess",
        group="grp",
        name="direct",
        tags=["unit", "offline"],
        id=run_id,
        mode="offline",
        dir=str(root),
        config={"training": {"lr": 1e-3, "batch_size": 4}, "model": "convtasnet"},
        settings=wandb.Settings(console="off", x_disable_stats=True, x_disable_meta=True),
        **init_kwargs,
    )
    logged = []
    for i in range(steps):
        row = {
            "val_sisdr": 0.25 + 1.5 * i,
            "epoch": i,
            "note": f"MARKER{i:03d}" + "x" * BLOB_LEN,
            "nested": {"a": i, "b": -0.5 * i},
            **{f"k{j:03d}": j * i for j in range(100)},
        }
        run.log(row)
        logged.append(row)
    run.summary["best_val_sisdr"] = logged[-1]["val_sisdr"]
    run.finish()
    # finish() returns before wandb-core has written the file (it writes it when it closes the run, and
    # on a loaded machine that comes later: CI saw a file without its exit record); teardown waits for
    # wandb-core to close every run and exit (tune_app.ext.wandb_logging.InboxLoggingActor.run, issue #24).
    wandb.teardown()
    return logged


@pytest.fixture
def direct_run(tmp_path: Path) -> tuple[Path, list[dict]]:
    logged = _write_run(tmp_path / "direct", "directrun1")
    (run_dir,) = (tmp_path / "direct" / "wandb").glob("offline-run-*-directrun1")
    return run_dir, logged


def _user_keys(row: dict) -> dict:
    return {k: v for k, v in row.items() if not k.startswith("_")}


def test_round_trip_across_block_boundaries(direct_run: tuple[Path, list[dict]]) -> None:
    run_dir, logged = direct_run
    wandb_file = run_dir / "run-directrun1.wandb"
    assert wandb_file.stat().st_size > 5 * BLOCK_SIZE

    run = read_offline_run(run_dir)
    assert read_offline_run(wandb_file) == run  # folder or file, same result
    assert (run.run_id, run.project, run.group, run.name) == ("directrun1", "polsess", "grp", "direct")
    assert run.tags == ["unit", "offline"]
    assert run.path == run_dir
    assert run.config == {"training": {"lr": 1e-3, "batch_size": 4}, "model": "convtasnet"}
    assert (run.exit_code, run.truncated, run.skipped_chunks) == (0, False, 0)
    assert [_user_keys(row) for row in run.history] == logged
    assert [row["_step"] for row in run.history] == list(range(len(logged)))
    assert metric_history(run, "val_sisdr") == [(i, row["val_sisdr"]) for i, row in enumerate(logged)]
    assert metric_history(run, ("nested", "b")) == [(i, -0.5 * i) for i in range(len(logged))]
    assert run.summary["best_val_sisdr"] == logged[-1]["val_sisdr"]
    assert run.summary["note"] == logged[-1]["note"]
    assert "_wandb" not in run.config and "_wandb" not in run.summary


def _cut_copy(src: Path, dst_root: Path, size: int) -> Path:
    dst = dst_root / "cut" / src.parent.name / src.name
    dst.parent.mkdir(parents=True)
    dst.write_bytes(src.read_bytes()[:size])
    return dst


def test_truncated_in_the_middle_of_a_record(direct_run: tuple[Path, list[dict]], tmp_path: Path) -> None:
    run_dir, logged = direct_run
    src = run_dir / "run-directrun1.wandb"
    data = src.read_bytes()
    # Rows 0-2 are fully written before the first record that mentions row 3.
    cut = data.index(b"MARKER003") + 1000
    cut_file = _cut_copy(src, tmp_path, cut)

    stats = ReadStats()
    records = list(read_records(cut_file, stats))
    assert stats.truncated and stats.records == len(records) > 0
    assert stats.skipped_chunks == 0

    run = read_offline_run(cut_file.parent)
    assert run.truncated and run.exit_code is None
    assert [_user_keys(row) for row in run.history] == logged[:3]
    assert run.config["training"] == {"lr": 1e-3, "batch_size": 4}


@pytest.mark.parametrize("where", ["chunk_header", "fragment_boundary", "file_header"])
def test_truncated_at_awkward_offsets(direct_run: tuple[Path, list[dict]], tmp_path: Path, where: str) -> None:
    src = direct_run[0] / "run-directrun1.wandb"
    full = list(read_records(src))
    # 3 bytes into the first chunk header of block 2 / exactly at the start of block 2
    # (inside a record that spans blocks) / inside the 7-byte file header.
    size = {"chunk_header": 2 * BLOCK_SIZE + 3, "fragment_boundary": 2 * BLOCK_SIZE, "file_header": 4}[where]
    stats = ReadStats()
    records = list(read_records(_cut_copy(src, tmp_path, size), stats))
    assert stats.truncated
    assert len(records) < len(full)
    assert [r.SerializeToString() for r in records] == [r.SerializeToString() for r in full[: len(records)]]


def test_corrupt_block_is_skipped_and_reading_resynchronises(
    direct_run: tuple[Path, list[dict]], tmp_path: Path
) -> None:
    src = direct_run[0] / "run-directrun1.wandb"
    data = bytearray(src.read_bytes())
    # Damage a payload byte of block 1's first chunk (a fixed offset could hit the next chunk's header
    # when the first chunk is a short record tail, which reads as a cut file instead).
    length = int.from_bytes(data[BLOCK_SIZE + 4:BLOCK_SIZE + 6], "little")  # header: crc32, length, type
    assert length > 0
    data[BLOCK_SIZE + 7 + length // 2] ^= 0xFF
    bad = tmp_path / "bad" / src.parent.name / src.name
    bad.parent.mkdir(parents=True)
    bad.write_bytes(bytes(data))

    run = read_offline_run(bad)
    assert run.skipped_chunks >= 1 and not run.truncated
    assert run.records < len(list(read_records(src)))
    assert run.exit_code == 0  # the exit record, blocks later, is still found
    # Whatever rows survive are intact and in order.
    logged = direct_run[1]
    kept = [_user_keys(row) for row in run.history]
    assert kept and kept == [logged[row["_step"]] for row in run.history]


def test_not_a_wandb_file(tmp_path: Path) -> None:
    path = tmp_path / "run-x.wandb"
    path.write_bytes(b"PK\x03\x04 not a wandb log at all")
    with pytest.raises(ValueError, match="not a W&B"):
        list(read_records(path))


def test_resumed_run_id_gets_a_second_folder(tmp_path: Path) -> None:
    # Two roots: W&B names a run folder by its start second and id, so two starts in one second would
    # share one folder (this test was flaky so); a trial's resumed run starts long after the first.
    for sub in ("1-first", "2-resumed"):
        (tmp_path / sub).mkdir()
    _write_run(tmp_path / "1-first", "resumeme", steps=2)
    _write_run(tmp_path / "2-resumed", "resumeme", steps=1, resume="allow")

    runs = find_offline_runs(tmp_path)
    assert [r.run_id for r in runs] == ["resumeme", "resumeme"]
    assert len({r.path for r in runs}) == 2
    assert [r.resumed for r in runs] == [False, True]
    # Offline W&B does not continue the old run: steps restart at 0 in the new folder.
    assert [len(r.history) for r in runs] == [2, 1]
    assert metric_history(runs[1], "val_sisdr") == [(0, 0.25)]


def test_find_offline_runs_skips_latest_run_copies(direct_run: tuple[Path, list[dict]], tmp_path: Path) -> None:
    run_dir, _ = direct_run
    wandb_dir = run_dir.parent
    # Ray's storage sync copies the `latest-run` symlink as a real folder.
    (wandb_dir / "latest-run").unlink()
    shutil.copytree(run_dir, wandb_dir / "latest-run")
    assert [r.path for r in find_offline_runs(tmp_path)] == [run_dir]


def test_incomplete_runs_names_the_trials_whose_epochs_w_and_b_lost(tmp_path: Path) -> None:
    """Read from disk against what each trial reported: a run with every epoch is complete; one cut to
    its bare 7-byte header (what a killed wandb-core leaves, issue #24), one short of an epoch and a
    missing one are not; a resumed trial's two folders count together; an unstarted trial has none."""
    root = tmp_path / "wandb-runs"
    for name in ("whole", "short", "cut", "resumed-1", "resumed-2"):
        (tmp_path / name).mkdir()
    _write_run(tmp_path / "whole", "whole", steps=3)
    _write_run(tmp_path / "short", "short", steps=2)
    _write_run(tmp_path / "cut", "cut", steps=3)
    _write_run(tmp_path / "resumed-1", "resumed", steps=3)
    _write_run(tmp_path / "resumed-2", "resumed", steps=3, resume="allow")
    # One folder each, by hand: two starts of one id in one second would share a folder name.
    for n, (name, cut) in enumerate([("whole", False), ("short", False), ("cut", True), ("resumed-1", True),
                                     ("resumed-2", False)]):
        (run_dir,) = (tmp_path / name / "wandb").glob("offline-run-*")
        copy = shutil.copytree(run_dir, root / "wandb" / f"offline-run-{n}-{run_dir.name.rsplit('-', 1)[1]}")
        if cut:
            (wandb_file,) = copy.glob("run-*.wandb")
            wandb_file.write_bytes(wandb_file.read_bytes()[:7])
    reported = [{"epoch": e} for e in range(3)]
    trials = [TrialRecord(i, "COMPLETED", {}, reported) for i in ("whole", "short", "cut", "gone", "resumed")]
    exp = Experiment(tmp_path, "val_sisdr", "max", [], [*trials, TrialRecord("unstarted", "PENDING", {})],
                     {"wandb_mode": "offline"})

    assert incomplete_runs(exp, root) == ["short", "cut", "gone"]
    line = incomplete_runs_line(exp, root)
    assert line is not None and "short, cut, gone" in line and str(root) in line and "\n" not in line
    exp.search["wandb_mode"] = "disabled"
    assert incomplete_runs(exp, root) == [] and incomplete_runs_line(exp, root) is None
