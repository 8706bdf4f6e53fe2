"""Everything a search needs, resolved and checked before any Ray work starts.

``prepare_run`` turns the command line into a :class:`RunPlan`. Every user mistake (sweep file,
base config, corpus, flags, an existing experiment) is found here and raised as one-line error,
so a bad search costs seconds, not a Ray start-up.
"""

from __future__ import annotations

import argparse
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
from ..ext.ray_internals import local_gpu_count
from ..space import SearchSpec, describe, load_search, sample_configs
from . import checks

DEFAULT_NUM_SAMPLES = 8


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
    validation: dict[str, Any] | None = None  # what `validate` retrains (tune.validate), for search.json
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


def prepare_run(args: argparse.Namespace, default_space: Path, default_config: Path,
                overrides: dict[str, Any]) -> RunPlan:
    space_file = args.space or default_space
    spec = load_search(space_file, base_config_override=args.config)
    base_path = spec.base_config or default_config
    notes = list(spec.notes)

    # --set pins a searched parameter: it leaves the space.
    pinned: dict[str, Any] = {}
    for name, value in overrides.items():
        path = _resolve(name)
        pinned[path] = value
        if path in spec.space:
            del spec.space[path]
            notes.append(f"{path} pinned to {value!r} by --set; not searched")
    try:
        base = load_config(base_path, {**spec.fixed, **pinned})
    except ConfigError as exc:
        raise TuneInputError(str(exc)) from None
    base_flat = to_flat(base)
    # A point may name only some searched parameters; the rest come from the base config (Ray's
    # OptunaSearch wants every key), which must then lie inside the space.
    for i, point in enumerate(spec.points_to_evaluate):
        for path, param in spec.space.items():
            if path not in point:
                value = base_flat[path]
                problem = param.why_outside(value)
                if problem:
                    raise TuneInputError(
                        f"{space_file}: tune.points_to_evaluate[{i}]: {path} not given and the base config's "
                        f"{value!r} {problem}; give {path} in the point"
                    )
                point[path] = value
    warm = None
    if getattr(args, "warm_start", None):
        from ..experiment.warm_start import load_warm_start

        warm = load_warm_start(args.warm_start, spec, base_flat)
    if not spec.space and not args.dry_run:
        raise TuneInputError(f"{space_file}: parameters: nothing left to search; add a distribution or values")

    budget, num_samples = _budget_and_trials(args, spec, notes)
    seed = args.seed if args.seed is not None else (spec.seed if spec.seed is not None else 0)
    checks.check_seed(seed)
    checks.check_max_failures(args.max_failures)

    resources = spec.resources_per_trial or {}
    cpus = args.cpus_per_trial if args.cpus_per_trial is not None else float(resources.get("cpu", 1))
    gpus = args.gpus_per_trial if args.gpus_per_trial is not None else resources.get("gpu")
    if gpus is None:
        gpus = "auto" if local_gpu_count() and not args.address else 0.0
    gpus_auto = gpus == "auto"
    if gpus_auto:
        if args.address:
            raise TuneInputError("--gpus-per-trial auto measures this machine's GPU; on a cluster give a number, "
                                 "e.g. --gpus-per-trial 0.25")
        if not local_gpu_count():
            notes.append("--gpus-per-trial auto: no GPU on this machine, so trials run on the CPU")
            gpus_auto = False
        gpus = 1.0 if gpus_auto else 0.0  # until the packing is measured (commands.run)
    if args.address:
        from .cluster import check_address

        check_address(args.address)
    try:
        checks.check_resources(cpus, float(gpus), args.address)
    except TuneInputError as exc:
        if not args.dry_run:
            raise
        notes.append(f"not runnable on this machine as is: {exc}")
    max_concurrent = args.max_concurrent if args.max_concurrent is not None else spec.max_concurrent
    if max_concurrent is not None and max_concurrent < 1:
        raise TuneInputError(f"--max-concurrent {max_concurrent}: must be at least 1")
    note = checks.concurrency_note(max_concurrent, cpus, float(gpus), args.address)
    if note:
        notes.append(note)

    if args.grace_period is not None:
        spec.scheduler.grace_period = args.grace_period
    if args.reduction_factor is not None:
        spec.scheduler.reduction_factor = args.reduction_factor
    checks.check_scheduler(spec, base)

    # Every sampled config must build: a range that makes an invalid model fails here, not in a trial.
    if spec.space:
        for sample in sample_configs(spec, 3, seed):
            try:
                config_from_flat({**to_flat(base), **sample}, source=str(space_file))
            except ConfigError as exc:
                raise TuneInputError(f"{space_file}: a sampled config is invalid: {exc}") from None

    storage = args.storage or "runs"
    if "://" not in storage:
        storage = str(Path(storage).expanduser().resolve())
        checks.check_storage(storage)
    name = args.name or f"{spec.name or Path(space_file).stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    checks.check_name(name)

    mode, note = choose_wandb_mode(args.wandb)
    plan = RunPlan(
        spec=spec, base=base, name=name, storage=storage, num_samples=num_samples,
        max_concurrent=max_concurrent, cpus_per_trial=cpus, gpus_per_trial=float(gpus), seed=seed,
        wandb_mode=mode, wandb_project=args.wandb_project or spec.project or "polsess-tune", wandb_note=note,
        max_failures=args.max_failures, address=args.address, resume=args.resume, notes=notes, warm_start=warm,
        verbose=bool(getattr(args, "verbose", False)), gpus_auto=gpus_auto, budget_epochs=budget,
    )
    if plan.is_uri and spec.stages:
        raise TuneInputError(f"--storage {storage}: a staged search stores to a folder (local, or shared by the "
                             "cluster's nodes); on object storage run each stage as its own search")
    if not args.dry_run and plan.is_uri:
        location.check_writable(storage, f"--storage {storage}")
        plan.notes += checks.check_experiment_folder(location.pull(plan.experiment_path), plan.resume)
    elif not args.dry_run:
        plan.notes += checks.check_experiment_folder(Path(plan.experiment_path), plan.resume)
    plan.optuna_storage_url = getattr(args, "optuna_storage", None)
    if plan.optuna_storage_url:
        from ..experiment.study import has_password, redact

        if has_password(plan.optuna_storage_url):
            raise TuneInputError(f"--optuna-storage {redact(plan.optuna_storage_url)}: the URL holds a password, "
                                 "which Tune would write into the experiment's files; put it in ~/.pgpass (or "
                                 "PGPASSWORD) and drop it from the URL")
    if plan.optuna_storage_url and not args.dry_run and not plan.resume:
        from ..experiment.study import check_new_study

        # A staged search's studies are "<name>/<stage>" (tune.staged), one per stage.
        names = [f"{plan.name}/{raw.get('name') or f'stage{i + 1}'}" for i, raw in enumerate(spec.stages)]
        for study_name in names or [plan.study_name]:
            check_new_study(plan.optuna_storage_url, study_name)
    elif plan.is_uri:
        plan.notes.append("the Optuna study of a URI experiment lives in the driver's memory (and Tune's "
                          "checkpoint); pass --optuna-storage URL to keep it where optuna-dashboard can read it")
    return plan


