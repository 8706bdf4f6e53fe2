"""The commands that need no Ray: ``make-data``, ``train`` and ``evaluate`` (polsess on its own)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from ..builtin import default_config
from ..errors import UsageError
from ..experiment.layout import CHECKPOINT_FILE
from ..names import EPOCH
from .options import config_overrides, override_origins, resolve_data_root


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
    if args.threads < 1:
        raise UsageError(f"--threads {args.threads}: must be at least 1")
    if args.resume:
        if args.out is None:
            raise UsageError("--resume needs --out DIR (the run folder to continue)")
        if args.config:
            raise UsageError("--resume continues the config saved in --out; drop --config")
        from polsess.config import resolve_name

        trainer = fit(None, args.out, resume=True, cpus=args.threads,
                      resume_overrides={resolve_name(k): v for k, v in overrides.items()})
        print(f"best val SI-SDR {trainer.best_val_sisdr:.2f} dB; checkpoints in {args.out}")
        return 0
    cfg = load_config(args.config or default_config(), overrides, origins=override_origins(args))
    if not cfg.data.data_root:
        cfg.data.data_root = resolve_data_root(None)
    out = args.out or Path("runs") / time.strftime("train-%Y%m%d-%H%M%S")
    trainer = fit(cfg, out, cpus=args.threads)
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
    checkpoint = checkpoint_file(args.checkpoint)
    trainer = Trainer.from_checkpoint(checkpoint, overrides=overrides, log=lambda m: print(m, file=sys.stderr))
    result = evaluate(trainer, subset=args.subset, max_samples=args.max_samples)
    result["checkpoint"] = str(checkpoint)
    result[EPOCH] = trainer.epoch
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{checkpoint} (epoch {trainer.epoch}), {args.subset} subset, task {result['task']}")
        print(format_evaluation(result))
    return 0


def checkpoint_file(path: Path) -> Path:
    """A checkpoint file, or the folder holding one: a search's ``checkpoint_*`` folder (what
    ``results --json`` prints) or a ``train`` run folder (its best.pt, else last.pt)."""
    if not path.is_dir():
        return path
    for name in (CHECKPOINT_FILE, "best.pt", "last.pt"):
        if (path / name).is_file():
            return path / name
    raise UsageError(f"{path}: a folder without a checkpoint in it; give a checkpoint_* folder of a search, a "
                     f"`train` run folder, or a .pt file")
