"""`run --dry-run`: the resolved search without Ray, for every sweep file users already own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import EXAMPLES, REPO, needs_shared

from tune_app.cli import main

SWEEPS = sorted((EXAMPLES / "sweeps").glob("**/*.yaml"))
OURS = sorted((REPO / "search_spaces").glob("*.yaml"))


def _dry(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["run", "--dry-run", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


@needs_shared
def test_the_research_sweeps_are_there():
    assert len(SWEEPS) >= 3


@pytest.mark.parametrize("sweep", SWEEPS + OURS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_sweep_file_dry_runs_unchanged(sweep, capsys):
    code, out, err = _dry(capsys, "--space", str(sweep), "--json")
    assert code == 0, err
    info = json.loads(out)
    assert set(info) >= {"space", "fixed", "method", "metric", "mode", "num_samples", "scheduler", "samples"}
    assert info["base_config"] and Path(info["base_config"]).is_file()
    for path, entry in info["space"].items():
        assert entry["kind"] in ("float", "int", "categorical"), path
    for sample in info["samples"]:
        assert set(sample) == set(info["space"])


@needs_shared
def test_stage1_maps_to_asha_over_its_base_config(capsys):
    stage1 = next(p for p in SWEEPS if p.name == "stage1.yaml")
    code, out, _ = _dry(capsys, "--space", str(stage1), "--json")
    assert code == 0
    info = json.loads(out)
    assert info["method"] == "bayes" and (info["metric"], info["mode"]) == ("best_val_sisdr", "max")
    assert info["scheduler"]["type"] == "asha" and info["scheduler"]["grace_period"] == 16  # min_iter 15 + 1
    assert info["scheduler"]["max_t"] == 50
    assert info["space"]["training.lr"] == {"kind": "float", "low": 1e-4, "high": 1e-2, "log": True,
                                            **{k: v for k, v in info["space"]["training.lr"].items()
                                               if k not in ("kind", "low", "high", "log")}}
    assert info["fixed"]["training.early_stopping_patience"] == 10


def test_same_seed_same_configs_other_seed_other_configs(capsys):
    first = json.loads(_dry(capsys, "--json", "--seed", "7")[1])["samples"]
    again = json.loads(_dry(capsys, "--json", "--seed", "7")[1])["samples"]
    other = json.loads(_dry(capsys, "--json", "--seed", "8")[1])["samples"]
    assert first == again and first != other


def test_human_dry_run_lists_paths_bounds_and_scheduler(capsys):
    code, out, _ = _dry(capsys)
    assert code == 0
    for needle in ("training.lr", "float log [0.0003, 0.01]", "asha", "val_sisdr (max)", "sample configs"):
        assert needle in out, needle


@pytest.mark.parametrize(("flags", "needle"), [
    (["--cpus-per-trial", "nan"], "--cpus-per-trial nan: must be a finite number"),
    (["--cpus-per-trial", "inf"], "--cpus-per-trial inf: must be a finite number"),
    (["--cpus-per-trial", "-1"], "--cpus-per-trial -1: must be > 0"),
    (["--cpus-per-trial", "100000"], "--cpus-per-trial 100000: this machine has"),
    (["--gpus-per-trial", "nan"], "--gpus-per-trial nan: must be a finite number"),
    (["--gpus-per-trial", "-1"], "--gpus-per-trial -1: must be >= 0"),
    (["--gpus-per-trial", "1000"], "--gpus-per-trial 1000: this machine has"),
    (["--data-root", "/no/such/corpus"], "/no/such/corpus: data root not found"),
    (["--space", str(REPO / "search_spaces")], "a folder, not a sweep file"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_a_dry_run_refuses_what_the_run_refuses(flags, needle, capsys, tmp_path):
    """The same checks as the real run: one error line, exit 2 (the NaN CPUs used to crash it)."""
    for as_json in ([], ["--json"]):
        code, out, err = _dry(capsys, *flags, *as_json, "--storage", str(tmp_path))
        assert code == 2 and out == "", out
        assert len(err.strip().splitlines()) == 1 and err.startswith("error: ") and needle in err, err


def test_a_sweep_file_sized_for_another_machine_still_dry_runs(capsys):
    """Resources that only the file asks for (a GPU cluster's sweep on a laptop) get a note, not an error."""
    code, out, err = _dry(capsys, "--space", str(REPO / "search_spaces/convtasnet_training.yaml"))
    assert code == 0, err
    if "not runnable on this machine as is" not in out:  # a machine with 4 CPUs and a GPU runs it as is
        assert "resources per trial: 4 CPU, 1 GPU" in out


def test_epochs_set_below_the_grace_period_say_asha_stops_nothing(capsys):
    code, out, _ = _dry(capsys, "--set", "num_epochs=1")
    assert code == 0
    assert "grace period 2 > max_t 1 epochs; clamped to 1, so ASHA stops nothing" in out


def test_the_dry_run_shows_the_prior_and_trial_0_is_the_base_config(capsys):
    code, out, _ = _dry(capsys)
    assert code == 0
    assert "prior:        the base config" in out and "standing policy" in out
    trial_0 = "training.lr=0.003, training.weight_decay=1e-07, training.grad_clip_norm=5, model.convtasnet.B=32"
    assert f"  [0] {trial_0}" in out
    code, out, _ = _dry(capsys, "--json")
    info = json.loads(out)
    assert info["prior"]["values"] == "base" and info["prior_resolved"]["base_point"]["training.lr"] == 0.003
