"""Read a finished (or interrupted) experiment folder: table, JSON, CSV, best-config export.

Reads the files Tune writes (``experiment_state-*.json``, each trial's ``result.json`` and
``checkpoint_*``) and our ``search.json``, without starting Ray, so `results` is instant and
works on a copy of the folder taken from a cluster.
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polsess.config import config_from_flat, flatten, save_config

from .errors import TuneInputError

SEARCH_FILE = "search.json"


@dataclass
class TrialRecord:
    trial_id: str
    status: str  # COMPLETED | EARLY_STOPPED | ERROR | RUNNING | PENDING | PAUSED
    config: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    path: Path | None = None
    error: str | None = None

    def scores(self, metric: str) -> list[float]:
        return [r[metric] for r in self.history if isinstance(r.get(metric), (int, float))]

    def best(self, metric: str, mode: str) -> float | None:
        values = [v for v in self.scores(metric) if math.isfinite(v)]
        if not values:
            return None
        return max(values) if mode == "max" else min(values)

    @property
    def epochs(self) -> int:
        return max((int(r.get("epoch", 0)) for r in self.history), default=0)

    def checkpoint(self) -> Path | None:
        """The newest checkpoint folder Tune kept (best and latest are both kept)."""
        if self.path is None:
            return None
        folders = sorted(self.path.glob("checkpoint_*"))
        return folders[-1] if folders else None


@dataclass
class Experiment:
    path: Path
    metric: str
    mode: str
    space: list[str]
    trials: list[TrialRecord]
    search: dict[str, Any]

    def ranked(self) -> list[TrialRecord]:
        sign = 1 if self.mode == "max" else -1
        scored = [t for t in self.trials if t.best(self.metric, self.mode) is not None]
        return sorted(scored, key=lambda t: -sign * t.best(self.metric, self.mode))

    def best_trial(self) -> TrialRecord | None:
        ranked = self.ranked()
        return ranked[0] if ranked else None

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in self.trials:
            out[t.status] = out.get(t.status, 0) + 1
        return out


def has_experiment_state(path: Path) -> bool:
    return any(Path(path).glob("experiment_state-*.json"))


def load_experiment(path: str | Path) -> Experiment:
    path = Path(path)
    if not path.is_dir():
        raise TuneInputError(f"{path}: no such experiment folder")
    if not has_experiment_state(path):
        raise TuneInputError(f"{path}: holds no Ray Tune experiment (no experiment_state-*.json)")
    search = _read_json(path / SEARCH_FILE) or {}
    metric = search.get("metric", "val_sisdr")
    mode = search.get("mode", "max")
    states = _trial_states(path)
    trials = []
    for trial_dir in sorted(path.glob("trial_*")):
        trial_id = trial_dir.name.removeprefix("trial_")
        if states and trial_id not in states:
            continue  # replaced by `resume --restart-errored` (a restarted trial gets a new id)
        state = states.get(trial_id, {})
        config = _read_json(trial_dir / "params.json") or state.get("config") or {}
        history = _read_results(trial_dir / "result.json")
        trials.append(TrialRecord(
            trial_id=trial_id,
            status=_status(state.get("status"), history),
            config=config,
            history=history,
            path=trial_dir,
            error=_error_reason(trial_dir) or state.get("error"),
        ))
    for trial_id, state in states.items():  # trials that never got a folder
        if not any(t.trial_id == trial_id for t in trials):
            trials.append(TrialRecord(trial_id, _status(state.get("status"), []), state.get("config") or {}))
    return Experiment(path, metric, mode, search.get("space_paths", []), trials, search)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def parse_result_lines(text: str) -> list[dict[str, Any]]:
    """Tune's result.json: one JSON object per report; a line cut by a kill is skipped."""
    rows = []
    for line in text.splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows


def _read_results(path: Path) -> list[dict[str, Any]]:
    try:
        rows = parse_result_lines(path.read_text())
    except OSError:
        return []
    # A restored trial can repeat an iteration; keep the last report of each.
    by_iter = {r.get("training_iteration", i): r for i, r in enumerate(rows)}
    return [by_iter[k] for k in sorted(by_iter)]


def _trial_states(path: Path) -> dict[str, dict[str, Any]]:
    # Ray names state files by start time; a resumed run writes a newer one beside the old.
    newest = max(path.glob("experiment_state-*.json"), key=lambda p: p.name)
    data = _read_json(newest) or {}
    out: dict[str, dict[str, Any]] = {}
    for entry in data.get("trial_data", []):
        trial_json = entry[0] if isinstance(entry, list) else entry
        try:
            trial = json.loads(trial_json) if isinstance(trial_json, str) else trial_json
        except ValueError:
            continue
        trial_id = trial.get("trial_id")
        if trial_id:
            out[trial_id] = {"status": trial.get("status"), "config": trial.get("config"),
                             "error": _error_text(trial)}
    return out


