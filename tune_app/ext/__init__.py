"""Every touch of a private Ray, W&B or Optuna name, fenced here, pinned in pyproject.toml and contract-tested.

Each module works around an upstream gap that the public API of Ray Tune, W&B or Optuna leaves open:

- :mod:`.asha` — ASHA's rungs are not restored by ``Tuner.restore`` (ray#30838): replayed from disk;
- :mod:`.optuna_search` — ``OptunaSearch`` tells Optuna an early-stopped trial as COMPLETE (PRUNED
  here) and fails on a trial it never suggested (a ``--restart-errored`` one): adopted by its config;
- :mod:`.wandb_logging` — Ray's W&B callback logs by iteration, twice after a restore, blocks the Tune
  loop on every put and puts the API key in a runtime_env Ray's agent logs: epoch steps, no repeats,
  one background sender, the key as an actor argument;
- :mod:`.wandb_offline` — wandb ships no reader for its offline ``.wandb`` log: decoded here;
- :mod:`.state_backup` — Tune copies its state files non-atomically, so a SIGKILL can cut them;
- :mod:`.trial_files` — a live trial's results, through Tune's internal storage context;
- :mod:`.progress_csv` — Ray's CSV logger shifts a resumed trial's rows under the old header: one table;
- :mod:`.ray_console` — the raylet's console lines (a dead worker), printed past every logging handler;
- :mod:`.ray_internals` — the local GPU count and Ray's token-auth set-up (``ray._private``), and AWS
  credentials kept out of the runtime_env Tune gives each trial (Ray's agent logs it in full).

:data:`UPSTREAM` lists every private name these modules use. ``tests/unit/test_upstream_contract.py``
imports each one (no Ray start) and fails naming the name and the module that needs it, and
``tests/unit/test_architecture.py`` fails when a private upstream name is used elsewhere in tune_app,
or is used here, in a test or in a benchmark without an entry naming that file. Tests and benchmarks
that look inside upstream objects (a sampler's start-up trials, ASHA's rungs) are listed too
(``also_by``): an upgrade that renames the name then names them as well. Bump the pins only with
that test green.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Private:
    """One private upstream name: ``module`` + ``name`` (a dotted path inside it) and who needs it.

    ``used_by``: the module (dotted, ``tune_app.ext.asha``, ``tests.unit.test_budget``) that needs it;
    ``also_by``: other modules that touch it, tests and benchmarks included.
    ``instance``: the attribute is set on instances (``self.<last part> = …`` in the class's source),
    not on the class; the contract test checks the assignment is still there.
    """

    module: str
    name: str
    used_by: str
    instance: bool = False
    also_by: tuple[str, ...] = ()

    @property
    def users(self) -> tuple[str, ...]:
        return (self.used_by, *self.also_by)

    @property
    def attr(self) -> str:
        return self.name.rsplit(".", 1)[-1]


_WANDB = "ray.air.integrations.wandb"
_ASHA = "ray.tune.schedulers.async_hyperband"
_OPTUNA = "ray.tune.search.optuna.optuna_search"

UPSTREAM: tuple[Private, ...] = (
    # asha.py (ray#30838)
    Private(_ASHA, "AsyncHyperBandScheduler._brackets", "tune_app.ext.asha", instance=True,
            also_by=("tests.unit.test_asha_replay", "tests.unit.test_build_searcher")),
    Private(_ASHA, "AsyncHyperBandScheduler._metric", "tune_app.ext.asha", instance=True),
    Private(_ASHA, "AsyncHyperBandScheduler._metric_op", "tune_app.ext.asha", instance=True),
    Private(_ASHA, "AsyncHyperBandScheduler._max_t", "tune_app.ext.asha", instance=True,
            also_by=("tests.unit.test_build_searcher",)),
    Private(_ASHA, "_Bracket.on_result", "tune_app.ext.asha", also_by=("benchmarks.asha_vs_fifo",)),
    # optuna_search.py
    # tests.integration.test_tune_run reads these two and _sampler as keys of the pickled searcher state
    Private(_OPTUNA, "OptunaSearch._ot_study", "tune_app.ext.optuna_search", instance=True,
            also_by=("tests.unit.test_build_searcher", "tests.unit.test_pruning_searcher",
                     "tests.integration.test_tune_run")),
    Private(_OPTUNA, "OptunaSearch._ot_trials", "tune_app.ext.optuna_search", instance=True,
            also_by=("tests.integration.test_tune_run",)),
    Private(_OPTUNA, "OptunaSearch._completed_trials", "tune_app.ext.optuna_search", instance=True),
    Private(_OPTUNA, "OptunaSearch._space", "tune_app.ext.optuna_search", instance=True,
            also_by=("tests.unit.test_build_searcher",)),
    Private("optuna.trial._trial", "Trial._trial_id", "tune_app.ext.optuna_search", instance=True),
    Private("optuna.trial._frozen", "FrozenTrial._trial_id", "tune_app.ext.optuna_search", instance=True),
    Private("optuna.study.study", "Study._storage", "tune_app.ext.optuna_search", instance=True),
    # wandb_logging.py
    Private(_WANDB, "_WandbLoggingActor", "tune_app.ext.wandb_logging", also_by=("tests.unit.test_upstream_contract",)),
    Private(_WANDB, "_WandbLoggingActor.__init__", "tune_app.ext.wandb_logging"),
    Private(_WANDB, "_QueueItem.END", "tune_app.ext.wandb_logging"),
    Private("ray.air.util.node", "_force_on_current_node", "tune_app.ext.wandb_logging"),
    Private(_WANDB, "WandbLoggerCallback._start_logging_actor", "tune_app.ext.wandb_logging"),
    Private(_WANDB, "WandbLoggerCallback._signal_logging_actor_stop", "tune_app.ext.wandb_logging"),
    Private(_WANDB, "WandbLoggerCallback._cleanup_logging_actors", "tune_app.ext.wandb_logging"),
    Private(_WANDB, "WandbLoggerCallback._trial_logging_futures", "tune_app.ext.wandb_logging", instance=True),
    Private(_WANDB, "WandbLoggerCallback._logging_future_to_trial", "tune_app.ext.wandb_logging", instance=True),
    Private(_WANDB, "WandbLoggerCallback._trial_queues", "tune_app.ext.wandb_logging", instance=True),
    Private(_WANDB, "WandbLoggerCallback._trial_logging_actors", "tune_app.ext.wandb_logging", instance=True),
    Private(_WANDB, "WandbLoggerCallback._remote_logger_class", "tune_app.ext.wandb_logging", instance=True),
    Private(_WANDB, "WandbLoggerCallback._upload_timeout", "tune_app.ext.wandb_logging", instance=True),
    # wandb_offline.py: the protobuf classes of the .wandb log
    Private("wandb.proto.wandb_internal_pb2", "Record", "tune_app.ext.wandb_offline"),
    # trial_files.py: Trial.storage is a ray.train._internal StorageContext
    Private("ray.tune.experiment.trial", "Trial.storage", "tune_app.ext.trial_files", instance=True),
    Private("ray.train._internal.storage", "StorageContext.storage_filesystem", "tune_app.ext.trial_files",
            instance=True),
    Private("ray.train._internal.storage", "StorageContext.experiment_fs_path", "tune_app.ext.trial_files"),
    Private("ray.train._internal.storage", "StorageContext.trial_dir_name", "tune_app.ext.trial_files",
            instance=True, also_by=("tests.unit.test_errors_surface",)),
    # progress_csv.py
    Private("ray.tune.logger.logger", "LoggerCallback._restore_from_remote", "tune_app.ext.progress_csv"),
    # ray_internals.py
    Private("ray._private.accelerators", "NvidiaGPUAcceleratorManager.get_current_node_num_accelerators",
            "tune_app.ext.ray_internals"),
    Private("ray._private.accelerators", "NvidiaGPUAcceleratorManager.get_current_process_visible_accelerator_ids",
            "tune_app.ext.ray_internals"),
    Private("ray._private.authentication.authentication_token_setup", "maybe_enable_token_auth_if_token_available",
            "tune_app.ext.ray_internals"),
    Private("ray.tune.execution.class_cache", "ENV_VARS_TO_PROPAGATE", "tune_app.ext.ray_internals"),
    Private("ray._private.node", "Node", "tune_app.ext.ray_internals",  # its start timeout's words
            also_by=("tests.unit.test_ray_start_timeout",)),
    # state_backup.py: the checkpoint manager a state file holds (its names, for restore_missing_checkpoints)
    Private("ray.train._internal.checkpoint_manager", "_CheckpointManager.latest_checkpoint_result",
            "tune_app.ext.state_backup"),
    Private("ray.train._internal.checkpoint_manager", "_CheckpointManager", "tune_app.ext.state_backup",
            also_by=("tests.unit.test_state_backup",)),
    Private("ray.train._internal.checkpoint_manager", "_TrainingResult", "tests.unit.test_state_backup"),
    Private("ray.train._internal.checkpoint_manager", "_CheckpointManager.best_checkpoint_results",
            "tune_app.ext.state_backup"),
    # ray_console.py
    Private("ray._private.worker", "stdout_deduplicator", "tune_app.ext.ray_console"),
    Private("ray._private.ray_logging", "LogDeduplicator.skip_re", "tune_app.ext.ray_console", instance=True),
    # tests that look inside upstream objects: what a sampler, ASHA's bracket or an actor class was built with
    Private(_OPTUNA, "OptunaSearch._sampler", "tests.unit.test_build_searcher", instance=True,
            also_by=("tests.unit.test_budget", "tests.integration.test_tune_run")),
    Private("optuna.samplers", "TPESampler._n_startup_trials", "tests.unit.test_samplers", instance=True,
            also_by=("tests.unit.test_budget", "tests.unit.test_build_searcher", "tests.unit.test_search_space")),
    Private("optuna.samplers", "GPSampler._n_startup_trials", "tests.integration.test_tune_run", instance=True,
            also_by=("tests.unit.test_samplers",)),
    Private(_ASHA, "_Bracket._rungs", "tests.unit.test_asha_replay", instance=True,
            also_by=("tests.unit.test_build_searcher",)),
    Private("optuna.distributions", "BaseDistribution._contains", "tests.helpers"),
    Private("ray.tune.execution.class_cache", "_ActorClassCache", "tests.unit.test_upstream_contract"),
    Private("ray.actor", "ActorClass._default_options", "tests.unit.test_upstream_contract", instance=True),
)
