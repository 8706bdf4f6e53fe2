"""Plots and parameter importance of a real experiment: one small search, read back from disk.

Besides what each figure draws, what a person needs to read it: no text clipped at the figure's
edge or drawn over other text, no legend over a point, the views of the searched space counting
the trials the importance counts, and a categorical axis laid out as categories.
"""

from __future__ import annotations

import dataclasses
import math
import struct
from pathlib import Path

import pytest
from helpers import SEARCH_EPOCHS

from tune_app.errors import TuneInputError
from tune_app.experiment.figures import BEST_COLOUR, score_cmap
from tune_app.experiment.importance import format_importance, importance_study, parameter_importance, usable_trials
from tune_app.experiment.pareto_plot import figure_pareto
from tune_app.experiment.plots import (
    IMPORTANCE_PNG,
    MAX_LABELS,
    VAL_SISDR_PNG,
    asha_cutoffs,
    figure_importance,
    figure_val_sisdr,
    importance_title,
    write_plots,
)
from tune_app.experiment.results import load_experiment
from tune_app.experiment.study_plots import CONTOUR_PNG, PARALLEL_PNG, SLICE_PNG, study_figures

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


def test_write_plots_skips_importance_and_the_views_below_two_trials(experiment, tmp_path, capsys):
    # The views of the space show the trials the importance ranks: with one, neither is drawn.
    exp = load_experiment(experiment)
    one = dataclasses.replace(exp, trials=exp.trials[:1])
    assert [p.name for p in write_plots(one, tmp_path)] == [VAL_SISDR_PNG]
    assert png_size(tmp_path / VAL_SISDR_PNG) == (800, 500)
    assert not (tmp_path / IMPORTANCE_PNG).exists() and not (tmp_path / PARALLEL_PNG).exists()
    assert "note: no views of the searched space" in capsys.readouterr().err


# --------------------------------------------------------------------------- readable by a person


def _texts_inside_and_apart(fig, texts) -> None:
    """Every text lies inside the figure, and no two overlap (a label's leader line may cross text)."""
    from matplotlib.text import Text

    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    width, height = fig.get_size_inches() * fig.dpi
    boxes = [(t.get_text(), Text.get_window_extent(t, renderer)) for t in texts if t.get_text() and t.get_visible()]
    for text, box in boxes:
        assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= width and box.y1 <= height, (text, box)
    for i, (a, box_a) in enumerate(boxes):
        for b, box_b in boxes[i + 1:]:
            assert not box_a.overlaps(box_b), (a, b)


def _tick_labels(axes) -> list:
    """The tick labels ``axes`` draws: matplotlib also lists those of ticks beyond the view limits."""
    out = []
    for axis in (axes.xaxis, axes.yaxis):
        lo, hi = sorted(axis.get_view_interval())
        out += [label for tick in axis.get_major_ticks() if lo <= tick.get_loc() <= hi
                for label in (tick.label1, tick.label2) if label.get_visible()]
    return out


def _many_finished_curves(exp, n: int = 24):
    """``exp`` with ``n`` completed trials ending within 0.2 dB of each other (the real first trial's
    curve, shifted): labels at the last epoch that would sit on top of each other."""
    base = next(t for t in exp.trials if t.status == "COMPLETED")
    trials = [dataclasses.replace(base, trial_id=f"t{i:07d}", history=[{**r, "val_sisdr": r["val_sisdr"] + i * 0.01}
                                                                           for r in base.history]) for i in range(n)]
    return dataclasses.replace(exp, trials=trials)


def test_curve_labels_are_the_best_few_and_never_overlap(experiment):
    exp = _many_finished_curves(load_experiment(experiment))
    fig = figure_val_sisdr(exp)
    (ax,) = fig.axes
    labels = [t for t in ax.texts if (t.get_gid() or "").startswith("label-")]
    best_first = sorted(exp.trials, key=lambda t: -t.best("val_sisdr", "max"))
    assert [t.get_text() for t in labels] != [] and len(labels) == MAX_LABELS
    assert {t.get_text() for t in labels} == {t.trial_id for t in best_first[:MAX_LABELS]}
    _texts_inside_and_apart(fig, [*labels, ax.title])
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert f"completed: 24 (best {MAX_LABELS} labelled)" in legend


def test_the_importance_title_keeps_its_caveat_inside_the_figure(experiment):
    exp = load_experiment(experiment)
    fig = figure_importance(parameter_importance(exp), importance_title(exp))
    title = fig.get_suptitle().replace("\n", " ")
    assert len(exp.trials) < 10 and "with fewer than 10, a hint rather than a measurement" in title
    _texts_inside_and_apart(fig, [*fig.texts, *_tick_labels(fig.axes[0])])