def _error_reason(trial_dir: Path) -> str | None:
    """The exception line of the trial's error.txt: what a user needs, without the traceback."""
    try:
        lines = [line.strip() for line in (trial_dir / "error.txt").read_text().splitlines() if line.strip()]
    except OSError:
        return None
    reasons = [line for line in lines if re.match(r"^[\w.]+(Error|Exception|Diverged)\b.*:", line)]
    return (reasons[-1] if reasons else lines[-1]) if lines else None


def _error_text(trial: dict[str, Any]) -> str | None:
    for key in ("error_msg", "error_file"):
        if trial.get(key):
            return str(trial[key])
    return None


def _status(ray_status: str | None, history: list[dict[str, Any]]) -> str:
    if ray_status == "TERMINATED":
        finished = bool(history) and history[-1].get("done_training", True)
        return "COMPLETED" if finished else "EARLY_STOPPED"
    return ray_status or ("PENDING" if not history else "UNKNOWN")


# --------------------------------------------------------------------------- output


def short_name(path: str) -> str:
    return path.rsplit(".", 1)[-1]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def table(exp: Experiment, top: int | None = None) -> str:
    rows = exp.ranked() + [t for t in exp.trials if t.best(exp.metric, exp.mode) is None]
    rows = rows[:top] if top else rows
    flat_configs = [flatten(t.config) for t in rows]
    params = exp.space or []
    head = ["trial", "status", *[short_name(p) for p in params], "epochs", f"best {exp.metric}", "last val_sisdr"]
    body = []
    for t, flat in zip(rows, flat_configs, strict=True):
        best = t.best(exp.metric, exp.mode)
        last = t.scores("val_sisdr")[-1] if t.scores("val_sisdr") else None
        body.append([t.trial_id, t.status, *[_fmt(flat.get(p, "")) for p in params], str(t.epochs),
                     "-" if best is None else f"{best:.2f}", "-" if last is None else f"{last:.2f}"])
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [head, *body])


def to_json(exp: Experiment) -> dict[str, Any]:
    trials = []
    for t in exp.trials:
        ckpt = t.checkpoint()
        val = t.scores("val_sisdr")
        trials.append({
            "trial_id": t.trial_id,
            "status": t.status,
            "config": t.config,
            "best_val_sisdr": max(val) if val else None,
            "last_val_sisdr": val[-1] if val else None,
            "epochs": t.epochs,
            "checkpoint": str(ckpt) if ckpt else None,
            "error": t.error,
        })
    best = exp.best_trial()
    return {
        "experiment": str(exp.path),
        "metric": exp.metric,
        "mode": exp.mode,
        "counts": exp.counts(),
        "trials": trials,
        "best": None if best is None else {
            "trial_id": best.trial_id,
            "score": best.best(exp.metric, exp.mode),
            "config": best.config,
        },
    }


def export_best(exp: Experiment, out: str | Path) -> Path:
    """The best trial's full config as an experiment YAML that `polsess-tune train` accepts."""
    best = exp.best_trial()
    if best is None:
        raise TuneInputError(f"{exp.path}: no trial reported {exp.metric} yet; nothing to export")
    cfg = config_from_flat(flatten(best.config))
    score = best.best(exp.metric, exp.mode)
    header = (f"Best config of {exp.path.name} (trial {best.trial_id}): {exp.metric} = {score:.3f} dB\n"
              f"Train it: polsess-tune train --config {Path(out).name}")
    return save_config(cfg, out, header=header)


def write_csv(exp: Experiment, out: str | Path) -> Path:
    params = exp.space or []
    out = Path(out)
    with out.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["trial_id", "status", *params, "epochs", f"best_{exp.metric}", "last_val_sisdr"])
        for t in exp.ranked() + [t for t in exp.trials if t.best(exp.metric, exp.mode) is None]:
            flat = flatten(t.config)
            val = t.scores("val_sisdr")
            writer.writerow([t.trial_id, t.status, *[flat.get(p, "") for p in params], t.epochs,
                             t.best(exp.metric, exp.mode), val[-1] if val else ""])
    return out


def error_lines(exp: Experiment) -> list[str]:
    return [f"trial {t.trial_id} errored: {t.error or 'see its error.txt'}" for t in exp.trials if t.status == "ERROR"]


def summary_line(exp: Experiment) -> str:
    c = exp.counts()
    parts = [f"{c.get(k, 0)} {k.lower().replace('_', '-')}" for k in ("COMPLETED", "EARLY_STOPPED", "ERROR")]
    other = sum(v for k, v in c.items() if k not in ("COMPLETED", "EARLY_STOPPED", "ERROR"))
    if other:
        parts.append(f"{other} unfinished")
    return f"{len(exp.trials)} trials: " + ", ".join(parts)
