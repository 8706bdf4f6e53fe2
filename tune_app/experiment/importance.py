"""Which searched hyperparameters mattered: an importance ranking of a finished experiment.

Reads only what :func:`.results.load_experiment` reads (no Ray): every finished trial's
searched values and its best score become one trial of an in-memory Optuna study whose
distributions are rebuilt from ``search.json``'s ``space`` (the :func:`describe` output written
at the start of the run, read back with :meth:`Param.from_dict`), and Optuna's importance
evaluator ranks the parameters.

Decisions:

* **Which trials.** COMPLETED and EARLY_STOPPED trials, each scored by its best value of the
  experiment's metric (the same number the results table ranks by). ASHA stopped the early ones
  *because* they scored worse at a rung; leaving them out would keep only the survivors, which
  look alike, and throw away most of a search's evidence. ERROR trials (their score says how
  the run crashed, not how good the config is) and unfinished ones (RUNNING, PENDING, PAUSED of
  an interrupted search) are left out, as are trials that never reported a finite score.
* **Which evaluator.** ``"fanova"`` (default): Optuna's :class:`FanovaImportanceEvaluator`
  (a seeded scikit-learn random forest; variance decomposition over the whole space). Optuna 5's
  own default is PED-ANOVA, but at the sizes these searches have it is mostly wrong: on a study
  where one of three parameters drives the score, it ranked that parameter first in 7 of 20 random
  8-trial studies and 11 of 20 16-trial ones, fANOVA in 19 and 20 of 20
  (``benchmarks/importance_evaluators.py``); from ~32 trials they agree. ``"ped-anova"``: Optuna's
  :class:`PedAnovaImportanceEvaluator`, its top quantile raised from 10 % so at least two trials are
  "top" (at most half of them).
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

from polsess.config import flatten

from ..errors import TuneInputError
from ..names import COMPLETED, EARLY_STOPPED, FINISHED
from ..space.param import Param, is_number
from .location import shown
from .results import Experiment, TrialRecord

__all__ = [
    "EVALUATORS",
    "format_importance",
    "importance_study",
    "parameter_importance",
    "params_from_search",
    "usable_trials",
]

EVALUATORS = ("fanova", "ped-anova")
MIN_TRIALS = 2
HINT_BELOW = 10  # fewer finished trials than this: the ranking is a hint, and says so
TRIAL_ATTR = "trial_id"  # user attributes of an importance_study trial: the Tune trial it stands for,
STATUS_ATTR = "status"  # and how that trial ended (the views of the space mark early-stopped ones)


def _inferred(path: str, values: list[Any]) -> Param:
    """A parameter for a searched path search.json does not describe: from the values seen."""
    numeric = all(is_number(v) for v in values)
    if numeric and len(set(values)) > 1:
        kind = "int" if all(isinstance(v, int) for v in values) else "float"
        return Param(path, path, kind, min(values), max(values))
    choices: list[Any] = []
    for v in values:
        v = v if v is None or isinstance(v, (bool, int, float, str)) else str(v)
        if Param(path, path, "categorical", values=choices).fit(v) is None:
            choices.append(v)
    return Param(path, path, "categorical", values=choices)


def params_from_search(exp: Experiment) -> dict[str, Param]:
    """The searched parameters of ``exp``, keyed by config path.

    Paths come from ``search.json``'s ``space_paths`` (else the keys of ``space``); a path that
    ``space`` does not describe gets a parameter inferred from the trials' values.
    """
    space = exp.search.get("space") or {}
    out: dict[str, Param] = {}
    for path in list(exp.space or space):
        if path in space:
            try:
                out[path] = Param.from_dict(path, space[path])
                continue
            except (KeyError, TypeError, ValueError):
                pass
        seen = [flatten(t.config)[path] for t in exp.trials if path in flatten(t.config)]
        if seen:
            out[path] = _inferred(path, seen)
    return out


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


def _point(params: dict[str, Param], flat: dict[str, Any]) -> dict[str, Any] | None:
    """A trial's searched values as points of ``params`` (float noise snapped), or None if one is outside."""
    out = {}
    for path, p in params.items():
        if path not in flat:
            return None
        raw = flat[path]
        value = p.fit(raw)
        if value is None and not (raw is None and p.kind == "categorical" and None in (p.values or [])):
            return None
        out[path] = value
    return out


def importance_study(exp: Experiment) -> optuna.Study:
    """An in-memory Optuna study holding one COMPLETE trial per usable trial of ``exp``, valued at its
    best epoch, its Tune trial id and status kept as user attributes (``TRIAL_ATTR``, ``STATUS_ATTR``).

    Raises :class:`TuneInputError` when nothing was searched or fewer than 2 trials are usable.
    """
    params = params_from_search(exp)
    if not params:
        raise TuneInputError(
            f"{shown(exp.path)}: the search varied no parameters (search.json lists no searched space); "
            "there is nothing to rank"
        )
    dists = {path: p.to_optuna() for path, p in params.items()}
    scored = usable_trials(exp)
    frozen = []
    skipped = 0
    for t, score in scored:
        values = _point(params, flatten(t.config))
        if values is None:
            skipped += 1
            continue
        frozen.append(optuna.trial.create_trial(params=values, distributions=dists, value=score,
                                                user_attrs={TRIAL_ATTR: t.trial_id, STATUS_ATTR: t.status}))
    if len(frozen) < MIN_TRIALS:
        c = exp.counts()
        why = (f"{c.get(COMPLETED, 0)} completed and {c.get(EARLY_STOPPED, 0)} early-stopped trials, "
               f"{len(scored)} of them with a finite {exp.metric}"
               + (f", {skipped} of those with values outside search.json's space" if skipped else ""))
        raise TuneInputError(
            f"{shown(exp.path)}: parameter importance needs at least {MIN_TRIALS} finished trials that reported "
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
                "the fanova importance needs scikit-learn (pip install scikit-learn), a dependency of "
                "polsess-tune: reinstall it with `pip install polsess-tune`"
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
    params = list(params_from_search(exp))
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


def importance_caption(exp: Experiment) -> str:
    """``parameter importance (fANOVA over val_sisdr, 6 finished trials; with so few, a hint)``."""
    n = len(usable_trials(exp))
    hint = f"; with fewer than {HINT_BELOW}, a hint rather than a measurement" if n < HINT_BELOW else ""
    return f"parameter importance (fANOVA over {exp.metric}, {n} finished trials{hint})"


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
