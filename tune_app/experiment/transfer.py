"""Whether one stage of a staged search ranks configs the way the next stage does.

Why: a staged search pays only if its cheap stage ranks configs as the costly one would; on the
demo corpus it does not, and staging loses to a flat search (benchmarks/README.md). Each stage
after the first retrains the previous stage's top-K configs first, so both scores of those K configs
are known; Kendall's tau of the two (scipy's ``kendalltau``) tells, on the user's own data and at
no extra cost, whether the cheap stage's order of its best configs holds at the next fidelity. It is
a necessary check, not a sufficient one: it cannot see configs the cheap stage ranked out (on the
demo corpus the top 3 kept their order, tau +1, in a staged search that still lost 1.3 dB).
"""

from __future__ import annotations

import math
from typing import Any

from polsess.config import flatten

from .results import Experiment

MIN_PAIRS = 3  # tau over 2 configs is +1 or -1, which says nothing


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def carried_scores(previous: Experiment, current: Experiment, paths: list[str],
                   top_k: int) -> list[tuple[float, float]]:
    """(score in ``previous``, score in ``current``) of each of ``previous``'s top-``top_k`` configs
    that ``current`` retrained, matched by their searched values (``paths``)."""
    pairs = []
    trials = [(t, flatten(t.config)) for t in current.trials]
    for top in previous.ranked()[:top_k]:
        values = flatten(top.config)
        for trial, flat in trials:
            if all(_same(values.get(p), flat.get(p)) for p in paths):
                score = trial.best(current.metric, current.mode)
                if score is not None:
                    pairs.append((float(top.best(previous.metric, previous.mode)), float(score)))
                break
    return pairs


def stage_transfer_line(previous: tuple[str, Experiment], current: tuple[str, Experiment]) -> str | None:
    """:func:`transfer_line` of two consecutive stages, from what their folders recorded: the
    configs the later one started from are its ``points_to_evaluate`` (``search.json``)."""
    points = current[1].search.get("points_to_evaluate") or []
    paths = sorted({p for point in points for p in point})
    if not points or not paths:
        return None
    return transfer_line(previous[0], current[0], carried_scores(previous[1], current[1], paths, len(points)))


def transfer_line(previous_name: str, current_name: str, pairs: list[tuple[float, float]]) -> str | None:
    """One line on how well ``previous_name`` ranked its top configs, or None under MIN_PAIRS pairs."""
    if len(pairs) < MIN_PAIRS:
        return None
    from scipy.stats import kendalltau

    tau = float(kendalltau([a for a, _ in pairs], [b for _, b in pairs]).statistic)
    if not math.isfinite(tau):  # all scores tied in one stage
        return None
    verdict = ("they keep their order at the new fidelity (it cannot tell whether a config it dropped "
               "would have beaten them)" if tau >= 0.5 else
               "they keep their order only in part" if tau > 0 else
               "their order does not carry over, so the cheap stage narrowed the search on noise: give it more "
               "data or epochs, or search flat with ASHA and --budget-epochs")
    return (f"rank transfer {previous_name} → {current_name}: Kendall's tau {tau:+.2f} over its top "
            f"{len(pairs)} configs retrained; {verdict}")
