"""Train one config into a run folder: what ``polsess-tune train`` does, without Ray.

The folder holds ``config.yaml`` (the resolved config), ``last.pt`` (every epoch), ``best.pt``
(best val SI-SDR so far) and ``metrics.jsonl`` (one JSON object per epoch). A folder that already
holds a run is resumed only when asked, never overwritten.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .config import Config, ConfigError, save_config
from .device import cpu_share
from .model import count_parameters
from .trainer import Trainer

RESUME_OVERRIDABLE = ("training.num_epochs", "data.data_root", "training.device")


def fit(cfg: Config | None, out_dir: str | Path, resume: bool = False, log: Callable[[str], None] = print,
        resume_overrides: dict[str, Any] | None = None, cpus: int | None = None) -> Trainer:
    """Train (or resume) into ``out_dir``; ``cpus``: the CPUs to use, as a trial uses them
    (:func:`polsess.device.cpu_share`); None leaves torch's and the config's defaults."""
    out = Path(out_dir)
    last = out / "last.pt"
    if last.exists() and not resume:
        raise ConfigError(f"{out}: already holds a training run; pass --resume to continue it or choose "
                          "another --out")
    if resume and not last.exists():
        raise ConfigError(f"{out}: no last.pt to resume from; drop --resume to start a new run")
    out.mkdir(parents=True, exist_ok=True)

    if resume:
        overrides = dict(resume_overrides or {})
        fixed = sorted(set(overrides) - set(RESUME_OVERRIDABLE))
        if fixed:
            raise ConfigError(f"{fixed[0]}: cannot change on --resume (only {', '.join(RESUME_OVERRIDABLE)}); "
                              "start a new run with another --out")
        trainer = Trainer.from_checkpoint(last, overrides=overrides, log=log, num_threads=cpus)
        if overrides:
            save_config(trainer.cfg, out / "config.yaml", header="Resolved by polsess-tune train (resumed)")
        # The checkpoint's history is the truth: a kill between two writes can leave metrics.jsonl
        # an epoch ahead of or behind last.pt.
        (out / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in trainer.history))
        log(f"resuming {out} after epoch {trainer.epoch}")
    else:
        assert cfg is not None
        trainer = Trainer(cfg, log=log, num_threads=cpus)
        save_config(trainer.cfg, out / "config.yaml", header="Resolved by polsess-tune train")
    if cpus is not None:
        torch.set_num_threads(cpu_share(cpus, 0)[0])
        trainer.num_workers = cpu_share(cpus, trainer.num_workers)[1]
    log(f"torch threads: {torch.get_num_threads()}, loader workers: {trainer.num_workers}")
    log(f"ConvTasNet {count_parameters(trainer.model) / 1e6:.2f}M params on {trainer.device}; "
        f"{len(trainer.train_set)} train / {len(trainer.val_set)} val rows; task {trainer.cfg.data.task}")

    with (out / "metrics.jsonl").open("a") as metrics_file:
        while not trainer.done:
            start = time.perf_counter()
            metrics = trainer.train_epoch()
            trainer.save(last)
            if trainer.improved:
                trainer.save(out / "best.pt")
            metrics_file.write(json.dumps(metrics) + "\n")
            metrics_file.flush()
            log(
                f"epoch {metrics['epoch']:>3}  train {metrics['train_sisdr']:6.2f} dB  "
                f"val {metrics['val_sisdr']:6.2f} dB  val SI-SDRi {metrics['val_sisdri']:5.2f} dB  "
                f"best {metrics['best_val_sisdr']:6.2f}  lr {metrics['lr']:.2e}  "
                f"({time.perf_counter() - start:.1f} s)"
            )
    return trainer

