"""What the flags mean: ``--set``, the short flags, ``--data-root``; the corpus; and the typed requests.

Here argparse's namespace ends: :func:`run_request` and :func:`validate_request` turn it into the
frozen requests of :mod:`tune_app.tune.requests`, which is all :mod:`tune_app.tune` and below see.
A staged search saves its request, so its resume reads the same values back (paths made absolute
and ``--set`` parsed here, once).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import TuneInputError, UsageError
from ..tune.requests import RunRequest, ValidateRequest

# Short flags for the keys people change most; anything else goes through --set.
SHORT_FLAGS = {
    "lr": "training.lr",
    "epochs": "training.num_epochs",
    "batch_size": "data.batch_size",
    "task": "data.task",
    "seed": "training.seed",
    "device": "training.device",
}


def parse_sets(items: list[str]) -> dict[str, Any]:
    """``["training.lr=3e-4", …]`` → ``{"training.lr": 0.0003, …}`` (values read as YAML scalars)."""
    from polsess.config import parse_value

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set {item!r}: expected KEY=VALUE, e.g. --set training.lr=3e-4")
        out[key.strip()] = parse_value(value)
    return out


def config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """--set values, then the short flags (which win), then --data-root."""
    overrides = parse_sets(getattr(args, "sets", []) or [])
    for flag, path in SHORT_FLAGS.items():
        value = getattr(args, flag, None)
        if value is not None:
            overrides[path] = value
    if getattr(args, "data_root", None):
        overrides["data.data_root"] = str(Path(args.data_root).expanduser().resolve())
    return overrides


def override_origins(args: argparse.Namespace) -> dict[str, str]:
    """Where each key of :func:`config_overrides` came from (``--set lr``, ``--epochs``): a bad value is
    blamed on the flag, not on the config file (polsess.config.load_config's ``origins``)."""
    origins = {key: f"--set {key}" for key in parse_sets(getattr(args, "sets", []) or [])}
    origins.update({path: f"--{flag.replace('_', '-')}" for flag, path in SHORT_FLAGS.items()
                    if getattr(args, flag, None) is not None})
    if getattr(args, "data_root", None):
        origins["data.data_root"] = "--data-root"
    return origins


def resolve_data_root(cfg_root: str | None, log=print) -> str:
    """The configured corpus, or the embedded demo corpus (made once in a cache folder)."""
    if cfg_root:
        return cfg_root
    from polsess.synth import ensure_demo_corpus

    return str(ensure_demo_corpus(log=log))


def run_request(args: argparse.Namespace) -> RunRequest:
    """``run``'s flags as a :class:`RunRequest` (``--set``/``--data-root`` as config overrides)."""
    return RunRequest(
        space=args.space, config=args.config, overrides=config_overrides(args), origins=override_origins(args),
        num_samples=args.num_samples,
        budget_epochs=args.budget_epochs, max_concurrent=args.max_concurrent, cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial, storage=args.storage, name=args.name, wandb=args.wandb,
        wandb_project=args.wandb_project, seed=args.seed, grace_period=args.grace_period,
        reduction_factor=args.reduction_factor, max_failures=args.max_failures, address=args.address,
        warm_start=args.warm_start, optuna_storage=args.optuna_storage, resume=args.resume, verbose=args.verbose,
        dry_run=args.dry_run, as_json=args.json, argv=tuple(vars(args).get("argv", ())),
    )


def validate_request(args: argparse.Namespace) -> ValidateRequest:
    """``validate``'s flags as a :class:`ValidateRequest`: ``--seeds`` parsed, ``--set`` keys resolved."""
    from polsess.config import ConfigError, resolve_name

    from ..tune.validate import parse_seeds

    overrides = {}
    for key, value in config_overrides(args).items():
        try:
            overrides[resolve_name(key)] = value
        except ConfigError as exc:
            raise TuneInputError(f"--set {exc}") from None
    return ValidateRequest(
        experiment=args.experiment, top=args.top, seeds=tuple(parse_seeds(args.seeds)), overrides=overrides,
        name=args.name, storage=args.storage, max_concurrent=args.max_concurrent,
        cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial, wandb=args.wandb,
        max_failures=args.max_failures, dry_run=args.dry_run,
    )


# stages.json written before the request had a version held the run command's argparse values; a
# flag added since is missing there and takes its default.
_LEGACY_RUN_ARGS = {"sets": [], "data_root": None, "json": False, "argv": [], "budget_epochs": None,
                    "warm_start": None, "optuna_storage": None, "verbose": False, "dry_run": False}


def legacy_run_request(saved_args: dict[str, Any]) -> RunRequest:
    """A :class:`RunRequest` from an older ``stages.json``'s ``args`` (a run namespace as a dict)."""
    values = {**_LEGACY_RUN_ARGS, **saved_args}
    for key in ("space", "config"):  # argparse's type=Path, saved as text
        values[key] = Path(values[key]) if values.get(key) else None
    return run_request(argparse.Namespace(**values))
