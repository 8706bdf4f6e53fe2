"""The ConvTasNet training loop: one call, one epoch.

``Trainer.train_epoch()`` trains one epoch, validates, steps the LR scheduler and returns the
metrics a caller reports (``epoch, train_sisdr, val_sisdr, val_sisdri, best_val_sisdr, lr``). The
caller owns the outer loop, so the tuner can report after each epoch and stop a trial whenever
ASHA says so, and ``polsess-tune train`` is a plain ``while not trainer.done`` loop.

Resuming is exact: every random choice of an epoch (shuffle order, MM-IPC variant, crop offset)
is derived from ``(seed, epoch, index)``, and ``state_dict()`` holds everything else (model,
optimizer, scheduler, scaler, counters, curriculum position, RNG state).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from .config import Config, ConfigError, config_from_flat, to_dict, to_flat
from .data import PolSESSDataset, collate
from .device import amp_dtype, pick_device
from .fast_conv import speed_up, wants_compile
from .metrics import score_batch
from .model import build_model

METRIC_KEYS = ("epoch", "train_sisdr", "val_sisdr", "val_sisdri", "best_val_sisdr", "lr")


class TrainingDiverged(RuntimeError):
    """The loss stayed NaN/Inf for ``training.max_bad_batches`` batches in a row."""


def make_dataset(cfg: Config, subset: str, variants: list[str] | None, max_samples: int | None,
                 whole_files: bool = False) -> PolSESSDataset:
    """A PolSESS split as the config describes it (crop length in samples from the corpus rate)."""
    if not cfg.data.data_root:
        raise ConfigError("data.data_root: not set; pass --data-root, set POLSESS_DATA_ROOT, or make a "
                          "demo corpus with `polsess-tune make-data`")
    ds = PolSESSDataset(cfg.data.data_root, subset=subset, task=cfg.data.task, allowed_variants=variants,
                        max_samples=max_samples, seed=cfg.training.seed)
    if cfg.data.segment_seconds and not whole_files:
        ds.segment_samples = round(cfg.data.segment_seconds * ds.sample_rate)
    return ds


class Trainer:
    def __init__(
        self,
        cfg: Config,
        device: str | torch.device | None = None,
        num_threads: int | None = None,
        log: Callable[[str], None] = print,
    ) -> None:
        self.cfg = cfg
        self.log = log
        t = cfg.training
        if num_threads:
            torch.set_num_threads(num_threads)
        self.device = torch.device(device) if device is not None else pick_device(t.device, log)
        self.amp_dtype = amp_dtype(self.device, t.use_amp)
        self.num_workers = cfg.data.num_workers

        torch.manual_seed(t.seed)
        random.seed(t.seed)
        np.random.seed(t.seed % 2**32)
        self.model = build_model(cfg).to(self.device)  # the module: state dicts, validation
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, mode="max", factor=t.lr_factor, patience=t.lr_patience
        )
        # Loss scaling only for fp16; bf16 has fp32's range.
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)

        self.train_set = make_dataset(cfg, "train", None, cfg.data.train_max_samples)
        self.val_set = make_dataset(cfg, "val", t.validation_variants, cfg.data.val_max_samples)
        # What the training pass calls: the module itself, or it compiled (the same parameters).
        self.train_forward: Callable[[torch.Tensor], torch.Tensor] = self.model
        self.step_kind = "eager"
        steps = t.num_epochs * math.ceil(len(self.train_set) / cfg.data.batch_size)
        if wants_compile(t.compile, self.device, steps, fixed_length=bool(self.train_set.segment_samples)):
            length = self.train_set.segment_samples or round(4.0 * self.train_set.sample_rate)
            example = torch.zeros(cfg.data.batch_size, 1, length, device=self.device)
            start = time.perf_counter()
            with self._autocast():
                self.train_forward, self.step_kind = speed_up(self.model, example, log)
            log(f"training step: {self.step_kind} ({time.perf_counter() - start:.1f} s)")

        self.epoch = 0  # epochs finished
        self.best_val_sisdr = -math.inf
        self.epochs_without_improvement = 0
        self.improved = False
        self.history: list[dict[str, float]] = []  # every epoch's metrics, saved with the state
        self.bad_batches_in_a_row = 0  # NaN/Inf losses, counted across epoch boundaries

    # ------------------------------------------------------------------ schedule

    def curriculum_at(self, epoch: int) -> tuple[list[str] | None, bool]:
        """(train variants, LR scheduler on?) for a 1-based epoch; no curriculum → (None, True)."""
        entries = self.cfg.training.curriculum_learning
        if not entries:
            return None, True
        active = [e for e in entries if e["epoch"] <= epoch]
        variants = active[-1]["variants"] if active else entries[0]["variants"]
        return list(variants), any(e.get("lr_scheduler") == "start" for e in active)

    @property
    def done(self) -> bool:
        """Out of epochs, or early-stopped (no val improvement for ``early_stopping_patience``)."""
        patience = self.cfg.training.early_stopping_patience
        stale = patience is not None and self.epochs_without_improvement >= patience
        return self.epoch >= self.cfg.training.num_epochs or stale

    # ------------------------------------------------------------------ one epoch

    def train_epoch(self) -> dict[str, float]:
        epoch = self.epoch + 1
        variants, scheduler_on = self.curriculum_at(epoch)
        self.train_set.allowed_variants = variants
        self.train_set.set_epoch(epoch)
        lr = self.optimizer.param_groups[0]["lr"]

        train_sisdr = self._train_pass(epoch)
        val_sisdr, val_sisdri = self.validate()
        if not math.isfinite(val_sisdr):
            raise TrainingDiverged(f"validation SI-SDR is {val_sisdr} after epoch {epoch}; the model diverged: "
                                   "lower training.lr or set training.grad_clip_norm")

        self.improved = val_sisdr > self.best_val_sisdr
        if self.improved:
            self.best_val_sisdr = val_sisdr
            self.epochs_without_improvement = 0
        else:
            self.epochs_without_improvement += 1
        if scheduler_on:
            self.scheduler.step(val_sisdr)
        self.epoch = epoch
        metrics = {
            "epoch": epoch,
            "train_sisdr": train_sisdr,
            "val_sisdr": val_sisdr,
            "val_sisdri": val_sisdri,
            "best_val_sisdr": self.best_val_sisdr,
            "lr": lr,
        }
        self.history.append(dict(metrics))
        return metrics

    def _loader(self, dataset: torch.utils.data.Dataset, shuffle: bool, epoch: int = 0) -> DataLoader:
        generator = torch.Generator().manual_seed(self.cfg.training.seed * 100_003 + epoch)
        return DataLoader(
            dataset,
            batch_size=self.cfg.data.batch_size,
            shuffle=shuffle,
            generator=generator,
            num_workers=self.num_workers,
            collate_fn=collate,
            pin_memory=self.device.type == "cuda",
        )

    def _autocast(self):
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _train_pass(self, epoch: int) -> float:
        t = self.cfg.training
        accum = t.grad_accumulation_steps
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        total, count, pending = 0.0, 0, 0
        for batch in self._loader(self.train_set, shuffle=True, epoch=epoch):
            mix = batch["mix"].to(self.device, non_blocking=True)
            clean = batch["clean"].to(self.device, non_blocking=True)
            with self._autocast():
                estimate = self.train_forward(mix.unsqueeze(1))
            score, _ = score_batch(estimate.float(), clean, mix)
            loss = -score.mean()
            if not torch.isfinite(loss):
                self.bad_batches_in_a_row += 1
                self.optimizer.zero_grad(set_to_none=True)
                pending = 0
                if self.bad_batches_in_a_row >= t.max_bad_batches:
                    raise TrainingDiverged(
                        f"loss was NaN/Inf for {self.bad_batches_in_a_row} batches in a row in epoch {epoch} "
                        f"(lr={self.optimizer.param_groups[0]['lr']:.3g}); lower training.lr or set "
                        "training.grad_clip_norm"
                    )
                continue
            self.bad_batches_in_a_row = 0
            self.scaler.scale(loss / accum).backward()
            pending += 1
            total += score.detach().sum().item()
            count += score.numel()
            if pending == accum:
                self._step()
                pending = 0
        if pending:
            self._step()
        if count == 0:
            raise TrainingDiverged(
                f"no batch of epoch {epoch} had a finite loss; lower training.lr or set training.grad_clip_norm"
            )
        return total / count

    def _step(self) -> None:
        clip = self.cfg.training.grad_clip_norm
        if clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)

    @torch.no_grad()
    def validate(self, dataset: torch.utils.data.Dataset | None = None) -> tuple[float, float]:
        """Mean (SI-SDR, SI-SDRi) in dB over ``dataset`` (default: the validation split)."""
        scores, improvements = self.scores(self.val_set if dataset is None else dataset)
        return float(np.mean(scores)), float(np.mean(improvements))

    @torch.no_grad()
    def scores(self, dataset: torch.utils.data.Dataset) -> tuple[list[float], list[float]]:
        """SI-SDR and SI-SDRi in dB of every item of ``dataset``, in its order (what :func:`validate`
        averages, and what ``polsess.evaluate`` summarises per variant)."""
        self.model.eval()
        scores: list[float] = []
        improvements: list[float] = []
        for batch in self._loader(dataset, shuffle=False):
            mix = batch["mix"].to(self.device)
            clean = batch["clean"].to(self.device)
            with self._autocast():
                estimate = self.model(mix.unsqueeze(1))
            score, improvement = score_batch(estimate.float(), clean, mix)
            scores += score.tolist()
            improvements += improvement.tolist()
        return scores, improvements

    # ------------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict[str, Any]:
        return {
            "config": to_dict(self.cfg),
            "flat_config": to_flat(self.cfg),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "best_val_sisdr": self.best_val_sisdr,
            "epochs_without_improvement": self.epochs_without_improvement,
            "improved": self.improved,  # whether the last epoch improved (fit writes best.pt by it)
            "bad_batches_in_a_row": self.bad_batches_in_a_row,  # the NaN guard counts across epochs
            "history": self.history,
            "curriculum": self.curriculum_at(self.epoch + 1)[0],
            "rng": {
                "torch": torch.get_rng_state(),
                "python": random.getstate(),
                "numpy": np.random.get_state(),
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch = state["epoch"]
        self.best_val_sisdr = state["best_val_sisdr"]
        self.epochs_without_improvement = state["epochs_without_improvement"]
        # Checkpoints written before these two were saved resume as a fresh epoch would start.
        self.improved = bool(state.get("improved", False))
        self.bad_batches_in_a_row = int(state.get("bad_batches_in_a_row", 0))
        self.history = [dict(m) for m in state.get("history", [])]
        torch.set_rng_state(state["rng"]["torch"])
        random.setstate(state["rng"]["python"])
        np.random.set_state(state["rng"]["numpy"])

    def save(self, path: str | Path) -> Path:
        """Write atomically, so a kill mid-write never leaves a corrupt checkpoint behind."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        torch.save(self.state_dict(), tmp)
        tmp.replace(path)
        return path

    @classmethod
    def from_checkpoint(
        cls, path: str | Path, overrides: dict[str, Any] | None = None, **kwargs: Any
    ) -> Trainer:
        """Rebuild the trainer a checkpoint came from (``overrides``: e.g. a new data root)."""
        state = load_checkpoint(path)
        flat = dict(state["flat_config"])
        flat.update(overrides or {})
        trainer = cls(config_from_flat(flat, source=str(path)), **kwargs)
        trainer.load_state_dict(state)
        return trainer


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such checkpoint")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    # Broad on purpose: a cut or garbled file fails torch.load in many ways (measured on flipped bytes and cut
    # files: RuntimeError, OSError, UnicodeDecodeError, UnpicklingError, EOFError, even MemoryError), and
    # resume relies on every one being a ConfigError to fall back to an older checkpoint. The cause is kept.
    except Exception as exc:
        raise ConfigError(f"{path}: not a polsess-tune checkpoint ({type(exc).__name__}); pass a last.pt or "
                          "best.pt written by `polsess-tune train`") from exc
    if not isinstance(state, dict) or "flat_config" not in state or "model" not in state:
        raise ConfigError(f"{path}: not a polsess-tune checkpoint; pass a last.pt or best.pt written by "
                          "`polsess-tune train`")
    return state
