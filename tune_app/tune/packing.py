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

import math
from dataclasses import dataclass

from polsess.footprint import Footprint

from ..errors import TuneInputError

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
            f"a trial of the largest config needs {need / gib:.1f} GiB of GPU memory (peak {fp.peak_bytes / gib:.1f} "
            f"GiB + {CONTEXT_BYTES / gib:.1f} GiB per process) and the GPU ({fp.device}) has {fp.total_bytes / gib:.1f} "
            f"GiB, {MEMORY_MARGIN:.0%} of it usable; lower data.batch_size, data.segment_seconds or the model sizes")
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
    return Packing(n, round(1.0 / n, 4), why)
