"""What a model costs, next to how well it separates: size, compute per second of audio, speed.

Papers in speech separation report SI-SDR beside parameter count and MACs (Conv-TasNet's own
table does), so a quality-against-size search needs the same three figures for every trial:

- ``params_m``: trainable parameters, in millions (exact);
- ``gmacs_per_s``: multiply-accumulates per second of input audio, in billions (exact for the
  convolutions and matrix products, counted by torch's own ``FlopCounterMode`` on the meta device
  so no real compute runs; element-wise ops such as gLN and PReLU are not counted, as usual);
- ``rtf``: real-time factor of inference on the trial's device (seconds of compute per second of
  audio, batch 1, ``RTF_SECONDS`` of input, median of ``RTF_REPEATS`` timed runs after one warm-up).
  Measured, so it varies with the machine's load; below 1 is faster than real time.
"""

from __future__ import annotations

import copy
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

RTF_SECONDS = 4.0
RTF_REPEATS = 3


def params_millions(model: torch.nn.Module) -> float:
    return sum(p.numel() for p in model.parameters() if p.requires_grad) / 1e6


def gmacs_per_second(model: torch.nn.Module, sample_rate: int) -> float:
    """MACs of one forward pass over 1 s of ``(1, 1, sample_rate)`` audio, in billions.

    Runs on a meta-device copy: shapes only, no memory or time spent on real data.
    """
    meta = copy.deepcopy(model).to("meta")
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        meta(torch.empty(1, 1, sample_rate, device="meta"))
    return counter.get_total_flops() / 2 / 1e9  # one MAC = two FLOPs


@torch.no_grad()
def real_time_factor(model: torch.nn.Module, sample_rate: int, device: str | torch.device = "cpu",
                     seconds: float = RTF_SECONDS, repeats: int = RTF_REPEATS) -> float:
    """Median inference time of ``seconds`` of audio, divided by ``seconds`` (model left as it was)."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    # A generator of its own: the global RNG, which the trainer seeded, stays untouched.
    noise = torch.Generator().manual_seed(0)
    x = torch.randn(1, 1, round(seconds * sample_rate), generator=noise).to(device)

    def timed() -> float:
        start = time.perf_counter()
        model(x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start

    try:
        timed()  # warm-up: allocator, cuDNN algorithm choice
        return statistics.median(timed() for _ in range(repeats)) / seconds
    finally:
        model.train(was_training)


def model_cost(model: torch.nn.Module, sample_rate: int, device: str | torch.device = "cpu") -> dict[str, float]:
    """``{"params_m", "gmacs_per_s", "rtf"}`` of ``model`` (on ``device``) at ``sample_rate``."""
    return {
        "params_m": params_millions(model),
        "gmacs_per_s": gmacs_per_second(model, sample_rate),
        "rtf": real_time_factor(model, sample_rate, device),
    }
