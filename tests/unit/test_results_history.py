"""Reading an experiment folder back: history keyed by epoch (Tune's iteration can lag it after a
restore from a stale snapshot), the best checkpoint where callers want the best, statuses by name."""

from __future__ import annotations

import json
from pathlib import Path

from tune_app.experiment.report import summary_line, to_json
from tune_app.experiment.results import history_by_epoch, load_experiment


def _experiment(folder: Path, rows: list[dict], status: str = "TERMINATED") -> Path:
    """A folder as Tune leaves it, for one trial ``t1`` with ``rows`` in its result.json."""
    trial = folder / "trial_t1"
    trial.mkdir(parents=True)
    (trial / "params.json").write_text(json.dumps({"training": {"lr": 1e-3}}))
    (trial / "result.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for row in rows:
        if row.get("checkpoint_dir_name"):
            (trial / row["checkpoint_dir_name"]).mkdir(exist_ok=True)
    entry = [json.dumps({"trial_id": "t1", "status": status, "config": {}}), json.dumps({})]
    (folder / "experiment_state-2026-12-01_10-00-00.json").write_text(json.dumps({"trial_data": [entry]}))
    (folder / "search.json").write_text(json.dumps({"metric": "val_sisdr", "mode": "max",
                                                    "space_paths": ["training.lr"]}))
    return folder


def test_a_lagging_iteration_loses_no_epoch(tmp_path):
    # After SIGKILL -> resume from a snapshot one epoch stale: iterations 1 2 3 3 4 for epochs 1..5.
    rows = [{"epoch": e, "training_iteration": i, "val_sisdr": float(e), "done_training": e == 5}
            for e, i in zip([1, 2, 3, 4, 5], [1, 2, 3, 3, 4], strict=True)]
    exp = load_experiment(_experiment(tmp_path / "exp", rows))
    (trial,) = exp.trials
    assert [r["epoch"] for r in trial.history] == [1, 2, 3, 4, 5]
    assert trial.best("val_sisdr", "max") == 5.0 and trial.epochs == 5
    assert trial.status == "COMPLETED"


def test_an_epoch_trained_again_keeps_its_last_report_in_epoch_order():
    rows = [{"epoch": 1, "val_sisdr": 1.0}, {"epoch": 2, "val_sisdr": 2.0}, {"epoch": 2, "val_sisdr": 2.5},
            {"epoch": 3, "val_sisdr": 3.0}]
    assert [(r["epoch"], r["val_sisdr"]) for r in history_by_epoch(rows)] == [(1, 1.0), (2, 2.5), (3, 3.0)]


def test_best_checkpoint_is_the_best_epochs_not_the_newest(tmp_path):
    rows = [{"epoch": 1, "val_sisdr": 1.0, "checkpoint_dir_name": "checkpoint_000000"},
            {"epoch": 2, "val_sisdr": 4.0, "checkpoint_dir_name": "checkpoint_000001"},
            {"epoch": 3, "val_sisdr": 2.0, "checkpoint_dir_name": "checkpoint_000002", "done_training": False}]
    folder = _experiment(tmp_path / "exp", rows)
    (folder / "trial_t1" / "checkpoint_000000").rmdir()  # num_to_keep deleted it
    exp = load_experiment(folder)
    (trial,) = exp.trials
    assert trial.best_checkpoint("val_sisdr", "max").name == "checkpoint_000001"
    assert trial.best_checkpoint("val_sisdr", "min").name == "checkpoint_000002"
    assert trial.latest_checkpoint().name == "checkpoint_000002"
    info = to_json(exp)["trials"][0]
    assert Path(info["checkpoint"]).name == "checkpoint_000001"
    assert Path(info["latest_checkpoint"]).name == "checkpoint_000002"
    assert trial.status == "EARLY_STOPPED"
    assert summary_line(exp) == "1 trials: 0 completed, 1 early-stopped, 0 error"


def test_a_checkpoint_no_report_names_holds_the_epoch_its_epoch_json_says(tmp_path):
    # SIGTERM after epoch 3's checkpoint but before its report; the resumed trial reports epoch 3
    # again from the checkpoint (no checkpoint of its own) and ASHA stops it there.
    rows = [{"epoch": 1, "val_sisdr": 1.0, "checkpoint_dir_name": "checkpoint_000000"},
            {"epoch": 2, "val_sisdr": 2.0, "checkpoint_dir_name": "checkpoint_000001"},
            {"epoch": 3, "val_sisdr": 3.0, "checkpoint_dir_name": None}]
    folder = _experiment(tmp_path / "exp", rows)
    kept = folder / "trial_t1" / "checkpoint_000002"
    kept.mkdir()
    (kept / "epoch.json").write_text(json.dumps({"epoch": 3}))
    (folder / "trial_t1" / "checkpoint_000001" / "epoch.json").write_text("{cut")  # unread: a report names it
    (trial,) = load_experiment(folder).trials
    assert trial.checkpoint_epoch(trial.latest_checkpoint()) == 3
    assert trial.best_checkpoint("val_sisdr", "max") == kept
    assert trial.checkpoint_epoch(folder / "trial_t1" / "checkpoint_000001") == 2
    (kept / "epoch.json").write_text("{cut")
    assert load_experiment(folder).trials[0].checkpoint_epoch(kept) is None
