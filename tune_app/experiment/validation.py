"""Seed validation read back: each validated config's score over its seeds, the ranking by mean,
and whether the winner's lead is more than seed noise.

A search's top configs are often within seed noise of each other (the users' ConvTasNet stage 2:
3.358, 3.337 and 3.332 dB, a 0.026 dB spread), so ``polsess-tune validate`` retrains each with
several seeds; this module turns that experiment into the numbers the choice needs. A run's score
is its best epoch's metric (the checkpoint Tune keeps). The verdict is Welch's t-test (scipy) of the
winner's seeds against the runner-up's: the lead counts only where it is unlikely under seed noise.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..names import VALIDATION_KEY
from .results import Experiment, TrialRecord

SIGNIFICANCE = 0.05


@dataclass
class ConfigScores:
    source_trial: str
    config: dict[str, Any]  # the validated config (the source's, with the seed of its first run)
    scores: dict[int, float] = field(default_factory=dict)  # seed → best-epoch score
    trials: dict[int, str] = field(default_factory=dict)  # seed → validation trial id

    @property
    def mean(self) -> float:
        return statistics.fmean(self.scores.values())

    @property
    def std(self) -> float:
        return statistics.stdev(self.scores.values()) if len(self.scores) > 1 else 0.0


def origin(trial: TrialRecord) -> dict[str, Any] | None:
    tag = (trial.config or {}).get(VALIDATION_KEY)
    return tag if isinstance(tag, dict) else None


def scores_by_config(exp: Experiment) -> list[ConfigScores]:
    """Every validated config with the scores of its finished runs, best mean first."""
    out: dict[str, ConfigScores] = {}
    for trial in exp.trials:
        tag = origin(trial)
        if tag is None:
            continue
        entry = out.setdefault(str(tag["source_trial"]), ConfigScores(str(tag["source_trial"]), _config_of(trial)))
        score = trial.best(exp.metric, exp.mode)
        if trial.finished and score is not None:
            entry.scores[int(tag["seed"])] = score
            entry.trials[int(tag["seed"])] = trial.trial_id
    sign = 1 if exp.mode == "max" else -1
    scored = [c for c in out.values() if c.scores]
    return sorted(scored, key=lambda c: -sign * c.mean) + [c for c in out.values() if not c.scores]


def _config_of(trial: TrialRecord) -> dict[str, Any]:
    return {k: v for k, v in trial.config.items() if k != VALIDATION_KEY}


def verdict(ranked: list[ConfigScores], metric: str) -> str:
    """One plain sentence: does the winner's lead over the runner-up exceed the seed spread?"""
    scored = [c for c in ranked if c.scores]
    if not scored:
        return "no validation run has finished yet"
    if len(scored) == 1:
        return f"only trial {scored[0].source_trial}'s config has finished runs; nothing to compare"
    first, second = scored[0], scored[1]
    lead = abs(first.mean - second.mean)
    if min(len(first.scores), len(second.scores)) < 2:
        return (f"trial {first.source_trial}'s config leads by {lead:.3f} dB, but with one seed per config the "
                "seed spread is unknown; validate with 2 or more seeds")
    from scipy.stats import ttest_ind

    p = float(ttest_ind(list(first.scores.values()), list(second.scores.values()), equal_var=False).pvalue)
    spread = max(first.std, second.std)
    if p < SIGNIFICANCE:
        return (f"trial {first.source_trial}'s config wins: its lead of {lead:.3f} dB {metric} over trial "
                f"{second.source_trial}'s exceeds the seed spread (std up to {spread:.3f} dB; "
                f"Welch's t-test p={p:.3f})")
    return (f"no clear winner: the lead of {lead:.3f} dB of trial {first.source_trial}'s config over trial "
            f"{second.source_trial}'s is within the seed spread (std up to {spread:.3f} dB; Welch's t-test p={p:.2f}); "
            "treat them as tied, or validate with more seeds")


def table(ranked: list[ConfigScores], metric: str) -> str:
    seeds = sorted({s for c in ranked for s in c.scores})
    head = ["rank", "source trial", f"mean {metric}", "std", "min", "max", *[f"seed {s}" for s in seeds]]
    body = []
    for i, c in enumerate(ranked, 1):
        vals = list(c.scores.values())
        stats = ["-"] * 4 if not vals else [f"{c.mean:.3f}", f"{c.std:.3f}", f"{min(vals):.3f}", f"{max(vals):.3f}"]
        body.append([str(i), c.source_trial, *stats,
                     *[f"{c.scores[s]:.3f}" if s in c.scores else "-" for s in seeds]])
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    return "\n".join("  ".join(x.ljust(w) for x, w in zip(r, widths, strict=True)).rstrip() for r in [head, *body])


def best_line(ranked: list[ConfigScores], metric: str) -> str | None:
    """``best: trial X's config, …``: the config ranked first by mean, the one ``best_config.yaml`` holds
    (not the single best run, which a lucky seed can make another config's)."""
    if not ranked or not ranked[0].scores:
        return None
    best = ranked[0]
    return (f"best: trial {best.source_trial}'s config, {metric} {best.mean:.3f} ± {best.std:.3f} dB over seeds "
            f"{', '.join(map(str, best.scores))} (runs {', '.join(best.trials.values())})")


def export_best_mean(exp: Experiment, ranked: list[ConfigScores], out: str | Path) -> Path | None:
    """The config ranked first by mean over seeds as an experiment YAML (what ``validate`` leaves in
    ``best_config.yaml`` and ``results --export-best`` writes for a validation); None before any run finished."""
    from polsess.config import config_from_flat, flatten, save_config

    if not ranked or not ranked[0].scores:
        return None
    best = ranked[0]
    header = (f"Best mean of {exp.path.name}: trial {best.source_trial}'s config, {exp.metric} "
              f"{best.mean:.3f} ± {best.std:.3f} dB over seeds {', '.join(map(str, best.scores))}\n"
              f"Train it: polsess-tune train --config {Path(out).name}")
    return save_config(config_from_flat(flatten(best.config)), out, header=header)
