"""``polsess-tune make-data / train / evaluate`` as a user runs them: real subprocesses, real corpora."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import helpers
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
import yaml
from helpers import REPO, tiny

from polsess.config import config_from_flat, load_config, save_config
from polsess.data import PolSESSDataset
from polsess.synth import demo_corpus_root, make_corpus
from polsess.trainer import Trainer, load_checkpoint

DEMO_CONFIG = REPO / "configs" / "demo.yaml"
METRIC_KEYS = ["epoch", "train_sisdr", "val_sisdr", "val_sisdri", "best_val_sisdr", "lr"]
ALL_VARIANTS = {"SER", "SR", "ER", "R", "SE", "S", "E", "C"}
# Short names on purpose: the CLI resolves them like the sweep files do.
TINY_SETS = {**helpers.TINY_SETS, "train_max_samples": 8, "val_max_samples": 4}
TINY = tiny(train_max_samples=8, val_max_samples=4)


def polsess_tune(*args: str | Path, cache: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The CLI (helpers.polsess_tune) with a cache of the test's own and no POLSESS_DATA_ROOT."""
    base = {k: v for k, v in os.environ.items() if k != "POLSESS_DATA_ROOT"}
    return helpers.polsess_tune(*args, base=base, env={"POLSESS_TUNE_CACHE": str(cache), **(env or {})}, timeout=300)


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def epoch_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if re.match(r"epoch +\d+ ", line)]


def read_metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cli-cache")


# --------------------------------------------------------------------------- make-data


def test_make_data_writes_a_corpus(tmp_path, cache):
    root = tmp_path / "PolSESS_cli"
    proc = polsess_tune("make-data", root, "--train", 4, "--val", 2, "--test", 2, "--seconds", 0.5, cache=cache)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"wrote 4/2/2 rows to {root}")
    for subset, rows in {"train": 4, "val": 2, "test": 2}.items():
        ds = PolSESSDataset(root, subset=subset)
        assert len(ds) == rows
        assert ds.check_files() > 0
        assert ds.sample_rate == 8000
        assert ds[0]["mix"].shape[-1] == 4000  # 0.5 s at 8 kHz

    before = snapshot(root)
    again = polsess_tune("make-data", root, "--train", 2, "--val", 1, "--test", 1, cache=cache)
    assert again.returncode != 0
    assert str(root) in again.stderr and "already exists" in again.stderr
    assert snapshot(root) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["PolSESS_cli"]  # no temporary folder left behind


def test_make_data_into_an_existing_corpus_is_a_one_line_error(tmp_path, cache):
    root = tmp_path / "PolSESS_taken"
    (root / "train").mkdir(parents=True)
    (root / "train" / "keep.txt").write_text("mine")
    proc = polsess_tune("make-data", root, "--train", 2, "--val", 1, "--test", 1, cache=cache)
    assert (root / "train" / "keep.txt").read_text() == "mine"
    assert_one_line_error(proc, str(root), "already exists")


# --------------------------------------------------------------------------- train


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, demo_corpus, cache) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("train") / "run"
    proc = polsess_tune("train", "--config", DEMO_CONFIG, "--data-root", demo_corpus, *TINY,
                        "--set", "training.lr=3e-4", "--epochs", 2, "--out", out, cache=cache)
    assert proc.returncode == 0, proc.stderr
    return out, proc


