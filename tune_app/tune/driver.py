"""Build and run the Ray Tune search a :class:`RunPlan` describes.

Idiomatic Tuner use: OptunaSearch for sampling, ASHA (or the median rule, or FIFO) for stopping,
``WandbLoggerCallback`` for logging, ``CheckpointConfig`` keeping the best and the latest
checkpoint of each trial, ``FailureConfig`` retrying trials whose worker died.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from polsess.config import to_dict, to_flat

from ..errors import TuneInputError
from ..experiment import location
from ..experiment.layout import WANDB_DIR, trial_dirname
from ..names import NOT_LOGGED, PROGRESS_COLUMNS
from ..space import make_sampler, optuna_space
from ..space.sampling import first_points, search_prior
from .plan import RunPlan

UPLOAD_TIMEOUT_S = 120  # Ray's default (1800 s) keeps a Ctrl-C'd driver waiting half an hour


def space_key(path: str) -> str:
    """Optuna/Tune keys use '/', which OptunaSearch un-flattens into the nested trial config."""
    return path.replace(".", "/")


def build_searcher(plan: RunPlan):
    """Ray's OptunaSearch (ours tells Optuna early-stopped trials as PRUNED), seeded, warm-started,
    its study in ``plan.optuna_storage`` under the experiment's name; every objective of a Pareto
    search goes to Optuna (Ray's scheduler gets the first, in build_tuner)."""
    import optuna

    from ..ext.optuna_search import PruningOptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = plan.spec
    space = {space_key(p): d for p, d in optuna_space(spec).items()}
    # The prior (tune.prior, on by default): trial 0 is its base point, its sampler wraps the file's.
    prior = search_prior(spec, to_flat(plan.base))
    points = [{space_key(p): v for p, v in point.items() if p in spec.space} for point in first_points(spec, prior)]
    storage = None
    if plan.optuna_storage:
        from ..experiment.study import open_storage

        storage = open_storage(plan.optuna_storage)
    names, modes = [n for n, _ in spec.objectives], [m for _, m in spec.objectives]
    searcher = PruningOptunaSearch(
        space=space,
        metric=names if spec.multi_objective else spec.metric,
        mode=modes if spec.multi_objective else spec.mode,
        # TPE's start-up trials are sized by the real budget (--num-samples may differ from the file's).
        sampler=make_sampler(spec, plan.seed, key=space_key, num_samples=plan.trials_expected, prior=prior),
        points_to_evaluate=points or None,
        storage=storage,
        study_name=plan.study_name,
    )
    searcher.results_dir = None if plan.is_uri else plan.experiment_path
    if plan.warm_start is not None:
        from ..experiment.warm_start import as_evaluated

        # Finished trials in the study, not re-trained (the file's own points still are).
        for point, reward in zip(*as_evaluated(plan.warm_start, space_key), strict=True):
            searcher.add_warm_point(point, reward, plan.warm_start.source)
    return searcher


def build_scheduler(plan: RunPlan):
    from ray.tune.schedulers import FIFOScheduler, MedianStoppingRule

    from ..ext.asha import ResumableASHA
    from ..names import EPOCH

    s = plan.spec.scheduler
    if s.type == "asha":
        return ResumableASHA(
            max_t=s.max_t,
            grace_period=s.grace_period or 1,
            reduction_factor=s.reduction_factor or 3,
            brackets=s.brackets or 1,
        )
    if s.type == "median":
        return MedianStoppingRule(time_attr=EPOCH, grace_period=s.grace_period or 1)
    return FIFOScheduler()


def build_callbacks(plan: RunPlan) -> list[Any]:
    from ray.tune.logger import JsonLoggerCallback

    from ..ext.progress_csv import ProgressCsvCallback

    # Tune's result.json and progress.csv, named so that Tune adds no default loggers: its TensorBoard
    # logger imports torch in the driver (1.3 s before the first trial) and runs a writer per trial;
    # W&B is this tool's dashboard.
    # progress.csv by our writer: Ray's shifts a resumed trial's rows when its first report has other keys.
    callbacks: list[Any] = [JsonLoggerCallback(), ProgressCsvCallback()]
    if not plan.is_uri:
        from ..ext.state_backup import StateBackupCallback

        callbacks.append(StateBackupCallback(plan.experiment_path))
    if plan.wandb_mode == "disabled":
        return callbacks
    from ..ext.wandb_logging import EpochWandbLoggerCallback

    kwargs: dict[str, Any] = {"mode": plan.wandb_mode, "tags": plan.spec.tags or None}
    if plan.spec.entity:
        kwargs["entity"] = plan.spec.entity
    # An absolute dir inside the experiment folder (a URI experiment's: its driver folder, on this
    # machine): Ray's own sync of the trial folder can copy a half-written offline run; this one is
    # written in place and found by `wandb sync`.
    kwargs["dir"] = str(plan.local_path / WANDB_DIR)
    os.makedirs(kwargs["dir"], exist_ok=True)
    return [
        *callbacks,
        EpochWandbLoggerCallback(
            project=plan.wandb_project,
            group=plan.name,
            upload_timeout=UPLOAD_TIMEOUT_S,
            excludes=list(NOT_LOGGED),
            uri=plan.experiment_path if plan.is_uri else None,
            budget=plan.budget_epochs is not None,
            **kwargs,
        )
    ]


def _reporter(plan: RunPlan) -> Any:
    """Ray's status table, as Ray prints it (``--verbose``); None: our one line per trial event."""
    from ray.tune import CLIReporter

    if not plan.verbose:
        return None
    return CLIReporter(
        parameter_columns={space_key(p): p.rsplit(".", 1)[-1] for p in plan.spec.space},
        metric_columns=PROGRESS_COLUMNS,
        max_report_frequency=30,
        sort_by_metric=True,
    )


def _stopper(plan: RunPlan, budget: Any, fail_fast: Any) -> Any:
    """The budget first (CombinedStopper stops asking at the first True, and the budget counts every
    result), the fail-fast rule and the sweep's target. A full disk is not a stopper: ``stop_all``
    would end the pending trials as TERMINATED, and a resume once space is freed would have nothing
    left to run; tune.disk's guard turns it into one error line (exit 2) with the trials resumable."""
    from ray.tune.stopper import CombinedStopper, FunctionStopper

    spec = plan.spec
    stoppers: list[Any] = [s for s in (budget, fail_fast) if s is not None]
    if spec.target is not None:
        target, sign = spec.target, (1 if spec.mode == "max" else -1)
        stoppers.append(FunctionStopper(
            lambda _id, result: sign * result.get(spec.metric, -sign * 1e30) >= sign * target))
    if not stoppers:
        return None
    return stoppers[0] if len(stoppers) == 1 else CombinedStopper(*stoppers)


def build_tuner(plan: RunPlan, search_alg: Any = None):
    """The Tuner of ``plan``; ``search_alg`` replaces the Optuna searcher (a validation's config list)."""
    from ray import tune
    from ray.tune import CheckpointConfig, FailureConfig, RunConfig, TuneConfig

    from .budget import BudgetStopper
    from .fail_fast import SameErrorStopper
    from .progress import TrialEvents
    from .trainable import train_convtasnet

    spec = plan.spec
    console: list[Any] = []
    budget = BudgetStopper(plan.budget_epochs, plan.experiment_path) if plan.budget_epochs is not None else None
    if not plan.verbose:
        console.append(TrialEvents(plan.num_samples, plan.base.training.num_epochs, spec.metric, spec.mode,
                                   list(spec.space), spec.scheduler.type, budget=plan.budget_epochs))
    fail_fast = SameErrorStopper(str(plan.local_path), plan.num_samples,
                                 uri=plan.experiment_path if plan.is_uri else None)
    stop = _stopper(plan, budget, fail_fast)
    run_config = RunConfig(
        name=plan.name,
        storage_path=plan.storage,
        callbacks=[*build_callbacks(plan), fail_fast, *console],
        checkpoint_config=CheckpointConfig(
            num_to_keep=1,  # Ray keeps the latest checkpoint too: best + latest
            checkpoint_score_attribute=spec.metric,
            checkpoint_score_order=spec.mode,
        ),
        failure_config=FailureConfig(max_failures=plan.max_failures),
        progress_reporter=_reporter(plan),
        stop=stop,
        verbose=1 if plan.verbose else 0,
    )
    tune_config = TuneConfig(
        metric=spec.metric,
        mode=spec.mode,
        search_alg=search_alg if search_alg is not None else build_searcher(plan),
        scheduler=build_scheduler(plan),
        num_samples=plan.num_samples,
        max_concurrent_trials=plan.max_concurrent,
        trial_dirname_creator=lambda trial: trial_dirname(trial.trial_id),
        reuse_actors=True,
    )
    trainable = tune.with_resources(
        train_convtasnet, {"cpu": plan.cpus_per_trial, "gpu": plan.gpus_per_trial}
    )
    return tune.Tuner(trainable, param_space=to_dict(plan.base), tune_config=tune_config, run_config=run_config)


def start_ray(address: str | None, wandb_mode: str = "offline", verbose: bool = False) -> None:
    """A local Ray (dashboard off), or the cluster at ``address`` with our code shipped to it."""
    import ray

    if not verbose:
        from ..ext.ray_console import native_lines_off_console
        from .progress import quiet_ray_console

        quiet_ray_console()
        native_lines_off_console()

    # Ray's new console output ignores the progress reporter; the classic one shows our columns.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # Each checkpoint forces a snapshot (num_to_keep=1 keeps state and kept checkpoints in step); with
    # short demo epochs Ray warns about that on every epoch.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    if ray.is_initialized():
        return
    from ..ext.ray_internals import keep_credentials_out_of_runtime_env

    keep_credentials_out_of_runtime_env()
    # Trial output stays in Ray's session logs; the console shows Tune's progress table.
    if not address:
        # "local" always starts a new cluster: a bare ray.init() would attach to whatever `ray start`
        # left on this machine, even a head that has since died.
        try:
            ray.init(address="local", include_dashboard=False, logging_level="WARNING", log_to_driver=False)
        except Exception as exc:  # a bare Exception is what Ray raises for it (ext.ray_internals)
            from ..ext.ray_internals import node_start_timed_out

            if not node_start_timed_out(exc):
                raise
            raise TuneInputError(
                f"Ray's local node did not start within Ray's 30 s (load {os.getloadavg()[0]:.0f} on {os.cpu_count()} "
                "CPUs); run the command again when the machine is less busy, or start Ray once with "
                "`ray start --head` and pass --address auto"
            ) from None
        tighten_token_file()
        return
    from .cluster import attach_error, enable_token_auth, runtime_env

    source = enable_token_auth(address)
    try:
        ray.init(address=address, logging_level="WARNING", log_to_driver=False, runtime_env=runtime_env(wandb_mode))
    except (ConnectionError, RuntimeError, ray.exceptions.AuthenticationError) as exc:
        raise attach_error(address, exc, source) from None


def tighten_token_file() -> None:
    """Ray writes the token of a local cluster to ~/.ray/auth_token readable by everyone (0644); it
    is a credential for the cluster, so only its owner may read it."""
    from .cluster import default_token_file

    token = default_token_file()
    try:
        if token.is_file() and token.stat().st_mode & 0o077:
            token.chmod(0o600)
            token.parent.chmod(0o700)
    except OSError:  # another user's file: leave it
        pass


def forward_sigterm_to_tune() -> None:
    """A batch scheduler or a pre-empted node sends SIGTERM: stop as Ctrl-C does, saving state.

    Only the first one: Tune reads a second SIGINT as "quit now, skip saving", and schedulers often
    repeat SIGTERM before their SIGKILL; the state saved by the first must still be printed."""
    sent = []

    def handler(signum: int, frame: Any) -> None:
        if sent:
            print("already stopping: the search state is being saved", file=sys.stderr, flush=True)
            return
        sent.append(signum)
        # Ray's own warning for it stays behind --verbose (tune.progress): this is the line a user reads.
        print("SIGTERM: stopping the search and saving its state (another SIGTERM is ignored)",
              file=sys.stderr, flush=True)
        signal.raise_signal(signal.SIGINT)

    signal.signal(signal.SIGTERM, handler)


def _fit(tuner: Any, storage: str, folder: str) -> Any:
    """``tuner.fit()``, a full disk under the storage (wherever Tune, W&B or SQLite failed to write,
    even when Tune went on) turned into one line, exit 2 (tune.disk); the last good state backup and
    every finished trial stay, and ``resume`` restores them."""
    from .disk import guard

    with guard(storage, folder):
        grid = tuner.fit()
    if not location.is_uri(folder):  # a URI experiment's study lives in the searcher's memory
        from ..experiment.study import end_trials_cut_by_budget

        end_trials_cut_by_budget(folder)
    return grid


def _set_wandb_env(mode: str) -> None:
    if mode in ("offline", "disabled"):
        # The callback's own key check reads the driver's env; local workers inherit it at ray.init.
        os.environ["WANDB_MODE"] = mode


def execute(plan: RunPlan, search_alg: Any = None):
    """Start (or attach to) Ray, run the search, and return Tune's ResultGrid."""
    import ray

    _set_wandb_env(plan.wandb_mode)
    # See build_callbacks; a resume sets it too, unless the search predates that (names_its_loggers).
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    start_ray(plan.address, plan.wandb_mode, plan.verbose)
    forward_sigterm_to_tune()
    try:
        if plan.address:
            from .cluster import check_cluster

            check_cluster(plan.storage, plan.gpus_per_trial)
        return _fit(build_tuner(plan, search_alg), plan.storage, plan.experiment_path)
    finally:
        ray.shutdown()


def names_its_loggers(folder: str) -> bool:
    """Whether the search at ``folder`` was started with its loggers named (build_callbacks), so that
    its resume must not add Tune's defaults: it has no TensorBoard file. One started before that
    keeps them, or it would lose its result.json logger. A URI experiment is newer than that."""
    if location.is_uri(folder):
        return True
    from pathlib import Path

    from ..experiment.layout import TENSORBOARD_GLOB, TRIAL_PREFIX

    return not any(Path(folder).glob(f"{TRIAL_PREFIX}*/{TENSORBOARD_GLOB}"))


def restore(folder: str, resources: dict[str, float], wandb_mode: str, restart_errored: bool,
            address: str | None, verbose: bool = False):
    """Continue an interrupted search: finished trials stay, running ones continue from their
    last checkpoint, the Optuna study and the trial count carry over (Ray's own state)."""
    import ray
    from ray import tune

    from .trainable import train_convtasnet

    _set_wandb_env(wandb_mode)
    if names_its_loggers(folder):  # see build_callbacks: no TensorBoard files after a resume either
        os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    start_ray(address, wandb_mode, verbose)
    forward_sigterm_to_tune()
    try:
        tuner = tune.Tuner.restore(
            folder,
            trainable=tune.with_resources(train_convtasnet, resources),
            resume_unfinished=True,
            resume_errored=not restart_errored,
            restart_errored=restart_errored,
        )
        return _fit(tuner, location.parent(folder), folder)
    finally:
        ray.shutdown()
