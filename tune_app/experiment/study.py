"""The search's Optuna study, kept in a storage that outlives the driver.

Ray's ``OptunaSearch`` keeps its study in memory unless given ``storage``; then it is lost with the
driver and nothing but Tune's pickle can show it. Every local search therefore writes its study to
``<experiment>/optuna-study.db`` under the experiment's name, where optuna-dashboard, Optuna's own
plots and importance can read it while the search runs; ``--optuna-storage URL`` puts it in a
shared database instead (a cluster's PostgreSQL, say).

Why SQLite and not Optuna's journal file: the driver is the only writer, and SQLite's own
transactions make a SIGKILL mid-write lose at most the open transaction, with OS-level locks that
die with the process; the journal file's lock is a file that a killed driver leaves behind (Optuna
breaks it only after a grace period), which would stall the very ``resume`` that follows a kill.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna

from ..errors import TuneInputError
from . import layout


def default_storage_url(experiment_path: str | Path) -> str:
    return f"sqlite:///{Path(experiment_path).resolve() / layout.STUDY_FILE}"


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """An RDB storage for ``url`` (creating SQLite's file and Optuna's tables), or one error line."""
    kwargs: dict[str, Any] = {}
    try:
        if url.startswith("sqlite:///"):
            Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
            # The dashboard reads while the driver writes: wait for its lock instead of failing at once.
            kwargs["engine_kwargs"] = {"connect_args": {"timeout": 30}}
        return optuna.storages.RDBStorage(url, **kwargs)
    except Exception as exc:  # sqlalchemy's errors: a bad URL, a missing driver, no server
        why = f"{type(exc).__name__}: {redact(str(exc)).splitlines()[0]}"
        raise TuneInputError(f"--optuna-storage {redact(url)}: cannot open it ({why}); check the URL and "
                             "that the database is up") from None


def redact(url: str) -> str:
    """``postgresql://user:secret@host/db`` → ``postgresql://user:***@host/db``: a password never printed."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1] if "@" in url else url


def check_new_study(url: str, name: str) -> None:
    """A new search must not add its trials to another search's study of the same name."""
    storage = open_storage(url)
    if name in {s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}:
        raise TuneInputError(f"--optuna-storage {redact(url)}: a study named {name!r} exists there already; "
                             "pick another --name (or resume that experiment)")


def has_password(url: str) -> bool:
    """Whether the URL itself carries a password (``user:pw@`` or a ``password=`` query)."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:
        return False
    return bool(parsed.password) or any(k.lower() in ("password", "passwd") for k in parsed.query)


def load_study(search: dict[str, Any], folder: str | Path | None = None) -> optuna.Study | None:
    """The study a search recorded in ``search.json`` (None for searches without one, or gone).

    A SQLite study is read from ``folder`` (the experiment folder) when it holds one, so a copied or
    moved experiment finds its own; a SQLite file that is not there is never created."""
    url, name = search.get("optuna_storage"), search.get("study_name")
    if not url or not name:
        return None
    if url.startswith("sqlite:///"):
        if folder is not None and (Path(folder) / layout.STUDY_FILE).is_file():
            url = default_storage_url(folder)
        if not Path(url[len("sqlite:///"):]).is_file():
            return None
    try:
        return optuna.load_study(study_name=name, storage=open_storage(url))
    except (KeyError, TuneInputError):
        return None


def end_trials_cut_by_budget(folder: str | Path) -> int:
    """Tell the study how the trials a spent budget cut short ended; how many there were.

    Why by hand: Tune ends a search through ``Stopper.stop_all`` (tune_app.tune.budget) by setting
    its running trials TERMINATED without telling the searcher, so the study would keep them RUNNING
    for optuna-dashboard and importance. A cut trial with epochs scored is PRUNED (stopped early, like
    ASHA's), one cut in its first epoch FAIL. Only after a budget was spent: after Ctrl-C the RUNNING
    trials are the ones ``resume`` continues."""
    from .results import load_experiment

    folder = Path(folder)
    search = layout.read_json(folder / layout.SEARCH_FILE) or {}
    if not search.get("budget_epochs") or not load_experiment(folder).budget_spent:
        return 0
    study = load_study(search, folder)
    if study is None:
        return 0
    cut = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.RUNNING]
    for t in cut:
        study.tell(t.number, state=optuna.trial.TrialState.PRUNED if t.intermediate_values
                   else optuna.trial.TrialState.FAIL)
    return len(cut)


def study_counts(study: optuna.Study) -> dict[str, int]:
    """Trials of the study by Optuna state name (``COMPLETE``, ``PRUNED``, ``FAIL``, ``RUNNING``…)."""
    out: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        out[t.state.name] = out.get(t.state.name, 0) + 1
    return out


def study_line(search: dict[str, Any], folder: str | Path | None = None) -> str | None:
    """``Optuna study: sqlite:///… (12 trials: 4 COMPLETE, 8 PRUNED); optuna-dashboard sqlite:///…``."""
    study = load_study(search, folder)
    if study is None:
        return None
    counts = study_counts(study)
    total = sum(counts.values())
    parts = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    url = redact(search["optuna_storage"])
    if url.startswith("sqlite:///") and folder is not None and (Path(folder) / layout.STUDY_FILE).is_file():
        url = default_storage_url(folder)
    return f"Optuna study {study.study_name!r}: {total} trials ({parts}); view it: optuna-dashboard {url}"
