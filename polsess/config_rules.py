"""What a valid experiment config is: the corpus's tasks and variants, and the rules the trainer and
torchaudio's ConvTasNet impose, each broken rule a :class:`ConfigError` naming the key and the fix.

Apart from :mod:`polsess.config` (which loads and merges) so that the rules read as one list; the
config's shape is :mod:`polsess.config_schema`, which both import (neither imports the other).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config_schema import Config

TASKS = ("ES", "EB", "SB")
INDOOR_VARIANTS = ("SER", "SR", "ER", "R", "C")
OUTDOOR_VARIANTS = ("SE", "S", "E", "C")
ALL_VARIANTS = ("SER", "SR", "ER", "R", "SE", "S", "E", "C")


class ConfigError(ValueError):
    """A configuration problem the user can fix; the message names the key and the fix.

    ``key`` is the config path (or name) the message is about, when there is one, so that a caller
    can say where the bad value came from (a file, ``--set``, a flag)."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


def validate(cfg: Config) -> None:
    """Reject values the trainer or torchaudio cannot honour, naming the key and the fix."""
    d, m, t = cfg.data, cfg.model.convtasnet, cfg.training
    _check(d.dataset_type == "polsess", "data.dataset_type", d.dataset_type, "only 'polsess' is supported")
    _check(d.task in TASKS, "data.task", d.task, "use one of ES, EB, SB")
    _check(d.batch_size >= 1, "data.batch_size", d.batch_size, "use a positive integer")
    _check(d.num_workers >= 0, "data.num_workers", d.num_workers, "use 0 or more")
    for key in ("train_max_samples", "val_max_samples", "test_max_samples"):
        value = getattr(d, key)
        _check(value is None or value >= 1, f"data.{key}", value, "use a positive integer or null")
    _check(
        d.segment_seconds is None or d.segment_seconds > 0,
        "data.segment_seconds", d.segment_seconds, "use a positive number of seconds or null",
    )

    _check(cfg.model.model_type == "convtasnet", "model.model_type", cfg.model.model_type,
           "only 'convtasnet' is supported")
    for key in ("N", "B", "H", "X", "R"):
        _check(getattr(m, key) >= 1, f"model.convtasnet.{key}", getattr(m, key), "use a positive integer")
    _check(m.P == 3, "model.convtasnet.P", m.P, "torchaudio's ConvTasNet supports only P: 3")
    _check(m.norm_type == "gLN", "model.convtasnet.norm_type", m.norm_type,
           "torchaudio's ConvTasNet implements only gLN; set norm_type: gLN")
    _check(not m.causal, "model.convtasnet.causal", m.causal,
           "torchaudio's ConvTasNet is non-causal only; set causal: false")
    _check(m.kernel_size >= 2 and m.kernel_size % 2 == 0, "model.convtasnet.kernel_size", m.kernel_size,
           "use an even kernel size >= 2 (the stride is kernel_size/2)")
    _check(m.stride is None or m.stride == m.kernel_size // 2, "model.convtasnet.stride", m.stride,
           f"torchaudio fixes the stride at kernel_size/2 = {m.kernel_size // 2}; set it or remove it")
    _check(m.C is None or cfg.num_sources == m.C, "model.convtasnet.C", m.C,
           f"task {d.task} needs C: {cfg.num_sources}; set it or remove it")
    _check(m.mask_nonlinear in ("relu", "sigmoid"), "model.convtasnet.mask_nonlinear", m.mask_nonlinear,
           "use relu or sigmoid")

    _check(t.num_epochs >= 1, "training.num_epochs", t.num_epochs, "use a positive integer")
    _check(t.lr > 0, "training.lr", t.lr, "the learning rate must be > 0")
    _check(t.weight_decay >= 0, "training.weight_decay", t.weight_decay, "use 0 or more")
    _check(t.grad_clip_norm is None or t.grad_clip_norm > 0, "training.grad_clip_norm", t.grad_clip_norm,
           "use a positive number, or null for no clipping")
    _check(0 < t.lr_factor < 1, "training.lr_factor", t.lr_factor, "use a factor between 0 and 1")
    _check(t.lr_patience >= 0, "training.lr_patience", t.lr_patience, "use 0 or more")
    _check(t.grad_accumulation_steps >= 1, "training.grad_accumulation_steps", t.grad_accumulation_steps,
           "use 1 or more")
    _check(t.max_bad_batches >= 1, "training.max_bad_batches", t.max_bad_batches, "use 1 or more")
    _check(t.early_stopping_patience is None or t.early_stopping_patience >= 1,
           "training.early_stopping_patience", t.early_stopping_patience, "use a positive integer or null")
    _check(re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", t.device) is not None, "training.device", t.device,
           "use auto, cpu, cuda or cuda:N")
    _check(t.compile in ("auto", "on", "off", "True", "False"), "training.compile", t.compile,
           "use auto (compiled on CUDA), on or off")
    if t.validation_variants is not None:
        _check_variants("training.validation_variants", t.validation_variants)
    if t.curriculum_learning is not None:
        _check_curriculum(t.curriculum_learning)


def _check(ok: bool, key: str, value: Any, fix: str) -> None:
    if not ok:
        shown = repr(value)
        if len(shown) > 200:  # a list of 10⁵ variants from a YAML alias is not worth a screenful
            shown = f"{shown[:150]} … {shown[-20:]}"
        raise ConfigError(f"{key}: {shown} is not allowed; {fix}", key=key)


def _check_variants(key: str, variants: list[str]) -> None:
    _check(len(variants) > 0, key, variants, f"list at least one of {', '.join(ALL_VARIANTS)}")
    for v in variants:
        _check(v in ALL_VARIANTS, key, v, f"MM-IPC variants are {', '.join(ALL_VARIANTS)}")


def _check_curriculum(entries: list[dict[str, Any]]) -> None:
    key = "training.curriculum_learning"
    _check(len(entries) > 0, key, entries, "give at least one {epoch, variants} entry or null")
    last = 0
    for i, entry in enumerate(entries):
        k = f"{key}[{i}]"
        _check(isinstance(entry, dict), k, entry, "each entry is {epoch: N, variants: [...]}")
        unknown = set(entry) - {"epoch", "variants", "lr_scheduler"}
        _check(not unknown, k, sorted(unknown), "entries take only epoch, variants, lr_scheduler")
        epoch = entry.get("epoch")
        _check(isinstance(epoch, int) and not isinstance(epoch, bool) and epoch > last, f"{k}.epoch", epoch,
               "epochs are integers >= 1, increasing")
        last = epoch
        _check(isinstance(entry.get("variants"), list), f"{k}.variants", entry.get("variants"),
               "give a list of variants")
        _check_variants(f"{k}.variants", entry["variants"])
        _check(entry.get("lr_scheduler") in (None, "start"), f"{k}.lr_scheduler", entry.get("lr_scheduler"),
               "the only value is 'start'")