def test_train_writes_config_checkpoints_and_metrics(trained_run, demo_corpus):
    out, proc = trained_run
    lines = epoch_lines(proc.stdout)
    assert len(lines) == 2
    assert lines[0].startswith("epoch   1") and lines[1].startswith("epoch   2")
    assert "Traceback" not in proc.stderr
    assert {p.name for p in out.iterdir()} == {"config.yaml", "last.pt", "best.pt", "metrics.jsonl"}

    saved = load_config(out / "config.yaml", env={})
    expected = load_config(DEMO_CONFIG, {**TINY_SETS, "training.lr": 3e-4, "training.num_epochs": 2,
                                         "data.data_root": str(demo_corpus.resolve())}, env={})
    assert saved == expected
    assert saved.training.lr == 3e-4 and saved.model.convtasnet.N == 16
    last = load_checkpoint(out / "last.pt")
    assert config_from_flat(last["flat_config"]) == saved
    assert last["epoch"] == 2

    metrics = read_metrics(out)
    assert [list(m) for m in metrics] == [METRIC_KEYS, METRIC_KEYS]
    assert [m["epoch"] for m in metrics] == [1, 2]
    assert metrics[0]["lr"] == 3e-4
    assert last["best_val_sisdr"] == max(m["val_sisdr"] for m in metrics) == metrics[1]["best_val_sisdr"]
    best = load_checkpoint(out / "best.pt")
    assert best["epoch"] == max(metrics, key=lambda m: m["val_sisdr"])["epoch"]
    # The printed numbers are the logged ones.
    for line, m in zip(lines, metrics, strict=True):
        assert f"val {m['val_sisdr']:6.2f} dB" in line
    assert f"best val SI-SDR {metrics[1]['best_val_sisdr']:.2f} dB" in proc.stdout


def test_train_refuses_to_overwrite_a_run(trained_run, demo_corpus, cache):
    out, _ = trained_run
    before = snapshot(out)
    proc = polsess_tune("train", "--config", DEMO_CONFIG, "--data-root", demo_corpus, *TINY, "--epochs", 1,
                        "--out", out, cache=cache)
    assert_one_line_error(proc, str(out), "--resume")
    assert snapshot(out) == before


def test_resume_continues_an_interrupted_run(trained_run, tmp_path, cache):
    """A run killed after epoch 1 (what fit() leaves then) resumes to the uninterrupted run's numbers."""
    full, _ = trained_run
    cfg = load_config(full / "config.yaml", env={})
    run = tmp_path / "interrupted"
    trainer = Trainer(cfg, log=lambda _m: None)
    first = trainer.train_epoch()
    save_config(cfg, run / "config.yaml")
    trainer.save(run / "last.pt")
    trainer.save(run / "best.pt")
    (run / "metrics.jsonl").write_text(json.dumps(first) + "\n")

    proc = polsess_tune("train", "--out", run, "--resume", cache=cache)
    assert proc.returncode == 0, proc.stderr
    assert f"resuming {run} after epoch 1" in proc.stdout
    lines = epoch_lines(proc.stdout)
    assert len(lines) == 1 and lines[0].startswith("epoch   2")
    resumed, uninterrupted = read_metrics(run), read_metrics(full)
    assert [m["epoch"] for m in resumed] == [1, 2]
    for got, want in zip(resumed, uninterrupted, strict=True):
        assert got == pytest.approx(want, rel=1e-5, abs=1e-5)
    assert load_checkpoint(run / "last.pt")["epoch"] == 2


def test_resume_without_a_run_is_a_one_line_error(tmp_path, cache):
    proc = polsess_tune("train", "--out", tmp_path / "nothing", "--resume", cache=cache)
    assert_one_line_error(proc, "nothing", "no last.pt")


