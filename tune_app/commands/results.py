"""``polsess-tune results``: a finished or running experiment as a table, JSON, plots, the best config."""

from __future__ import annotations

import argparse
import json
import socket
import sys
from pathlib import Path

from ..errors import TuneInputError
from ..experiment import layout, location, pareto
from ..experiment.report import best_checkpoint_line, export_best, front_table, summary_line, table, to_json
from ..experiment.results import Experiment, TrialRecord, load_experiment
from ..experiment.study import study_line
from ..experiment.transfer import stage_transfer_line
from ..names import COST_METRICS, METRICS


def _check_export(args: argparse.Namespace) -> None:
    """Nothing a user made is overwritten: an existing --export-best file needs --force."""
    out = args.export_best
    if out is not None and Path(out).exists() and not args.force:
        raise TuneInputError(f"--export-best {out}: the file exists; pass --force to overwrite it or pick another name")


def cmd_results(args: argparse.Namespace) -> int:
    _check_export(args)
    folder, shown = location.open_experiment(args.experiment)  # a URI: pulled into its driver folder
    if (folder / layout.STAGES_FILE).exists():
        return staged_results(folder, args)
    exp = load_experiment(folder)
    chosen = _chosen(exp, args)
    ranking = _importance(exp)
    if args.export_best:
        out = _export(exp, args.export_best, chosen)
        print(f"wrote {out}")
    study = study_line(exp.search, exp.path)
    if args.json:
        print(json.dumps({**to_json(exp), "importance": dict(ranking), "study": study}, indent=2, default=str))
    elif not args.export_best:
        _print_report(exp, shown, study, ranking, args.top)
    if args.plots:
        from ..experiment.plots import write_plots

        out = folder / location.PLOTS_DIR if location.is_uri(shown) else None  # a URI's: on this machine
        for path in write_plots(exp, out, importance=ranking):
            print(f"wrote {path}", file=sys.stderr if args.json else sys.stdout)
    return 0


def _print_report(exp: Experiment, shown: str, study: str | None, ranking: list[tuple[str, float]], top: int) -> None:
    """The table, the summary, the one best (a validation's: the config ranked first by mean over seeds,
    as its best_config.yaml holds), the front, the study, where W&B runs are, the importance."""
    print(table(exp, top=top))
    print(summary_line(exp))
    if exp.search.get("validation"):
        from ..experiment import validation

        ranked = validation.scores_by_config(exp)
        print(f"\nby config, over seeds:\n{validation.table(ranked, exp.metric)}\n"
              f"{validation.verdict(ranked, exp.metric)}")
        line = validation.best_line(ranked, exp.metric)
    else:
        line = best_checkpoint_line(exp)
    if line:
        print(line)
    if pareto.is_multi_objective(exp):
        print(f"\n{front_table(exp)}")
    if study:
        print(study)
    if location.is_uri(shown):
        print(wandb_runs_line(exp.search))
    if ranking:
        from ..experiment.importance import format_importance, importance_caption

        print(f"\n{importance_caption(exp)}:")
        print(format_importance(ranking))


def wandb_runs_line(search: dict) -> str:
    """Where a URI experiment's W&B offline runs are: beside the driver that ran it, not in the bucket."""
    host, _, path = str(search.get("wandb_dir") or "").partition(":")
    if not path:
        return "W&B offline runs: not recorded (started by an older polsess-tune)"
    here = host == socket.gethostname() and Path(path).is_dir()
    return (f"W&B offline runs: {path} on {'this machine' if here else host} (beside the driver, not in the "
            f"bucket); upload them with `wandb sync {path}/wandb/offline-run-*`")


def _export(exp: Experiment, out: Path, chosen: TrialRecord | None) -> Path:
    """A validation's best is the config ranked first by mean over seeds (its best_config.yaml), not
    the single best run, which a lucky seed can make another config's; a search's is its best trial."""
    if chosen is None and exp.search.get("validation"):
        from ..experiment import validation

        written = validation.export_best_mean(exp, validation.scores_by_config(exp), out)
        if written is None:
            raise TuneInputError(f"{location.shown(exp.path)}: no validation run has finished yet; nothing to export")
        return written
    return export_best(exp, out, chosen)


def _chosen(exp: Experiment, args: argparse.Namespace) -> TrialRecord | None:
    """The trial --pareto K / --max METRIC=VALUE pick for --export-best (None: the best one)."""
    k, texts = args.pareto, args.bounds
    if k is None and not texts:
        return None
    if not args.export_best:
        raise TuneInputError("--pareto and --max choose what --export-best writes; add --export-best FILE")
    if k is not None and not pareto.is_multi_objective(exp):
        raise TuneInputError(f"--pareto {k}: {exp.path} searched one metric ({exp.metric}); use --max METRIC=VALUE")
    return pareto.pick(exp, k, pareto.parse_bounds(texts, [*METRICS, *COST_METRICS]))


def _importance(exp: Experiment) -> list[tuple[str, float]]:
    """The ranking, or [] with a note when the experiment has too few finished trials."""
    from ..experiment.importance import parameter_importance

    try:
        return parameter_importance(exp)
    except TuneInputError as exc:
        print(f"note: no parameter importance: {exc}", file=sys.stderr)
        return []


def staged_results(parent: Path, args: argparse.Namespace) -> int:
    """The stages side by side, then the final best config (the best trial of the last stage)."""
    names = json.loads((parent / layout.STAGES_FILE).read_text())["stages"]
    stages = [(name, load_experiment(parent / name)) for name in names if layout.has_experiment_state(parent / name)]
    if not stages:
        raise TuneInputError(f"{parent}: no stage has started yet")
    final = stages[-1][1]
    chosen = _chosen(final, args)  # --pareto / --max pick within the last stage
    if args.export_best:
        print(f"wrote {export_best(final, args.export_best, chosen)}")
    if args.json:
        print(json.dumps({"experiment": str(parent), "stages": [{"name": n, **to_json(e)} for n, e in stages],
                          "best": to_json(final)["best"]}, indent=2, default=str))
        return 0
    for i, (name, exp) in enumerate(stages):
        best = exp.best_trial()
        score = f"best {exp.metric} {best.best(exp.metric, exp.mode):.2f} dB" if best else "no score yet"
        print(f"== {name}: {summary_line(exp)}; {score}")
        print(table(exp, top=args.top))
        if i and (line := stage_transfer_line(stages[i - 1], (name, exp))):
            print(line)
        print()
    if len(stages) < len(names):
        print(f"stages not started: {', '.join(names[len(stages):])}")
    return 0
