"""Plots and parameter importance of a real experiment: one small search, read back from disk."""

from __future__ import annotations

import dataclasses
import math
import struct
from pathlib import Path

import pytest
from helpers import SEARCH_EPOCHS

from tune_app.errors import TuneInputError
from tune_app.experiment.importance import format_importance, parameter_importance
from tune_app.experiment.plots import (
    IMPORTANCE_PNG,
    VAL_SISDR_PNG,
    asha_cutoffs,
    figure_importance,
    figure_val_sisdr,
    write_plots,
)
from tune_app.experiment.results import load_experiment
from tune_app.experiment.study_plots import CONTOUR_PNG, PARALLEL_PNG, SLICE_PNG

EPOCHS = SEARCH_EPOCHS
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def experiment(finished_experiment: Path) -> Path:
    return finished_experiment


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE and head[12:16] == b"IHDR", path
    return struct.unpack(">II", head[16:24])


def test_importance_ranks_every_searched_parameter_and_is_deterministic(experiment):
    exp = load_experiment(experiment)
    ranking = parameter_importance(exp)
    assert sorted(p for p, _ in ranking) == sorted(exp.space) and len(exp.space) >= 2
    values = [v for _, v in ranking]
    assert all(v >= 0 and math.isfinite(v) for v in values)
    assert sum(values) == pytest.approx(1.0)
    assert values == sorted(values, reverse=True)
    assert parameter_importance(load_experiment(experiment), seed=0) == ranking
    text = format_importance(ranking).splitlines()
    assert len(text) == 2 + len(ranking) and text[2].startswith(ranking[0][0]) and "#" in text[2]


def test_importance_needs_two_finished_trials_and_a_searched_space(experiment):
    exp = load_experiment(experiment)
    one = dataclasses.replace(exp, trials=[t for t in exp.trials if t.status == "COMPLETED"][:1])
    with pytest.raises(TuneInputError, match=r"at least 2 finished trials.*found 1"):
        parameter_importance(one)
    nothing_searched = dataclasses.replace(exp, space=[], search={**exp.search, "space": {}})
    with pytest.raises(TuneInputError, match="varied no parameters"):
        parameter_importance(nothing_searched)
    with pytest.raises(TuneInputError, match="unknown importance evaluator"):
        parameter_importance(exp, evaluator="no-such-evaluator")


def test_val_sisdr_figure_has_one_line_per_trial_and_early_stopped_ones_end_early(experiment):
    exp = load_experiment(experiment)
    statuses = {t.status for t in exp.trials}
    assert statuses == {"COMPLETED", "EARLY_STOPPED"}, statuses  # ASHA stopped some, the rest ran out
    fig = figure_val_sisdr(exp)
    (ax,) = fig.axes
    lines = {line.get_gid(): line for line in ax.get_lines()}
    assert len(ax.get_lines()) == len(exp.trials) and set(lines) == {t.trial_id for t in exp.trials}
    best = exp.best_trial()
    for t in exp.trials:
        line = lines[t.trial_id]
        assert list(line.get_xdata()) == list(range(1, t.epochs + 1))
        assert list(line.get_ydata()) == pytest.approx(t.scores("val_sisdr"))
        if t.status == "EARLY_STOPPED":
            assert t.epochs < EPOCHS and line.get_linestyle() == "--" and line.get_marker() == "x"
        else:
            assert t.epochs == EPOCHS and line.get_linestyle() == "-"
    widths = {gid: line.get_linewidth() for gid, line in lines.items()}
    assert max(widths, key=widths.get) == best.trial_id
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    counts = exp.counts()
    assert f"completed: {counts['COMPLETED']}" in legend
    assert any(s.startswith(f"early-stopped (x = stop): {counts['EARLY_STOPPED']}") for s in legend)
    assert any(best.trial_id in s for s in legend)
    assert tuple(fig.get_size_inches() * fig.dpi) == (800, 500)
    # Completed curves carry their trial id; ASHA's rung cut-offs are drawn where it decided.
    labels = {t.get_gid(): t.get_text() for t in ax.texts if (t.get_gid() or "").startswith("label-")}
    assert labels == {f"label-{t.trial_id}": t.trial_id for t in exp.trials if t.status == "COMPLETED"}
    (rungs,) = [c for c in ax.collections if c.get_gid() == "asha-cutoffs"]
    cutoffs = asha_cutoffs(exp)
    assert [float(v) for p in rungs.get_offsets() for v in p] == pytest.approx([v for c in cutoffs for v in c])
    assert cutoffs and cutoffs[0][0] == 1  # grace period 1, reduction factor 2: rungs at epochs 1, 2
    for epoch, cut in cutoffs:
        at = [r["val_sisdr"] for t in exp.trials for r in t.history if r["epoch"] == epoch]
        assert min(at) <= cut <= max(at)
    assert any("ASHA rung cut-off" in s for s in legend)


def test_write_plots_writes_both_pngs_of_fixed_size_into_the_experiment_folder(experiment, tmp_path):
    exp = load_experiment(experiment)
    written = write_plots(exp)
    # ours at a fixed size, then Optuna's own views of the study the search kept
    assert written == [experiment / VAL_SISDR_PNG, experiment / IMPORTANCE_PNG,
                       *[experiment / name for name in (PARALLEL_PNG, SLICE_PNG, CONTOUR_PNG)]]
    for path in written[:2]:
        assert path.stat().st_size > 5000 and png_size(path) == (800, 500)
    for path in written[2:]:
        assert path.stat().st_size > 5000 and png_size(path)[0] >= 600
    # A given ranking is drawn as given, into another folder; the bars are the ranking, top first.
    ranking = parameter_importance(exp)
    elsewhere = write_plots(exp, tmp_path / "plots", importance=ranking)
    assert [p.name for p in elsewhere][:2] == [VAL_SISDR_PNG, IMPORTANCE_PNG]
    assert png_size(elsewhere[1]) == (800, 500)
    (ax,) = figure_importance(ranking).axes
    labels = [tick.get_text() for tick in ax.get_yticklabels()]
    assert labels[::-1] == [p for p, _ in ranking]
    assert [bar.get_width() for bar in ax.patches][::-1] == pytest.approx([v for _, v in ranking])


def test_write_plots_skips_importance_below_two_trials(experiment, tmp_path):
    exp = load_experiment(experiment)
    one = dataclasses.replace(exp, trials=exp.trials[:1])
    assert [p.name for p in write_plots(one, tmp_path)] == [VAL_SISDR_PNG, PARALLEL_PNG, SLICE_PNG, CONTOUR_PNG]
    assert png_size(tmp_path / VAL_SISDR_PNG) == (800, 500)
    assert not (tmp_path / IMPORTANCE_PNG).exists()
