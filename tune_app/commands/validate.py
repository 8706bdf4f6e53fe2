"""``polsess-tune validate EXPERIMENT``: retrain its top-K configs with several seeds and say which wins."""

from __future__ import annotations

import argparse

from polsess.config import ConfigError, resolve_name

from ..errors import TuneInputError
from ..tune.folder_lock import holding
from .options import config_overrides


def cmd_validate(args: argparse.Namespace) -> int:
    from ..tune.validate import prepare_validation, run_validation

    overrides = {}
    for key, value in config_overrides(args).items():
        try:
            overrides[resolve_name(key)] = value
        except ConfigError as exc:
            raise TuneInputError(f"--set {exc}") from None
    plan, configs = prepare_validation(args, overrides)
    top, seeds = plan.validation["top"], plan.validation["seeds"]
    print(f"validate {plan.validation['source']}: the top {len(top)} configs (trials {', '.join(top)}) × seeds "
          f"{', '.join(map(str, seeds))} = {len(configs)} trials, FIFO, into {plan.experiment_path}", flush=True)
    if args.dry_run:
        return 0
    if plan.wandb_note:
        print(plan.wandb_note)
    for note in plan.notes:
        print(f"note: {note}")
    with holding(plan.local_path, "validate"):
        return run_validation(plan, configs)
