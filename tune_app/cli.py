"""``polsess-tune``: make-data, train, evaluate (no Ray) and run, resume, results (Ray Tune).

Ray is imported only by the commands that need it, so ``train`` and ``--dry-run`` start fast.
Every user mistake ends as one ``error: …`` line naming the file or key, with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO_ROOT / "configs" / "demo.yaml"
DEFAULT_SPACE = REPO_ROOT / "search_spaces" / "demo.yaml"

# Short flags for the keys people change most; anything else goes through --set.
SHORT_FLAGS = {
    "lr": "training.lr",
    "epochs": "training.num_epochs",
    "batch_size": "data.batch_size",
    "task": "data.task",
    "seed": "training.seed",
    "device": "training.device",
}


class UsageError(ValueError):
    """A problem with the command line itself."""


def _user_errors() -> tuple[type[BaseException], ...]:
    from polsess.config import ConfigError
    from polsess.data import PolSESSDataError
    from tune_app.errors import TuneInputError
    from tune_app.search_space import SearchSpaceError

    return (ConfigError, PolSESSDataError, UsageError, TuneInputError, SearchSpaceError)


# --------------------------------------------------------------------------- argument parsing


def _add_config_args(p: argparse.ArgumentParser, with_short_flags: bool = True) -> None:
    p.add_argument("--config", type=Path, help="experiment YAML (default: configs/demo.yaml)")
    p.add_argument("--data-root", help="PolSESS corpus root (default: $POLSESS_DATA_ROOT, else the demo corpus)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set training.lr=3e-4 (repeatable)")
    if with_short_flags:
        p.add_argument("--lr", type=float)
        p.add_argument("--epochs", type=int)
        p.add_argument("--batch-size", type=int)
        p.add_argument("--task", choices=["ES", "EB", "SB"])
        p.add_argument("--seed", type=int)
        p.add_argument("--device", help="auto, cpu, cuda or cuda:N")


def parse_sets(items: list[str]) -> dict[str, Any]:
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
    overrides = parse_sets(args.sets)
    for flag, path in SHORT_FLAGS.items():
        value = getattr(args, flag, None)
        if value is not None:
            overrides[path] = value
    if args.data_root:
        overrides["data.data_root"] = str(Path(args.data_root).expanduser().resolve())
    return overrides


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="polsess-tune", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("make-data", help="write a synthetic corpus in the PolSESS layout")
    p.add_argument("root", type=Path)
    p.add_argument("--train", type=int, default=160)
    p.add_argument("--val", type=int, default=40)
    p.add_argument("--test", type=int, default=40)
    p.add_argument("--sample-rate", type=int, choices=[8000, 16000], default=8000)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("train", help="train one config (no Ray)")
    _add_config_args(p)
    p.add_argument("--out", type=Path, help="run folder (default: runs/train-<time>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from last.pt")

    p = sub.add_parser("evaluate", help="score a checkpoint per MM-IPC variant")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--data-root")
    p.add_argument("--subset", default="test", choices=["train", "val", "test"])
    p.add_argument("--max-samples", type=int)
    p.add_argument("--device")
    p.add_argument("--json", action="store_true")

    from tune_app.run_args import add_results_args, add_resume_args, add_run_args

    add_run_args(sub.add_parser("run", help="run a Ray Tune search"), _add_config_args)
    add_resume_args(sub.add_parser("resume", help="resume an interrupted search"))
    add_results_args(sub.add_parser("results", help="show or export a search's results"))
    return parser


# --------------------------------------------------------------------------- commands


def resolve_data_root(cfg_root: str | None, log=print) -> str:
    """The configured corpus, or the embedded demo corpus (made once in a cache folder)."""
    if cfg_root:
        return cfg_root
    from polsess.synth import ensure_demo_corpus

    return str(ensure_demo_corpus(log=log))


def cmd_make_data(args: argparse.Namespace) -> int:
    from polsess.synth import make_corpus

    start = time.perf_counter()
    try:
        root = make_corpus(args.root, train=args.train, val=args.val, test=args.test,
                           sample_rate=args.sample_rate, seconds=args.seconds, seed=args.seed)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    print(f"wrote {args.train}/{args.val}/{args.test} rows to {root} in {time.perf_counter() - start:.1f} s")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from polsess.config import load_config
    from polsess.fit import fit

    overrides = config_overrides(args)
    if args.resume:
        if args.out is None:
            raise UsageError("--resume needs --out DIR (the run folder to continue)")
        if args.config:
            raise UsageError("--resume continues the config saved in --out; drop --config")
        from polsess.config import resolve_name

        trainer = fit(None, args.out, resume=True,
                      resume_overrides={resolve_name(k): v for k, v in overrides.items()})
        print(f"best val SI-SDR {trainer.best_val_sisdr:.2f} dB; checkpoints in {args.out}")
        return 0
    cfg = load_config(args.config or DEFAULT_CONFIG, overrides)
    if not cfg.data.data_root:
        cfg.data.data_root = resolve_data_root(None)
    out = args.out or Path("runs") / time.strftime("train-%Y%m%d-%H%M%S")
    trainer = fit(cfg, out)
    print(f"best val SI-SDR {trainer.best_val_sisdr:.2f} dB; checkpoints in {out}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from polsess.evaluate import evaluate, format_evaluation
    from polsess.trainer import Trainer

    overrides: dict[str, Any] = {}
    if args.data_root:
        overrides["data.data_root"] = str(Path(args.data_root).expanduser().resolve())
    if args.device:
        overrides["training.device"] = args.device
    trainer = Trainer.from_checkpoint(args.checkpoint, overrides=overrides, log=lambda m: print(m, file=sys.stderr))
    result = evaluate(trainer, subset=args.subset, max_samples=args.max_samples)
    result["checkpoint"] = str(args.checkpoint)
    result["epoch"] = trainer.epoch
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{args.checkpoint} (epoch {trainer.epoch}), {args.subset} subset, task {result['task']}")
        print(format_evaluation(result))
    return 0


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "make-data":
        return cmd_make_data(args)
    if args.command == "train":
        return cmd_train(args)
    if args.command == "evaluate":
        return cmd_evaluate(args)
    from tune_app import commands

    return {"run": commands.cmd_run, "resume": commands.cmd_resume, "results": commands.cmd_results}[
        args.command
    ](args)


def _exit_status(exc: Exception) -> int | None:
    """2 for input the user can fix, 1 for a diverged training, None for a bug (traceback).

    The error classes are imported only here: polsess.trainer imports torch, 1.3 s of every run's start.
    """
    from polsess.trainer import TrainingDiverged

    if isinstance(exc, _user_errors()):
        return 2
    return 1 if isinstance(exc, TrainingDiverged) else None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # a staged search stores it to resume
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        status = _exit_status(exc)
        if status is None:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return status


if __name__ == "__main__":
    sys.exit(main())
