"""What a sweep file says, resolved: :class:`SearchSpec` (the search), :class:`SchedulerSpec` and
:class:`Stage` (one step of a staged search, :mod:`.stages`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .param import Param
from .prior import PriorSetting


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
        if self.grace_period is None or self.type == "fifo" or self.grace_period < max_t:
            return
        what = "ASHA" if self.type == "asha" else "the median rule"
        clamp = (f"grace period {self.grace_period} > max_t {max_t} epochs; clamped to {max_t}, so "
                 if self.grace_period > max_t else f"grace period {max_t} = max_t {max_t} epochs, so ")
        self.notes.append(f"{clamp}{what} stops nothing: every trial trains all {max_t} epochs before it is "
                          f"first judged; lower the grace period below {max_t} or train more epochs")
        self.grace_period = max_t

    def epochs_per_trial(self) -> float:
        """The mean epochs a trial trains under this scheduler, to size a budget of trial-epochs in
        trials (the sampler's start-up phase). ASHA: every trial reaches the first rung (the grace
        period g) and 1/eta of those reaching a rung go on to the next (g·eta, g·eta², …, max_t);
        FIFO and the median rule: max_t (the median rule's stops cannot be known in advance)."""
        max_t = self.max_t or 1
        if self.type != "asha" or not self.grace_period or not self.reduction_factor:
            return float(max_t)
        eta, reach = self.reduction_factor, 1.0
        rung = mean = float(min(self.grace_period, max_t))
        while rung < max_t:
            nxt = min(rung * eta, float(max_t))
            reach /= eta
            mean += (nxt - rung) * reach
            rung = nxt
        return mean


DEFAULT_MARGIN = 0.25  # a narrowed range: the top-K's span widened by this share of it on each side


@dataclass(frozen=True)
class Stage:
    """One entry of a sweep's ``stages:``, checked: its trials, its fidelity (``overrides``: config
    path → value, e.g. epochs and training rows) and how it narrows the previous stage's space
    (``top_k`` and ``margin``, or an ``explicit`` space of its own)."""

    index: int
    name: str
    num_samples: int
    overrides: dict[str, Any] = field(default_factory=dict)
    grace_period: int | None = None
    top_k: int | None = None
    margin: float = DEFAULT_MARGIN
    explicit: dict[str, Param] = field(default_factory=dict)


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
    stages: list[Stage] = field(default_factory=list)  # `stages:`, checked (space.stages.read_stages)
    validate: dict[str, Any] | None = None  # `validate:` after the last stage: {top_k, seeds, set}
    budget_epochs: int | None = None  # tune.budget_epochs: end the search after this many trial-epochs
    sampler: str = "tpe"  # tune.sampler: what method bayes samples with (tpe | gp | random)
    # Every objective, (name, "max"|"min"), the first being (metric, mode); one entry for a plain search.
    objectives: list[tuple[str, str]] = field(default_factory=list)
    prior: PriorSetting = field(default_factory=PriorSetting)  # tune.prior: the base config as the prior

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
