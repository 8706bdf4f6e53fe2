"""The engines the replay benchmark compares, each its real decision code behind :class:`replay_sim.Arm`.

- :class:`TuneArm` — polsess-tune: the Optuna sampler ``tune_app.space.make_sampler`` builds for the
  sweep (TPE with its start-up phase sized by the trials the budget buys, or random), wrapped in
  ``PriorSampler`` when a prior is given (trial 0 the prior's base point, enqueued as the driver
  enqueues it), asked and told through Optuna's ask/tell as ``ext/optuna_search.py`` does (a finished
  trial told its best epoch, a stopped or cut one PRUNED), and ``ext/asha.py``'s ``ResumableASHA``
  judging every epoch on trial stand-ins.
- :class:`WandbArm` — W&B's ``sweeps`` engine (``wandb_engine.Engine``): ``next_run`` proposes (bayes),
  ``stop_runs`` is its hyperband; optionally seeded with the base config as its first run (wandb#1809).
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import TrialState
from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler

from polsess.config import load_config, to_flat
from tune_app.ext.asha import ResumableASHA
from tune_app.names import EPOCH
from tune_app.space import make_sampler, optuna_space
from tune_app.space.prior import Prior, PriorSampler
from tune_app.space.sampling import startup_trials
from tune_app.space.spec import SearchSpec
from tune_app.space.sweep import resolve_param_name

optuna.logging.set_verbosity(optuna.logging.WARNING)


def base_flat(spec: SearchSpec) -> dict[str, Any]:
    return to_flat(load_config(spec.base_config, spec.fixed))


class TuneArm:
    """polsess-tune's sampler and ASHA (see the module docstring)."""

    def __init__(self, spec: SearchSpec, seed: int, trials_expected: int, prior: Prior | None = None) -> None:
        self.spec, self.metric = spec, spec.metric
        self.maximize = spec.mode == "max"
        inner = make_sampler(spec, seed, num_samples=trials_expected)
        startup = startup_trials(spec, trials_expected)
        self.sampler = inner if prior is None else PriorSampler(inner, prior, seed, budget=trials_expected,
                                                                startup=startup, maximize=self.maximize)
        self.study = optuna.create_study(direction="maximize" if self.maximize else "minimize", sampler=self.sampler)
        if prior is not None:
            self.study.enqueue_trial(prior.base_point)
        self.space = optuna_space(spec)
        s = spec.scheduler
        self.asha = None
        if s.type == "asha":
            self.asha = ResumableASHA.live(metric=self.metric, mode=spec.mode, max_t=s.max_t,
                                           grace_period=s.grace_period or 1,
                                           reduction_factor=s.reduction_factor or 3, brackets=s.brackets or 1)
        self.trials: dict[str, tuple[optuna.Trial, Trial]] = {}
        self.sources: dict[str, str] = {}

    def watch(self, name: str) -> Trial:
        """A trial stand-in ASHA knows by ``name`` (what ``_Bracket`` needs of a trial: its id)."""
        stub = Trial("replay", stub=True, trial_id=name, config={})
        if self.asha is not None:
            self.asha.on_trial_add(None, stub)
        return stub

    def judge(self, stub: Trial, epoch: int, value: float) -> bool:
        """ASHA's decision on one report, as Tune asks it: True to stop the trial."""
        if self.asha is None:
            return False
        return self.asha.on_trial_result(None, stub, {EPOCH: epoch, self.metric: value}) == TrialScheduler.STOP

    def propose(self, name: str) -> dict[str, Any]:
        ot = self.study.ask(self.space)
        self.trials[name] = (ot, self.watch(name))
        if isinstance(self.sampler, PriorSampler):
            self.sources[name] = self.sampler.source_of(self.study, self.study.trials[ot.number])
        return dict(ot.params)

    def report(self, name: str, epoch: int, value: float) -> set[str]:
        ot, stub = self.trials[name]
        ot.report(value, epoch)
        return {name} if self.judge(stub, epoch, value) else set()

    def finish(self, name: str, completed: bool) -> None:
        ot, _ = self.trials[name]
        if completed:
            values = list(self.study.trials[ot.number].intermediate_values.values())
            self.study.tell(ot, max(values) if self.maximize else min(values))
        else:
            self.study.tell(ot, state=TrialState.PRUNED)


class WandbArm:
    """W&B's sweep engine, as ``wandb agent`` drives it (see the module docstring)."""

    def __init__(self, sweep: dict[str, Any], spec: SearchSpec, seed: int, base: dict[str, Any] | None = None) -> None:
        from wandb_engine import Engine

        self.engine = Engine(sweep, seed)
        self.metric = spec.metric
        self.names = {name: self._path(name) for name in self.engine.config["parameters"] if name != "config"}
        self.base = base
        self.count = 0

    def _path(self, name: str) -> str:
        return resolve_param_name(name, source="replay", key=name)

    def propose(self, name: str) -> dict[str, Any]:
        self.count += 1
        if self.base is not None and self.count == 1:
            params = {n: self.base[p] for n, p in self.names.items()}
            constants = {n: spec["value"] for n, spec in self.engine.config["parameters"].items()
                         if n not in self.names and "value" in spec}
            self.engine.add(name, {**constants, **params})
            return dict(self.base)
        params = self.engine.propose(name)
        return {self.names[n]: v for n, v in params.items() if n in self.names}

    def report(self, name: str, epoch: int, value: float) -> set[str]:
        self.engine.report(name, {self.metric: value, "epoch": epoch})
        return set(self.engine.to_stop())

    def finish(self, name: str, completed: bool) -> None:
        self.engine.finish(name, stopped=not completed)
