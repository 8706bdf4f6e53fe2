"""`run --budget-epochs N`: real searches that end when N trial-epochs are trained, one resumed after SIGKILL."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import assert_study_agrees, polsess_tune, start_polsess_tune, tiny
from processes import kill_session, wait_for

from tune_app.experiment.results import load_experiment

EPOCHS = 3
TINY = [*tiny(EPOCHS), "--grace-period", "1", "--reduction-factor", "2"]


def _spent(folder: Path) -> int:
    return sum(len((t / "result.json").read_text().splitlines()) for t in folder.glob("trial_*")
               if (t / "result.json").exists())


def test_a_budget_keeps_proposing_trials_until_it_is_spent(demo_corpus, tmp_path):
    """ASHA stops most trials after an epoch; the epochs it saves buy more trials, and the search ends
    at the budget (exit 0), not at a trial count."""
    budget = 9
    log = tmp_path / "run.log"
    proc = start_polsess_tune(["run", "--data-root", str(demo_corpus), "--storage", str(tmp_path), "--name", "b",
                               "--budget-epochs", str(budget), "--max-concurrent", "2", "--wandb", "disabled", *TINY],
                              log)
    assert proc.wait(timeout=600) == 0, log.read_text()[-3000:]
    out = log.read_text()
    exp = load_experiment(tmp_path / "b")
    # Two trials run at once: one may report in the step that spends the budget.
    assert budget <= exp.trial_epochs <= budget + 1, out[-3000:]
    assert len(exp.trials) > budget // EPOCHS  # more trials than run_cap-style counting of full trials buys
    assert f"{len(exp.trials)} trials: " in out
    assert f"; {exp.trial_epochs} of its budget of {budget} trial-epochs trained in " in out  # the summary line
    assert json.loads((tmp_path / "b" / "search.json").read_text())["budget_epochs"] == budget
    assert (tmp_path / "b" / "best_config.yaml").exists()
    assert_study_agrees(tmp_path / "b", statuses=False)
    again = polsess_tune("resume", str(tmp_path / "b"), timeout=300)
    assert again.returncode == 0 and "nothing to resume" in again.stdout, again.stdout + again.stderr


def test_a_budget_search_killed_and_resumed_spends_its_budget_once(demo_corpus, tmp_path):
    """The resumed driver counts the epochs trained before the kill from the trials' files."""
    budget = 10
    folder = tmp_path / "k"
    proc = start_polsess_tune(["run", "--data-root", str(demo_corpus), "--storage", str(tmp_path), "--name", "k",
                               "--budget-epochs", str(budget), "--max-concurrent", "2", "--wandb", "disabled", *TINY],
                              tmp_path / "run.log")
    sessions = [proc.pid]
    try:
        wait_for(lambda: _spent(folder) >= 4 or proc.poll() is not None, 300, "4 trial-epochs")
        assert proc.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
        kill_session(proc.pid)
        proc.wait()
        resume = start_polsess_tune(["resume", str(folder)], tmp_path / "resume.log")
        sessions.append(resume.pid)
        assert resume.wait(timeout=600) == 0, (tmp_path / "resume.log").read_text()[-3000:]
    finally:
        for sid in sessions:
            kill_session(sid)
    exp = load_experiment(folder)
    assert budget <= exp.trial_epochs <= budget + 1, [(t.trial_id, t.epochs) for t in exp.trials]
    assert "budget spent" in (tmp_path / "resume.log").read_text()