def test_resume_with_more_epochs_extends_or_refuses(trained_run, tmp_path, cache):
    run = shutil.copytree(trained_run[0], tmp_path / "run")
    proc = polsess_tune("train", "--out", run, "--resume", "--epochs", 3, cache=cache)
    extended = proc.returncode == 0 and [m["epoch"] for m in read_metrics(run)] == [1, 2, 3]
    refused = proc.returncode == 2 and "--epochs" in proc.stderr
    assert extended or refused, (proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture(scope="module")
def flag_run(tmp_path_factory, cache) -> tuple[Path, Path, subprocess.CompletedProcess]:
    """Short flags over --set, a config asking for CUDA, and no --data-root (the cached demo corpus).

    The demo corpus (400 rows) would take a while to make, so a small one is put where
    ``ensure_demo_corpus`` looks for it in ``$POLSESS_TUNE_CACHE``, with its completion marker.
    """
    base = tmp_path_factory.mktemp("flags")
    own_cache = base / "cache"
    demo_root = demo_corpus_root(own_cache)
    make_corpus(demo_root, train=4, val=2, test=2, sample_rate=8000, seconds=0.5, seed=3)
    (demo_root.parent / "COMPLETE.json").write_text("{}\n")
    config = base / "cuda.yaml"
    tree = yaml.safe_load(DEMO_CONFIG.read_text())
    tree["training"]["device"] = "cuda"
    config.write_text(yaml.safe_dump(tree))
    out = base / "run"
    proc = polsess_tune("train", "--config", config, *TINY, "--set", "training.lr=0.5", "--lr", "0.002",
                        "--epochs", 1, "--batch-size", 2, "--task", "EB", "--seed", 5, "--out", out,
                        cache=own_cache)
    assert proc.returncode == 0, proc.stderr
    return out, demo_root, proc


def test_short_flags_reach_the_saved_config(flag_run):
    out, _, _ = flag_run
    saved = load_config(out / "config.yaml", env={})
    assert saved.training.lr == 0.002  # the short flag wins over --set
    assert saved.training.num_epochs == 1
    assert saved.data.batch_size == 2
    assert saved.data.task == "EB"
    assert saved.training.seed == 5
    assert saved.training.device == "cuda"
    assert saved.model.convtasnet.N == 16 and saved.data.segment_seconds == 0.25
    assert len(read_metrics(out)) == 1


def test_without_a_data_root_train_uses_the_cached_demo_corpus(flag_run):
    out, demo_root, proc = flag_run
    assert load_config(out / "config.yaml", env={}).data.data_root == str(demo_root)
    assert "making the synthetic demo corpus" not in proc.stdout + proc.stderr
    assert "4 train / 2 val rows" in proc.stdout
    # Threads chosen as a 1-CPU trial chooses them (the config's num_workers: 0 here), and said.
    assert "torch threads: 1, loader workers: 0" in proc.stdout


def test_train_threads_follow_the_trial_rule(demo_corpus, tmp_path, cache):
    proc = polsess_tune("train", *TINY, "--set", "num_workers=1", "--epochs", 1, "--threads", 2,
                        "--data-root", demo_corpus, "--out", tmp_path / "run", cache=cache)
    assert proc.returncode == 0, proc.stderr
    assert "torch threads: 2, loader workers: 1" in proc.stdout  # one spare CPU: one loader worker
    bad = polsess_tune("train", "--threads", 0, "--data-root", demo_corpus, "--out", tmp_path / "x", cache=cache)
    assert bad.returncode == 2 and "--threads 0: must be at least 1" in bad.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the fallback of a GPU-less machine")
def test_cuda_config_without_gpu_says_once_it_runs_on_the_cpu(flag_run):
    _, _, proc = flag_run
    said = [line for line in (proc.stdout + proc.stderr).splitlines() if "no GPU is visible" in line]
    assert said == ["training.device is 'cuda' but no GPU is visible: running on the CPU"]
    assert "params on cpu" in proc.stdout


@pytest.mark.parametrize("setting,needles", [
    ("lrr=1", ("lrr", "unknown config key")),
    ("data.task=XX", ("data.task", "'XX'")),
])
def test_bad_set_is_a_one_line_error(tmp_path, demo_corpus, cache, setting, needles):
    out = tmp_path / "run"
    proc = polsess_tune("train", "--data-root", demo_corpus, "--set", setting, "--out", out, cache=cache)
    assert_one_line_error(proc, *needles)
    assert not out.exists()


def test_diverged_training_is_a_one_line_error(tmp_path, cache):
    root = make_corpus(tmp_path / "PolSESS_nan", train=2, val=2, test=2, sample_rate=8000, seconds=0.5, seed=1)
    frame = pd.read_csv(root / "train" / f"corpus_{root.name}_train_final.csv")
    for name in frame["mixFile"]:  # corrupt mixes: float WAVs full of NaN
        audio, rate = sf.read(root / "train" / "mix" / name, dtype="float32")
        sf.write(root / "train" / "mix" / name, np.full_like(audio, np.nan), rate, subtype="FLOAT")
    proc = polsess_tune("train", "--data-root", root, *TINY, "--set", "max_bad_batches=1", "--epochs", 1,
                        "--out", tmp_path / "run", cache=cache)
    # Not a usage error (exit 2) but a run that failed (exit 1), said in one line.
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    (line,) = [x for x in proc.stderr.strip().splitlines() if x.startswith("error: ")]
    assert "NaN/Inf" in line and "epoch 1" in line and "training.lr" in line


# --------------------------------------------------------------------------- evaluate


def test_evaluate_json_and_table(trained_run, demo_corpus, cache):
    out, _ = trained_run
    proc = polsess_tune("evaluate", out / "best.pt", "--data-root", demo_corpus, "--subset", "test", "--json",
                        cache=cache)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["subset"] == "test" and result["task"] == "ES"
    assert result["checkpoint"] == str(out / "best.pt")
    assert result["epoch"] == load_checkpoint(out / "best.pt")["epoch"]
    ds = PolSESSDataset(demo_corpus, subset="test")
    assert result["overall"]["n"] == len(ds)
    assert set(result["variants"]) == ALL_VARIANTS
    validation = result.pop("validation")
    assert validation.pop("validation_variants") == load_checkpoint(out / "best.pt")["config"]["training"][
        "validation_variants"]
    assert validation["n"] == len(PolSESSDataset(demo_corpus, subset="test", allowed_variants=validation_variants(out)))
    for variant, row in [*result["variants"].items(), ("overall", result["overall"])]:
        assert set(row) == {"si_sdr", "si_sdri", "n"}
        assert isinstance(row["si_sdr"], float), variant
        # ES with variant C: the input is speaker 1 alone, the target itself: no SI-SDRi to speak of.
        assert (row["si_sdri"] is None) == (variant == "C"), variant
        if variant != "overall":
            assert row["n"] == len(ds.indices_for_variant(variant)), variant

    table = polsess_tune("evaluate", out / "best.pt", "--data-root", demo_corpus, cache=cache)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.strip().splitlines()
    assert lines[0].startswith(f"{out / 'best.pt'} (epoch {result['epoch']}), test subset, task ES")
    assert lines[1].split() == ["variant", "n", "SI-SDR", "SI-SDRi"]
    blank = lines.index("")
    rows = {parts[0]: parts[1:] for parts in (line.split() for line in lines[2:blank])}
    notes = "\n".join(lines[blank + 1:])
    assert "n: rows scored" in notes and "validation: training.validation_variants" in notes
    assert "SI-SDRi is n/a" in notes
    assert set(rows) == ALL_VARIANTS | {"overall", "validation"}
    for name, (n, sdr, sdri) in rows.items():
        want = {"overall": result["overall"], "validation": validation}.get(name) or result["variants"][name]
        assert int(n) == want["n"]
        assert float(sdr) == pytest.approx(want["si_sdr"], abs=0.006)
        if want["si_sdri"] is None:
            assert sdri == "n/a"
        else:
            assert float(sdri) == pytest.approx(want["si_sdri"], abs=0.006)


def validation_variants(run: Path):
    return load_checkpoint(run / "best.pt")["config"]["training"]["validation_variants"]


def test_evaluate_a_missing_checkpoint_is_a_one_line_error(tmp_path, cache):
    missing = tmp_path / "nope.pt"
    proc = polsess_tune("evaluate", missing, cache=cache)
    assert_one_line_error(proc, str(missing))
    assert proc.stdout == ""


def test_evaluate_a_file_that_is_not_a_checkpoint_is_a_one_line_error(cache):
    proc = polsess_tune("evaluate", DEMO_CONFIG, cache=cache)
    assert_one_line_error(proc, str(DEMO_CONFIG))

