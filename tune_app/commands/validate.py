"""``polsess-tune validate EXPERIMENT``: retrain its top-K configs with several seeds and say which wins."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from polsess.config import ConfigError, resolve_name, save_config

from ..errors import TuneInputError
from ..experiment import validation
from ..experiment.layout import BEST_CONFIG
from ..experiment.results import load_experiment
from ..tune.folder_lock import holding
from ..tune.plan import write_search_file
from ..tune.summary import finish
from .options import config_overrides


def report_validation(folder: Path) -> None:
    """The ranking by mean over seeds and the verdict; ``best_config.yaml`` becomes the best mean's config
    (``finish`` wrote the single best run's)."""
    from polsess.config import config_from_flat, flatten

    exp = load_experiment(folder)
    ranked = validation.scores_by_config(exp)
    print(f"\nvalidation of {exp.search.get('validation', {}).get('source')}: {exp.metric} by config, over seeds "
          "(each run's best epoch)")
    print(validation.table(ranked, exp.metric))
    print(validation.verdict(ranked, exp.metric))
    if ranked and ranked[0].scores:
        best = ranked[0]
        header = (f"Best mean of {exp.path.name}: trial {best.source_trial}'s config, {exp.metric} "
                  f"{best.mean:.3f} ± {best.std:.3f} dB over seeds {', '.join(map(str, best.scores))}\n"
                  f"Train it: polsess-tune train --config {BEST_CONFIG}")
        out = save_config(config_from_flat(flatten(best.config)), folder / BEST_CONFIG, header=header)
        print(f"best config (best mean): {out}")


def cmd_validate(args: argparse.Namespace) -> int:
    from ..tune.driver import execute
    from ..tune.validate import ConfigList, prepare_validation

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
    with holding(plan.experiment_path, "validate"):
        write_search_file(plan)
        start = time.perf_counter()
        execute(plan, search_alg=ConfigList(configs, plan.spec.metric, plan.spec.mode))
        code = finish(Path(plan.experiment_path), time.perf_counter() - start, plan.num_samples)
        if code != 130:
            report_validation(Path(plan.experiment_path))
        return code
