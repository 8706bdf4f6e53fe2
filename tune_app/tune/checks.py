"""The flag checks of ``run``: each a one-line :class:`TuneInputError` naming the flag and the fix;
and :func:`resources`, the resources per trial resolved from the flags and the sweep file and checked.

All of them run before Ray starts, so a mistake costs a second, not a cluster start or an hour of
trials that can never be scheduled (a NaN resource leaves trials PENDING forever; a negative
``--max-failures`` is Ray's "retry without limit").
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from polsess.config import Config

from ..errors import TuneInputError
from ..experiment import layout
from ..experiment.location import shown
from ..ext.ray_internals import local_gpu_count
from ..space.spec import SearchSpec
from .requests import DEFAULT_CPUS_PER_TRIAL, RunRequest

MAX_SEED = 2**32 - 1  # numpy's and Optuna's samplers take seeds in 0..2^32-1
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # an experiment folder's name
MAX_NAME = 200  # a file name is at most 255 bytes; Tune and W&B add their own suffixes
OURS = {layout.SEARCH_FILE, layout.WANDB_DIR, layout.BACKUP_DIR, layout.STAGES_FILE, layout.LOCK_FILE,
        layout.STUDY_FILE, layout.STUDY_FILE + "-journal"}


def _finite(flag: str, value: float) -> None:
    if not math.isfinite(value):
        raise TuneInputError(f"{flag} {value}: must be a finite number")


@dataclass(frozen=True)
class Resources:
    """What each trial gets and how many run at once, as the plan records them."""

    cpus: float
    gpus: float  # with gpus_auto: 1.0 until tune.packing measures the share
    gpus_auto: bool
    max_concurrent: int | None


def resources(request: RunRequest, spec: SearchSpec, notes: list[str]) -> Resources:
    """Per trial: the flag, else the sweep's ``resources_per_trial``, else 1 CPU and auto (a GPU machine)
    or 0 GPUs; and the trials at once. A dry run checks them as the run does, except that resources the
    sweep file alone asks for, more than this machine has, get a note: the file may be meant for a cluster."""
    from_file = spec.resources_per_trial or {}
    cpus = request.cpus_per_trial if request.cpus_per_trial is not None else float(
        from_file.get("cpu", DEFAULT_CPUS_PER_TRIAL))
    gpus, gpus_auto = gpus_per_trial(request, from_file.get("gpu"), notes)
    if request.address:
        from .cluster import check_address

        check_address(request.address)
    check_resource_values(cpus, gpus)
    try:
        check_fits_machine(cpus, gpus, request.address)
    except TuneInputError as exc:
        flags_given = request.cpus_per_trial is not None or request.gpus_per_trial is not None
        if not request.dry_run or flags_given:
            raise
        notes.append(f"not runnable on this machine as is: {exc}")
    max_concurrent = request.max_concurrent if request.max_concurrent is not None else spec.max_concurrent
    if max_concurrent is not None and max_concurrent < 1:
        raise TuneInputError(f"--max-concurrent {max_concurrent}: must be at least 1")
    note = concurrency_note(max_concurrent, cpus, gpus, request.address)
    if note:
        notes.append(note)
    return Resources(cpus, gpus, gpus_auto, max_concurrent)


def gpus_per_trial(request: RunRequest, from_file: Any, notes: list[str]) -> tuple[float, bool]:
    """(GPUs per trial, auto?): ``auto`` measures this machine's GPU (tune.packing), so not on a cluster."""
    gpus = request.gpus_per_trial if request.gpus_per_trial is not None else from_file
    if gpus is None:
        gpus = "auto" if local_gpu_count() and not request.address else 0.0
    if gpus != "auto":
        return float(gpus), False
    if request.address:
        raise TuneInputError("--gpus-per-trial auto measures this machine's GPU; on a cluster give a number, "
                             "e.g. --gpus-per-trial 0.25")
    if not local_gpu_count():
        notes.append("--gpus-per-trial auto: no GPU on this machine, so trials run on the CPU")
        return 0.0, False
    return 1.0, True  # until the packing is measured (commands.run)


def check_resources(cpus: float, gpus: float, address: str | None) -> None:
    """Resources per trial that Ray can schedule, on this machine (with ``address``: values only)."""
    check_resource_values(cpus, gpus)
    check_fits_machine(cpus, gpus, address)


def check_resource_values(cpus: float, gpus: float) -> None:
    """Numbers a trial can be given anywhere: finite, CPUs > 0, GPUs >= 0, a GPU fraction below 1."""
    _finite("--cpus-per-trial", cpus)
    _finite("--gpus-per-trial", gpus)
    if cpus <= 0:
        raise TuneInputError(f"--cpus-per-trial {cpus:g}: must be > 0")
    if gpus < 0:
        raise TuneInputError(f"--gpus-per-trial {gpus:g}: must be >= 0")
    if gpus > 1 and not float(gpus).is_integer():
        raise TuneInputError(f"--gpus-per-trial {gpus:g}: fractions must be below 1 (e.g. 0.25), or whole GPUs")


def check_fits_machine(cpus: float, gpus: float, address: str | None) -> None:
    """One trial fits this machine (a cluster's nodes are checked once attached)."""
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
