"""``--gpus-per-trial auto``: how many trials share a GPU, from one measured step of the trial's model.

Ray packs trials by the GPU fraction each asks for and knows nothing of their memory, so a guess
either wastes the GPU (one small trial per H200) or runs out of memory an hour in. Here the
search's largest config (every searched size at its maximum, so the worst trial fits) trains a
few steps in a process of its own (:mod:`polsess.footprint`): its peak memory says how many fit
with a margin, its GPU-busy share how many are worth running — a launch-bound step (busy 0.3)
leaves the GPU idle between kernels that other trials' kernels fill, so about 1/busy trials
raise throughput and more only share it — and the CPUs cap the count (each trial keeps its
``--cpus-per-trial``). The choice and its reasons are printed before the search starts; a config
that cannot fit even alone is refused then, with the numbers.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from polsess.config import Config, config_from_flat, to_flat
from polsess.footprint import Footprint, flat_json

from ..errors import TuneInputError
from ..space import SearchSpec
from .plan import RunPlan

MEMORY_MARGIN = 0.85  # of the GPU's memory that trials may plan to use: the allocator fragments
CONTEXT_BYTES = 600 * 2**20  # each trial is a process with its own CUDA context and cuDNN workspace
MAX_PER_GPU = 8


@dataclass
class Packing:
    trials_per_gpu: int
    gpus_per_trial: float
    why: str


def choose_packing(fp: Footprint, gpus: int, cpus: float, cpus_per_trial: float,
                   max_per_gpu: int = MAX_PER_GPU) -> Packing:
    """How many trials of footprint ``fp`` share each of ``gpus`` GPUs on a machine with ``cpus`` CPUs."""
    gib = 2**30
    need = fp.peak_bytes + CONTEXT_BYTES
    room = MEMORY_MARGIN * fp.total_bytes
    if need > room:
        raise TuneInputError(
            f"a trial of the largest config needs {need / gib:.1f} GiB of GPU memory (peak "
            f"{fp.peak_bytes / gib:.1f} GiB + {CONTEXT_BYTES / gib:.1f} GiB per process) and the GPU ({fp.device}) "
            f"has {fp.total_bytes / gib:.1f} GiB, {MEMORY_MARGIN:.0%} of it usable; lower data.batch_size, "
            "data.segment_seconds or the model sizes")
    by_memory = max(1, math.floor(room / need))
    by_busy = max_per_gpu if not fp.busy else max(1, math.ceil(1 / fp.busy))
    by_cpus = max(1, math.floor(cpus / max(cpus_per_trial, 1e-9) / max(gpus, 1)))
    n = min(by_memory, by_busy, by_cpus, max_per_gpu)
    limits = {"memory": by_memory, "GPU-busy share": by_busy, "CPUs": by_cpus, "cap": max_per_gpu}
    bound = min(limits, key=lambda k: (limits[k], list(limits).index(k)))
    busy = "unknown" if fp.busy is None else f"{fp.busy:.0%}"
    why = (f"{n} trial{'s' if n > 1 else ''} per GPU ({fp.device}): one step of the largest config peaks at "
           f"{fp.peak_bytes / gib:.2f} GiB (fits {by_memory}), keeps the GPU busy {busy} of the time "
           f"(worth {by_busy}), {cpus:g} CPUs at {cpus_per_trial:g} per trial allow {by_cpus}; bound by {bound}")
    # Rounded down to Ray's resource step (0.0001): round(1/6, 4) = 0.1667 would fit only 5 on a GPU.
    return Packing(n, math.floor(10_000 / n) / 10_000, why)


# Sizes that set a step's memory and time: a searched one is taken at its largest value.
SIZE_PATHS = ("model.convtasnet.N", "model.convtasnet.B", "model.convtasnet.H", "model.convtasnet.P",
              "model.convtasnet.X", "model.convtasnet.R", "data.batch_size", "data.segment_seconds")
MEASURE_TIMEOUT_S = 300


def largest_config(spec: SearchSpec, base: Config) -> Config:
    """``base`` with every searched size at its largest value: if that trial fits, every trial does."""
    flat = to_flat(base)
    for path in SIZE_PATHS:
        param = spec.space.get(path)
        if param is None:
            continue
        numeric = [v for v in (param.values or ()) if isinstance(v, (int, float)) and not isinstance(v, bool)]
        flat[path] = max(numeric) if numeric else (param.high if param.high is not None else flat[path])
    return config_from_flat(flat, source="the largest config of the search")


def measure_in_subprocess(cfg: Config, sample_rate: int) -> Footprint:
    """polsess.footprint in a process of its own: the driver never holds a CUDA context of its own."""
    with tempfile.TemporaryDirectory(prefix="polsess-footprint-") as folder:
        path = Path(folder) / "config.json"
        path.write_text(flat_json(cfg))
        try:
            proc = subprocess.run([sys.executable, "-m", "polsess.footprint", str(path), str(sample_rate), "cuda"],
                                  capture_output=True, text=True, timeout=MEASURE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise TuneInputError(f"--gpus-per-trial auto: one measured step took over {MEASURE_TIMEOUT_S} s; give "
                                 "a number instead, e.g. --gpus-per-trial 0.25") from None
    if proc.returncode != 0:
        if "OutOfMemoryError" in proc.stderr or "out of memory" in proc.stderr:
            raise TuneInputError("one training step of the search's largest config runs out of GPU memory even "
                                 "alone; lower data.batch_size, data.segment_seconds or the model sizes")
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise TuneInputError(f"--gpus-per-trial auto: measuring one step failed ({last}); give a number instead, "
                             "e.g. --gpus-per-trial 0.25")
    return Footprint(**json.loads(proc.stdout.strip().splitlines()[-1]))


def pack_trials(spec: SearchSpec, base: Config, cpus_per_trial: float, sample_rate: int,
                measure: Callable[[Config, int], Footprint] = measure_in_subprocess,
                gpus: int | None = None, cpus: float | None = None) -> Packing:
    """Measure the largest config's step (``measure``: injected in tests) and choose the packing."""
    from ..ext.ray_internals import local_gpu_count

    gpus = local_gpu_count() if gpus is None else gpus
    cpus = float(os.cpu_count() or 1) if cpus is None else cpus
    return choose_packing(measure(largest_config(spec, base), sample_rate), gpus, cpus, cpus_per_trial)


def pack_gpus(plan: RunPlan) -> None:
    """``--gpus-per-trial auto``: measure the largest config's step on the GPU, set the share, say why."""
    if not plan.gpus_auto:
        return
    from polsess.data import PolSESSDataset

    rate = PolSESSDataset(plan.base.data.data_root, subset="train", task=plan.base.data.task, max_samples=1).sample_rate
    packing = pack_trials(plan.spec, plan.base, plan.cpus_per_trial, rate)
    plan.gpus_per_trial = packing.gpus_per_trial
    plan.gpus_auto = False
    print(f"--gpus-per-trial auto → {packing.gpus_per_trial:g}: {packing.why}", flush=True)
