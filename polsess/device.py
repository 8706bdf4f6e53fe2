"""Pick the torch device at run time, so the same code path runs on a GPU box and on a laptop."""

from __future__ import annotations

from collections.abc import Callable

import torch

_warned: set[str] = set()


def pick_device(requested: str = "auto", log: Callable[[str], None] = print) -> torch.device:
    """``auto`` → CUDA when visible, else CPU. A CUDA request without a GPU falls back, said once."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        if requested not in _warned:
            _warned.add(requested)
            log(f"training.device is {requested!r} but no GPU is visible: running on the CPU")
        return torch.device("cpu")
    return torch.device(requested)


def amp_dtype(device: torch.device, enabled: bool) -> torch.dtype | None:
    """bf16 where the GPU has it (no loss scaling needed), fp16 on older GPUs, off on the CPU."""
    if not enabled or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def cpu_share(cpus: int, num_workers: int) -> tuple[int, int]:
    """(torch threads, DataLoader workers) for a run given ``cpus`` CPUs: one thread per CPU, and
    loader workers only where a CPU is spare (a worker process beside every busy core slows the step
    more than it feeds it; ``benchmarks/threads.py``). ``polsess-tune train`` and every Tune trial
    decide the same way, so a config trains at the same speed in both."""
    threads = max(1, int(cpus))
    return threads, max(0, min(num_workers, threads - 1))
