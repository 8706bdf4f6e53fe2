"""The command line: every subcommand's flags (argparse), kept apart so ``--help`` imports no Ray."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..tune.requests import DEFAULT_MAX_FAILURES, DEFAULT_SEEDS, DEFAULT_VALIDATE_TOP

TRAIN_THREADS = 1  # `train --threads` default; see benchmarks/README.md "train vs trial"
DESCRIPTION = "polsess-tune: make-data, train, evaluate (no Ray) and run, resume, results (Ray Tune)."


def add_config_args(p: argparse.ArgumentParser, with_short_flags: bool = True) -> None:
    p.add_argument("--config", type=Path, help="experiment YAML (default: the built-in configs/demo.yaml)")
    p.add_argument("--data-root", help="PolSESS corpus root (default: $POLSESS_DATA_ROOT, else the demo corpus)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set training.lr=3e-4 (repeatable)")
    if with_short_flags:
        p.add_argument("--lr", type=float, help="learning rate (training.lr)")
        p.add_argument("--epochs", type=int, help="epochs to train (training.num_epochs)")
        p.add_argument("--batch-size", type=int, help="batch size (data.batch_size)")
        p.add_argument("--task", choices=["ES", "EB", "SB"],
                       help="ES: speaker 1 from the scene; EB: both speakers as one; SB: both, separated (data.task)")
        p.add_argument("--seed", type=int, help="training seed: weights, crops, variants (training.seed)")
        p.add_argument("--device", help="auto, cpu, cuda or cuda:N (training.device)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="polsess-tune", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True)

    commands = {}
    p = commands["make-data"] = sub.add_parser("make-data", help="write a synthetic corpus in the PolSESS layout")
    p.add_argument("root", type=Path, help="the corpus folder to create (its name names the metadata CSVs)")
    p.add_argument("--train", type=int, default=160, help="train rows (default 160)")
    p.add_argument("--val", type=int, default=40, help="val rows (default 40)")
    p.add_argument("--test", type=int, default=40, help="test rows (default 40)")
    p.add_argument("--sample-rate", type=int, choices=[8000, 16000], default=8000, help="Hz (default 8000)")
    p.add_argument("--seconds", type=float, default=4.0, help="length of every clip (default 4.0)")
    p.add_argument("--seed", type=int, default=0, help="the same seed writes the same bytes (default 0)")

    p = commands["train"] = sub.add_parser("train", help="train one config (no Ray)")
    add_config_args(p)
    p.add_argument("--out", type=Path, help="run folder (default: runs/train-<time>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from last.pt")
    p.add_argument("--threads", type=int, default=TRAIN_THREADS,
                   help=f"CPUs to train on, as a trial with that many CPUs does: one torch thread each, loader "
                        f"workers only on spare ones (default {TRAIN_THREADS}: fastest measured here, "
                        "benchmarks/threads.py)")

    p = commands["evaluate"] = sub.add_parser("evaluate", help="score a checkpoint per MM-IPC variant")
    p.add_argument("checkpoint", type=Path,
                   help="a .pt file, a search's checkpoint_* folder (results --json lists it) or a train run folder")
    p.add_argument("--data-root", help="the corpus to score on (default: the one the checkpoint trained on)")
    p.add_argument("--subset", default="test", choices=["train", "val", "test"], help="default test")
    p.add_argument("--max-samples", type=int, help="score only the first N rows")
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N (default: the checkpoint's)")
    p.add_argument("--json", action="store_true", help="one JSON object instead of the table")

    commands["run"] = sub.add_parser("run", help="run a Ray Tune search")
    add_run_args(commands["run"])
    commands["resume"] = sub.add_parser("resume", help="resume an interrupted search")
    add_resume_args(commands["resume"])
    commands["results"] = sub.add_parser("results", help="show or export a search's results")
    add_results_args(commands["results"])
    commands["validate"] = sub.add_parser("validate", help="retrain a search's top configs with several seeds")
    add_validate_args(commands["validate"])
    parser.set_defaults(subcommand_parsers=commands)  # for cli.parse: each command's own usage on a bad flag
    return parser


def gpus_arg(text: str) -> float | str:
    """A number, or ``auto`` (tune_app.tune.packing decides once the corpus is known)."""
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number such as 0.25, or auto") from None


def add_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--space", type=Path, help="W&B sweep file (default: the built-in search_spaces/demo.yaml)")
    add_config_args(p, with_short_flags=False)
    p.add_argument("--num-samples", type=int, help="trials to run (default: run_cap/count, else 8)")
    p.add_argument("--budget-epochs", type=int, metavar="N",
                   help="propose trials until N trial-epochs are trained, then end the search "
                        "(replaces run_cap unless --num-samples is given too)")
    p.add_argument("--max-concurrent", type=int, help="trials at once (default: what the CPUs/GPUs allow)")
    p.add_argument("--cpus-per-trial", type=float, help="CPUs per trial (default 1); sets torch threads")
    p.add_argument("--gpus-per-trial", type=gpus_arg,
                   help="GPUs per trial, or auto: measure one step and pack trials by memory and GPU use "
                        "(default: auto if the machine has GPUs, else 0); 0.25 packs 4 trials per GPU")
    p.add_argument("--storage", help="experiment parent folder or URI (default: ./runs)")
    p.add_argument("--name", help="experiment name (default: <space>-<time>)")
    p.add_argument("--wandb", choices=["offline", "online", "disabled"],
                   help="W&B mode (default: online with an API key, else offline)")
    p.add_argument("--wandb-project", help="W&B project (default: the sweep's project, else polsess-tune)")
    p.add_argument("--seed", type=int, help="sampler seed (default: the file's tune.seed, else 0)")
    p.add_argument("--grace-period", type=int, help="ASHA: epochs before a trial can be stopped")
    p.add_argument("--reduction-factor", type=float, help="ASHA: keep 1/factor of the trials at each rung")
    p.add_argument("--max-failures", type=int, default=DEFAULT_MAX_FAILURES,
                   help=f"retries of a trial whose worker died (default {DEFAULT_MAX_FAILURES})")
    p.add_argument("--address", help="attach to a running Ray cluster: auto or HOST:PORT")
    p.add_argument("--warm-start", metavar="CSV_OR_EXPERIMENT",
                   help="hand past runs inside the space to Optuna as evaluated points (W&B export or experiment)")
    p.add_argument("--optuna-storage", metavar="URL",
                   help="Optuna study storage, e.g. postgresql://host/db (default: sqlite in the experiment folder)")
    p.add_argument("--resume", action="store_true", help="resume the experiment --name in --storage")
    p.add_argument("--verbose", action="store_true",
                   help="Ray's own status table and logs instead of one line per trial event")
    p.add_argument("--dry-run", action="store_true", help="print the resolved search and sample configs; no Ray")
    p.add_argument("--json", action="store_true", help="with --dry-run: one JSON object")


def add_resume_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("experiment", help="the experiment folder or URI (storage/name)")
    p.add_argument("--restart-errored", action="store_true", help="restart errored trials from scratch")
    p.add_argument("--verbose", action="store_true", help="Ray's own logs as well (a search keeps its own view)")
    p.add_argument("--address", help="attach to a running Ray cluster: auto or HOST:PORT")


def add_validate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("experiment", help="the finished search's folder or URI (storage/name)")
    seeds = ",".join(map(str, DEFAULT_SEEDS))
    p.add_argument("--top", type=int, default=DEFAULT_VALIDATE_TOP,
                   help=f"configs to validate, best first (default {DEFAULT_VALIDATE_TOP})")
    p.add_argument("--seeds", default=seeds, help=f"training seeds, comma-separated (default {seeds})")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="change every validated config, e.g. --set data.train_max_samples=16000 (repeatable)")
    p.add_argument("--name", help="the validation experiment's name (default: <experiment>-validate)")
    p.add_argument("--storage", help="its parent folder (default: the experiment's)")
    p.add_argument("--max-concurrent", type=int, help="runs at once (default: what the CPUs/GPUs allow)")
    p.add_argument("--cpus-per-trial", type=float, help="CPUs per run (default: the search's)")
    p.add_argument("--gpus-per-trial", type=float, help="GPUs per run (default: the search's)")
    p.add_argument("--wandb", choices=["offline", "online", "disabled"],
                   help="W&B mode (default: online with an API key, else offline)")
    p.add_argument("--max-failures", type=int, default=DEFAULT_MAX_FAILURES,
                   help=f"retries of a run whose worker died (default {DEFAULT_MAX_FAILURES})")
    p.add_argument("--dry-run", action="store_true", help="say what would be retrained; no Ray")


def add_results_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("experiment", help="the experiment folder or URI (storage/name)")
    p.add_argument("--top", type=int, default=10, help="rows to show (default 10)")
    p.add_argument("--json", action="store_true", help="one JSON object: trials, best, importance")
    p.add_argument("--export-best", type=Path, metavar="FILE", help="write the best config as an experiment YAML")
    p.add_argument("--force", action="store_true", help="with --export-best: overwrite FILE if it exists")
    p.add_argument("--pareto", type=int, metavar="K",
                   help="with --export-best in a multi-objective search: export point K of the Pareto front")
    p.add_argument("--max", dest="bounds", action="append", default=[], metavar="METRIC=VALUE",
                   help="with --export-best: the best trial with METRIC <= VALUE (e.g. params_m=2); repeatable")
    p.add_argument("--plots", action="store_true",
                   help="write PNGs into the experiment folder: val_sisdr_per_epoch, and with 2+ finished trials "
                        "parameter_importance, optuna_parallel_coordinate, optuna_slice, optuna_contour (2+ searched "
                        "parameters), pareto_front (a multi-objective search)")


# Flags of `wandb agent` / `wandb sweep` that W&B users type from habit, and what ``run`` calls them
# (None: no flag here; the text says where it is set instead).
WANDB_HABITS: dict[str, str | None] = {"--count": "--num-samples", "--project": "--wandb-project",
                                       "-p": "--wandb-project", "--entity": None, "-e": None}
ENTITY_HINT = "here the W&B entity is the sweep file's `entity:` key (without one, your W&B account's default)"


def wandb_habit(command: str, extra: list[str]) -> str | None:
    """One line for a W&B flag given to ``run`` (``--count 4`` → ``--count is W&B's; here it is
    --num-samples``), instead of argparse's full usage; None when no such flag is among ``extra``."""
    if command != "run":
        return None
    for item in extra:
        flag = item.partition("=")[0]
        if flag in WANDB_HABITS:
            ours = WANDB_HABITS[flag]
            return f"{flag} is W&B's; " + (f"here it is {ours}" if ours else ENTITY_HINT)
    return None
