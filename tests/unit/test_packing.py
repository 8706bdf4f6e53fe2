"""--gpus-per-trial auto: the packing decision from a measured footprint (injected here, measured on
the GPU for real), and the footprint measurement itself, run for real on the CPU."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers import REPO

from polsess.config import load_config
from polsess.footprint import Footprint, flat_json
from tune_app.errors import TuneInputError
from tune_app.tune.packing import CONTEXT_BYTES, choose_packing

GIB = 2**30
H200 = 139 * GIB


def fp(peak_gib: float, busy: float | None, total: int = H200) -> Footprint:
    return Footprint(int(peak_gib * GIB), 0.1, busy, total, "NVIDIA H200")


def test_a_launch_bound_small_step_packs_by_its_busy_share():
    p = choose_packing(fp(3.0, 0.3), gpus=1, cpus=16, cpus_per_trial=4)
    assert (p.trials_per_gpu, p.gpus_per_trial) == (4, 0.25)  # ceil(1/0.3) = 4, and 16 CPUs / 4 = 4
    assert "bound by GPU-busy share" in p.why or "bound by CPUs" in p.why


def test_memory_bounds_a_big_step():
    p = choose_packing(fp(40.0, 0.1), gpus=1, cpus=64, cpus_per_trial=1)
    want = int(0.85 * H200 // (40 * GIB + CONTEXT_BYTES))
    assert p.trials_per_gpu == want == 2 and "bound by memory" in p.why


def test_a_math_bound_step_runs_alone_and_cpus_cap_the_rest():
    assert choose_packing(fp(3.0, 0.97), gpus=1, cpus=16, cpus_per_trial=1).trials_per_gpu == 2  # ceil(1/0.97)
    assert choose_packing(fp(3.0, 1.0), gpus=1, cpus=16, cpus_per_trial=1).trials_per_gpu == 1
    p = choose_packing(fp(1.0, 0.05), gpus=2, cpus=16, cpus_per_trial=4)
    assert p.trials_per_gpu == 2 and "bound by CPUs" in p.why  # 16 CPUs / 4 per trial over 2 GPUs
    assert choose_packing(fp(0.5, 0.01), gpus=1, cpus=64, cpus_per_trial=1).trials_per_gpu == 8  # the cap


def test_a_trial_that_cannot_fit_alone_is_refused_before_the_search():
    with pytest.raises(TuneInputError) as info:
        choose_packing(fp(30.0, 0.5, total=24 * GIB), gpus=1, cpus=8, cpus_per_trial=1)
    msg = str(info.value)
    assert "needs 30.6 GiB" in msg and "has 24.0 GiB" in msg and "lower data.batch_size" in msg and "\n" not in msg


def test_the_footprint_of_a_step_is_measured_in_a_process_of_its_own(tmp_path):
    cfg = load_config(None, {"model.convtasnet.N": 16, "model.convtasnet.B": 8, "model.convtasnet.H": 16,
                             "model.convtasnet.X": 2, "model.convtasnet.R": 1, "data.batch_size": 2,
                             "data.segment_seconds": 0.25})
    (tmp_path / "cfg.json").write_text(flat_json(cfg))
    proc = subprocess.run([sys.executable, "-m", "polsess.footprint", str(tmp_path / "cfg.json"), "8000", "cpu"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    got = Footprint(**json.loads(proc.stdout.strip().splitlines()[-1]))
    assert got.device == "cpu" and got.peak_bytes == 0 and got.busy is None and 0 < got.step_s < 10


def test_the_largest_config_of_a_search_is_measured_with_the_packing_it_gets():
    from tune_app.builtin import sweep_files
    from tune_app.space import load_search
    from tune_app.tune.packing import largest_config, pack_trials

    (pareto_demo,) = [f for f in sweep_files() if f.name == "demo_pareto.yaml"]
    spec = load_search(pareto_demo)
    base = load_config(spec.base_config)
    big = largest_config(spec, base)
    assert (big.model.convtasnet.N, big.model.convtasnet.B) == (128, 64)  # the space's largest N and B
    assert big.model.convtasnet.H == base.model.convtasnet.H  # not searched: as the base has it
    seen = []

    def measure(cfg, rate):
        seen.append((cfg.model.convtasnet.N, rate))
        return fp(2.0, 0.2, total=80 * GIB)

    p = pack_trials(spec, base, cpus_per_trial=2, sample_rate=8000, measure=measure, gpus=1, cpus=16)
    assert seen == [(128, 8000)] and p.trials_per_gpu == 5 and p.gpus_per_trial == 0.2


def test_gpus_per_trial_takes_a_number_or_auto():
    import argparse

    from tune_app.cli.parser import gpus_arg

    assert gpus_arg("auto") == "auto" and gpus_arg("0.25") == 0.25
    with pytest.raises(argparse.ArgumentTypeError, match="or auto"):
        gpus_arg("half")


def test_auto_on_a_machine_without_gpus_runs_trials_on_the_cpu(tmp_path, capsys):
    from tune_app.cli import main
    from tune_app.ext.ray_internals import local_gpu_count

    if local_gpu_count():
        pytest.skip("this machine has a GPU: auto would measure it")
    assert main(["run", "--gpus-per-trial", "auto", "--dry-run", "--storage", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "1 CPU, 0 GPU" in out and "no GPU on this machine, so trials run on the CPU" in out


def test_the_share_rounds_down_so_every_packed_trial_fits():
    p = choose_packing(fp(1.0, 0.17), gpus=1, cpus=64, cpus_per_trial=1)
    assert p.trials_per_gpu == 6 and p.gpus_per_trial == 0.1666 and 6 * p.gpus_per_trial <= 1.0
