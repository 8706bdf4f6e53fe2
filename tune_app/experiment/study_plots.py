"""Optuna's own matplotlib views of the search's study: parallel coordinates, slice, contour.

Drawn by ``optuna.visualization.matplotlib`` (not written again here) from the study the search
kept (:mod:`.study`). Those functions draw through pyplot and set its ggplot style globally, so
each call runs inside ``plt.rc_context()`` (the style is undone after) and every figure it opened
is closed once saved: pyplot's figure list and rcParams are as they were, in the CLI, tests and
notebooks alike. A view Optuna cannot draw yet (too few finished trials, one parameter) is skipped
with the reason.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from .figures import DPI, SIZE_IN

PARALLEL_PNG = "optuna_parallel_coordinate.png"
SLICE_PNG = "optuna_slice.png"
CONTOUR_PNG = "optuna_contour.png"


@contextmanager
def _pyplot_left_as_found() -> Iterator[None]:
    import matplotlib.pyplot as plt

    before = set(plt.get_fignums())
    try:
        with plt.rc_context(), warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        for number in set(plt.get_fignums()) - before:
            plt.close(number)


def write_study_plots(study: optuna.Study, out: Path, metric: str,
                      top_params: list[str] | None = None) -> tuple[list[Path], list[str]]:
    """Write the views into ``out``; return (paths written, reasons for views skipped).

    ``metric`` names the first objective (a multi-objective study is drawn on it); ``top_params``:
    the study's parameter names, most important first (the contour shows the top two).
    """
    from optuna.visualization import matplotlib as views

    multi = len(study.directions) > 1
    target: dict[str, Any] = {"target": (lambda t: t.values[0]), "target_name": metric} if multi else \
        {"target_name": metric}
    finished = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    if len(finished) < 2:
        return [], [f"Optuna's views need 2 completed study trials; the study has {len(finished)}"]
    params = top_params or sorted({p for t in finished for p in t.params})
    jobs: list[tuple[str, Callable[[], Any]]] = [
        (PARALLEL_PNG, lambda: views.plot_parallel_coordinate(study, **target)),
        (SLICE_PNG, lambda: views.plot_slice(study, **target)),
    ]
    if len(params) >= 2:
        jobs.append((CONTOUR_PNG, lambda: views.plot_contour(study, params=params[:2], **target)))
    written, skipped = [], []
    for name, draw in jobs:
        with _pyplot_left_as_found():
            try:
                axes = draw()
            except (ValueError, TypeError, RuntimeError) as exc:
                skipped.append(f"{name}: {exc}")
                continue
            fig = np.ravel(axes)[0].figure
            if fig.get_size_inches()[0] < SIZE_IN[0]:
                fig.set_size_inches(*SIZE_IN)
            out.mkdir(parents=True, exist_ok=True)
            fig.savefig(out / name, dpi=DPI, format="png", bbox_inches="tight")
            written.append(out / name)
    return written, skipped
