"""``polsess-tune resume``: continue an interrupted search (or staged search) where it stopped."""

from __future__ import annotations

import argparse
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
from ..tune.summary import finish
from .options import config_overrides, resolve_data_root


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
    from ..ext.state_backup import end_cut_lines, repair, restore_missing_checkpoints

    uri = shown if is_uri(shown) else None
    search = layout.read_json(folder / layout.SEARCH_FILE) or {}
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
    code = finish(shown, time.perf_counter() - start, num_samples)
    if search.get("validation") and code != 130:
        from ..tune.validate import report_validation

        report_validation(shown)
    return code


def resume_staged(parent: Path, address: str | None) -> int:
    """Rebuild the staged search's plan from the arguments ``stages.json`` saved, and run on."""
    from ..space.stages import parse_stages
    from ..tune.plan import prepare_run
    from ..tune.staged import run_staged

    saved = json.loads((parent / layout.STAGES_FILE).read_text())
    if "args" not in saved:
        raise TuneInputError(
            f"{parent / layout.STAGES_FILE}: written by an older polsess-tune that saved no arguments; "
            "resume it with the polsess-tune version that started it, or start it again under a new --name"
        )
    args = argparse.Namespace(**saved["args"])
    if getattr(args, "command", "run") != "run":
        raise TuneInputError(f"{parent / layout.STAGES_FILE}: not a staged run")
    args.storage, args.name, args.resume = str(parent.parent), parent.name, True
    plan = prepare_run(args, default_space(), default_config(), config_overrides(args))
    plan.base.data.data_root = resolve_data_root(plan.base.data.data_root)
    from ..tune.packing import pack_gpus

    pack_gpus(plan)  # --gpus-per-trial auto (saved, or the default on a GPU machine) is measured again
    return run_staged(plan, parse_stages(plan.spec), saved["args"], address)


def cmd_resume(args: argparse.Namespace) -> int:
    return resume_experiment(args.experiment, args.restart_errored, args.address, args.verbose)
