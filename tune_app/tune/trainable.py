"""The Ray Tune trainable: one ConvTasNet config, one report (and checkpoint) per epoch.

A trial's config is the full nested experiment config (``{"data": …, "model": …, "training": …}``),
so W&B shows it the way the research code logged it, and the corpus path travels inside it: a
worker on another node reads ``data.data_root`` from the config, never from the driver's disk.

torch and the trainer are imported inside the functions: the driver imports this module only to
hand Tune the function, and a torch import there delays the first trial by 1.2 s.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import pickle
import posixpath
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow.fs
import ray
from ray import tune

from polsess.config import config_from_flat, flatten

from ..experiment import layout
from ..experiment.layout import CHECKPOINT_EPOCH_FILE, CHECKPOINT_FILE
from ..experiment.restart import newest_readable
from ..ext.trial_files import results_at
from ..names import DONE_TRAINING, EPOCH, ITERATION, VALIDATION_KEY


def trial_resources() -> tuple[float, float]:
    """(CPUs, GPUs) Ray reserved for this trial; every CPU and no GPU outside a Tune session.

    Outside a session (a direct call) Ray warns and returns None; any other failure (Ray's API
    changed) is raised, not read as "every CPU, no GPU"."""
    resources = tune.get_context().get_trial_resources()
    if resources is None:
        return float(os.cpu_count() or 1), 0.0
    required = resources.required_resources
    return float(required.get("CPU", 1)), float(required.get("GPU", 0))


def trial_device(gpus: float) -> str:
    """Ray 2.60 leaves CUDA_VISIBLE_DEVICES unset for a 0-GPU trial, so such a trial would see
    every GPU: pin it to the CPU explicitly. With a GPU share, Ray has set the visible device."""
    import torch

    return "cuda" if gpus > 0 and torch.cuda.is_available() else "cpu"


def _non_retryable() -> tuple[type[BaseException], ...]:
    """Errors that repeat on every attempt: bad data, a bad config, a diverged training."""
    from polsess.config import ConfigError
    from polsess.data import PolSESSDataError
    from polsess.trainer import TrainingDiverged

    return (PolSESSDataError, ConfigError, TrainingDiverged)


def train_convtasnet(config: dict[str, Any]) -> None:
    """Function trainable: resumes from ``tune.get_checkpoint()`` when Tune restores the trial.

    Tune retries every failed trial up to ``--max-failures`` times and has no way to mark an error
    as final. An error that would repeat (:func:`_non_retryable`) is recorded in the trial folder;
    a retry raises it again at once instead of loading data and training up to the same point.
    """
    marker = _marker()
    recorded = recorded_error(marker) if marker is not None else None
    if recorded is not None:
        _log(f"not retried: {type(recorded).__name__} repeats on every attempt")
        raise recorded
    try:
        _train(config)
    except _non_retryable() as exc:
        if marker is not None:
            with contextlib.suppress(OSError, pickle.PicklingError):
                marker.write_bytes(pickle.dumps(exc))
        raise


def recorded_error(marker: Path) -> BaseException | None:
    """The error a previous attempt recorded in ``marker``; None if there is none or it cannot be read.

    An unreadable record (cut by a kill, a newer pickle protocol, its class gone or changed) means
    "train as usual", which raises the error again if it still repeats. pickle documents the first
    five; TypeError is an exception class whose ``__init__`` no longer takes what it was pickled with,
    ValueError an unknown protocol. Anything else is a fault of ours and is raised."""
    try:
        recorded = pickle.loads(marker.read_bytes())
    except FileNotFoundError:
        return None
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError, TypeError, ValueError) as exc:
        _log(f"the record of a previous attempt's error cannot be read ({type(exc).__name__}); training as usual")
        return None
    return recorded if isinstance(recorded, BaseException) else None


def _marker() -> Path | None:
    """The trial's record of an error not worth retrying; None outside a Tune session (Ray returns None)."""
    trial_dir = tune.get_context().get_trial_dir()
    return None if trial_dir is None else Path(trial_dir) / layout.NOT_RETRIED_FILE