def _budget_and_trials(args: argparse.Namespace, spec: SearchSpec, notes: list[str]) -> tuple[int | None, int]:
    """(budget of trial-epochs or None, trials at most). A budget given on the command line replaces
    the sweep file's trial count (run_cap): it is the user's newer word on how long to search, and
    every trial trains at least one epoch, so ``budget`` trials are a cap the budget reaches first."""
    cli_budget = getattr(args, "budget_epochs", None)
    budget = cli_budget if cli_budget is not None else spec.budget_epochs
    if budget is not None and budget < 1:
        raise TuneInputError(f"--budget-epochs {budget}: must be at least 1 trial-epoch")
    if budget is not None and spec.stages:
        raise TuneInputError(f"{spec.file}: a budget of trial-epochs is for one search; a staged search "
                             "sizes each stage with its num_samples")
    if args.num_samples is not None:
        num_samples = args.num_samples
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
    info = describe(plan.spec)
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
        **({"validation": plan.validation} if plan.validation else {}),
        # Where this search's W&B offline runs are: beside the driver, for a URI experiment on the driver's machine.
        "wandb_dir": f"{socket.gethostname()}:{folder / WANDB_DIR}",
    })
    (folder / SEARCH_FILE).write_text(json.dumps(info, indent=2, default=str))
    if plan.is_uri:
        location.push(folder, plan.experiment_path, [SEARCH_FILE])
