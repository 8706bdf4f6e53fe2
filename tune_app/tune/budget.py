"""End a search when its budget of trial-epochs is spent (``--budget-epochs N`` / ``tune.budget_epochs``).

Why a budget and not only a trial count: with ASHA most trials stop at the grace period, so N trials
cost anything from N to N × max_epochs epochs, and the compute ASHA saves goes unspent. A budget
of trial-epochs (one trial training one epoch: the unit a GPU-hour buys) keeps Tune proposing
trials until it is spent and then ends the search at once, so two searches (or polsess-tune and a
W&B sweep) compare at equal cost. Ray's ``time_budget_s`` counts seconds, which change with the
machine and its load; epochs do not.

A ``Stopper`` (public Ray Tune API): it sees every result before the scheduler does, and its
``stop_all`` ends the experiment. Tune then sets the running trials TERMINATED without telling the
searcher, which ``experiment.study.end_trials_cut_by_budget`` makes good, nor the callbacks, and
without the ``done`` flag on their last report: by that, ``names.ended_status`` names them BUDGET_CUT
(NOT_STARTED before their first epoch) for ``results``, W&B, the study and the console. A running
trial loses the epoch it was in: at most one epoch per slot, against a budget of many.
"""

from __future__ import annotations

from typing import Any

from ray.tune.stopper import Stopper

from ..names import EPOCH


class BudgetStopper(Stopper):
    def __init__(self, budget_epochs: int, experiment_path: str) -> None:
        self.budget = budget_epochs
        self.experiment_path = experiment_path  # a folder or a URI: where a restored search counts from
        self._epochs: set[tuple[str, int]] = set()  # (trial id, epoch): a replayed report counts once
        self._counted_earlier = False
        self._said = False

    def __getstate__(self) -> dict[str, Any]:  # a restored search counts again, from the trials' files
        return {**self.__dict__, "_epochs": set(), "_counted_earlier": False, "_said": False}

    @property
    def spent(self) -> int:
        return len(self._epochs)

    def _count_earlier(self) -> None:
        """The epochs recorded before this driver: a resumed search's budget is what is left of it.
        Tune restores the stopper as a copy of the first driver's, so it reads them from the files."""
        self._counted_earlier = True
        from ..experiment.layout import SET_ASIDE_DIR, trial_dirname
        from ..experiment.location import filesystem
        from ..ext.trial_files import results_at, results_under

        fs, root = filesystem(self.experiment_path)
        for trial_id, rows in results_under(fs, root).items():
            # A training resume set aside (no readable checkpoint: it restarted) was spent all the same.
            aside = results_at(fs, f"{root.rstrip('/')}/{trial_dirname(trial_id)}/{SET_ASIDE_DIR}")
            for key, reports in ((trial_id, rows), (f"{trial_id}/{SET_ASIDE_DIR}", aside)):
                self._epochs.update((key, int(r[EPOCH])) for r in reports if isinstance(r.get(EPOCH), int))

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        if not self._counted_earlier:
            self._count_earlier()
        epoch = result.get(EPOCH)
        if isinstance(epoch, int):
            self._epochs.add((trial_id, epoch))
        return False

    def stop_all(self) -> bool:
        if self.spent < self.budget:
            return False
        if not self._said:
            self._said = True
            print(f"budget spent: {self.spent} of {self.budget} trial-epochs; stopping the running trials",
                  flush=True)
        return True


def epochs_trained(trials: list[Any]) -> int:
    """Trial-epochs the live ``trials`` (Tune ``Trial`` objects) trained: their last epochs, summed
    (a trial's epochs run 1..n). For the console's status line; the stopper counts reports."""
    return sum(int((t.last_result or {}).get(EPOCH, 0) or 0) for t in trials)
