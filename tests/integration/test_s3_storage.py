"""Experiments stored to a real S3 server (moto's, a process on 127.0.0.1): every command on a URI.

Each driver gets its own data dir (``XDG_DATA_HOME``: where a URI experiment's driver folder, with
its W&B offline runs, lives) and its own ``RAY_TMPDIR``, so a test can start a second driver "on
another machine" (nothing local of the first) and search every file a driver and Ray wrote for the
fake secret.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

import pytest
import yaml
from helpers import REPO, polsess_tune, start_polsess_tune, tiny
from processes import kill_session, wait_for

from tune_app.experiment import layout
from tune_app.experiment.results import load_experiment
from tune_app.ext.wandb_offline import find_offline_runs, metric_history

BUCKET = "polsess-tune-ci"
EPOCHS = 4
TINY = tiny(EPOCHS)


class Driver:
    """One driver machine: a working directory, a data dir and a Ray temp dir of its own."""

    def __init__(self, root: Path, s3: dict[str, str]) -> None:
        self.root = root
        self.cwd = root / "cwd"
        self.data = root / "data"
        self.ray_tmp = Path(tempfile.mkdtemp(prefix="pt", dir="/tmp"))  # short: Ray's socket paths
        self.cwd.mkdir(parents=True)
        self.env = {**os.environ, **s3, "XDG_DATA_HOME": str(self.data), "RAY_TMPDIR": str(self.ray_tmp),
                    "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)}

    def driver_folder(self, uri: str) -> Path:
        return self.data / "polsess-tune" / "remote" / "s3" / uri.removeprefix("s3://")

    def cli(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return polsess_tune(*args, base=self.env, cwd=self.cwd, timeout=timeout)

    def start(self, *args: str, log: Path) -> subprocess.Popen:
        return start_polsess_tune(list(args), log, base=self.env, cwd=self.cwd)


def bucket_files(s3: dict[str, str], prefix: str) -> dict[str, bytes]:
    """Every object under ``s3://BUCKET/prefix`` (relative key → bytes), read through pyarrow in this
    process; an object deleted between the listing and the read (an old checkpoint) is left out."""
    import pyarrow.fs as pafs

    endpoint = s3["AWS_ENDPOINT_URL"].removeprefix("http://")
    fs = pafs.S3FileSystem(access_key=s3["AWS_ACCESS_KEY_ID"], secret_key=s3["AWS_SECRET_ACCESS_KEY"],
                           endpoint_override=endpoint, scheme="http", region=s3["AWS_DEFAULT_REGION"])
    root = f"{BUCKET}/{prefix}"
    out = {}
    for info in fs.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True)):
        if info.type == pafs.FileType.File:
            try:
                with fs.open_input_stream(info.path) as fh:
                    out[info.path[len(root):].strip("/")] = fh.read()
            except OSError:
                continue
    return out


def result_epochs(files: dict[str, bytes], exp: str = "") -> dict[str, list[int]]:
    """Per trial, the epoch of each row of its result.json in the bucket, in file order."""
    out = {}
    for key, data in files.items():
        parts = key.split("/")
        if parts[-1] == layout.RESULT_FILE and (not exp or parts[0] == exp):
            rows = layout.parse_result_lines(data.decode())
            out[parts[-2].removeprefix(layout.TRIAL_PREFIX)] = [int(r["epoch"]) for r in rows]
    return out


def assert_no_secret(s3: dict[str, str], *texts: str, folders: tuple[Path, ...] = (),
                     files: dict[str, bytes] | None = None) -> None:
    secret = s3["AWS_SECRET_ACCESS_KEY"].encode()
    assert not any(secret in t.encode() for t in texts), "the S3 secret reached the console"
    for key, data in (files or {}).items():
        assert secret not in data, f"the S3 secret reached the bucket: {key}"
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file() and not path.is_symlink():
                try:
                    assert secret not in path.read_bytes(), f"the S3 secret reached {path}"
                except OSError:
                    continue


@pytest.fixture
def drivers(tmp_path: Path, s3_server: dict[str, str]):
    made: list[Driver] = []
    sessions: list[int] = []

    def make(name: str) -> Driver:
        made.append(Driver(tmp_path / name, s3_server))
        return made[-1]

    yield make, sessions
    for sid in sessions:
        kill_session(sid)
    for d in made:
        shutil.rmtree(d.ray_tmp, ignore_errors=True)


def test_a_search_stored_to_s3_passes_the_local_checks_and_every_command_reads_it(
        drivers, s3_server, demo_corpus, tmp_path):
    make, _ = drivers
    a = make("a")
    uri = f"s3://{BUCKET}/runs/first"
    run = a.cli("run", "--data-root", str(demo_corpus), "--storage", f"s3://{BUCKET}/runs", "--name", "first",
                "--num-samples", "3", "--max-concurrent", "2", "--wandb", "offline", "--seed", "1",
                "--grace-period", "2", "--reduction-factor", "2", *TINY)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    folder = a.driver_folder(uri)
    assert f"results: polsess-tune results {uri}" in run.stdout
    assert f"W&B offline runs: {folder / 'wandb-runs'}" in run.stdout
    assert not (a.cwd / "s3:").exists()  # nothing written to a local folder spelled like the URI

    # In the bucket: Tune's state, each trial's history and checkpoints, and our summary files.
    files = bucket_files(s3_server, "runs/first")
    for name in (layout.SEARCH_FILE, layout.RESULTS_CSV, layout.BEST_CONFIG):
        assert name in files, sorted(files)
    assert any(k.startswith("experiment_state-") for k in files)
    epochs = result_epochs(files)
    assert len(epochs) == 3
    for trial, seen in epochs.items():
        assert seen == list(range(1, len(seen) + 1)), (trial, seen)  # every epoch once, in order
        assert any(k.startswith(f"trial_{trial}/checkpoint_") and k.endswith("/trainer.pt") for k in files)

    # results reads the bucket (another driver machine: nothing local) and shows the same trials.
    b = make("b")
    shown = b.cli("results", uri, "--json")
    assert shown.returncode == 0, shown.stderr[-3000:]
    data = json.loads(shown.stdout)
    assert {t["trial_id"] for t in data["trials"]} == set(epochs)
    assert data["experiment"] == uri
    for t in data["trials"]:
        assert t["epochs"] == len(epochs[t["trial_id"]])
        assert t["checkpoint"].startswith(f"{uri}/trial_{t['trial_id']}/checkpoint_")
    best = max(data["trials"], key=lambda t: t["best_val_sisdr"])
    assert data["best"]["trial_id"] == best["trial_id"]
    table = b.cli("results", uri, "--plots")
    assert table.returncode == 0, table.stderr[-3000:]
    assert "3 trials" in table.stdout
    # Where the W&B runs are: driver a's folder (on this same host, so "this machine").
    assert f"W&B offline runs: {folder / 'wandb-runs'} on this machine" in table.stdout
    plots = b.driver_folder(uri) / "plots" / "val_sisdr_per_epoch.png"
    assert plots.stat().st_size > 1000 and f"wrote {plots}" in table.stdout  # written locally
    out = tmp_path / "best.yaml"
    export = b.cli("results", uri, "--export-best", str(out))
    assert export.returncode == 0 and yaml.safe_load(out.read_text()) == yaml.safe_load(files[layout.BEST_CONFIG])

    # The W&B offline runs are beside the driver that ran the search: one per trial, every epoch once.
    runs = find_offline_runs(folder / "wandb-runs")
    assert sorted(r.run_id for r in runs) == sorted(epochs)
    for r in runs:
        assert sorted(int(e) for _, e in metric_history(r, "epoch")) == epochs[r.run_id]

    # A warm start and a validation read the experiment from the bucket too.
    warm = b.cli("run", "--data-root", str(demo_corpus), "--warm-start", uri, "--dry-run", "--seed", "1", *TINY)
    assert warm.returncode == 0, warm.stderr[-3000:]
    used = re.search(r"warm start: (\d+) used, (\d+) skipped", warm.stdout)
    completed = sum(t["status"] == "COMPLETED" for t in data["trials"])  # early-stopped ones are skipped
    assert used and (int(used[1]), int(used[1]) + int(used[2])) == (completed, 3), warm.stdout[-2000:]
    val = b.cli("validate", uri, "--top", "1", "--seeds", "5,6", "--wandb", "offline", "--set", "num_epochs=2")
    assert val.returncode == 0, val.stdout[-3000:] + val.stderr[-3000:]
    assert f"into {uri}-validate" in val.stdout and "best config (best mean): " + f"{uri}-validate/" in val.stdout
    vfiles = bucket_files(s3_server, "runs/first-validate")
    assert layout.BEST_CONFIG in vfiles and len(result_epochs(vfiles)) == 2
    vsearch = json.loads(vfiles[layout.SEARCH_FILE])
    assert vsearch["validation"]["source"] == uri and vsearch["validation"]["top"] == [best["trial_id"]]

    assert_no_secret(s3_server, run.stdout, run.stderr, shown.stdout, table.stdout, warm.stdout, val.stdout,
                     val.stderr, folders=(a.data, a.ray_tmp, b.data, b.ray_tmp), files={**files, **vfiles})


def test_resume_after_sigkill_by_a_driver_started_afresh(drivers, s3_server, demo_corpus, tmp_path):
    make, sessions = drivers
    a = make("a")
    uri = f"s3://{BUCKET}/runs/killed"
    proc = a.start("run", "--data-root", str(demo_corpus), "--storage", f"s3://{BUCKET}/runs", "--name", "killed",
                   "--num-samples", "3", "--max-concurrent", "2", "--wandb", "offline", "--grace-period", "2",
                   "--reduction-factor", "2", *TINY, log=tmp_path / "run.log")
    sessions.append(proc.pid)

    def mid_search() -> bool:
        seen = result_epochs(bucket_files(s3_server, "runs/killed"))
        return sum(map(len, seen.values())) >= 2 and any(0 < len(v) < EPOCHS for v in seen.values())

    wait_for(lambda: mid_search() or proc.poll() is not None, 300, "trials to report into the bucket")
    assert proc.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
    kill_session(proc.pid)  # the driver and every Ray process it started, at once
    before = result_epochs(bucket_files(s3_server, "runs/killed"))

    # Another machine: another working directory, another data dir, no experiment folder of its own.
    b = make("b")
    resumed = b.cli("resume", uri)
    assert resumed.returncode == 0, resumed.stdout[-4000:] + resumed.stderr[-3000:]
    assert "resuming killed" in resumed.stdout

    files = bucket_files(s3_server, "runs/killed")
    after = result_epochs(files)
    assert len(after) == 3, after
    for trial, seen in after.items():
        assert seen == list(range(1, len(seen) + 1)), (trial, seen)  # no epoch twice, none skipped
        assert seen[: len(before.get(trial, []))] == before.get(trial, [])
    exp = load_experiment(b.driver_folder(uri))
    assert all(t.status in ("COMPLETED", "EARLY_STOPPED") for t in exp.trials), [t.status for t in exp.trials]
    # The killed driver's W&B runs may end cut (an empty one if killed before its first write); the
    # resumed trials log beside the new driver, each epoch of the trial's history once (the epochs
    # the first driver ran are filled in from result.json).
    for run in find_offline_runs(a.driver_folder(uri) / "wandb-runs"):
        counts = Counter(int(e) for _, e in metric_history(run, "epoch"))
        assert not counts or max(counts.values()) == 1, (run.run_id, counts)
    resumed_runs = find_offline_runs(b.driver_folder(uri) / "wandb-runs")
    unfinished = {t for t, seen in before.items() if len(seen) < len(after[t])} | (set(after) - set(before))
    assert {r.run_id for r in resumed_runs} >= unfinished
    for run in resumed_runs:
        counts = Counter(int(e) for _, e in metric_history(run, "epoch"))
        assert counts and max(counts.values()) == 1 and sorted(counts) == after[run.run_id], (run.run_id, counts)
    assert_no_secret(s3_server, resumed.stdout, resumed.stderr, (tmp_path / "run.log").read_text(),
                     folders=(a.data, a.ray_tmp, b.data, b.ray_tmp), files=files)


def test_s3_storage_mistakes_are_one_line_before_ray(drivers, s3_server, demo_corpus):
    make, _ = drivers
    a = make("a")
    cases = [
        (["--storage", "s3://no-such-bucket-here/runs"], "the bucket 'no-such-bucket-here' does not exist"),
        (["--storage", "nosuch://x/y"], "pyarrow cannot open this URI"),
    ]
    for args, needle in cases:
        proc = a.cli("run", "--data-root", str(demo_corpus), "--wandb", "disabled", *args, *TINY, timeout=120)
        last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
        assert proc.returncode == 2 and last.startswith("error: --storage") and needle in last, proc.stderr[-2000:]
    a.env["AWS_SECRET_ACCESS_KEY"] = "wrong"  # moto checks no signatures; a server that is not there fails
    a.env["AWS_ENDPOINT_URL"] = "http://127.0.0.1:9"
    proc = a.cli("run", "--data-root", str(demo_corpus), "--wandb", "disabled", "--storage", f"s3://{BUCKET}/x",
                 *TINY, timeout=300)
    assert proc.returncode == 2 and "cannot reach" in proc.stderr and "AWS_ENDPOINT_URL" in proc.stderr, \
        proc.stderr[-2000:]
    a.env.update(s3_server)
    gone = a.cli("results", f"s3://{BUCKET}/runs/never-was", timeout=300)
    assert gone.returncode == 2 and "nothing is stored there" in gone.stderr, gone.stderr[-2000:]
    assert "Traceback" not in proc.stderr + gone.stderr
