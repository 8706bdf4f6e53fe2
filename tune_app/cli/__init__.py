"""``polsess-tune``: make-data, train, evaluate (no Ray) and run, resume, results (Ray Tune).

The CLI parses, dispatches to :mod:`tune_app.commands` and turns the user's mistakes into one
``error: …`` line with exit status 2. Ray is imported only by the commands that need it, so
``train`` and ``--dry-run`` start fast.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys

from .parser import build_parser, wandb_habit


def _user_errors() -> tuple[type[BaseException], ...]:
    from polsess.config import ConfigError
    from polsess.data import PolSESSDataError

    from ..errors import TuneInputError

    return (ConfigError, PolSESSDataError, TuneInputError)


def _dispatch(args: argparse.Namespace) -> int:
    if args.command in ("make-data", "train", "evaluate"):
        from ..commands import local

        return {"make-data": local.cmd_make_data, "train": local.cmd_train, "evaluate": local.cmd_evaluate}[
            args.command
        ](args)
    if args.command == "run":
        from ..commands.run import cmd_run

        return cmd_run(args)
    if args.command == "resume":
        from ..commands.resume import cmd_resume

        return cmd_resume(args)
    if args.command == "validate":
        from ..commands.validate import cmd_validate

        return cmd_validate(args)
    from ..commands.results import cmd_results

    return cmd_results(args)


def _exit_status(exc: Exception) -> int | None:
    """2 for input the user can fix, 1 for a diverged training, None for a bug (traceback).

    The error classes are imported only here: polsess.trainer imports torch, 1.3 s of every run's start.
    """
    from polsess.trainer import TrainingDiverged

    if isinstance(exc, _user_errors()):
        return 2
    return 1 if isinstance(exc, TrainingDiverged) else None


def parse(argv: list[str] | None) -> argparse.Namespace:
    """Parse; an unknown flag after a command gets that command's usage, not the top level's, and a
    W&B flag one line saying what it is called here (exit 2 either way)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    habit = wandb_habit(args.command, extra)
    if habit:
        print(f"error: {habit}", file=sys.stderr)
        raise SystemExit(2)
    if extra:
        args.subcommand_parsers[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    del args.subcommand_parsers
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # a staged search stores it to resume
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `polsess-tune results … | head`: the reader left. Python's own advice: point stdout at devnull
        # so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        from ..tune.disk import file_message  # one of our own files (search.json, results.csv, …) did not fit

        print(f"error: {file_message(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:
        status = _exit_status(exc)
        if status is None:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return status