def _train(config: dict[str, Any]) -> None:
    import torch

    from polsess.cost import model_cost
    from polsess.device import cpu_share
    from polsess.model import build_model
    from polsess.trainer import Trainer

    cpus, gpus = trial_resources()
    cfg = config_from_flat(flatten({k: v for k, v in config.items() if k != VALIDATION_KEY}))
    # One thread per CPU Ray gave the trial; loader workers only where a CPU is spare (as `train` does).
    threads, cfg.data.num_workers = cpu_share(int(cpus), cfg.data.num_workers)
    torch.set_num_threads(threads)
    device = trial_device(gpus)
    if device == "cuda":
        # Trials reuse actors: hand the previous trial's cached blocks back, for trials sharing the GPU.
        gc.collect()
        torch.cuda.empty_cache()
    trainer = Trainer(cfg, device=device, log=_log)

    # What the model costs (size, compute, speed on this device), in every report: a Pareto search
    # reads it as objectives, W&B's run summary keeps it beside the SI-SDR.
    # Of a fresh torchaudio model: the trainer's may have shifted depthwise convs (training.compile),
    # which the MAC count would miss; sizes and MACs do not depend on the weights.
    cost = model_cost(build_model(cfg).to(device), trainer.train_set.sample_rate, device)
    state, unrecorded = restored_state(tune.get_checkpoint())
    if state is not None:
        trainer.load_state_dict(state)
        _log(f"resumed after epoch {trainer.epoch}")
    # Epochs the checkpoint holds but Tune never recorded (the driver stopped in between): report
    # them as they were instead of training them again, so no epoch is skipped or run twice.
    for metrics in unrecorded:
        last = metrics is unrecorded[-1]
        tune.report({**metrics, **cost, ITERATION: metrics[EPOCH], "time_training_s": 0.0,
                     DONE_TRAINING: last and trainer.done})

    while not trainer.done:
        start = time.perf_counter()
        try:
            metrics = trainer.train_epoch()
        except torch.cuda.OutOfMemoryError:
            m = cfg.model.convtasnet
            raise RuntimeError(
                f"out of GPU memory with N={m.N} B={m.B} H={m.H} X={m.X} R={m.R} "
                f"batch_size={cfg.data.batch_size} segment_seconds={cfg.data.segment_seconds}; lower "
                "data.batch_size, data.segment_seconds or the model size, or give trials more GPU "
                "(--gpus-per-trial)"
            ) from None
        metrics["time_training_s"] = time.perf_counter() - start
        metrics.update(cost)
        metrics["node_id"] = ray.get_runtime_context().get_node_id()
        # Tells our Optuna searcher whether a trial ended on its own or was stopped by the scheduler.
        metrics[DONE_TRAINING] = trainer.done
        # Tune numbers reports itself unless told: after a restore from a stale snapshot its count lags
        # the epoch. Reporting the epoch as the iteration keeps the two equal in every file.
        metrics[ITERATION] = metrics[EPOCH]
        with tempfile.TemporaryDirectory(prefix="polsess-ckpt-") as folder:
            trainer.save(Path(folder) / CHECKPOINT_FILE)
            (Path(folder) / CHECKPOINT_EPOCH_FILE).write_text(json.dumps({EPOCH: trainer.epoch}))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))


def restored_state(checkpoint: tune.Checkpoint | None) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The trainer state to resume from, and the epochs it holds that Tune has not recorded.

    Resumes from the newest checkpoint kept in the trial folder rather than the one Tune names:
    after a SIGKILL the experiment snapshot can be seconds stale and name a checkpoint that
    ``num_to_keep`` has since deleted, and after Ctrl-C an epoch can be checkpointed but never
    recorded in ``result.json``. With no readable one left it trains again from epoch 1.
    """
    from polsess.trainer import load_checkpoint

    if checkpoint is None:
        return None, []
    folder = Path(checkpoint.path)
    if not isinstance(checkpoint.filesystem, pyarrow.fs.LocalFileSystem):
        # A URI experiment: the checkpoint Tune names (resume made it the newest kept one), and the
        # trial's result.json read from the bucket. The worker uploads a checkpoint before its report
        # reaches the driver, whose sync of result.json can then lag by an epoch when it is killed.
        trial_path = posixpath.dirname(checkpoint.path.rstrip("/"))
        state = _newest_remote_state(checkpoint.filesystem, trial_path)
        if state is None:
            with checkpoint.as_directory() as local:
                state = load_checkpoint(Path(local) / CHECKPOINT_FILE)
        return state, _unrecorded(state, results_at(checkpoint.filesystem, trial_path))
    state = newest_readable(folder.parent, _log)
    if state is None:  # resume set its records aside (experiment.restart): it starts over, same id
        _log(f"{folder.parent}: no readable checkpoint left; training again from epoch 1")
        return None, []
    return state, _unrecorded(state, layout.read_results(folder.parent))


def _unrecorded(state: dict[str, Any], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The epochs of the checkpoint's history after the last one in the trial's result.json rows."""
    recorded = [int(r[EPOCH]) for r in rows if isinstance(r.get(EPOCH), (int, float))]
    return [m for m in state.get("history", []) if m[EPOCH] > max(recorded, default=0)]


def _newest_remote_state(fs: pyarrow.fs.FileSystem, trial_path: str) -> dict[str, Any] | None:
    """The newest whole checkpoint kept in a trial's folder in a bucket, as the local case reads the
    trial folder: Tune's snapshot can name an older one than the worker uploaded last."""
    from polsess.config import ConfigError
    from polsess.trainer import load_checkpoint

    try:
        kept = sorted(i.path for i in fs.get_file_info(pyarrow.fs.FileSelector(trial_path))
                      if i.type == pyarrow.fs.FileType.Directory
                      and posixpath.basename(i.path).startswith(layout.CHECKPOINT_PREFIX))
    except OSError:
        return None
    for path in reversed(kept):
        try:
            with fs.open_input_stream(f"{path}/{CHECKPOINT_FILE}") as stream, \
                    tempfile.TemporaryDirectory(prefix="polsess-ckpt-") as folder:
                local = Path(folder) / CHECKPOINT_FILE
                local.write_bytes(stream.readall())
                return load_checkpoint(local)
        except (OSError, ConfigError):  # mid-upload when the driver was killed: an older one
            continue
    return None


def _log(message: str) -> None:
    print(f"[trial] {message}", flush=True)
