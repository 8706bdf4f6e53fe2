"""What a command asks of the tune layer: the parsed flags as frozen, typed requests.

``tune_app.commands`` builds a :class:`RunRequest` or :class:`ValidateRequest` from argparse's
namespace; :mod:`tune_app.tune` and below take these and never see argparse, so a reader follows one
typed value instead of a namespace whose attributes depend on which command filled it. The defaults
live here, once: the parser shows them in ``--help`` and a request built elsewhere (a staged search's
``validate:`` step, a resume) gets the same ones.

A staged search saves its request in ``stages.json`` as plain JSON with :data:`REQUEST_VERSION`
(:meth:`RunRequest.to_saved`); ``resume`` reads it back through :meth:`RunRequest.from_saved`, so the
plan it rebuilds is the one the first run made, from the same values (``--set`` already parsed, the
corpus path already absolute).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import TuneInputError

REQUEST_VERSION = 1  # the layout of RunRequest.to_saved(); bump when a field changes meaning
DEFAULT_NUM_SAMPLES = 8  # trials when neither --num-samples, run_cap/count nor a budget says
DEFAULT_STORAGE = "runs"  # --storage: experiments go to ./runs
DEFAULT_MAX_FAILURES = 2  # retries of a trial whose worker died
DEFAULT_WANDB_PROJECT = "polsess-tune"  # when neither --wandb-project nor the sweep's project: names one
DEFAULT_CPUS_PER_TRIAL = 1.0
DEFAULT_VALIDATE_TOP = 3
DEFAULT_SEEDS = (42, 123, 456)  # the users' own shell loop over seeds


@dataclass(frozen=True)
class RunRequest:
    """``polsess-tune run`` (and a staged search's resume): what the user asked for, nothing resolved yet.

    ``None`` means "not given": the sweep file's value, then the default, applies (tune.plan decides).
    ``overrides`` are ``--set``, the short flags and ``--data-root`` (key as given → value); ``origins``
    names the flag each came from, so a bad value is blamed on it.
    """

    space: Path | None = None
    config: Path | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    origins: Mapping[str, str] = field(default_factory=dict)  # override key → the flag that gave it (errors)
    num_samples: int | None = None
    budget_epochs: int | None = None
    max_concurrent: int | None = None
    cpus_per_trial: float | None = None
    gpus_per_trial: float | str | None = None  # a number, or "auto" (tune.packing measures it)
    storage: str | None = None
    name: str | None = None
    wandb: str | None = None  # offline, online, disabled; None: online with an API key, else offline
    wandb_project: str | None = None
    seed: int | None = None
    grace_period: int | None = None
    reduction_factor: float | None = None
    max_failures: int = DEFAULT_MAX_FAILURES
    address: str | None = None
    warm_start: str | None = None
    optuna_storage: str | None = None
    resume: bool = False
    verbose: bool = False
    dry_run: bool = False
    as_json: bool = False  # --json with --dry-run
    argv: tuple[str, ...] = ()  # the command line as typed, kept in stages.json for a person to read

    def to_saved(self) -> dict[str, Any]:
        """Plain JSON values with a version, for ``stages.json``."""
        out: dict[str, Any] = {"version": REQUEST_VERSION}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Path):
                value = str(value)
            elif isinstance(value, Mapping):
                value = dict(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_saved(cls, saved: Mapping[str, Any], where: str) -> RunRequest:
        """The request :meth:`to_saved` wrote; ``where`` (the file) names the culprit in an error."""
        version = saved.get("version")
        if version != REQUEST_VERSION:
            raise TuneInputError(f"{where}: saved by a polsess-tune whose run request has version {version!r} "
                                 f"(this one reads {REQUEST_VERSION}); resume it with the version that started it")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(saved) - names - {"version"})
        if unknown:
            raise TuneInputError(f"{where}: unknown run request field(s) {', '.join(unknown)}; resume it with the "
                                 "polsess-tune version that started it")
        values = {k: v for k, v in saved.items() if k in names}
        for key in ("space", "config"):
            if values.get(key) is not None:
                values[key] = Path(values[key])
        values["argv"] = tuple(values.get("argv") or ())
        values["overrides"] = dict(values.get("overrides") or {})
        values["origins"] = dict(values.get("origins") or {})
        return cls(**values)


@dataclass(frozen=True)
class ValidateRequest:
    """``polsess-tune validate`` (and a staged search's ``validate:`` step): top-K configs × seeds.

    ``overrides``: config paths (already resolved) → values, applied to every validated config.
    ``None`` resources and W&B mode: the source search's, then the defaults.
    """

    experiment: str
    top: int = DEFAULT_VALIDATE_TOP
    seeds: tuple[int, ...] = DEFAULT_SEEDS
    overrides: Mapping[str, Any] = field(default_factory=dict)
    name: str | None = None
    storage: str | None = None
    max_concurrent: int | None = None
    cpus_per_trial: float | None = None
    gpus_per_trial: float | None = None
    wandb: str | None = None
    max_failures: int = DEFAULT_MAX_FAILURES
    dry_run: bool = False
