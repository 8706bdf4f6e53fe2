"""The researcher's own config as the search's prior (πBO, PriorBand), on Optuna's public sampler API.

Every sweep file names a base config: a hand-tuned baseline. W&B's engine cannot start from it
(wandb#8521); πBO (Hvarfner et al., ICLR 2022) and PriorBand (Mallik et al., NeurIPS 2023) show that
a prior centred on such defaults reaches the same accuracy several times sooner, and that a wrong
prior can be made to fade. Here:

- :class:`Prior` is the belief: a mode per searched parameter (the base config's value, or one
  given in ``tune.prior``) and a width σ on the parameter's unit scale (:meth:`Param.to_unit`: log
  for a log range; default 0.25, a quarter of the range). Numbers are drawn from a normal truncated
  to the range; a choice is drawn as the mode with probability ``1 - 2σ`` (0.5 by default) and
  uniformly otherwise, so the base value is favoured and the rest stay possible.
- :class:`PriorSampler` wraps the search's sampler (TPE, GP or random). Trial 0 is the mode itself
  (the driver enqueues it: the baseline is always measured). Each later trial is drawn from the
  prior with probability ``w`` and from the wrapped sampler otherwise, ``w`` set by the policy:

  - ``standing`` (the default): πBO's decaying weight ``min(1, β / n)`` for the n-th trial (β = 1 +
    budget / 10), times what the search has seen of the base config: its trial 0 set against every
    trial not drawn from the prior, epoch by epoch (each epoch both reported is one comparison;
    ``p`` = (wins + 1) / (comparisons + 2)), ``w = decay × max(0, 2p − 1)``. A base config that
    beats the search's own draws keeps its neighbourhood drawn from; one that only matches them (a
    mid-table baseline) or loses (a wrong one) fades within a few epochs. Before the first
    comparison ``w = decay / 2``, so the first proposals are half prior, half the sampler's, and
    the sampler's half is what the base config is compared against. The prior's own draws are
    left out of the comparison: they lie near the base config by construction.
  - ``pibo``: πBO's decaying weight alone, ``w = min(1, β / n)``; the evidence plays no part.
  - ``priorband``: among the trials scored so far, the top third's likelihood under the prior is
    set against its likelihood under a uniform draw, ``w = Lπ / (Lπ + 1)`` (PriorBand's ensemble
    policy, without its incumbent term); ``w = 1/2`` before two trials are scored. It is
    confounded: the prior's own draws fill the top third of a search they dominate.

  Chosen by benchmarks/replay.py (100 seeds, budgets of 5 and 20 trainings; benchmarks/README.md):
  against πBO's weight alone, ``standing`` lost 0.05–0.06 dB less with the demo's mid-table base
  config, kept a wrong prior level with W&B instead of 0.10 dB behind, and kept most of a good
  prior's gain (+0.17 dB at 5 trainings, as πBO; +0.04 against +0.07 at 20).

Why a sampler of our own: NePS (neural-pipeline-search) implements both, but it runs its own
evaluation loop, brings its own torch stack and would replace Optuna's study (our storage, resume
and optuna-dashboard); Optuna and Ray Tune offer only ``enqueue_trial`` / ``points_to_evaluate``.
Wrapping the existing sampler through ``BaseSampler``'s public methods keeps all of those.

Every decision is a function of the study's trials (their epochs reported so far and their sources,
which the study keeps as a user attribute), the seed and the trial number, so a resumed search
(whose study holds the restored trials) decides as an uninterrupted one would from the same trials,
and the decay counts the restored trials and warm-start points like any other.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

from .param import Param

DEFAULT_WIDTH = 0.25
POLICIES = ("standing", "pibo", "priorband")
DEFAULT_POLICY = "standing"  # measured: benchmarks/README.md, "The replay benchmark"
SOURCE_ATTR = "source"  # study trial user attribute: where the trial's config came from
# Values of SOURCE_ATTR (and of results' "source" column).
BASE, PRIOR, MODEL, RANDOM, WARM, POINT = "base", "prior", "model", "random", "warm-start", "point"


@dataclass(frozen=True)
class PriorSetting:
    """What a sweep file asks for (``tune.prior``, ``tune.prior_width``, ``tune.prior_policy``):
    ``values`` is ``"base"`` (the default), ``"none"`` or ``{config path: value}``."""

    values: str | dict[str, Any] = "base"
    width: float = DEFAULT_WIDTH
    policy: str = DEFAULT_POLICY

    @property
    def on(self) -> bool:
        return self.values != "none"

    def as_dict(self) -> dict[str, Any]:
        return {"values": self.values, "width": self.width, "policy": self.policy}


@dataclass(frozen=True)
class PriorParam:
    """One parameter's belief: ``mode`` a value inside its range, ``width`` σ on its unit scale."""

    param: Param
    mode: Any
    width: float

    def draw(self, rng: random.Random) -> Any:
        """A value from the truncated normal (numbers) or the favoured-mode mixture (choices)."""
        if self.param.kind == "categorical":
            if rng.random() < max(0.0, 1.0 - 2 * self.width):
                return self.mode
            return rng.choice(list(self.param.values or ()))
        centre = self.param.to_unit(self.mode)
        for _ in range(1000):  # rejection from the normal; σ ≥ 0.01 keeps the mass in [0, 1] large
            u = rng.gauss(centre, self.width)
            if 0.0 <= u <= 1.0:
                return self.param.from_unit(u)
        return self.mode

    def density(self, value: Any) -> float:
        """The prior's density at ``value`` relative to a uniform draw (1 everywhere for uniform)."""
        if self.param.kind == "categorical":
            k = len(self.param.values or ())
            keep = max(0.0, 1.0 - 2 * self.width)
            p = (keep if self.param.fit(value) == self.mode else 0.0) + (1.0 - keep) / k
            return p * k
        u, c, s = self.param.to_unit(value), self.param.to_unit(self.mode), self.width
        mass = _phi((1.0 - c) / s) - _phi((0.0 - c) / s)
        return math.exp(-0.5 * ((u - c) / s) ** 2) / (s * math.sqrt(2 * math.pi) * mass)


