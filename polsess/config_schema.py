"""The experiment config's shape: the research YAML's ``data`` / ``model.convtasnet`` / ``training``
sections as dataclasses, with their defaults.

Apart from :mod:`polsess.config` (loading, merging, flat paths) and :mod:`polsess.config_rules`
(what values are valid) so that both can import it and neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class DataConfig:
    dataset_type: str = "polsess"
    data_root: str | None = None
    task: str = "ES"
    batch_size: int = 4
    num_workers: int = 1
    train_max_samples: int | None = None
    val_max_samples: int | None = None
    test_max_samples: int | None = None
    # Crop length in seconds: random crop in train, fixed (start) crop in val/test. None = whole files.
    segment_seconds: float | None = None


@dataclass
class ConvTasNetConfig:
    """Luo & Mesgarani's names. torchaudio implements P=3, gLN, non-causal, stride = kernel_size/2."""

    N: int = 256
    B: int = 256
    H: int = 512
    P: int = 3
    X: int = 8
    R: int = 4
    C: int | None = None  # follows the task (SB → 2, else 1) when not given
    norm_type: str = "gLN"
    kernel_size: int = 16
    stride: int | None = None  # kernel_size // 2 when not given
    causal: bool = False
    mask_nonlinear: str = "relu"


@dataclass
class ModelConfig:
    model_type: str = "convtasnet"
    convtasnet: ConvTasNetConfig = field(default_factory=ConvTasNetConfig)


@dataclass
class TrainingConfig:
    num_epochs: int = 50
    lr: float = 1e-3
    weight_decay: float = 0.0
    grad_clip_norm: float | None = 5.0
    lr_factor: float = 0.5
    lr_patience: int = 2
    use_amp: bool = True  # bf16 (or fp16) autocast on CUDA; always off on the CPU
    device: str = "auto"  # auto | cpu | cuda | cuda:N; cuda without a GPU falls back to the CPU
    compile: str = "auto"  # auto | on | off: torch.compile + shifted depthwise convs (polsess.fast_conv)
    seed: int = 42
    early_stopping_patience: int | None = None
    grad_accumulation_steps: int = 1
    max_bad_batches: int = 20  # NaN/Inf losses in a row before the run gives up
    validation_variants: list[str] | None = None
    curriculum_learning: list[dict[str, Any]] | None = None
    # Kept from the research configs so they load unchanged; the trainer does not read them.
    amp_eps: float = 1e-4
    save_dir: str = "checkpoints"
    use_wandb: bool = False
    wandb_project: str = "polsess-separation"
    log_level: str = "INFO"


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)

    @property
    def convtasnet(self) -> ConvTasNetConfig:
        return self.model.convtasnet

    @property
    def num_sources(self) -> int:
        return 2 if self.data.task == "SB" else 1