def test_the_views_of_the_space_count_every_trial_the_importance_counts(experiment):
    exp = load_experiment(experiment)
    scored = {t.trial_id: (t.status, score) for t, score in usable_trials(exp)}
    assert {status for status, _ in scored.values()} == {"COMPLETED", "EARLY_STOPPED"}
    figures, skipped = study_figures(importance_study(exp), exp.metric, [p for p, _ in parameter_importance(exp)],
                                     caption=f"{len(scored)} of {len(exp.trials)} trials")
    assert list(figures) == [PARALLEL_PNG, SLICE_PNG, CONTOUR_PNG] and not skipped
    (ax, _colourbar) = figures[PARALLEL_PNG].axes
    lines = {line.get_gid(): line for line in ax.get_lines() if line.get_gid()}
    assert set(lines) == set(scored)  # early-stopped trials too, each at its best epoch
    for trial_id, (status, _) in scored.items():
        assert lines[trial_id].get_linestyle() == ("-" if status == "COMPLETED" else "--"), trial_id
    best = max(scored, key=lambda k: scored[k][1])
    assert lines[best].get_color() == BEST_COLOUR and lines[best].get_zorder() == max(ln.get_zorder()
                                                                                    for ln in lines.values())
    for fig in figures.values():
        assert fig.get_suptitle().startswith(f"{len(scored)} of {len(exp.trials)} trials")
    # every panel of the slice holds every scored trial, early-stopped ones as x marks
    panels = [a for a in figures[SLICE_PNG].axes if a.get_visible()]
    assert len(panels) == len(exp.space)
    for panel in panels:
        drawn = [c for c in panel.collections if c.get_gid() != "best"]
        assert sum(len(c.get_offsets()) for c in drawn) == len(scored)


def test_the_score_colours_are_dark_where_good_and_never_white():
    def luminance(rgba):
        r, g, b, _ = rgba
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    for mode in ("max", "min"):
        cmap = score_cmap(mode)
        good, bad = (cmap(1.0), cmap(0.0)) if mode == "max" else (cmap(0.0), cmap(1.0))
        assert luminance(good) < 0.2 < luminance(bad) < 0.85, mode


def test_a_categorical_axis_is_drawn_as_categories_and_a_log_axis_with_plain_ticks(experiment):
    # The real search with a categorical B ∈ {32, 64} besides its three numeric parameters.
    exp = load_experiment(experiment)
    space = {**exp.search["space"], "model.convtasnet.B": {"kind": "categorical", "distribution": "categorical",
                                                           "values": [32, 64]}}
    trials = [dataclasses.replace(t, config={**t.config, "model": {**t.config["model"], "convtasnet": {
        **t.config["model"]["convtasnet"], "B": (32, 64)[i % 2]}}}) for i, t in enumerate(exp.trials)]
    exp = dataclasses.replace(exp, trials=trials, space=[*exp.space, "model.convtasnet.B"],
                              search={**exp.search, "space": space, "space_paths": [*exp.space, "model.convtasnet.B"]})
    figures, _ = study_figures(importance_study(exp), exp.metric, ["model.convtasnet.B", "training.lr"])
    contour = figures[CONTOUR_PNG].axes[0]
    assert [t.get_text() for t in contour.get_xticklabels()] == ["32", "64"]
    assert contour.get_xticks().tolist() == [0.0, 1.0]  # two positions, not a range from 32 to 64
    assert not [c for c in contour.collections if type(c).__name__ == "TriContourSet"]  # nothing between them
    assert "nothing interpolated" in figures[CONTOUR_PNG].get_suptitle()
    lr = _tick_labels(contour)[2:]  # log range 3e-4 … 1e-2: a few round values, no minor labels
    assert 3 <= len(lr) <= 5 and all(float(t.get_text()) > 0 for t in lr)
    for fig in figures.values():  # titles, tick labels, the parallel axes' value labels: apart and inside
        _texts_inside_and_apart(fig, [*fig.texts, *(t for a in fig.axes if a.get_visible() for t in (
            *a.texts, *_tick_labels(a), a.xaxis.label, a.yaxis.label))])


def test_the_pareto_legend_covers_no_point(experiment):
    # The real search seen as quality against size (every trial reported params_m).
    exp = load_experiment(experiment)
    exp = dataclasses.replace(exp, search={**exp.search, "objectives": [["val_sisdr", "max"], ["params_m", "min"]]})
    fig = figure_pareto(exp)
    (ax,) = fig.axes
    assert ax.get_legend() is None and len(fig.legends) == 1  # below the panel, outside it
    fig.canvas.draw()
    legend_box = fig.legends[0].get_window_extent()
    assert not legend_box.overlaps(ax.get_window_extent())
    _texts_inside_and_apart(fig, fig.texts)
