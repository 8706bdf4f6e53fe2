"""``polsess-tune resume``: continue an interrupted search (or staged search) where it stopped."""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

from ..builtin import default_config, default_space
from ..errors import TuneInputError
from ..experiment import layout
from ..experiment.location import delete, is_uri, open_experiment
from ..experiment.report import summary_line
from ..experiment.results import load_experiment
from ..tune.folder_lock import holding
from ..tune.requests import RunRequest
from ..tune.summary import finish
from .options import legacy_run_request, resolve_data_root


def resume_experiment(where: str | Path, restart_errored: bool, address: str | None, verbose: bool = False) -> int:
    """Resume the experiment at ``where``: a folder, or a URI (``s3://…``) whose state and checkpoints
    Tune restores from the bucket; a driver started afresh on any machine with its credentials can."""
    if not is_uri(where) and not Path(where).expanduser().is_dir():
        raise TuneInputError(f"{where}: no such experiment folder; check the path (storage/name)")
    folder, shown = open_experiment(where)
    with holding(folder, "resume"):
        if (folder / layout.STAGES_FILE).exists():
            return resume_staged(folder, address)
        return _resume(folder, shown, restart_errored, address, verbose)


def _resume(folder: Path, shown: str, restart_errored: bool, address: str | None, verbose: bool) -> int:
    uri = shown if is_uri(shown) else None
    search = layout.read_json(folder / layout.SEARCH_FILE) or {}
    _repair_for_resume(folder, shown, uri, search)
    if not uri:  # a trial with no readable checkpoint trains again from epoch 1, same id (experiment.restart)
        from ..experiment.restart import restart_unrestorable
        from ..ext.state_backup import named_checkpoints

        for line in restart_unrestorable(folder, restart_errored, named_checkpoints(folder)):
            print(f"note: {line}")
    num_samples = int(search.get("num_samples", 0))
    exp = load_experiment(folder)
    # Errored trials count as unfinished: resume retries them from their last checkpoint, or from
    # scratch with --restart-errored.
    if exp.is_finished(num_samples):
        print(f"nothing to resume: {folder.name} already finished ({summary_line(exp)}); "
              f"see `polsess-tune results {shown}`")
        return 0
    if address:
        from ..tune.cluster import check_address

        check_address(address)
    resources = search.get("resources_per_trial", {"cpu": 1, "gpu": 0})
    asked = "" if search.get("budget_epochs") else f", {num_samples} asked for"
    print(f"resuming {folder.name}: {summary_line(exp)} so far{asked}", flush=True)

    from ..tune.driver import restore

    start = time.perf_counter()
    restore(uri or str(folder), resources, search.get("wandb_mode", "offline"), restart_errored, address, verbose)
    validation = bool(search.get("validation"))  # its one verdict is by mean over seeds (tune.validate)
    code = finish(shown, time.perf_counter() - start, num_samples, best=not validation)
    if validation and code != 130:
        from ..tune.validate import report_validation

        report_validation(shown)
    return code


def _repair_for_resume(folder: Path, shown: str, uri: str | None, search: dict) -> None:
    """Refuse a moved experiment or one without state; repair a cut state and missing checkpoints
    (each said in a note); and clear the stop and the errors recorded as not worth retrying."""
    from ..ext.state_backup import end_cut_lines, repair, restore_missing_checkpoints

    started_at = search.get("experiment_path")
    if started_at and (started_at != uri if uri else Path(started_at) != folder):
        raise TuneInputError(
            f"{shown}: this experiment was started at {started_at}; its W&B runs and state backup are tied "
            f"to that path, so move it back there (or resume it from there) instead"
        )
    # A URI's state cannot be cut by a kill (an object store writes an object whole or not at all),
    # so only a local folder has a state backup to repair from.
    notes = [] if uri else repair(folder)
    if not layout.has_experiment_state(folder):
        raise TuneInputError(
            f"{shown}: holds no Ray Tune experiment state ({layout.EXPERIMENT_STATE_GLOB}); it never got as "
            "far as its first trial, or it is not an experiment folder: start it again with `polsess-tune run`"
        )
    fixed = restore_missing_checkpoints(folder, uri)  # a URI's: named in the pulled folder, copied in the bucket
    for line in notes + fixed + ([] if uri else end_cut_lines(folder)):
        print(f"note: {line}")
    # Resuming says the cause was fixed: the stop and the errors recorded as not worth retrying go.
    (folder / layout.STOPPED_FILE).unlink(missing_ok=True)
    for trial in layout.trial_dirs(folder):
        (trial / layout.NOT_RETRIED_FILE).unlink(missing_ok=True)
    if uri:
        delete(uri, [layout.STOPPED_FILE])


def resume_staged(parent: Path, address: str | None) -> int:
    """Rebuild the staged search's plan from the request ``stages.json`` saved, and run on."""
    from ..space.stages import parse_stages
    from ..tune.plan import prepare_run
    from ..tune.staged import run_staged

    request = saved_request(parent / layout.STAGES_FILE)
    request = dataclasses.replace(request, storage=str(parent.parent), name=parent.name, resume=True, dry_run=False)
    plan = prepare_run(request, default_space(), default_config())
    plan.base.data.data_root = resolve_data_root(plan.base.data.data_root)
    from ..tune.packing import pack_gpus

    pack_gpus(plan)  # --gpus-per-trial auto (saved, or the default on a GPU machine) is measured again
    return run_staged(plan, parse_stages(plan.spec), request, address)


def saved_request(file: Path) -> RunRequest:
    """The :class:`RunRequest` a staged search saved (``request``, with its version), or the argparse
    values an older polsess-tune saved (``args``) read through the same type."""
    saved = json.loads(file.read_text())
    if "request" in saved:
        return RunRequest.from_saved(saved["request"], str(file))
    if "args" not in saved:
        raise TuneInputError(
            f"{file}: written by an older polsess-tune that saved no arguments; "
            "resume it with the polsess-tune version that started it, or start it again under a new --name"
        )
    if saved["args"].get("command", "run") != "run":
        raise TuneInputError(f"{file}: not a staged run")
    return legacy_run_request(saved["args"])


def cmd_resume(args: argparse.Namespace) -> int:
    return resume_experiment(args.experiment, args.restart_errored, args.address, args.verbose)
