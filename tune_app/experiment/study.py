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
from ..names import BUDGET_CUT, COMPLETED, END_STATE_KEY, ITERATION, NOT_STARTED, status_label
from . import layout


def default_storage_url(experiment_path: str | Path) -> str:
    return f"sqlite:///{Path(experiment_path).resolve() / layout.STUDY_FILE}"


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """An RDB storage for ``url`` (creating SQLite's file and Optuna's tables), or one error line."""
    from sqlalchemy.exc import SQLAlchemyError  # here: optuna itself imports sqlalchemy only when it needs it

    kwargs: dict[str, Any] = {}
    try:
        if url.startswith("sqlite:///"):
            Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
            # The dashboard reads while the driver writes: wait for its lock instead of failing at once.
            kwargs["engine_kwargs"] = {"connect_args": {"timeout": 30}}
        return optuna.storages.RDBStorage(url, **kwargs)
    # sqlalchemy's errors (a bad URL, an unknown dialect, no server), a missing driver (ImportError), a folder
    # that cannot be made (OSError), Optuna's (StorageInternalError; RuntimeError: a schema of another version).
    except (SQLAlchemyError, ImportError, ValueError, OSError, optuna.exceptions.OptunaError, RuntimeError) as exc:
        why = f"{type(exc).__name__}: {redact(str(exc)).splitlines()[0]}"
        raise TuneInputError(f"--optuna-storage {redact(url)}: cannot open it ({why}); check the URL and "
                             "that the database is up") from None


def redact(url: str) -> str:
    """``postgresql://user:secret@host/db`` → ``postgresql://user:***@host/db``: a password never printed."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):  # not a URL sqlalchemy parses (ValueError: a port that is not a number)
        if "@" not in url:
            return url
        head, _, host = url.rpartition("@")
        return f"{head.split('://')[0]}://***@{host}" if "://" in head else f"***@{host}"


def check_new_study(url: str, name: str) -> None:
    """A new search must not add its trials to another search's study of the same name."""
    storage = open_storage(url)
    if name in {s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}:
        raise TuneInputError(f"--optuna-storage {redact(url)}: a study named {name!r} exists there already; "
                             "pick another --name (or resume that experiment)")


def has_password(url: str) -> bool:
    """Whether the URL itself carries a password (``user:pw@`` or a ``password=`` query).

    A URL sqlalchemy cannot parse is refused (TuneInputError): whether it holds a password is unknown,
    and "no" would let one through into Tune's files."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number (its text may quote the URL)
        raise TuneInputError(f"--optuna-storage {redact(url)}: not a database URL sqlalchemy can parse; write it "
                             "as dialect://user@host[:port]/db, e.g. postgresql://me@db.example/tune") from None
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
    for optuna-dashboard and importance. Each is told as ``results`` names it (names.ended_status),
    with that name as its ``end_state`` user attribute (Optuna's PRUNED is ASHA's too): budget-cut and
    early-stopped PRUNED (its last epoch's score added: Tune hands the searcher no result it stops a
    trial on), not-started FAIL, a completed one (ended in the same step) COMPLETE with its best score.
    Only after a budget was spent: after Ctrl-C the RUNNING trials are the ones ``resume`` continues."""
    from .results import load_experiment

    folder = Path(folder)
    search = layout.read_json(folder / layout.SEARCH_FILE) or {}
    exp = load_experiment(folder) if search.get("budget_epochs") else None
    study = load_study(search, folder) if exp is not None and exp.budget_spent else None
    if exp is None or study is None:
        return 0
    cut = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.RUNNING]
    url = default_storage_url(folder) if (folder / layout.STUDY_FILE).is_file() else search["optuna_storage"]
    storage = open_storage(url)
    study_id = storage.get_study_id_from_name(study.study_name)
    trials = {t.trial_id: t for t in exp.trials}
    single = len(study.directions) == 1
    for t in cut:
        trial = trials.get(str(t.user_attrs.get("ray_trial_id")))
        status = trial.status if trial is not None else (BUDGET_CUT if t.intermediate_values else NOT_STARTED)
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, t.number)
        storage.set_trial_user_attr(trial_id, END_STATE_KEY, status_label(status))
        for row in (trial.history if trial is not None and single else []):
            step, value = row.get(ITERATION), row.get(exp.metric)
            if isinstance(step, int) and isinstance(value, (int, float)) and step not in t.intermediate_values:
                storage.set_trial_intermediate_value(trial_id, step, float(value))
        if status == COMPLETED and single and trial.best(exp.metric, exp.mode) is not None:
            study.tell(t.number, trial.best(exp.metric, exp.mode))
        else:
            study.tell(t.number, state=optuna.trial.TrialState.FAIL if status == NOT_STARTED
                       else optuna.trial.TrialState.PRUNED)
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


def trial_sources(search: dict[str, Any], folder: str | Path | None = None) -> dict[str, str]:
    """Tune trial id → where its config came from (``base``, ``prior``, ``model``, ``random``,
    ``point``: the study's ``source`` user attribute, tune_app.space.prior); empty without a study."""
    from ..space.prior import SOURCE_ATTR

    study = load_study(search, folder)
    if study is None:
        return {}
    return {t.user_attrs["ray_trial_id"]: t.user_attrs[SOURCE_ATTR] for t in study.get_trials(deepcopy=False)
            if SOURCE_ATTR in t.user_attrs and "ray_trial_id" in t.user_attrs}
