"""What a sweep file says, resolved: :class:`SearchSpec` (the search) and :class:`SchedulerSpec`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .param import Param


@dataclass
class SchedulerSpec:
    """Which Ray trial scheduler to build; one iteration = one epoch."""

    type: str = "fifo"  # "asha" | "median" | "fifo"
    grace_period: int | None = None
    reduction_factor: float | None = None
    max_t: int | None = None
    brackets: int = 1
    notes: list[str] = field(default_factory=list)

    def fit_to(self, max_t: int) -> None:
        """Set ``max_t`` (the epochs a trial trains) and clamp the grace period to it, with a note.

        The one place the clamp lives: a sweep file, ``--grace-period`` and a stage's epochs all end here.
        """
        self.max_t = max_t
        if self.grace_period is not None and self.grace_period > max_t:
            self.notes.append(f"grace period {self.grace_period} > max_t {max_t} epochs; clamped to {max_t}")
            self.grace_period = max_t


@dataclass
class SearchSpec:
    """Everything the driver needs to run one search, with config paths instead of W&B names."""

    file: Path | None
    base_config: Path | None
    space: dict[str, Param]
    fixed: dict[str, Any]
    method: str
    metric: str
    mode: str
    target: float | None
    scheduler: SchedulerSpec
    num_samples: int | None
    max_concurrent: int | None = None
    resources_per_trial: dict[str, float] | None = None
    seed: int | None = None
    points_to_evaluate: list[dict[str, Any]] = field(default_factory=list)
    project: str | None = None
    entity: str | None = None
    name: str | None = None
    description: str | None = None
    tags: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    stages: list[dict[str, Any]] = field(default_factory=list)  # raw `stages:`; see space.stages
    validate: dict[str, Any] | None = None  # `validate:` after the last stage: {top_k, seeds, set}
    sampler: str = "tpe"  # tune.sampler: what method bayes samples with (tpe | gp | random)
    # Every objective, (name, "max"|"min"), the first being (metric, mode); one entry for a plain search.
    objectives: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.objectives:
            self.objectives = [(self.metric, self.mode)]

    @property
    def multi_objective(self) -> bool:
        """A Pareto search: Optuna gets every objective, Ray's scheduler the first."""
        return len(self.objectives) > 1

    @property
    def grid_size(self) -> int | None:
        """Points in the grid (1 when nothing is searched); None for bayes/random."""
        if self.method != "grid":
            return None
        return math.prod(len(p.values or ()) for p in self.space.values())
