"""Everything a search needs, resolved and checked before any Ray work starts.

``prepare_run`` turns a :class:`~tune_app.tune.requests.RunRequest` (the typed flags; argparse stops
in ``tune_app.commands``) into a :class:`RunPlan`. Every user mistake (sweep file, base config, flags,
an existing experiment) is found here and raised as one-line error, so a bad search costs seconds,
not a Ray start-up.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polsess.config import Config, ConfigError, config_from_flat, load_config, to_flat

from ..errors import TuneInputError
from ..experiment import location
from ..experiment.layout import SEARCH_FILE, WANDB_DIR
from ..experiment.location import local_folder
from ..experiment.warm_start import WarmStart
from ..space import SearchSpec, describe, load_search, sample_configs
from ..space.sampling import search_prior
from . import checks
from .requests import DEFAULT_NUM_SAMPLES, DEFAULT_STORAGE, DEFAULT_WANDB_PROJECT, RunRequest


@dataclass(frozen=True)
class Validation:
    """What a validation retrains, as ``search.json`` records it under ``validation``: the source
    experiment, its top trials (best first) and the seeds each is trained with, and the ``--set`` values."""

    source: str
    top: tuple[str, ...]
    seeds: tuple[int, ...]
    overrides: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "top": list(self.top), "seeds": list(self.seeds),
                "overrides": dict(self.overrides)}


@dataclass
class RunPlan:
    spec: SearchSpec
    base: Config  # the base experiment config with fixed values and --set applied
    name: str
    storage: str  # absolute path or URI of the parent folder
    num_samples: int  # trials at most (with a budget: a cap that the budget reaches first)
    max_concurrent: int | None
    cpus_per_trial: float
    gpus_per_trial: float
    seed: int
    wandb_mode: str
    wandb_project: str
    wandb_note: str
    max_failures: int
    address: str | None = None
    resume: bool = False
    notes: list[str] = field(default_factory=list)
    warm_start: WarmStart | None = None
    verbose: bool = False  # Ray's own status table and logs instead of one line per trial event
    optuna_storage_url: str | None = None  # --optuna-storage; None: SQLite in a local experiment folder
    study_prefix: str = ""  # a stage's study is "<staged search>/<stage>" in a shared storage
    gpus_auto: bool = False  # --gpus-per-trial auto: gpus_per_trial is measured before the search (packing)
    keeps_study: bool = True  # False for a validation: its trials come from a list, not a sampler
    validation: Validation | None = None  # what `validate` retrains (tune.validate), for search.json
    budget_epochs: int | None = None  # --budget-epochs / tune.budget_epochs (tune.budget)

    @property
    def trials_expected(self) -> int:
        """How many trials the search will run: ``num_samples``, or what its budget of trial-epochs
        buys at the scheduler's mean epochs per trial (it sizes the sampler's start-up phase)."""
        if self.budget_epochs is None:
            return self.num_samples
        per_trial = self.spec.scheduler.epochs_per_trial()
        return max(1, min(self.num_samples, round(self.budget_epochs / per_trial)))

    @property
    def optuna_storage(self) -> str | None:
        """Where the study lives (tune_app.experiment.study); None: in memory (a URI experiment)."""
        from ..experiment.study import default_storage_url

        if not self.keeps_study:
            return None
        if self.optuna_storage_url:
            return self.optuna_storage_url
        return None if self.is_uri else default_storage_url(self.experiment_path)

    @property
    def study_name(self) -> str:
        return self.study_prefix + self.name

    @property
    def experiment_path(self) -> str:
        return f"{self.storage.rstrip('/')}/{self.name}"

    @property
    def is_uri(self) -> bool:
        return "://" in self.storage

    @property
    def local_path(self) -> Path:
        """The folder this machine writes: the experiment folder, or a URI experiment's driver folder
        (tune_app.experiment.location: W&B runs, the lock, a mirror of the bucket's files)."""
        return local_folder(self.experiment_path)


def wandb_key_configured(env: Mapping[str, str] = os.environ) -> bool:
    """An API key in the env, or `wandb login`'s netrc entry (we never read the key itself)."""
    if env.get("WANDB_API_KEY"):
        return True
    netrc = Path(env.get("NETRC", Path.home() / ".netrc"))
    try:
        return "api.wandb.ai" in netrc.read_text()
    except OSError:
        return False


def choose_wandb_mode(requested: str | None) -> tuple[str, str]:
    if requested:
        return requested, ""
    if os.environ.get("WANDB_MODE") in ("offline", "online", "disabled"):
        return os.environ["WANDB_MODE"], ""
    if wandb_key_configured():
        return "online", ""
    return "offline", ("W&B: no API key configured, logging offline; upload later with "
                       f"`wandb sync <experiment>/{WANDB_DIR}/wandb/offline-run-*`")


def prepare_run(request: RunRequest, default_space: Path, default_config: Path) -> RunPlan:
    """The checked plan of ``request``, in the order a reader would check it by hand. Each step resolves
    one thing or raises one line; a dry run makes the same checks, and skips only those of the folders
    a run would write (the experiment folder, a new Optuna study)."""
    space_file = _sweep_file(request.space or default_space)
    spec = load_search(space_file, base_config_override=request.config)
    notes = list(spec.notes)
    base = _base_config(spec, spec.base_config or default_config, request, notes)
    base_flat = to_flat(base)
    _complete_points(spec, base_flat, space_file)
    warm = _warm_start(request.warm_start, spec, base_flat)
    if not spec.space and not request.dry_run:
        raise TuneInputError(f"{space_file}: parameters: nothing left to search; add a distribution or values")
    budget, num_samples = _budget_and_trials(request, spec, notes)
    seed = _seed(request, spec)
    checks.check_max_failures(request.max_failures)
    res = checks.resources(request, spec, notes)
    _apply_scheduler_flags(request, spec, base)
    _check_samples(spec, base, seed, space_file)
    storage, name = _storage_and_name(request, spec, space_file)
    mode, wandb_note = choose_wandb_mode(request.wandb)
    plan = RunPlan(
        spec=spec, base=base, name=name, storage=storage, num_samples=num_samples,
        max_concurrent=res.max_concurrent, cpus_per_trial=res.cpus, gpus_per_trial=res.gpus, seed=seed,
        wandb_mode=mode, wandb_project=request.wandb_project or spec.project or DEFAULT_WANDB_PROJECT,
        wandb_note=wandb_note, max_failures=request.max_failures, address=request.address, resume=request.resume,
        notes=notes, warm_start=warm, verbose=request.verbose, gpus_auto=res.gpus_auto, budget_epochs=budget,
        optuna_storage_url=request.optuna_storage,
    )
    _check_destination(plan, request.dry_run)
    _check_optuna_storage(plan, request.dry_run)
    return plan


def _sweep_file(path: Path) -> Path:
    """``--space`` must name a file; a folder is said to be one (with the sweep files in it, if any)."""
    if Path(path).expanduser().is_dir():
        inside = sorted(p.name for p in Path(path).expanduser().glob("*.y*ml"))
        hint = f" ({', '.join(inside[:3])}{', ...' if len(inside) > 3 else ''} in it)" if inside else ""
        raise TuneInputError(f"--space {path}: a folder, not a sweep file; give one of its YAML files{hint}")
    return path


def _base_config(spec: SearchSpec, base_path: Path, request: RunRequest, notes: list[str]) -> Config:
    """The base config with the sweep's fixed values and ``--set`` applied (a bad value blamed on its
    flag); a ``--set`` of a searched parameter pins it: it leaves the space (with a note)."""
    pinned: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for name, value in request.overrides.items():
        path = _resolve(name)
        pinned[path] = value
        origins[path] = request.origins.get(name) or f"--set {name}"
        if path in spec.space:
            del spec.space[path]
            notes.append(f"{path} pinned to {value!r} by --set; not searched")
    try:
        return load_config(base_path, {**spec.fixed, **pinned}, origins=origins)
    except ConfigError as exc:
        raise TuneInputError(str(exc)) from None


def _complete_points(spec: SearchSpec, base_flat: dict[str, Any], space_file: Path) -> None:
    """A point may name only some searched parameters; the rest come from the base config (Ray's
    OptunaSearch wants every key), which must then lie inside the space."""
    for i, point in enumerate(spec.points_to_evaluate):
        for path, param in spec.space.items():
            if path in point:
                continue
            value = base_flat[path]
            problem = param.why_outside(value)
            if problem:
                raise TuneInputError(
                    f"{space_file}: tune.points_to_evaluate[{i}]: {path} not given and the base config's "
                    f"{value!r} {problem}; give {path} in the point"
                )
            point[path] = value


def _warm_start(source: str | None, spec: SearchSpec, base_flat: dict[str, Any]) -> WarmStart | None:
    if not source:
        return None
    from ..experiment.warm_start import load_warm_start

    return load_warm_start(source, spec, base_flat)


def _seed(request: RunRequest, spec: SearchSpec) -> int:
    """The sampler's seed: ``--seed``, else the file's ``tune.seed``, else 0."""
    seed = request.seed if request.seed is not None else (spec.seed if spec.seed is not None else 0)
    checks.check_seed(seed)
    return seed


def _apply_scheduler_flags(request: RunRequest, spec: SearchSpec, base: Config) -> None:
    if request.grace_period is not None:
        spec.scheduler.grace_period = request.grace_period
    if request.reduction_factor is not None:
        spec.scheduler.reduction_factor = request.reduction_factor
    checks.check_scheduler(spec, base)
    # A clamp to the epochs --set or --config gave (the sweep's own was noted when it was read).
    for note in spec.scheduler.notes:
        if f"scheduler: {note}" not in spec.notes:
            spec.notes.append(f"scheduler: {note}")


def _check_samples(spec: SearchSpec, base: Config, seed: int, space_file: Path) -> None:
    """Every sampled config must build: a range that makes an invalid model fails here, not in a trial."""
    if not spec.space:
        return
    base_flat = to_flat(base)
    for sample in sample_configs(spec, 3, seed, base_flat=base_flat):  # the prior's draws too (space.prior)
        try:
            config_from_flat({**base_flat, **sample}, source=str(space_file))
        except ConfigError as exc:
            raise TuneInputError(f"{space_file}: a sampled config is invalid: {exc}") from None


def _storage_and_name(request: RunRequest, spec: SearchSpec, space_file: Path) -> tuple[str, str]:
    """The parent folder (absolute) or URI, and the experiment's name (default ``<space>-<time>``)."""
    storage = request.storage or DEFAULT_STORAGE
    if "://" not in storage:
        storage = str(Path(storage).expanduser().resolve())
        checks.check_storage(storage)
    name = request.name or f"{spec.name or Path(space_file).stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    checks.check_name(name)
    return storage, name


def _check_destination(plan: RunPlan, dry_run: bool) -> None:
    """Where the experiment goes: a staged search needs a folder; a name already taken is refused."""
    if plan.is_uri and plan.spec.stages:
        raise TuneInputError(f"--storage {plan.storage}: a staged search stores to a folder (local, or shared by the "
                             "cluster's nodes); on object storage run each stage as its own search")
    if dry_run:
        return
    if plan.is_uri:
        location.check_writable(plan.storage, f"--storage {plan.storage}")
        plan.notes += checks.check_experiment_folder(location.pull(plan.experiment_path), plan.resume)
    else:
        plan.notes += checks.check_experiment_folder(Path(plan.experiment_path), plan.resume)


def _check_optuna_storage(plan: RunPlan, dry_run: bool) -> None:
    """``--optuna-storage``: no password in the URL (Tune would write it into files), and no study of
    this name there yet; a URI experiment without it keeps its study in memory (a note)."""
    url = plan.optuna_storage_url
    if url:
        from ..experiment.study import has_password, redact

        if has_password(url):
            raise TuneInputError(f"--optuna-storage {redact(url)}: the URL holds a password, which Tune would "
                                 "write into the experiment's files; put it in ~/.pgpass (or PGPASSWORD) and drop "
                                 "it from the URL")
    if url and not dry_run and not plan.resume:
        from ..experiment.study import check_new_study
        from ..space.stages import parse_stages

        # A staged search's studies are "<name>/<stage>" (tune.staged), one per stage.
        names = [f"{plan.name}/{stage.name}" for stage in parse_stages(plan.spec)] if plan.spec.stages else []
        for study_name in names or [plan.study_name]:
            check_new_study(url, study_name)
    elif plan.is_uri:
        plan.notes.append("the Optuna study of a URI experiment lives in the driver's memory (and Tune's "
                          "checkpoint); pass --optuna-storage URL to keep it where optuna-dashboard can read it")


def _budget_and_trials(request: RunRequest, spec: SearchSpec, notes: list[str]) -> tuple[int | None, int]:
    """(budget of trial-epochs or None, trials at most). A budget given on the command line replaces
    the sweep file's trial count (run_cap): it is the user's newer word on how long to search, and
    every trial trains at least one epoch, so ``budget`` trials are a cap the budget reaches first."""
    cli_budget = request.budget_epochs
    budget = cli_budget if cli_budget is not None else spec.budget_epochs
    if budget is not None and budget < 1:
        raise TuneInputError(f"--budget-epochs {budget}: must be at least 1 trial-epoch")
    if budget is not None and spec.stages:
        raise TuneInputError(f"{spec.file}: a budget of trial-epochs is for one search; a staged search "
                             "sizes each stage with its num_samples")
    if request.num_samples is not None:
        num_samples = request.num_samples
    elif budget is not None and spec.method != "grid" and (cli_budget is not None or spec.num_samples is None):
        if spec.num_samples is not None:
            notes.append(f"--budget-epochs {budget} replaces the sweep file's {spec.num_samples} trials; "
                         "pass --num-samples to cap the trials as well")
        num_samples = budget
    else:
        num_samples = next(n for n in (spec.num_samples, DEFAULT_NUM_SAMPLES) if n is not None)
    if num_samples < 1:
        raise TuneInputError(f"--num-samples {num_samples}: must be at least 1")
    return budget, num_samples


def _redacted(url: str | None) -> str | None:
    from ..experiment.study import redact

    return None if url is None else redact(url)


def _resolve(name: str) -> str:
    from polsess.config import resolve_name

    try:
        return resolve_name(name)
    except ConfigError as exc:
        raise TuneInputError(f"--set {exc}") from None


def write_search_file(plan: RunPlan) -> None:
    """``search.json``: the resolved search, for ``results``, ``resume``, warm starts and importance."""
    folder = plan.local_path
    folder.mkdir(parents=True, exist_ok=True)
    info = describe(plan.spec, search_prior(plan.spec, to_flat(plan.base)))
    info.update({
        "space_paths": list(plan.spec.space),
        "name": plan.name,
        "num_samples": plan.num_samples,
        "budget_epochs": plan.budget_epochs,
        "max_concurrent": plan.max_concurrent,
        "resources_per_trial": {"cpu": plan.cpus_per_trial, "gpu": plan.gpus_per_trial},
        "seed": plan.seed,
        "wandb_mode": plan.wandb_mode,
        "wandb_project": plan.wandb_project,
        "max_failures": plan.max_failures,
        "data_root": plan.base.data.data_root,
        "experiment_path": plan.experiment_path,  # where it started: a moved folder is refused on resume
        "study_name": plan.study_name if plan.optuna_storage else None,
        "optuna_storage": _redacted(plan.optuna_storage),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        **({"validation": plan.validation.to_json()} if plan.validation else {}),
        # Where this search's W&B offline runs are: beside the driver, for a URI experiment on the driver's machine.
        "wandb_dir": f"{socket.gethostname()}:{folder / WANDB_DIR}",
    })
    (folder / SEARCH_FILE).write_text(json.dumps(info, indent=2, default=str))
    if plan.is_uri:
        location.push(folder, plan.experiment_path, [SEARCH_FILE])
