"""Attaching to a real two-node Ray cluster (head + worker via `ray start` on this machine).

Both nodes run with token authentication on. The test starts each `ray start --block` in its own
session and ends exactly those sessions afterwards: `ray stop` would kill every Ray process on
the machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO, polsess_tune, tiny
from processes import kill_session, wait_for

from tune_app.experiment.results import load_experiment
from tune_app.ext.wandb_offline import find_offline_runs, metric_history

RAY = str(Path(sys.executable).with_name("ray"))
TINY = tiny(2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _end_session(proc: subprocess.Popen) -> None:
    # `ray start --block` stops and reaps its own processes on SIGTERM; SIGKILL whatever is left.
    proc.send_signal(signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=30)
    kill_session(proc.pid)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, s3_server):
    token = secrets.token_hex(16)
    # Each node has the S3 credentials in its own environment: trials upload their checkpoints from there.
    env = {**os.environ, **s3_server, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token,
           "RAY_USAGE_STATS_ENABLED": "0"}
    port = _free_port()
    logs = tmp_path_factory.mktemp("cluster")
    common = ["--num-cpus=1", "--num-gpus=0", "--block", "--disable-usage-stats"]
    head = subprocess.Popen([RAY, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
                             "--include-dashboard=false", *common], env=env, start_new_session=True,
                            stdout=(logs / "head.log").open("w"), stderr=subprocess.STDOUT)
    procs = [head]
    try:
        wait = [sys.executable, "-c", (
            "import sys, time, ray\n"
            "deadline = time.time() + 120\n"
            "while True:\n"
            "    try:\n"
            f"        ray.init(address='127.0.0.1:{port}', logging_level='ERROR'); break\n"
            "    except Exception:\n"
            "        assert time.time() < deadline; time.sleep(0.5)\n"
            "n = int(sys.argv[1])\n"
            "while len([x for x in ray.nodes() if x['Alive']]) < n:\n"
            "    assert time.time() < deadline; time.sleep(0.5)\n")]
        subprocess.run([*wait, "1"], env=env, check=True, timeout=180, capture_output=True)
        worker = subprocess.Popen([RAY, "start", f"--address=127.0.0.1:{port}", "--node-ip-address=127.0.0.1",
                                   *common], env=env, start_new_session=True,
                                  stdout=(logs / "worker.log").open("w"), stderr=subprocess.STDOUT)
        procs.append(worker)
        subprocess.run([*wait, "2"], env=env, check=True, timeout=180, capture_output=True)
        yield f"127.0.0.1:{port}", token
    finally:
        for proc in reversed(procs):
            _end_session(proc)


def test_run_on_an_attached_two_node_cluster(cluster, demo_corpus, tmp_path):
    address, token = cluster
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    env["RAY_AUTH_TOKEN"] = token  # RAY_AUTH_MODE unset: the explicit address must still use the token
    proc = polsess_tune("run", "--address", address, "--data-root", str(demo_corpus), "--storage", str(tmp_path),
                        "--name", "on-cluster", "--num-samples", "2", "--max-concurrent", "2", "--cpus-per-trial", "1",
                        "--wandb", "offline", *TINY, base=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    exp = load_experiment(tmp_path / "on-cluster")
    assert len(exp.trials) == 2 and all(t.status in ("COMPLETED", "EARLY_STOPPED") for t in exp.trials)
    nodes = {row["node_id"] for t in exp.trials for row in t.history}
    assert len(nodes) == 2, nodes  # one CPU per node, two trials at once: one on each node
    runs = find_offline_runs(tmp_path / "on-cluster" / "wandb-runs")
    assert sorted(r.run_id for r in runs) == sorted(t.trial_id for t in exp.trials)
    for run in runs:
        trial = next(t for t in exp.trials if t.trial_id == run.run_id)
        assert [int(e) for _, e in metric_history(run, "epoch")] == list(range(1, trial.epochs + 1))
        assert run.exit_code == 0
    assert token not in proc.stdout + proc.stderr


def test_explicit_address_without_a_token_says_what_is_missing(cluster, demo_corpus, tmp_path):
    address, _ = cluster
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    env["HOME"] = str(tmp_path)  # no ~/.ray/auth_token here
    proc = polsess_tune("run", "--address", address, "--data-root", str(demo_corpus), "--storage", str(tmp_path),
                        "--name", "no-token", "--num-samples", "1", "--wandb", "disabled", *TINY, base=env)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: --address") and "RAY_AUTH_TOKEN" in last and "Traceback" not in proc.stderr


def test_addresses_that_cannot_work_are_refused_before_ray(demo_corpus, tmp_path):
    port = _free_port()  # nothing listens there
    for address, needle in ((f"127.0.0.1:{port}", "nothing answers there"),
                            ("ray://127.0.0.1:10001", "ray job submit"),
                            ("not-an-address", "expected auto or HOST:PORT")):
        proc = polsess_tune("run", "--address", address, "--data-root", str(demo_corpus), "--storage",
                            str(tmp_path), "--wandb", "disabled")
        # The needle is check_address's, which runs before ray.init: its line is the only output.
        assert proc.returncode == 2 and needle in proc.stderr, proc.stderr
        assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and proc.stderr.startswith("error: --address")


def test_a_search_on_two_nodes_stored_to_s3_resumes_after_sigkill_from_a_fresh_driver(
        cluster, s3_server, demo_corpus, tmp_path):
    """The driver is killed mid-search with a trial on each node; a driver started afresh (another
    working directory and data dir, no experiment folder) resumes it from the bucket."""
    from test_s3_storage import BUCKET, bucket_files, result_epochs

    address, token = cluster
    epochs = 4
    base = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    envs = []
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
        envs.append({**base, **s3_server, "RAY_AUTH_TOKEN": token, "XDG_DATA_HOME": str(tmp_path / name / "data"),
                     "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)})
    uri = f"s3://{BUCKET}/cluster/two-nodes"
    log = tmp_path / "run.log"
    proc = subprocess.Popen([sys.executable, "-m", "tune_app.cli", "run", "--address", address, "--data-root",
                             str(demo_corpus), "--storage", f"s3://{BUCKET}/cluster", "--name", "two-nodes",
                             "--num-samples", "2", "--max-concurrent", "2", "--cpus-per-trial", "1",
                             "--grace-period", str(epochs), "--wandb", "offline", *TINY,
                             "--set", f"num_epochs={epochs}"],
                            cwd=tmp_path / "first", env=envs[0], stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        def both_mid_way() -> bool:
            seen = result_epochs(bucket_files(s3_server, "cluster/two-nodes"))
            return len(seen) == 2 and all(seen.values()) and any(len(v) < epochs for v in seen.values())

        wait_for(lambda: both_mid_way() or proc.poll() is not None, 300, "both trials to report into the bucket")
        assert proc.poll() is None, log.read_text()[-3000:]
    finally:
        kill_session(proc.pid)  # the driver only: the cluster's nodes run on
    before = result_epochs(bucket_files(s3_server, "cluster/two-nodes"))
    resumed = polsess_tune("resume", uri, "--address", address, base=envs[1], cwd=tmp_path / "second", timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-4000:] + resumed.stderr[-3000:]
    files = bucket_files(s3_server, "cluster/two-nodes")
    after = result_epochs(files)
    assert sorted(map(len, after.values())) == [epochs, epochs], after  # the trial count asked, each to its end
    for trial, seen in after.items():
        assert seen == list(range(1, epochs + 1)), (trial, seen)  # no epoch twice, none skipped
        assert seen[: len(before[trial])] == before[trial]
    nodes = {json.loads(line)["node_id"] for k, v in files.items() if k.endswith("/result.json")
             for line in v.decode().splitlines() if line.strip() and "node_id" in json.loads(line)}
    assert len(nodes) == 2, nodes  # a trial ran on the worker node
    secret = s3_server["AWS_SECRET_ACCESS_KEY"]
    assert secret not in resumed.stdout + resumed.stderr + log.read_text()
    assert not any(secret.encode() in v for v in files.values())