def _phi(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


@dataclass(frozen=True)
class Prior:
    """The search's prior: a belief per parameter it covers (the rest are drawn uniformly)."""

    params: dict[str, PriorParam]  # config path → belief
    origin: str  # "base" (the base config) or "explicit" (tune.prior values)
    policy: str = DEFAULT_POLICY
    base_point: dict[str, Any] = field(default_factory=dict)  # trial 0, every searched path
    notes: tuple[str, ...] = ()

    def density(self, point: dict[str, Any]) -> float:
        return math.prod(p.density(point[path]) for path, p in self.params.items() if path in point)

    def describe(self) -> list[dict[str, Any]]:
        """Per parameter: mode and width, for ``--dry-run`` (text and JSON) and search.json."""
        return [{"path": path, "mode": p.mode, "width": p.width, "kind": p.param.kind}
                for path, p in self.params.items()]


def resolve_prior(space: dict[str, Param], setting: PriorSetting, base_flat: dict[str, Any],
                  method: str = "bayes") -> Prior | None:
    """The prior a search uses, None when it has none (``prior: none``, a grid, nothing searched).

    ``setting.values`` is ``"base"`` or ``{path: value}`` (paths resolved and checked inside the space
    by :func:`read_prior`); a base value outside its range gives that parameter no prior, and trial 0
    takes the value inside nearest to it. A parameter pinned by ``--set`` is not in ``space``.
    """
    if not setting.on or not space or method == "grid":
        return None
    explicit = {p: v for p, v in setting.values.items() if p in space} if isinstance(setting.values, dict) else {}
    width, policy = setting.width, setting.policy
    params: dict[str, PriorParam] = {}
    base_point: dict[str, Any] = {}
    notes: list[str] = []
    for path, param in space.items():
        value = explicit.get(path, base_flat.get(path))
        if path in explicit or param.contains(value):
            mode = param.fit(value)
            params[path] = PriorParam(param, mode, width)
            base_point[path] = mode
        else:
            base_point[path] = _nearest(param, value)
            if not explicit:
                notes.append(f"{path}: the base config's {value!r} lies outside the range, so it has no prior "
                             f"and trial 0 takes {base_point[path]!r}, the nearest value inside")
    if not params:
        return None
    return Prior(params, "explicit" if isinstance(setting.values, dict) else "base", policy, base_point,
                 tuple(notes))


def read_prior(ctx: Any, tune: dict[str, Any], space: dict[str, Param], method: str,
               resolve: Any) -> PriorSetting:
    """``tune.prior`` / ``prior_width`` / ``prior_policy`` checked against the space (``ctx`` is the
    sweep reader's :class:`~.context.Ctx`; ``resolve`` maps a sweep name to its config path)."""
    raw = tune.get("prior", "base")
    width = tune.get("prior_width", DEFAULT_WIDTH)
    policy = tune.get("prior_policy", DEFAULT_POLICY)
    if method == "grid" and "prior" in tune and raw != "none":
        ctx.fail("tune.prior", "method grid tries every point in turn, so a prior has nothing to weigh; "
                               "remove tune.prior, or use method bayes or random")
    if isinstance(raw, dict):
        values = {}
        for name, value in raw.items():
            key = f"tune.prior.{name}"
            path = resolve(str(name), key)
            if path not in space:
                ctx.fail(key, f"{path} is not searched; a prior may only set searched parameters "
                              f"({', '.join(space) or 'none'})")
            problem = space[path].why_outside(value)
            if problem:
                ctx.fail(key, f"{value!r} {problem}; a prior's mode lies inside the space")
            values[path] = value
        return PriorSetting(values, width, policy)
    return PriorSetting(raw, width, policy)


def expected_from_prior(prior: Prior, proposals: int, budget: int | None) -> float:
    """How many of the first ``proposals`` after trial 0 the policy draws from the prior before any
    evidence (PriorBand-style: w = 1/2 until two trials are scored; πBO: min(1, β/n); standing:
    half of πBO's until the base config is compared)."""
    if prior.policy == "priorband":
        return 0.5 * proposals
    beta = 1.0 + (budget or 10) / 10.0
    decayed = sum(min(1.0, beta / n) for n in range(1, proposals + 1))
    return decayed / 2 if prior.policy == "standing" else decayed


def _nearest(param: Param, value: Any) -> Any:
    """The value inside ``param`` nearest to an outside ``value`` (its first choice if none is)."""
    if param.kind == "categorical" or not isinstance(value, (int, float)) or isinstance(value, bool):
        return (param.values or [None])[0] if param.kind == "categorical" else param.from_unit(0.5)
    return param.from_unit(0.0 if value < param.low else 1.0)


class PriorSampler(optuna.samplers.BaseSampler):
    """Draws a trial from ``prior`` or hands it to ``inner`` (see the module docstring).

    ``key`` maps a config path to the study's parameter name (the driver's '/'-joined names);
    ``budget`` is the number of trials expected (πBO's β), ``startup`` the wrapped sampler's
    random start-up trials (to tag its trials ``random`` or ``model``).
    """

    def __init__(self, inner: optuna.samplers.BaseSampler, prior: Prior, seed: int, *, key=str,
                 budget: int | None = None, startup: int = 0, objective: int = 0, maximize: bool = True) -> None:
        self.inner, self.prior, self.seed = inner, prior, seed
        self.budget, self.startup, self.objective, self.maximize = budget, startup, objective, maximize
        self._by_name = {key(path): p for path, p in prior.params.items()}
        self._path_of = {key(path): path for path in prior.params}
        self._sources: dict[int, str] = {}

    # ------------------------------------------------------------------ the decision

    def prior_weight(self, study: optuna.Study, number: int) -> float:
        """``w`` for trial ``number``: how likely it is drawn from the prior."""
        finished = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
                    if t.number < number]
        decay = min(1.0, (1.0 + (self.budget or 10) / 10.0) / max(1, number))
        if self.prior.policy == "pibo":
            return decay
        if self.prior.policy == "standing":
            return decay * self.standing(study, number)
        scored = [(self._score(t), t) for t in finished]
        scored = [(s, t) for s, t in scored if s is not None]
        if len(scored) < 2:
            return 0.5
        scored.sort(key=lambda st: st[0], reverse=self.maximize)
        top = [t for _, t in scored[: max(1, math.ceil(len(scored) / 3))]]
        likelihood = math.exp(sum(math.log(max(self._density(t), 1e-12)) for t in top) / len(top))
        return likelihood / (likelihood + 1.0)

    def standing(self, study: optuna.Study, number: int) -> float:
        """How far the base config's trial beats the trials not drawn from the prior, among those
        before ``number``: ``max(0, 2p - 1)`` with ``p`` its share of wins over every epoch both
        reported (a Laplace estimate); 1/2 before the first such epoch. Running trials count: their
        epochs are in the study as they are reported."""
        before = [(t, self._curve(t)) for t in study.get_trials(deepcopy=False) if t.number < number]
        base = [curve for t, curve in before if curve and self._source_seen(t) == BASE]
        rest = [curve for t, curve in before if curve and self._source_seen(t) not in (BASE, PRIOR)]
        wins = pairs = 0.0
        for mine in base:
            for other in rest:
                for step in mine.keys() & other.keys():
                    pairs += 1
                    a, b = mine[step], other[step]
                    wins += 0.5 if a == b else float((a > b) == self.maximize)
        if not pairs:
            return 0.5
        p = (wins + 1.0) / (pairs + 2.0)
        return max(0.0, 2.0 * p - 1.0)

    def _curve(self, trial: FrozenTrial) -> dict[Any, float]:
        """Step → score: the trial's epochs; a finished multi-objective trial (Optuna keeps no
        epochs for those) its one final score on the objective the prior is judged by."""
        if trial.intermediate_values:
            return dict(trial.intermediate_values)
        if trial.values and len(trial.values) > 1:
            return {"final": trial.values[self.objective]}
        return {}

    def _source_seen(self, trial: FrozenTrial) -> str | None:
        """A past trial's source: as the study records it (ext/optuna_search's user attribute, kept
        across a resume), else as this sampler decided it, else the base config's by its params."""
        source = trial.user_attrs.get(SOURCE_ATTR) or self._sources.get(trial.number)
        if source is None and self._is_base(trial.params):
            return BASE
        return source

    def source_of(self, study: optuna.Study, trial: FrozenTrial) -> str:
        """Where trial ``trial`` takes its config from; decided once per trial number."""
        if trial.number not in self._sources:
            if "fixed_params" in trial.system_attrs:
                fixed = trial.system_attrs["fixed_params"]
                source = BASE if self._is_base(fixed) else POINT
            else:
                rng = random.Random(f"{self.seed}:{trial.number}:source")  # str seeds are stable across processes
                if rng.random() < self.prior_weight(study, trial.number):
                    source = PRIOR
                else:
                    n_done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))
                    source = RANDOM if n_done < self.startup else MODEL
            self._sources[trial.number] = source
        return self._sources[trial.number]

    def source(self, number: int) -> str | None:
        """The source decided for study trial ``number`` (None if it was never asked)."""
        return self._sources.get(number)

    def _is_base(self, fixed: dict[str, Any]) -> bool:
        base = {name: self.prior.base_point[path] for name, path in self._path_of.items()}
        return all(fixed.get(name) == value for name, value in base.items())

    def _score(self, trial: FrozenTrial) -> float | None:
        """A finished trial's score: its value, else (pruned) its best intermediate value."""
        if trial.values:
            return trial.values[self.objective]
        inter = list(trial.intermediate_values.values())
        if not inter:
            return None
        return max(inter) if self.maximize else min(inter)

    def _density(self, trial: FrozenTrial) -> float:
        point = {self._path_of[name]: v for name, v in trial.params.items() if name in self._path_of}
        return self.prior.density(point)

    # ------------------------------------------------------------------ BaseSampler

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.inner.before_trial(study, trial)
        self.source_of(study, trial)

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self.inner.infer_relative_search_space(study, trial)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        if self.source_of(study, trial) == PRIOR:
            return {}  # every parameter comes from sample_independent, i.e. from the prior
        return self.inner.sample_relative(study, trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        if self.source_of(study, trial) == PRIOR:
            rng = random.Random(f"{self.seed}:{trial.number}:{param_name}")
            belief = self._by_name.get(param_name)
            if belief is not None:
                return belief.draw(rng)
            return optuna.samplers.RandomSampler(seed=rng.randrange(2**31)).sample_independent(
                study, trial, param_name, param_distribution)
        return self.inner.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        self.inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.inner.reseed_rng()
