"""Which searched hyperparameters mattered: an importance ranking of a finished experiment.

Reads only what :func:`tune_app.results.load_experiment` reads (no Ray): every finished trial's
searched values and its best score become one trial of an in-memory Optuna study whose
distributions are rebuilt from ``search.json``'s ``space`` (the :func:`describe` output written
at the start of the run), and Optuna's importance evaluator ranks the parameters.

Decisions:

* **Which trials.** COMPLETED and EARLY_STOPPED trials, each scored by its best value of the
  experiment's metric (the same number the results table ranks by). ASHA stopped the early ones
  *because* they scored worse at a rung; leaving them out would keep only the survivors, which
  look alike, and throw away most of a search's evidence. ERROR trials (their score says how
  the run crashed, not how good the config is) and unfinished ones (RUNNING, PENDING, PAUSED of
  an interrupted search) are left out, as are trials that never reported a finite score.
* **Which evaluator.** ``"fanova"`` (default): Optuna's :class:`FanovaImportanceEvaluator`
  (a seeded scikit-learn random forest; variance decomposition over the whole space), the
  importance the issue tracker and most papers mean. ``"ped-anova"``: Optuna's
  :class:`PedAnovaImportanceEvaluator`, pure numpy, which measures how much each parameter's
  distribution among the *top* trials differs from all trials; its top quantile is Optuna's 10 %,
  raised so at least two trials are "top" (at most half of them).
* Importances are normalised to sum to 1 (all equal when every raw importance is 0), sorted
  descending, ties by path. Parameters whose range is a single value score 0. With a handful of
  trials the ranking is a hint, not a measurement: two trials are the minimum it accepts.
* A searched path that ``search.json`` does not describe (an older folder) gets a distribution
  inferred from the trials' values (linear range, or the categories seen). A trial whose value
  lies outside the described space is left out of the ranking.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from polsess.config import flatten

from .errors import TuneInputError
from .results import Experiment, TrialRecord

__all__ = [
    "EVALUATORS",
    "FINISHED",
    "distributions_from_search",
    "format_importance",
    "importance_study",
    "parameter_importance",
    "usable_trials",
]

FINISHED = ("COMPLETED", "EARLY_STOPPED")
EVALUATORS = ("ped-anova", "fanova")
MIN_TRIALS = 2


# --------------------------------------------------------------------------- distributions


def distribution_from_dict(info: dict[str, Any]) -> BaseDistribution:
    """One ``describe()`` entry ({"kind", "low", "high", "log", "q", "values"}) → an Optuna distribution.

    Mirrors :func:`tune_app.search_space.optuna_space`; a step together with a log scale (which
    Optuna refuses) keeps the log scale and drops the step, as the importance does not need it.
    """
    kind = info.get("kind")
    if kind == "categorical":
        return CategoricalDistribution(list(info.get("values") or ()))
    log = bool(info.get("log", False))
    q = info.get("q")
    if kind == "int":
        step = int(q or 1)
        return IntDistribution(int(info["low"]), int(info["high"]), log=log, step=1 if log else step)
    if kind == "float":
        step = None if (q is None or log) else float(q)
        return FloatDistribution(float(info["low"]), float(info["high"]), log=log, step=step)
    raise ValueError(f"unknown parameter kind {kind!r}")


def _inferred(values: list[Any]) -> BaseDistribution:
    """A distribution for a searched path search.json does not describe: from the values seen."""
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if numeric and len(set(values)) > 1:
        if all(isinstance(v, int) for v in values):
            return IntDistribution(min(values), max(values))
        return FloatDistribution(float(min(values)), float(max(values)))
    choices: list[Any] = []
    for v in values:
        if _choice_index(choices, v) is None:
            choices.append(v if v is None or isinstance(v, (bool, int, float, str)) else str(v))
    return CategoricalDistribution(choices)


def distributions_from_search(exp: Experiment) -> dict[str, BaseDistribution]:
    """The searched parameters of ``exp`` as Optuna distributions, keyed by config path.

    Paths come from ``search.json``'s ``space_paths`` (else the keys of ``space``); a path that
    ``space`` does not describe gets a distribution inferred from the trials' values.
    """
    space = exp.search.get("space") or {}
    paths = list(exp.space or space)
    out: dict[str, BaseDistribution] = {}
    for path in paths:
        if path in space:
            try:
                out[path] = distribution_from_dict(space[path])
                continue
            except (KeyError, TypeError, ValueError):
                pass
        seen = [flatten(t.config)[path] for t in exp.trials if path in flatten(t.config)]
        if seen:
            out[path] = _inferred(seen)
    return out


def _choice_index(choices: list[Any], value: Any) -> int | None:
    for i, c in enumerate(choices):  # same type first: True must not match 1
        if type(c) is type(value) and c == value:
            return i
    for i, c in enumerate(choices):
        if isinstance(c, (int, float)) and isinstance(value, (int, float)) and not isinstance(c, bool) \
                and not isinstance(value, bool) and c == value:
            return i
    for i, c in enumerate(choices):
        if isinstance(c, str) and not isinstance(value, str) and c == str(value):
            return i
    return None


def _fit(dist: BaseDistribution, value: Any) -> Any:
    """``value`` as a point of ``dist`` (float noise clamped and snapped to the step), or None."""
    if isinstance(dist, CategoricalDistribution):
        i = _choice_index(list(dist.choices), value)
        return None if i is None else dist.choices[i]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    span = dist.high - dist.low
    tol = 1e-9 * max(abs(dist.low), abs(dist.high), 1.0)
    if value < dist.low - tol or value > dist.high + tol:
        return None
    value = min(max(value, dist.low), dist.high)
    step = getattr(dist, "step", None)
    if isinstance(dist, IntDistribution):
        k = round((value - dist.low) / step)
        return int(min(dist.low + k * step, dist.high))
    if step is not None and span > 0:
        k = round((value - dist.low) / step)
        value = min(dist.low + k * step, dist.high)
    return float(value)


# --------------------------------------------------------------------------- study


def usable_trials(exp: Experiment) -> list[tuple[TrialRecord, float]]:
    """The trials the ranking uses, with their scores: finished (COMPLETED / EARLY_STOPPED) and scored."""
    out = []
    for t in exp.trials:
        if t.status not in FINISHED:
            continue
        score = t.best(exp.metric, exp.mode)
        if score is not None and math.isfinite(score):
            out.append((t, float(score)))
    return out


def importance_study(exp: Experiment) -> optuna.Study:
    """An in-memory Optuna study holding one COMPLETE trial per usable trial of ``exp``.

    Raises :class:`TuneInputError` when nothing was searched or fewer than 2 trials are usable.
    """
    dists = distributions_from_search(exp)
    if not dists:
        raise TuneInputError(
            f"{exp.path}: the search varied no parameters (search.json lists no searched space); "
            "there is nothing to rank"
        )
    scored = usable_trials(exp)
    frozen = []
    skipped = 0
    for t, score in scored:
        flat = flatten(t.config)
        params = {}
        for path, dist in dists.items():
            v = _fit(dist, flat.get(path)) if path in flat else None
            if v is None:
                break
            params[path] = v
        else:
            frozen.append(optuna.trial.create_trial(params=params, distributions=dists, value=score))
            continue
        skipped += 1
    if len(frozen) < MIN_TRIALS:
        c = exp.counts()
        why = (f"{c.get('COMPLETED', 0)} completed and {c.get('EARLY_STOPPED', 0)} early-stopped trials, "
               f"{len(scored)} of them with a finite {exp.metric}"
               + (f", {skipped} of those with values outside search.json's space" if skipped else ""))
        raise TuneInputError(
            f"{exp.path}: parameter importance needs at least {MIN_TRIALS} finished trials that reported "
            f"{exp.metric}; found {len(frozen)} ({why}). Run more trials (or resume the search) first"
        )
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(direction="maximize" if exp.mode == "max" else "minimize")
        study.add_trials(frozen)
    finally:
        optuna.logging.set_verbosity(verbosity)
    return study


def _evaluator(name: str, n_trials: int, seed: int) -> optuna.importance.BaseImportanceEvaluator:
    if name == "ped-anova":
        quantile = min(0.5, max(0.1, MIN_TRIALS / n_trials))
        return optuna.importance.PedAnovaImportanceEvaluator(target_quantile=quantile)
    if name == "fanova":
        try:
            import sklearn  # noqa: F401
        except ImportError:
            raise TuneInputError(
                "the fanova importance needs scikit-learn (pip install scikit-learn); "
                "--importance-evaluator ped-anova does not"
            ) from None
        return optuna.importance.FanovaImportanceEvaluator(seed=seed)
    raise TuneInputError(f"unknown importance evaluator {name!r}; use one of {', '.join(EVALUATORS)}")


def parameter_importance(exp: Experiment, *, evaluator: str = "fanova",
                         seed: int = 0) -> list[tuple[str, float]]:
    """``[(config path, importance), …]`` for every searched parameter, sorted descending, summing to 1.

    See the module docstring for which trials count and how. Deterministic: the same experiment
    (and ``seed`` for ``evaluator="fanova"``) gives the same ranking.
    Raises :class:`TuneInputError` when fewer than 2 finished trials reported the metric or
    nothing was searched.
    """
    study = importance_study(exp)
    params = list(distributions_from_search(exp))
    ev = _evaluator(evaluator, len(study.trials), seed)
    with warnings.catch_warnings():
        # PED-ANOVA warns on small studies ("importances will be equal"); the ranking says so itself.
        warnings.simplefilter("ignore")
        raw = optuna.importance.get_param_importances(study, evaluator=ev, params=params, normalize=True)
    values = {p: max(0.0, float(raw.get(p, 0.0))) for p in params}
    total = sum(values.values())
    values = {p: (v / total if total > 0 else 1.0 / len(values)) for p, v in values.items()}
    return sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))


# --------------------------------------------------------------------------- output


def format_importance(ranking: list[tuple[str, float]], width: int = 30) -> str:
    """A small text table: parameter path, importance, and a bar of ``#`` (full width = 1.0)."""
    if not ranking:
        return "parameter importance: (no searched parameters)"
    name_w = max(len("parameter"), *(len(p) for p, _ in ranking))
    lines = [f"{'parameter':<{name_w}}  importance", f"{'-' * name_w}  ----------"]
    for path, value in ranking:
        bar = "#" * round(value * width)
        lines.append(f"{path:<{name_w}}  {value:10.3f}  {bar}")
    return "\n".join(lines)
