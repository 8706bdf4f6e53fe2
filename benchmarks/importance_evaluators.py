"""Which Optuna importance evaluator finds the parameter that matters, at the sizes our searches have.

A synthetic objective of three parameters in [0, 1]: ``x`` drives the score (-10 (x - 0.3)^2),
``y`` nudges it (+0.3 y) and ``z`` does nothing. For each study size, 20 studies of random samples
(seeds 0..19) are ranked by Optuna's default evaluator (PED-ANOVA in Optuna 5, top 10 %),
PED-ANOVA with the top quantile polsess-tune uses (at least 2 trials), and fANOVA (seeded), and the
script counts how often ``x`` comes first. polsess-tune's `results` uses fANOVA because of this.

    python benchmarks/importance_evaluators.py [--studies 20]
"""

from __future__ import annotations

import argparse
import warnings

import optuna
from optuna.importance import FanovaImportanceEvaluator, PedAnovaImportanceEvaluator, get_param_importances


def objective(trial: optuna.Trial) -> float:
    x, y, z = (trial.suggest_float(n, 0.0, 1.0) for n in "xyz")
    return -10 * (x - 0.3) ** 2 + 0.3 * y + 0 * z


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=20)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore")
    share = {}
    for n in (8, 16, 32):
        hits = {"optuna default (ped-anova)": 0, "ped-anova, >= 2 top trials": 0, "fanova": 0}
        for seed in range(args.studies):
            study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=seed))
            study.optimize(objective, n_trials=n)
            quantile = min(0.5, max(0.1, 2 / n))
            evaluators = {"optuna default (ped-anova)": None,
                          "ped-anova, >= 2 top trials": PedAnovaImportanceEvaluator(target_quantile=quantile),
                          "fanova": FanovaImportanceEvaluator(seed=0)}
            for name, ev in evaluators.items():
                hits[name] += next(iter(get_param_importances(study, evaluator=ev))) == "x"
        for name, k in hits.items():
            print(f"{n} trials, {name}: x ranked first in {k}/{args.studies}")
        share[n] = hits
    for n in (8, 16):
        ratio = share[n]["fanova"] / max(1, share[n]["optuna default (ped-anova)"])
        print(f"fanova / optuna default, right first at {n} trials, ratio: {ratio:.2f} (target >= 1)")


if __name__ == "__main__":
    main()
