"""``polsess-tune validate EXPERIMENT``: retrain its top-K configs with several seeds and say which wins."""

from __future__ import annotations

import argparse

from ..tune.folder_lock import holding
from .options import validate_request


def cmd_validate(args: argparse.Namespace) -> int:
    from ..tune.validate import prepare_validation, run_validation

    request = validate_request(args)
    plan, configs = prepare_validation(request)
    v = plan.validation
    assert v is not None  # prepare_validation records what it retrains
    print(f"validate {v.source}: the top {len(v.top)} configs (trials {', '.join(v.top)}) × seeds "
          f"{', '.join(map(str, v.seeds))} = {len(configs)} trials, FIFO, into {plan.experiment_path}", flush=True)
    if request.dry_run:
        return 0
    if plan.wandb_note:
        print(plan.wandb_note)
    for note in plan.notes:
        print(f"note: {note}")
    with holding(plan.local_path, "validate"):
        return run_validation(plan, configs)
