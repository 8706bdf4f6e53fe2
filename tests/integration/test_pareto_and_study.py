"""Quality against size: a real multi-objective demo search, its Pareto front, plots and study;
and optuna-dashboard's real HTTP server reading a finished search's study.

The Pareto search (module-scoped) runs ``search_spaces/demo_pareto.yaml`` unchanged but for the
corpus, the trial count (4), a smaller mask network (its N/B choices still change the size), 2 epochs
and a grace period of both: every trial completes, so Optuna's views always have the trials they need
(with ASHA's stops a 6-trial run can leave one COMPLETE trial, and the views are skipped).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from helpers import assert_study_agrees, polsess_tune, tiny
from processes import kill_session, wait_for

from tune_app.experiment import pareto
from tune_app.experiment.pareto_plot import FRONT_GID, PARETO_PNG, figure_pareto
from tune_app.experiment.results import load_experiment
from tune_app.experiment.study import load_study
from tune_app.experiment.study_plots import CONTOUR_PNG, PARALLEL_PNG, SLICE_PNG
from tune_app.ext.wandb_offline import find_offline_runs, metric_history
from tune_app.names import COST_METRICS, FINISHED

SMALL = tiny(2, N=None, B=None)  # N and B are searched
SAMPLES = 4


@pytest.fixture(scope="module")
def pareto_search(demo_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    storage = tmp_path_factory.mktemp("pareto")
    proc = polsess_tune("run", "--space", "search_spaces/demo_pareto.yaml", "--data-root", str(demo_corpus),
                        "--storage", str(storage), "--name", "front", "--num-samples", str(SAMPLES),
                        "--wandb", "offline", "--grace-period", "2", *SMALL, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return storage / "front", proc.stdout


def _points(folder: Path) -> dict[str, tuple[float, float]]:
    """(best val_sisdr, params_m) of every finished trial, read straight from its history."""
    out = {}
    for t in load_experiment(folder).trials:
        if t.status in FINISHED and t.scores("val_sisdr") and t.scores("params_m"):
            out[t.trial_id] = (max(t.scores("val_sisdr")), t.scores("params_m")[-1])
    return out


def _dominated(p: tuple[float, float], q: tuple[float, float]) -> bool:
    """q dominates p: SI-SDR at least as high, size at most as large, and better in one."""
    return q[0] >= p[0] and q[1] <= p[1] and (q[0] > p[0] or q[1] < p[1])


def test_results_prints_a_front_that_no_finished_trial_dominates(pareto_search):
    folder, _ = pareto_search
    proc = polsess_tune("results", str(folder), "--json")
    assert proc.returncode == 0, proc.stderr
    front = {row["trial_id"]: (row["val_sisdr"], row["params_m"]) for row in json.loads(proc.stdout)["pareto_front"]}
    points = _points(folder)
    assert front and set(front) <= set(points)
    assert len({p[1] for p in points.values()}) > 1  # the search did try more than one size
    for trial_id, p in front.items():
        assert p == pytest.approx(points[trial_id])
        assert not any(_dominated(p, q) for other, q in points.items() if other != trial_id), trial_id
    for trial_id, p in points.items():  # and every finished trial off the front is beaten by one on it
        if trial_id not in front:
            assert any(_dominated(p, q) for q in front.values()), trial_id

    text = polsess_tune("results", str(folder)).stdout
    assert "Pareto front (" in text and all(trial_id in text for trial_id in front)


def test_the_scatter_png_draws_the_front(pareto_search):
    folder, _ = pareto_search
    proc = polsess_tune("results", str(folder), "--plots")
    assert proc.returncode == 0, proc.stderr
    for name in (PARETO_PNG, PARALLEL_PNG, SLICE_PNG, CONTOUR_PNG):
        assert (folder / name).stat().st_size > 10_000, name
        assert (folder / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    exp = load_experiment(folder)
    (line,) = [ln for ln in figure_pareto(exp).axes[0].get_lines() if ln.get_gid() == FRONT_GID]
    drawn = sorted(zip(line.get_xdata(), line.get_ydata(), strict=True))
    want = sorted((p[1], p[0]) for _, p in pareto.front(exp))
    assert len(drawn) == len(want) >= 1
    assert [c for xy in drawn for c in xy] == pytest.approx([c for xy in want for c in xy])


def test_study_results_and_wandb_count_the_same_trials_and_wandb_has_the_costs(pareto_search):
    folder, _ = pareto_search
    exp = load_experiment(folder)
    assert len(exp.trials) == SAMPLES
    assert_study_agrees(folder)
    study = load_study(exp.search)
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    runs = find_offline_runs(folder / "wandb-runs")
    assert sorted(r.run_id for r in runs) == sorted(t.trial_id for t in exp.trials)
    for run in runs:
        for name in COST_METRICS:
            logged = [v for _, v in metric_history(run, name)]
            assert logged and all(v > 0 for v in logged), (run.run_id, name)  # with every epoch
            if run.summary:  # written when the run finished (W&B's summary is the last value logged)
                assert run.summary[name] == logged[-1], (run.run_id, name)
        assert logged and metric_history(run, "params_m")[-1][1] == pytest.approx(
            exp_trial(exp, run.run_id).scores("params_m")[-1])
    assert sum(bool(r.summary) for r in runs) >= 1


def exp_trial(exp, trial_id):
    return next(t for t in exp.trials if t.trial_id == trial_id)


def test_export_best_takes_a_front_point_or_a_cost_bound(pareto_search, tmp_path):
    folder, _ = pareto_search
    exp = load_experiment(folder)
    front = pareto.front(exp)
    smallest = min(front, key=lambda tp: tp[1][1])
    k = front.index(smallest) + 1
    out = tmp_path / "point.yaml"
    proc = polsess_tune("results", str(folder), "--export-best", str(out), "--pareto", str(k))
    assert proc.returncode == 0, proc.stderr
    assert f"(trial {smallest[0].trial_id})" in out.read_text()

    bound = smallest[1][1]
    out2 = tmp_path / "bounded.yaml"
    proc = polsess_tune("results", str(folder), "--export-best", str(out2), "--max", f"params_m={bound}")
    assert proc.returncode == 0, proc.stderr
    within = [t for t in exp.ranked() if t.scores("params_m")[-1] <= bound]
    assert f"(trial {within[0].trial_id})" in out2.read_text()

    for bad, says in ((["--pareto", str(len(front) + 1)], "the front has"), (["--max", "params_m=x"], "METRIC=NUMBER"),
                      (["--max", "size=2"], "not a reported metric")):
        proc = polsess_tune("results", str(folder), "--export-best", str(tmp_path / "no.yaml"), *bad)
        assert proc.returncode == 2 and proc.stderr.startswith("error: ") and says in proc.stderr, proc.stderr
        assert not (tmp_path / "no.yaml").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _answers(url: str) -> bool:
    try:
        _get(url)
        return True
    except OSError:
        return False


def test_optuna_dashboard_serves_the_finished_studys_trials_over_http(finished_search, tmp_path):
    """optuna-dashboard's own server (a subprocess on 127.0.0.1) reads the study a search left in its
    folder: the study by the experiment's name, with as many trials as `results` counts."""
    folder, _ = finished_search
    exp = load_experiment(folder)
    port = _free_port()
    log = (tmp_path / "dashboard.log").open("w")
    server = subprocess.Popen([str(Path(sys.executable).parent / "optuna-dashboard"), exp.search["optuna_storage"],
                               "--host", "127.0.0.1", "--port", str(port)],
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(f"{base}/api/meta") or server.poll() is not None, 60, "optuna-dashboard to answer")
        assert server.poll() is None, (tmp_path / "dashboard.log").read_text()
        (summary,) = [s for s in _get(f"{base}/api/studies")["study_summaries"] if s["study_name"] == folder.name]
        detail = _get(f"{base}/api/studies/{summary['study_id']}")
        assert len(detail["trials"]) == len(exp.trials)
        states = sorted(t["state"] for t in detail["trials"])
        want = sorted({"COMPLETED": "Complete", "EARLY_STOPPED": "Pruned"}[t.status] for t in exp.trials)
        assert states == want
        ray_ids = sorted(a["value"] for t in detail["trials"] for a in t["user_attrs"] if a["key"] == "ray_trial_id")
        assert ray_ids == sorted(t.trial_id for t in exp.trials)
    finally:
        kill_session(server.pid)
