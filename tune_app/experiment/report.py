"""An experiment as people read it: the ranked table, JSON, CSV, the summary line, the best config.

Every ranking here skips trials that never reported a score; statuses and the curve metric come
from :mod:`tune_app.names`.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from polsess.config import config_from_flat, flatten, save_config

from ..errors import TuneInputError
from ..names import (
    BUDGET_CUT,
    COMPLETED,
    COST_METRICS,
    CURVE_METRIC,
    EARLY_STOPPED,
    EPOCH,
    ERROR,
    NOT_STARTED,
    VALIDATION_KEY,
    status_label,
)
from . import pareto
from .location import is_uri, shown
from .results import Experiment, TrialRecord


def short_name(path: str) -> str:
    return path.rsplit(".", 1)[-1]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _all_ranked(exp: Experiment) -> list[TrialRecord]:
    """The ranked trials, then the rest (errored, unscored) in their order."""
    ranked = exp.ranked()
    return ranked + [t for t in exp.trials if t not in ranked]


def sources(exp: Experiment) -> dict[str, str]:
    """Tune trial id → where its config came from (``base``, ``prior``, ``model``, …: the study's
    tags, tune_app.space.prior); empty for a search whose study is not on disk."""
    from .study import trial_sources

    return trial_sources(exp.search, exp.path)


def table(exp: Experiment, top: int | None = None) -> str:
    rows = _all_ranked(exp)
    rows = rows[:top] if top else rows
    flat_configs = [flatten(t.config) for t in rows]
    params = exp.space or []
    source = sources(exp)
    head = ["trial", "status", *(["source"] if source else []), *[short_name(p) for p in params], "epochs",
            f"best {exp.metric}", "last val_sisdr"]
    body = []
    for t, flat in zip(rows, flat_configs, strict=True):
        best = t.best(exp.metric, exp.mode)
        last = t.scores(CURVE_METRIC)[-1] if t.scores(CURVE_METRIC) else None
        body.append([t.trial_id, t.status, *([source.get(t.trial_id, "-")] if source else []),
                     *[_fmt(flat.get(p, "")) for p in params], str(t.epochs),
                     "-" if best is None else f"{best:.2f}", "-" if last is None else f"{last:.2f}"])
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [head, *body])


def to_json(exp: Experiment) -> dict[str, Any]:
    trials = []
    source = sources(exp)
    for t in exp.trials:
        ckpt = t.best_checkpoint(exp.metric, exp.mode)
        latest = t.latest_checkpoint()
        val = t.scores(CURVE_METRIC)
        trials.append({
            "trial_id": t.trial_id,
            "status": t.status,
            "source": source.get(t.trial_id),  # base, prior, model, random, warm-start, point; None: untagged
            "config": t.config,
            f"best_{CURVE_METRIC}": max(val) if val else None,
            f"last_{CURVE_METRIC}": val[-1] if val else None,
            "epochs": t.epochs,
            "checkpoint": shown(ckpt) if ckpt else None,  # the best epoch's: what evaluate wants
            # The epoch each holds: after a resume a checkpoint's number is not its epoch (results.py).
            "checkpoint_epoch": t.checkpoint_epoch(ckpt),
            "latest_checkpoint": shown(latest) if latest else None,
            "latest_checkpoint_epoch": t.checkpoint_epoch(latest),
            "error": t.error,
        })
    best = exp.best_trial()
    objs = pareto.objectives(exp)
    return {
        "experiment": shown(exp.path),
        "metric": exp.metric,
        "mode": exp.mode,
        "objectives": [list(o) for o in objs],
        "pareto_front": None if len(objs) < 2 else [
            {"trial_id": t.trial_id, "status": t.status, **dict(zip((n for n, _ in objs), p, strict=True))}
            for t, p in pareto.front(exp)],
        "counts": exp.counts(),
        "trials": trials,
        "best": None if best is None else {
            "trial_id": best.trial_id,
            "score": best.best(exp.metric, exp.mode),
            EPOCH: best_epoch(exp, best),
            "checkpoint": shown(c) if (c := best.best_checkpoint(exp.metric, exp.mode)) else None,
            "checkpoint_epoch": best.checkpoint_epoch(c),
            "config": best.config,
        },
    }


def export_best(exp: Experiment, out: str | Path, trial: TrialRecord | None = None) -> Path:
    """The best trial's (or ``trial``'s) full config as an experiment YAML that `polsess-tune train` accepts."""
    best = trial or exp.best_trial()
    if best is None:
        why = "every trial errored" if exp.trials and len(exp.errored()) == len(exp.trials) else \
            f"no trial reported {exp.metric} yet"
        raise TuneInputError(f"{shown(exp.path)}: {why}; nothing to export")
    cfg = config_from_flat(flatten({k: v for k, v in best.config.items() if k != VALIDATION_KEY}))
    score = best.best(exp.metric, exp.mode)
    costs = ", ".join(f"{name} = {t[-1]:.4g}" for name in COST_METRICS if (t := best.scores(name)))
    what = "Best config" if trial is None else "Chosen config"
    header = (f"{what} of {exp.path.name} (trial {best.trial_id}): {exp.metric} = {score:.3f} dB"
              + (f"; {costs}" if costs else "") + "\n"
              f"Train it: polsess-tune train --config {Path(out).name}")
    return save_config(cfg, out, header=header)


def front_table(exp: Experiment) -> str:
    """The Pareto front as rows: ``#  trial  status  <params>  epochs  <objectives>``, best first."""
    objs = pareto.objectives(exp)
    points = pareto.front(exp)
    params = exp.space or []
    head = ["#", "trial", "status", *[short_name(p) for p in params], "epochs",
            *[("best " if i == 0 else "") + name for i, (name, _) in enumerate(objs)]]
    body = []
    for i, (t, p) in enumerate(points, 1):
        flat = flatten(t.config)
        body.append([str(i), t.trial_id, t.status, *[_fmt(flat.get(q, "")) for q in params], str(t.epochs),
                     *[f"{v:.2f}" if j == 0 else f"{v:.4g}" for j, v in enumerate(p)]])
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    title = (f"Pareto front ({len(points)} of {len(pareto.candidates(exp))} scored trials; "
             + ", ".join(f"{n} {'higher' if m == 'max' else 'lower'} is better" for n, m in objs) + "):")
    rows = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [head, *body]]
    return "\n".join([title, *rows])


