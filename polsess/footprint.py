"""What one training step of a config needs on a GPU: peak memory, time, and how busy the GPU is.

``python -m polsess.footprint CONFIG.json RATE [DEVICE]`` measures it in a process of its own and prints one
JSON line, so the caller (the tuner's ``--gpus-per-trial auto``) learns it without holding a CUDA
context of its own for the rest of the search. The step is the trainer's own (``Trainer`` on
random segments of the config's length and batch; forward, PIT SI-SDR loss, backward, optimizer
step), so the memory is what a trial will need. ``busy`` is the share of the step's wall time the
GPU spends in kernels (torch.profiler): a launch-bound step (busy ≪ 1) leaves room for trials
sharing the GPU, a math-bound one does not.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass

import torch

from .config import Config, config_from_flat, to_flat
from .metrics import score_batch
from .model import build_model


@dataclass
class Footprint:
    peak_bytes: int  # torch.cuda.max_memory_allocated over the measured steps (0 on CPU)
    step_s: float  # median wall time of one step
    busy: float | None  # share of the step the GPU is in kernels; None on CPU
    total_bytes: int  # the GPU's memory (0 on CPU)
    device: str


def measure(cfg: Config, sample_rate: int, device: str = "cuda", steps: int = 5) -> Footprint:
    """Train ``steps`` steps of ``cfg``'s model on random ``(batch, 1, segment)`` audio at the corpus's
    ``sample_rate`` and measure them."""
    dev = torch.device(device)
    model = build_model(cfg).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.training.lr)
    samples = round((cfg.data.segment_seconds or 4.0) * sample_rate)
    gen = torch.Generator().manual_seed(0)
    mix = torch.randn(cfg.data.batch_size, samples, generator=gen).to(dev)
    clean = torch.randn(cfg.data.batch_size, cfg.num_sources, samples, generator=gen).to(dev).squeeze(1)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if dev.type == "cuda" and cfg.training.use_amp else None

    def step() -> None:
        with amp if amp is not None else torch.autocast("cpu", enabled=False):
            estimate = model(mix.unsqueeze(1))
        loss = -score_batch(estimate.float(), clean, mix)[0].mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss.item()

    step()  # warm-up: allocator, cuDNN algorithms
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    if dev.type != "cuda":
        return Footprint(0, statistics.median(times), None, 0, str(dev))
    peak = torch.cuda.max_memory_allocated(dev)
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        start = time.perf_counter()
        step()
        torch.cuda.synchronize(dev)
        wall = time.perf_counter() - start
    kernel_us = sum(e.self_device_time_total for e in prof.key_averages())
    busy = min(1.0, kernel_us / 1e6 / wall) if wall > 0 else None
    return Footprint(int(peak), statistics.median(times), busy, torch.cuda.get_device_properties(dev).total_memory,
                     torch.cuda.get_device_name(dev))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    with open(argv[0]) as fh:
        cfg = config_from_flat(json.load(fh))
    print(json.dumps(asdict(measure(cfg, int(argv[1]), argv[2] if len(argv) > 2 else "cuda"))))
    return 0


def flat_json(cfg: Config) -> str:
    """The config as the JSON :func:`main` reads."""
    return json.dumps(to_flat(cfg))


if __name__ == "__main__":
    raise SystemExit(main())
