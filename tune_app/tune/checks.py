"""The flag checks of ``run``: each a one-line :class:`TuneInputError` naming the flag and the fix.

All of them run before Ray starts, so a mistake costs a second, not a cluster start or an hour of
trials that can never be scheduled (a NaN resource leaves trials PENDING forever; a negative
``--max-failures`` is Ray's "retry without limit").
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

from polsess.config import Config

from ..errors import TuneInputError
from ..experiment import layout
from ..experiment.location import shown
from ..ext.ray_internals import local_gpu_count
from ..space.spec import SearchSpec

MAX_SEED = 2**32 - 1  # numpy's and Optuna's samplers take seeds in 0..2^32-1
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # an experiment folder's name
MAX_NAME = 200  # a file name is at most 255 bytes; Tune and W&B add their own suffixes
OURS = {layout.SEARCH_FILE, layout.WANDB_DIR, layout.BACKUP_DIR, layout.STAGES_FILE, layout.LOCK_FILE,
        layout.STUDY_FILE, layout.STUDY_FILE + "-journal"}


def _finite(flag: str, value: float) -> None:
    if not math.isfinite(value):
        raise TuneInputError(f"{flag} {value}: must be a finite number")


def check_resources(cpus: float, gpus: float, address: str | None) -> None:
    _finite("--cpus-per-trial", cpus)
    _finite("--gpus-per-trial", gpus)
    if cpus <= 0:
        raise TuneInputError(f"--cpus-per-trial {cpus:g}: must be > 0")
    if gpus < 0:
        raise TuneInputError(f"--gpus-per-trial {gpus:g}: must be >= 0")
    if gpus > 1 and not float(gpus).is_integer():
        raise TuneInputError(f"--gpus-per-trial {gpus:g}: fractions must be below 1 (e.g. 0.25), or whole GPUs")
    if address:
        return  # checked against the cluster once attached
    have = local_gpu_count()
    if gpus > have:
        raise TuneInputError(
            f"--gpus-per-trial {gpus:g}: this machine has {have} GPU(s); use --gpus-per-trial 0"
            + (f" to {have}" if have else "") + " or attach to a cluster with --address"
        )
    have_cpus = os.cpu_count() or 1
    if cpus > have_cpus:
        raise TuneInputError(f"--cpus-per-trial {cpus:g}: this machine has {have_cpus} CPUs")


def concurrency_note(max_concurrent: int | None, cpus: float, gpus: float, address: str | None) -> str | None:
    """A note when more trials are allowed at once than this machine can run (cluster: checked by Ray)."""
    if max_concurrent is None or address:
        return None
    fit = int((os.cpu_count() or 1) // cpus)
    if gpus > 0:
        fit = min(fit, int(local_gpu_count() // gpus))
    if max_concurrent > fit:
        return (f"--max-concurrent {max_concurrent}: this machine runs at most {fit} trial(s) at once with "
                f"{cpus:g} CPU and {gpus:g} GPU each; the rest wait")
    return None


def check_scheduler(spec: SearchSpec, base: Config) -> None:
    sched = spec.scheduler
    if sched.type == "asha":
        if sched.grace_period is not None and sched.grace_period < 1:
            raise TuneInputError(f"grace period {sched.grace_period}: must be at least 1 epoch")
        if sched.reduction_factor is not None:
            _finite("--reduction-factor", sched.reduction_factor)
            if sched.reduction_factor <= 1:
                raise TuneInputError(f"reduction factor {sched.reduction_factor:g}: must be > 1 (e.g. 2 or 3)")
    sched.fit_to(base.training.num_epochs)


def check_seed(seed: int) -> None:
    if not 0 <= seed <= MAX_SEED:
        raise TuneInputError(f"--seed {seed}: must be in 0..{MAX_SEED}")


def check_max_failures(n: int) -> None:
    if n < 0:
        raise TuneInputError(f"--max-failures {n}: must be 0 or more (Ray reads a negative count as no limit)")


def check_name(name: str) -> None:
    if len(name) > MAX_NAME:
        raise TuneInputError(f"--name: {len(name)} characters; use at most {MAX_NAME}")
    if not NAME_RE.match(name):
        raise TuneInputError(f"--name {name!r}: use letters, digits, '.', '_' or '-' only")


def check_storage(storage: str) -> None:
    """A local --storage must be a folder, or creatable as one (nothing is created here)."""
    path = Path(storage)
    if path.exists() and not path.is_dir():
        raise TuneInputError(f"--storage {storage}: a file, not a folder; give a folder for the experiments")
    parent = path
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise TuneInputError(f"--storage {storage}: cannot be created ({parent} is not a writable folder); "
                             "give a folder you can write to")


def check_experiment_folder(folder: Path, resume: bool) -> list[str]:
    """Refuse a name already taken; a folder left by a start-up that never reached its first trial
    (only our own files in it) is reused, with a note."""
    label = shown(folder)  # a URI experiment is checked in its pulled driver folder
    if folder.exists() and not folder.is_dir():
        raise TuneInputError(f"{label}: a file has this name; pick another --name")
    if not folder.is_dir() or not any(folder.iterdir()) or resume:
        return []
    if layout.has_experiment_state(folder) or layout.has_experiment_state(folder / layout.BACKUP_DIR):
        raise TuneInputError(
            f"{label}: an experiment with this name already exists; resume it with "
            f"`polsess-tune resume {label}` or pick another --name"
        )
    others = sorted(p.name for p in folder.iterdir() if p.name not in OURS)
    if others:
        raise TuneInputError(f"{label}: exists and holds files that are not an experiment's "
                             f"({', '.join(others[:3])}); pick another --name")
    # That start's study holds at most trials it asked for and never ran: a fresh start begins a fresh one.
    for name in (layout.STUDY_FILE, layout.STUDY_FILE + "-journal"):
        (folder / name).unlink(missing_ok=True)
    return [f"{folder.name}: an earlier start of this search stopped before its first trial; starting it afresh"]
