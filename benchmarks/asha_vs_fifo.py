"""What ASHA saves: the same sampled configs searched once with ASHA and once without early stopping.

Runs ``polsess-tune run`` as subprocesses over temporary copies of ``search_spaces/demo.yaml`` with
``method: random`` (a seeded RandomSampler draws the same configs in the same order whatever the
results, unlike TPE), the same ``--seed`` and ``--num-samples``, 2 trials at a time on 1 CPU each,
W&B disabled:

* FIFO: the sweep file without ``early_terminate`` (every trial runs all its epochs);
* ASHA: the sweep file as is, once per ``--combos`` entry GxR = ``--grace-period G
  --reduction-factor R``.

Figures, read from the experiment folders (``tune_app.experiment.results.load_experiment``):

* trial-epochs: Σ over trials of the epochs each one trained (its last reported ``epoch``);
  ASHA ÷ FIFO, target ≤ 0.40;
* best val SI-SDR of each search (max over trials and epochs of ``val_sisdr``); FIFO − ASHA, target
  ≤ 0.5 dB;
* wall time of each ``polsess-tune run`` command (launch to exit), for reference;
* sameness: the searched values of every trial (sorted) must be identical in every search, and a
  config's learning curve must be the same epoch for epoch in every search where it ran (training is
  seeded and runs one thread per trial on the CPU), so the only difference between the searches is
  the scheduler.

Async ASHA's savings depend on the order in which trials arrive (the first trials to reach a rung
always go on), so one live search per combo is one draw. The replay table adds the expectation: Ray's
own ASHA bracket (``ray.tune.schedulers.async_hyperband._Bracket``, what ``ResumableASHA`` uses) fed
with the FIFO search's learning curves and per-epoch times, 2 slots, in FIFO's trial order (which
reproduces the live ASHA search when the reports arrive in the same order) and in ``--replay``
random orders (of ``--replay-trials`` of FIFO's trials: a smaller search of the same space): mean
trial-epochs ÷ FIFO, mean best gap, P(gap > 0.5 dB) and P(the search keeps FIFO's best trial).

    python benchmarks/asha_vs_fifo.py            # 16 trials × 8 epochs, 120 train rows of 2 s, combos 2x2,1x2,2x3,1x3
                                                 # (≈ 45 min on 2 busy CPUs; FIFO alone ≈ 17 min)
    python benchmarks/asha_vs_fifo.py --quick    # 4 trials × 3 epochs on 32 rows, combo 1x2: a smoke test (≈ 1 min)
    python benchmarks/asha_vs_fifo.py --keep DIR --replay-trials 8   # reuse DIR's searches; replay 8-trial searches
    python benchmarks/asha_vs_fifo.py --combos 2x2 --trials 24 --data-root /data/PolSESS_C_in
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _run import bench_corpus, run_logged  # noqa: E402  (benchmarks/ is sys.path[0] when run as a script)

from polsess.config import flatten  # noqa: E402
from tune_app.experiment.results import load_experiment  # noqa: E402

SPACE = REPO / "search_spaces" / "demo.yaml"
BASE_CONFIG = REPO / "configs" / "demo.yaml"
EPOCHS_TARGET = 0.40
GAP_TARGET_DB = 0.5


@dataclass
class Search:
    label: str
    wall_s: float
    trial_epochs: int
    best: float
    trials: int
    statuses: dict[str, int]
    configs: list[tuple]  # searched values of each trial, sorted
    curves: dict[tuple, list[float]]  # searched values → val_sisdr per epoch
    path: Path
    # (val_sisdr per epoch, seconds per epoch) of each trial, in the order the trials started
    runs: list[tuple[list[float], list[float]]]


def sweep_file(folder: Path, name: str, fifo: bool) -> Path:
    """A copy of the demo sweep with method: random (and without early_terminate for FIFO)."""
    raw = yaml.safe_load(SPACE.read_text())
    raw["method"] = "random"
    raw["parameters"]["config"] = {"value": str(BASE_CONFIG)}
    raw.pop("run_cap", None)
    tune = raw.setdefault("tune", {})
    for key in ("grace_period", "reduction_factor", "scheduler", "num_samples"):
        tune.pop(key, None)
    if fifo:
        raw.pop("early_terminate", None)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def config_key(config: dict, paths: list[str]) -> tuple:
    flat = flatten(config)
    return tuple((p, flat.get(p)) for p in paths)


def run_search(label: str, space: Path, args: argparse.Namespace, root: Path, storage: Path,
               extra: list[str]) -> Search:
    name = label.replace(" ", "-").replace("=", "")
    cmd = [
        sys.executable, "-m", "tune_app.cli", "run",
        "--space", str(space), "--data-root", str(root),
        "--num-samples", str(args.trials), "--seed", str(args.seed),
        "--max-concurrent", str(args.max_concurrent), "--cpus-per-trial", "1", "--gpus-per-trial", "0",
        "--wandb", "disabled", "--storage", str(storage), "--name", name,
        "--set", f"training.num_epochs={args.epochs}",
        *[item for s in args.set for item in ("--set", s)],
        *extra,
    ]
    log = storage / f"{name}.log"
    wall_file = storage / f"{name}.wall"
    if wall_file.exists():  # --keep folder of an earlier run: reuse the finished search
        wall = float(wall_file.read_text())
        print(f"{label}: reusing {storage / name}", flush=True)
    else:
        print(f"[{time.strftime('%H:%M:%S')}] {label}: {' '.join(cmd[2:])}", flush=True)
        rc, wall = run_logged(cmd, log)
        if rc != 0:
            print(log.read_text()[-4000:])
            sys.exit(f"{label}: polsess-tune run exited {rc}; log above ({log})")
        wall_file.write_text(f"{wall:.3f}\n")
    exp = load_experiment(storage / name)
    paths = exp.space
    configs, curves, runs = [], {}, []
    for t in exp.trials:
        key = config_key(t.config, paths)
        configs.append(key)
        history = sorted(t.history, key=lambda r: r["epoch"])
        curves[key] = [r["val_sisdr"] for r in history]
        if history:
            started = history[0]["timestamp"] - history[0]["time_this_iter_s"]
            runs.append((started, curves[key], [r["time_this_iter_s"] for r in history]))
    best_trial = exp.best_trial()
    search = Search(
        label=label, wall_s=wall, trial_epochs=sum(t.epochs for t in exp.trials),
        best=best_trial.best(exp.metric, exp.mode) if best_trial else math.nan,
        trials=len(exp.trials), statuses=exp.counts(), configs=sorted(configs, key=repr), curves=curves,
        path=storage / name, runs=[(c, d) for _, c, d in sorted(runs, key=lambda r: r[0])],
    )
    print(f"    {search.trials} trials {search.statuses}, {search.trial_epochs} trial-epochs, "
          f"best val SI-SDR {search.best:.3f} dB, {wall:.0f} s", flush=True)
    return search


def curve_difference(a: Search, b: Search) -> float:
    """Largest |Δ val_sisdr| between the two searches over the epochs both ran of each config."""
    worst = 0.0
    for key, curve in b.curves.items():
        other = a.curves.get(key, [])
        for x, y in zip(curve, other, strict=False):
            worst = max(worst, abs(x - y))
    return worst


class _Id:
    def __init__(self, trial_id: str) -> None:
        self.trial_id = trial_id


def replay(runs: list[tuple[list[float], list[float]]], order: list[int], grace: int, rf: float, max_t: int,
           slots: int) -> tuple[int, float]:
    """ASHA as Ray runs it (its own bracket, time attribute = epoch), replayed on FIFO's learning curves.

    Trials start in ``order`` whenever one of ``slots`` is free, each epoch takes as long as it did in
    the FIFO search, and every report goes through the bracket in the order it would arrive; a STOP
    (or reaching max_t) ends the trial. Returns (trial-epochs, best val SI-SDR)."""
    from ray.tune.schedulers import TrialScheduler
    from ray.tune.schedulers.async_hyperband import _Bracket

    bracket = _Bracket(min_t=grace, max_t=max_t, reduction_factor=rf, s=0)
    queue = list(order)
    running: list[tuple[float, int, int]] = []  # (report time, trial, epoch)

    def start(trial: int, now: float) -> None:
        running.append((now + runs[trial][1][0], trial, 1))

    for _ in range(slots):
        if queue:
            start(queue.pop(0), 0.0)
    epochs, best = 0, -math.inf
    while running:
        running.sort()
        now, trial, epoch = running.pop(0)
        curve, durations = runs[trial]
        value = curve[epoch - 1]
        epochs += 1
        best = max(best, value)
        action = bracket.on_result(_Id(str(trial)), epoch, value)
        if epoch >= min(max_t, len(curve)) or action == TrialScheduler.STOP:
            if queue:
                start(queue.pop(0), now)
        else:
            running.append((now + durations[epoch], trial, epoch + 1))
    return epochs, best


def replay_table(fifo: Search, epochs: int, slots: int, combos: list[tuple[int, float]], permutations: int,
                 seed: int, trials: int | None = None) -> dict[tuple[int, float], dict[str, float]]:
    """Every combo replayed in the FIFO search's own trial order and in ``permutations`` random orders
    (of ``trials`` of FIFO's trials drawn at random, default all: a smaller search of the same space)."""
    import random

    rng = random.Random(seed)
    n = len(fifo.runs)
    k = min(trials or n, n)
    orders = [list(range(k))] + [rng.sample(range(n), k) for _ in range(permutations)]

    def fifo_cost(order: list[int]) -> tuple[int, float]:
        return sum(len(fifo.runs[i][0]) for i in order), max(max(fifo.runs[i][0]) for i in order)

    out = {}
    for grace, rf in combos:
        results = [(replay(fifo.runs, order, grace, rf, epochs, slots), fifo_cost(order)) for order in orders]
        ratios = [e / fe for (e, _), (fe, _) in results]
        gaps = [fb - b for (_, b), (_, fb) in results]
        out[(grace, rf)] = {
            "own_order_ratio": ratios[0], "own_order_gap": gaps[0],
            "mean_ratio": statistics.mean(ratios[1:] or ratios), "mean_gap": statistics.mean(gaps[1:] or gaps),
            "p_gap": sum(g > GAP_TARGET_DB for g in gaps[1:] or gaps) / len(gaps[1:] or gaps),
            "p_hit": sum(g <= 1e-9 for g in gaps[1:] or gaps) / len(gaps[1:] or gaps),
        }
    return out


def parse_combo(text: str) -> tuple[int, float]:
    grace, _, rf = text.lower().partition("x")
    return int(grace), float(rf)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="4 trials × 3 epochs on a 32-row corpus of 1 s clips, combo 1x2 (a smoke test: "
                             "too few trials for ASHA to save much)")
    parser.add_argument("--trials", type=int, help="trials per search (default 16; --quick 4)")
    parser.add_argument("--epochs", type=int, help="epochs per trial = ASHA's max_t (default 8; --quick 3)")
    parser.add_argument("--combos", help="ASHA grace×reduction-factor pairs, comma-separated "
                                         "(default 2x2,1x2,2x3,1x3; --quick 1x2)")
    parser.add_argument("--seed", type=int, default=0, help="sampler seed of every search (default 0)")
    parser.add_argument("--max-concurrent", type=int, default=2)
    parser.add_argument("--data-root", type=Path, help="an existing corpus (default: make one in a temp dir)")
    parser.add_argument("--train-rows", type=int, help="training rows of the made corpus (default 120; --quick 32)")
    parser.add_argument("--val-rows", type=int, help="validation rows (default 32; --quick 8)")
    parser.add_argument("--seconds", type=float, help="clip length of the made corpus (default 2; --quick 1)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="extra --set for every search (e.g. data.batch_size=16)")
    parser.add_argument("--keep", type=Path, help="keep the corpus and experiments in this folder (a search "
                                                  "already finished there is reused, not run again)")
    parser.add_argument("--replay", type=int, help="random trial orders to replay ASHA in on FIFO's curves "
                                                   "(default 500; 0 = none)")
    parser.add_argument("--replay-trials", type=int,
                        help="replay searches of this many of FIFO's trials, drawn at random (default: all)")
    parser.add_argument("--replay-combos", default="1x2,2x2,3x2,4x2,1x3,2x3,3x3,1x4,2x4",
                        help="grace×rf pairs of the replay table (default 1x2,2x2,3x2,4x2,1x3,2x3,3x3,1x4,2x4)")
    args = parser.parse_args()
    args.trials = args.trials or (4 if args.quick else 16)
    args.epochs = args.epochs or (3 if args.quick else 8)
    combos = [parse_combo(c) for c in (args.combos or ("1x2" if args.quick else "2x2,1x2,2x3,1x3")).split(",")]
    train_rows = args.train_rows or (32 if args.quick else 120)
    val_rows = args.val_rows or (8 if args.quick else 32)
    seconds = args.seconds or (1.0 if args.quick else 2.0)

    work = args.keep or Path(tempfile.mkdtemp(prefix="polsess-asha-"))
    work.mkdir(parents=True, exist_ok=True)
    storage = work / "runs"
    storage.mkdir(exist_ok=True)
    try:
        root = args.data_root or bench_corpus(work, "asha", train_rows, val_rows, seconds)
        print(f"{args.trials} trials × {args.epochs} epochs, seed {args.seed}, {args.max_concurrent} at a time "
              f"(1 CPU each), corpus {root}; nproc {os.cpu_count()}\n")

        fifo = run_search("fifo", sweep_file(work, "fifo", True), args, root, storage, [])
        asha = []
        for grace, rf in combos:
            label = f"asha g={grace} rf={rf:g}"
            asha.append(run_search(label, sweep_file(work, "asha", False), args, root, storage,
                                   ["--grace-period", str(grace), "--reduction-factor", f"{rf:g}"]))
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)

    print(f"\n{'search':18}{'trials':>7}{'stopped':>9}{'trial-epochs':>14}{'÷ FIFO':>8}{'best dB':>9}"
          f"{'FIFO−best':>11}{'wall s':>8}{'÷ FIFO':>8}")
    for s in [fifo, *asha]:
        print(f"{s.label:18}{s.trials:7}{s.statuses.get('EARLY_STOPPED', 0):9}{s.trial_epochs:14}"
              f"{s.trial_epochs / fifo.trial_epochs:8.2f}{s.best:9.3f}{fifo.best - s.best:11.3f}"
              f"{s.wall_s:8.0f}{s.wall_s / fifo.wall_s:8.2f}")

    summary = []
    same = all(s.configs == fifo.configs for s in asha)
    curve_diff = max((curve_difference(fifo, s) for s in asha), default=0.0)
    summary.append(f"same sampled configs in all {1 + len(asha)} searches: {'yes' if same else 'NO'} (target yes)")
    summary.append(f"largest val SI-SDR difference of one config at one epoch between searches: {curve_diff:.2g} dB "
                   "(target 0: same training)")
    summary.append(f"FIFO: {fifo.trial_epochs} trial-epochs, best val SI-SDR {fifo.best:.2f} dB, "
                   f"wall {fifo.wall_s:.0f} s (target none: reference)")
    finals = sorted((max(c) for c, _ in fifo.runs), reverse=True)
    close = sum(f >= fifo.best - GAP_TARGET_DB for f in finals)
    print(f"\nFIFO trials' best val SI-SDR, high to low: {' '.join(f'{f:.2f}' for f in finals)} dB "
          f"({close} within {GAP_TARGET_DB} dB of the best)")
    for s in asha:
        tag = s.label.replace("asha ", "ASHA ")
        summary.append(f"{tag} trial-epochs ÷ FIFO: {s.trial_epochs / fifo.trial_epochs:.2f} "
                       f"({s.trial_epochs}/{fifo.trial_epochs}) (target <= {EPOCHS_TARGET:.2f})")
        summary.append(f"{tag} best val SI-SDR gap (FIFO − ASHA): {fifo.best - s.best:.2f} dB "
                       f"({s.best:.2f} vs {fifo.best:.2f}) (target <= {GAP_TARGET_DB} dB)")
        summary.append(f"{tag} wall ÷ FIFO: {s.wall_s / fifo.wall_s:.2f} ({s.wall_s:.0f}/{fifo.wall_s:.0f} s) "
                       "(target none: reference)")
    replays = args.replay if args.replay is not None else 500
    table = {}
    if replays:
        grid = [parse_combo(c) for c in args.replay_combos.split(",")]
        grid += [c for c in combos if c not in grid]
        table = replay_table(fifo, args.epochs, args.max_concurrent, grid, replays, args.seed, args.replay_trials)
        of = f"{args.replay_trials} of FIFO's trials" if args.replay_trials else "FIFO's trials"
        print(f"\nASHA replayed on FIFO's learning curves and epoch times ({args.max_concurrent} slots; Ray's own "
              f"bracket): in FIFO's trial order, and the mean over {replays} random orders of {of}")
        print(f"{'grace×rf':10}{'own order ÷ FIFO':>18}{'gap dB':>8}{'mean ÷ FIFO':>13}{'mean gap':>10}"
              f"{'P(gap > ' + str(GAP_TARGET_DB) + ')':>15}{'P(best kept)':>14}")
        for (grace, rf), r in table.items():
            print(f"{f'{grace}x{rf:g}':10}{r['own_order_ratio']:18.2f}{r['own_order_gap']:8.2f}{r['mean_ratio']:13.2f}"
                  f"{r['mean_gap']:10.2f}{r['p_gap']:15.0%}{r['p_hit']:14.0%}")
        for grace, rf in combos:
            r = table[(grace, rf)]
            summary.append(f"replayed ASHA g={grace} rf={rf:g}, mean over {replays} trial orders, trial-epochs ÷ FIFO: "
                           f"{r['mean_ratio']:.2f} (target <= {EPOCHS_TARGET:.2f})")
            summary.append(f"replayed ASHA g={grace} rf={rf:g}, share of trial orders with a best gap > "
                           f"{GAP_TARGET_DB} dB: {r['p_gap']:.0%} (target 0%)")
    if args.keep:
        (work / "asha_vs_fifo.json").write_text(json.dumps(
            {s.label: {k: getattr(s, k) for k in ("wall_s", "trial_epochs", "best", "trials", "statuses")}
             | {"path": str(s.path)} for s in [fifo, *asha]}
            | {"replay": {f"{g}x{rf:g}": r for (g, rf), r in table.items()}}, indent=2))
    print()
    for line in summary:
        print(line)


if __name__ == "__main__":
    main()