def write_csv(exp: Experiment, out: str | Path) -> Path:
    params = exp.space or []
    out = Path(out)
    with out.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["trial_id", "status", *params, "epochs", f"best_{exp.metric}", "last_val_sisdr"])
        for t in _all_ranked(exp):
            flat = flatten(t.config)
            val = t.scores(CURVE_METRIC)
            writer.writerow([t.trial_id, t.status, *[flat.get(p, "") for p in params], t.epochs,
                             t.best(exp.metric, exp.mode), val[-1] if val else ""])
    return out


def error_lines(exp: Experiment) -> list[str]:
    return [f"trial {t.trial_id} errored: {t.error or 'see its error.txt'}" for t in exp.trials if t.status == ERROR]


def summary_line(exp: Experiment) -> str:
    c = exp.counts()
    # Completed, early-stopped and errored always; a budget's cut and never-started trials when there are any.
    shown = (COMPLETED, EARLY_STOPPED, *(k for k in (BUDGET_CUT, NOT_STARTED) if c.get(k)), ERROR)
    parts = [f"{c.get(k, 0)} {status_label(k)}" for k in shown]
    other = sum(v for k, v in c.items() if k not in shown)
    if other:
        parts.append(f"{other} unfinished")
    budget = exp.search.get("budget_epochs")
    spent = f"; {exp.trial_epochs} of its budget of {budget} trial-epochs trained" if budget else ""
    return f"{len(exp.trials)} trials: " + ", ".join(parts) + spent


def best_checkpoint_line(exp: Experiment) -> str | None:
    """``best: trial X, val_sisdr 3.41 at epoch 7; checkpoint …`` with the command that scores it."""
    best = exp.best_trial()
    if best is None:
        return None
    score = best.best(exp.metric, exp.mode)
    ckpt = best.best_checkpoint(exp.metric, exp.mode)
    where = ""
    if ckpt:
        held = best.checkpoint_epoch(ckpt)
        notes = [f"epoch {held}"] if held is not None else []
        if not is_uri(shown(ckpt)):  # a URI's weights are in the bucket; evaluate reads a local folder
            notes.append(f"score it: polsess-tune evaluate {ckpt}")
        where = f"; checkpoint {shown(ckpt)}" + (f" ({'; '.join(notes)})" if notes else "")
    return f"best: trial {best.trial_id}, {exp.metric} {score:.2f} at epoch {best_epoch(exp, best)}{where}"


def best_epoch(exp: Experiment, trial: TrialRecord) -> int | None:
    """The epoch of ``trial``'s best score (its first, on a tie)."""
    score = trial.best(exp.metric, exp.mode)
    epoch = next((r.get(EPOCH) for r in trial.history if r.get(exp.metric) == score), None)
    return int(epoch) if isinstance(epoch, (int, float)) else None
