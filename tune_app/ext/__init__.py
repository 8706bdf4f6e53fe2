"""Every touch of a private Ray or W&B name, fenced here, pinned in pyproject.toml and contract-tested.

Each module works around an upstream gap that Ray Tune's or W&B's public API leaves open:

- :mod:`.asha` — ASHA's rungs are not restored by ``Tuner.restore`` (ray#30838): replayed from disk;
- :mod:`.optuna_search` — ``OptunaSearch`` tells Optuna an early-stopped trial as COMPLETE (PRUNED
  here) and fails on a trial it never suggested (a ``--restart-errored`` one): adopted by its config;
- :mod:`.wandb_logging` — Ray's W&B callback logs by iteration, twice after a restore, blocks the Tune
  loop on every put and puts the API key in a runtime_env Ray's agent logs: epoch steps, no repeats,
  one background sender, the key as an actor argument;
- :mod:`.wandb_offline` — wandb ships no reader for its offline ``.wandb`` log: decoded here;
- :mod:`.state_backup` — Tune copies its state files non-atomically, so a SIGKILL can cut them;
- :mod:`.trial_files` — a live trial's results, through Tune's internal storage context;
- :mod:`.ray_internals` — the local GPU count and Ray's token-auth set-up (``ray._private``), and AWS
  credentials kept out of the runtime_env Tune gives each trial (Ray's agent logs it in full).

:data:`UPSTREAM` lists every private name these modules use. ``tests/unit/test_upstream_contract.py``
imports each one (no Ray start) and fails naming the name and the module that needs it, and
``tests/unit/test_architecture.py`` fails when a private upstream name is used outside this package
or is missing from the list. Bump the pins only with that test green.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Private:
    """One private upstream name: ``module`` + ``name`` (a dotted path inside it) and who needs it.

    ``instance``: the attribute is set on instances (``self.<last part> = …`` in the class's source),
    not on the class; the contract test checks the assignment is still there.
    """

    module: str
    name: str
    used_by: str
    instance: bool = False

    @property
    def attr(self) -> str:
        return self.name.rsplit(".", 1)[-1]


_WANDB = "ray.air.integrations.wandb"
_ASHA = "ray.tune.schedulers.async_hyperband"
_OPTUNA = "ray.tune.search.optuna.optuna_search"

UPSTREAM: tuple[Private, ...] = (
    # asha.py (ray#30838)
    Private(_ASHA, "AsyncHyperBandScheduler._brackets", "tune_app.ext.asha", instance=True),
    Private(_ASHA, "AsyncHyperBandScheduler._metric", "tune_app.ext.asha", instance=True),
    Private(_ASHA, "AsyncHyperBandScheduler._metric_op", "tune_app.ext.asha", instance=True),
    Private(_ASHA, "AsyncHyperBandScheduler._max_t", "tune_app.ext.asha", instance=True),
    Private(_ASHA, "_Bracket.on_result", "tune_app.ext.asha"),
    # optuna_search.py
    Private(_OPTUNA, "OptunaSearch._ot_study", "tune_app.ext.optuna_search", instance=True),
    Private(_OPTUNA, "OptunaSearch._ot_trials", "tune_app.ext.optuna_search", instance=True),
    Private(_OPTUNA, "OptunaSearch._completed_trials", "tune_app.ext.optuna_search", instance=True),
    Private(_OPTUNA, "OptunaSearch._space", "tune_app.ext.optuna_search", instance=True),
    Private("optuna.trial._trial", "Trial._trial_id", "tune_app.ext.optuna_search", instance=True),
    Private("optuna.trial._frozen", "FrozenTrial._trial_id", "tune_app.ext.optuna_search", instance=True),
    Private("optuna.study.study", "Study._storage", "tune_app.ext.optuna_search", instance=True),
    # wandb_logging.py
    Private(_WANDB, "_WandbLoggingActor", "tune_app.ext.wandb_logging"),
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
    # ray_internals.py
    Private("ray._private.accelerators", "NvidiaGPUAcceleratorManager.get_current_node_num_accelerators",
            "tune_app.ext.ray_internals"),
    Private("ray._private.accelerators", "NvidiaGPUAcceleratorManager.get_current_process_visible_accelerator_ids",
            "tune_app.ext.ray_internals"),
    Private("ray._private.authentication.authentication_token_setup", "maybe_enable_token_auth_if_token_available",
            "tune_app.ext.ray_internals"),
    Private("ray.tune.execution.class_cache", "ENV_VARS_TO_PROPAGATE", "tune_app.ext.ray_internals"),
)
