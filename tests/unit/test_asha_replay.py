"""ResumableASHA rebuilds its rungs from recorded reports exactly as a live ASHA built them (ray#30838).

Real Ray scheduler objects and stub trials; no Ray start.
"""

from __future__ import annotations

import random

from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler, TrialScheduler

from tune_app.ext.asha import ResumableASHA

METRIC = "val_sisdr"


def _reports(n_trials: int, epochs: int, seed: int) -> list[tuple[str, int, float, float]]:
    """(trial id, epoch, score, timestamp) in the order a live search delivered them."""
    rng = random.Random(seed)
    out, clock = [], 0.0
    for epoch in range(1, epochs + 1):
        for t in range(n_trials):
            clock += rng.random()
            out.append((f"t{t}", epoch, rng.gauss(epoch * 0.5, 1.0), clock))
    return out


def _live(reports, **kwargs) -> tuple[dict[str, tuple[int, str]], list[dict]]:
    """Feed the reports to a live ResumableASHA (what the search saw before the kill): last decision per trial."""
    sched = ResumableASHA(metric=METRIC, mode="max", **kwargs)
    sched._replayed = True  # a live search from its start: nothing recorded to replay
    trials = {}
    last = {}
    for trial_id, epoch, score, _ in reports:
        if trial_id not in trials:
            trials[trial_id] = Trial("x", stub=True, trial_id=trial_id, config={})
            sched.on_trial_add(None, trials[trial_id])
        if last.get(trial_id, (0, ""))[1] == TrialScheduler.STOP:
            continue  # a stopped trial reports nothing more
        last[trial_id] = (epoch, sched.on_trial_result(None, trials[trial_id], {"epoch": epoch, METRIC: score}))
    return last, [(m, dict(r)) for m, r in sched._brackets[0]._rungs]


def _as_files(reports, last) -> dict[str, list[dict]]:
    """What each trial's result.json holds: its reports up to its last one, shuffled across trials."""
    files: dict[str, list[dict]] = {}
    for trial_id, epoch, score, stamp in reports:
        if epoch <= last[trial_id][0]:
            files.setdefault(trial_id, []).append({"epoch": epoch, METRIC: score, "timestamp": stamp})
    return dict(sorted(files.items(), reverse=True))  # directory order is not report order


def test_replay_rebuilds_rungs_and_decisions_of_a_live_asha():
    # max_t past the last epoch: at max_t the scheduler itself (not the bracket) stops every trial.
    kwargs = {"max_t": 8, "grace_period": 1, "reduction_factor": 2}
    reports = _reports(8, 6, seed=1)
    live_last, live_rungs = _live(reports, **kwargs)
    assert any(d == TrialScheduler.STOP for _, d in live_last.values())  # the case is not trivial

    sched = ResumableASHA(metric=METRIC, mode="max", **kwargs)
    assert sched.replay(_as_files(reports, live_last)) == sum(e for e, _ in live_last.values())
    assert [(m, dict(r)) for m, r in sched._brackets[0]._rungs] == live_rungs
    assert {t: sched.last_decision(t) for t in live_last} == live_last


def test_a_trial_is_judged_at_a_rung_by_its_best_score_so_far():
    """Like W&B's hyperband (min(history)), and like the ranking of `results` (a trial's best epoch)."""
    kwargs = {"metric": METRIC, "mode": "max", "max_t": 8, "grace_period": 2, "reduction_factor": 2}
    ours, plain = ResumableASHA(**kwargs), ASHAScheduler(time_attr="epoch", **kwargs)
    ours._replayed = True
    for sched in (ours, plain):
        trials = {i: Trial("x", stub=True, trial_id=i, config={}) for i in ("steady", "peaky")}
        for trial in trials.values():
            sched.on_trial_add(None, trial)
        for epoch, (steady, peaky) in enumerate([(2.0, 3.9), (3.0, 2.9)], start=1):
            sched.on_trial_result(None, trials["steady"], {"epoch": epoch, METRIC: steady})
            decision = sched.on_trial_result(None, trials["peaky"], {"epoch": epoch, METRIC: peaky})
        if sched is ours:
            assert decision == TrialScheduler.CONTINUE  # its best, 3.9, beats steady's 3.0 at the rung
        else:
            assert decision == TrialScheduler.STOP  # Ray's ASHA sees only its latest, 2.9


def test_an_epoch_recorded_twice_is_replayed_once():
    sched = ResumableASHA(metric=METRIC, mode="max", max_t=4, grace_period=1, reduction_factor=2)
    rows = [{"epoch": 1, METRIC: 1.0, "timestamp": 1}, {"epoch": 1, METRIC: 1.0, "timestamp": 5},
            {"epoch": 2, METRIC: 2.0, "timestamp": 6}]
    assert sched.replay({"a": rows}) == 2
    assert sched.last_decision("a") == (2, TrialScheduler.CONTINUE)


def test_a_trial_whose_last_recorded_report_was_a_stop_stops_at_its_next_report():
    sched = ResumableASHA(metric=METRIC, mode="max", max_t=4, grace_period=1, reduction_factor=2)
    sched.replay({"good": [{"epoch": 1, METRIC: 5.0, "timestamp": 1}],
                  "bad": [{"epoch": 1, METRIC: 0.0, "timestamp": 2}]})
    assert sched.last_decision("bad") == (1, TrialScheduler.STOP)
    good, bad = (Trial("x", stub=True, trial_id=i, config={}) for i in ("good", "bad"))
    for trial in (good, bad):
        sched.on_trial_add(None, trial)
    # The snapshot said RUNNING, so Tune restarts it; its next report ends it, however good.
    assert sched.on_trial_result(None, good, {"epoch": 2, METRIC: 6.0}) == TrialScheduler.CONTINUE
    assert sched.on_trial_result(None, bad, {"epoch": 2, METRIC: 9.0}) == TrialScheduler.STOP
