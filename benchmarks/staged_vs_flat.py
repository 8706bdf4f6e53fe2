"""Staged vs flat search at the same budget: does a cheap wide stage buy a better final config?

For each ``--seeds`` entry S, two searches run as ``polsess-tune run --space F --data-root D --storage
TMP --name N --seed S --wandb disabled`` subprocesses, over sweep files this script writes (W&B
syntax, ``method: bayes``, the space of ``search_spaces/demo.yaml`` over lr, weight_decay and
grad_clip_norm, base config ``configs/demo.yaml``, 2 trials at a time on 1 CPU each):

* flat: ``--flat NxE`` — N trials of E epochs on the full training set (no ``stages:``);
* staged: ``stages:`` — ``--wide NxE`` trials on ``--fraction`` of the training rows
  (``train_max_samples``), then ``--narrow NxE`` trials on the full training set, narrowed around the
  wide stage's ``--top-k`` configs (which it retrains first, see ``tune_app/tune/staged.py``).

Neither file has ``early_terminate``, so both run FIFO: every trial trains all its epochs, and the
budget each search spends is exact and known before it starts (the same for every seed). With ASHA
the spend would depend on the scores, and the two searches could only be matched after the fact.

Budget accounting, in trial-epochs (one epoch over the full training set = 1):

    trial-epochs = Σ over trials of (epochs it trained) × (train rows it used / full train rows)

"epochs it trained" is the trial's last reported ``epoch`` (an early-stopped trial would count what
it ran); "train rows it used" is ``min(data.train_max_samples, full rows)`` from its config. Only
training counts: every epoch of every trial is also validated on the full validation set, and the
per-trial start-up (Ray actor, model, data) is paid per trial, so a stage of many short trials costs
more wall time than its trial-epochs say — the wall time of each search is printed beside it.
The defaults are chosen so that staged ÷ flat = 1.00 exactly; the script warns before running when
the options you give miss 1.0 ± 0.1.

"Best val SI-SDR" of a search is the best ``val_sisdr`` (any epoch, full validation set) of any trial
trained on the full training set: every trial of the flat search, the last stage of the staged one
(the wide stage trains on a share of the rows, so its scores are not comparable; they are printed
for reference). Figures are medians over seeds; the seed is the sampler's (``--seed``); model
training is seeded by the config (``training.seed``), so one config trained on the same rows scores
the same in either search.

Sizes (trials x epochs, ``--flat`` / ``--wide`` / ``--narrow``; corpus made at 8 kHz, cropped to 1 s
segments by ``configs/demo.yaml``):

* default: 200 train / 40 val rows of 2 s; 3 seeds; flat 6x4 = 24 trial-epochs vs wide 8x4 on 50 rows
  (8) + narrow 4x4 around the top 2 (16) = 24; ≈ 20 min on a busy 2-core VM (load average 11-15);
* ``--quick``: 160 train / 24 val rows of 1 s; 1 seed; flat 4x3 = 12 vs wide 6x2 on 40 rows (3) +
  narrow 3x3 around the top 2 (9) = 12; ≈ 3.5-6 min.

    python benchmarks/staged_vs_flat.py            # default sizes above
    python benchmarks/staged_vs_flat.py --quick
    python benchmarks/staged_vs_flat.py --seeds 0 1 2 3 4 --data-root /data/PolSESS_C_in --keep /tmp/svf
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
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _run import bench_corpus, run_logged  # noqa: E402  (benchmarks/ is sys.path[0] when run as a script)

from polsess.config import flatten  # noqa: E402
from tune_app.experiment.results import Experiment, load_experiment  # noqa: E402

_ENTRY = Path(sys.executable).parent / "polsess-tune"
CLI = [str(_ENTRY)] if _ENTRY.exists() else [sys.executable, "-m", "tune_app.cli"]
BASE_CONFIG = REPO / "configs" / "demo.yaml"
RATIO_TARGET, RATIO_TOL = 1.0, 0.1

PARAMETERS = {
    "lr": {"distribution": "log_uniform_values", "min": 3e-4, "max": 1e-2},
    "weight_decay": {"distribution": "log_uniform_values", "min": 1e-7, "max": 1e-3},
    "grad_clip_norm": {"distribution": "uniform", "min": 1.0, "max": 10.0},
}


@dataclass
class Budget:
    flat: tuple[int, int]  # trials, epochs
    wide: tuple[int, int]
    narrow: tuple[int, int]
    fraction: float
    top_k: int


@dataclass
class SearchResult:
    label: str
    seed: int
    wall_s: float
    trial_epochs: float
    best: float  # best val_sisdr of a trial trained on the full training set
    trials: int
    statuses: dict[str, int]
    path: str
    stages: dict[str, dict] = field(default_factory=dict)  # per stage: trials, trial-epochs, best


def parse_nxe(text: str) -> tuple[int, int]:
    n, _, e = text.lower().partition("x")
    try:
        out = int(n), int(e)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected TRIALSxEPOCHS, e.g. 8x6") from None
    if min(out) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: trials and epochs must be >= 1")
    return out


def base_sweep() -> dict:
    return {
        "method": "bayes",
        "metric": {"name": "val_sisdr", "goal": "maximize"},
        "parameters": {"config": {"value": str(BASE_CONFIG)}, **PARAMETERS},
        "tune": {"max_concurrent_trials": 2, "resources_per_trial": {"cpu": 1, "gpu": 0}},
        "project": "polsess-tune-bench",
    }


def write_sweeps(folder: Path, budget: Budget, wide_rows: int) -> tuple[Path, Path, Path]:
    """The flat and the staged sweep files (no early_terminate: FIFO, every trial runs all epochs), and
    the third arm: a flat search with ASHA (the demo's hyperband, min_iter 1, eta 2) and a budget of
    the flat search's trial-epochs (``tune.budget_epochs``), trials as long as the final stage's."""
    flat = base_sweep()
    flat["run_cap"] = budget.flat[0]
    flat["parameters"]["num_epochs"] = {"value": budget.flat[1]}
    flat["name"] = "bench-flat"
    staged = base_sweep()
    staged["stages"] = [
        {"name": "wide", "num_samples": budget.wide[0], "epochs": budget.wide[1], "train_max_samples": wide_rows},
        {"name": "narrow", "num_samples": budget.narrow[0], "epochs": budget.narrow[1], "train_max_samples": None,
         "narrow": {"top_k": budget.top_k}},
    ]
    staged["name"] = "bench-staged"
    asha = base_sweep()
    asha["early_terminate"] = {"type": "hyperband", "min_iter": 1, "eta": 2}
    asha["parameters"]["num_epochs"] = {"value": budget.narrow[1]}
    asha["tune"]["budget_epochs"] = budget.flat[0] * budget.flat[1]
    asha["name"] = "bench-asha-budget"
    paths = folder / "flat.yaml", folder / "staged.yaml", folder / "asha.yaml"
    for path, raw in zip(paths, (flat, staged, asha), strict=True):
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return paths


def count_train_rows(root: Path) -> int:
    from polsess.config import load_yaml
    from polsess.data import PolSESSDataset

    task = (load_yaml(BASE_CONFIG).get("data") or {}).get("task", "ES")
    return len(PolSESSDataset(root, subset="train", task=task))


def rows_used(trial_config: dict, full_rows: int) -> int:
    limit = flatten(trial_config).get("data.train_max_samples")
    return full_rows if limit is None else min(int(limit), full_rows)


def trial_epochs(exp: Experiment, full_rows: int) -> float:
    return sum(t.epochs * rows_used(t.config, full_rows) / full_rows for t in exp.trials)


def best_full_data(exp: Experiment, full_rows: int) -> float:
    scores = [t.best(exp.metric, exp.mode) for t in exp.trials if rows_used(t.config, full_rows) == full_rows]
    scores = [s for s in scores if s is not None]
    return max(scores) if scores else math.nan


def best_any(exp: Experiment) -> float:
    best = exp.best_trial()
    return best.best(exp.metric, exp.mode) if best else math.nan


def merge_counts(exps: list[Experiment]) -> dict[str, int]:
    out: dict[str, int] = {}
    for exp in exps:
        for k, v in exp.counts().items():
            out[k] = out.get(k, 0) + v
    return out


def run_search(label: str, space: Path, seed: int, root: Path, storage: Path, full_rows: int) -> SearchResult:
    name = f"{label}-seed{seed}"
    cmd = [*CLI, "run", "--space", str(space), "--data-root", str(root), "--storage", str(storage),
           "--name", name, "--seed", str(seed), "--wandb", "disabled"]
    log = storage / f"{name}.log"
    print(f"[{time.strftime('%H:%M:%S')}] {name}: polsess-tune {' '.join(cmd[len(CLI):])}", flush=True)
    rc, wall = run_logged(cmd, log)
    if rc != 0:
        print(log.read_text()[-4000:])
        sys.exit(f"{name}: polsess-tune run exited {rc}; log above ({log})")
    folder = storage / name
    if label != "staged":
        exps = [(label, load_experiment(folder))]
    else:
        names = json.loads((folder / "stages.json").read_text())["stages"]
        exps = [(stage, load_experiment(folder / stage)) for stage in names]
    stages = {stage: {"trials": len(exp.trials), "trial_epochs": trial_epochs(exp, full_rows),
                      "best": best_any(exp), "statuses": exp.counts()} for stage, exp in exps}
    final = exps[-1][1]
    if any(rows_used(t.config, full_rows) != full_rows for t in final.trials):
        sys.exit(f"{name}: a trial of the final stage did not train on all {full_rows} rows; "
                 "its best is not comparable")
    result = SearchResult(
        label=label, seed=seed, wall_s=wall,
        trial_epochs=sum(s["trial_epochs"] for s in stages.values()),
        best=best_full_data(final, full_rows),
        trials=sum(len(exp.trials) for _, exp in exps),
        statuses=merge_counts([exp for _, exp in exps]),
        path=str(folder), stages=stages,
    )
    detail = "; ".join(f"{stage} {s['trials']} trials, {s['trial_epochs']:.2f} trial-epochs, best {s['best']:.3f} dB"
                       for stage, s in stages.items()) if len(stages) > 1 else ""
    print(f"    {result.trials} trials {result.statuses}, {result.trial_epochs:.2f} trial-epochs, best val SI-SDR "
          f"(full train) {result.best:.3f} dB, {wall:.0f} s" + (f"\n    {detail}" if detail else ""), flush=True)
    bad = {k: v for k, v in result.statuses.items() if k != "COMPLETED"}
    if bad and label != "asha":  # ASHA stops trials by design
        print(f"    warning: not every trial completed ({bad}); its budget is short", flush=True)
    return result


def fmt_signed(x: float) -> str:
    return f"{x:+.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="1 seed; flat 4x3 vs wide 6x2 on 1/4 of the rows + narrow 3x3 (top 2), "
                             "160/24-row corpus of 1 s clips")
    parser.add_argument("--seeds", type=int, nargs="+", help="sampler seeds (default 0 1 2; --quick 0)")
    parser.add_argument("--flat", type=parse_nxe, help="flat search TRIALSxEPOCHS (default 6x4; --quick 4x3)")
    parser.add_argument("--wide", type=parse_nxe, help="staged search, first stage (default 8x4; --quick 6x2)")
    parser.add_argument("--narrow", type=parse_nxe, help="staged search, final stage on all rows "
                                                         "(default 4x4; --quick 3x3)")
    parser.add_argument("--fraction", type=float, default=0.25,
                        help="share of the training rows the first stage trains on (default 0.25)")
    parser.add_argument("--top-k", type=int, help="configs the final stage narrows around (default 2)")
    parser.add_argument("--data-root", type=Path, help="an existing corpus (default: make one in a temp dir)")
    parser.add_argument("--train-rows", type=int, help="train rows of the made corpus (default 200; --quick 160)")
    parser.add_argument("--val-rows", type=int, help="(default 40; --quick 24)")
    parser.add_argument("--seconds", type=float, help="clip length of the made corpus (default 2; --quick 1)")
    parser.add_argument("--keep", type=Path, help="keep the corpus, sweep files, experiments and logs here")
    args = parser.parse_args()
    q = args.quick
    seeds = args.seeds or ([0] if q else [0, 1, 2])
    budget = Budget(flat=args.flat or ((4, 3) if q else (6, 4)), wide=args.wide or ((6, 2) if q else (8, 4)),
                    narrow=args.narrow or ((3, 3) if q else (4, 4)), fraction=args.fraction, top_k=args.top_k or 2)
    if not 0 < budget.fraction <= 1:
        parser.error("--fraction: give a share in (0, 1]")
    train_rows = args.train_rows or (160 if q else 200)
    val_rows = args.val_rows or (24 if q else 40)
    seconds = args.seconds or (1.0 if q else 2.0)

    work = args.keep or Path(tempfile.mkdtemp(prefix="polsess-staged-"))
    work.mkdir(parents=True, exist_ok=True)
    storage = work / "runs"
    storage.mkdir(exist_ok=True)
    total_start = time.perf_counter()
    results: list[tuple[SearchResult, SearchResult, SearchResult]] = []
    try:
        root = (args.data_root or bench_corpus(work, "staged", train_rows, val_rows, seconds)).resolve()
        full_rows = count_train_rows(root)
        wide_rows = max(1, round(budget.fraction * full_rows))
        frac = wide_rows / full_rows
        plan_flat = budget.flat[0] * budget.flat[1]
        plan_staged = budget.wide[0] * budget.wide[1] * frac + budget.narrow[0] * budget.narrow[1]
        print(f"corpus {root}: {full_rows} train rows; nproc {os.cpu_count()}, seeds {seeds}")
        print(f"flat:   {budget.flat[0]} trials x {budget.flat[1]} epochs on {full_rows} rows "
              f"= {plan_flat} trial-epochs")
        print(f"staged: {budget.wide[0]} x {budget.wide[1]} on {wide_rows} rows ({frac:.3g}) + {budget.narrow[0]} x "
              f"{budget.narrow[1]} on {full_rows} rows around the top {budget.top_k} = {plan_staged:.2f} trial-epochs")
        ratio = plan_staged / plan_flat
        if abs(ratio - RATIO_TARGET) > RATIO_TOL:
            print(f"warning: planned trial-epochs staged/flat = {ratio:.2f}, outside {RATIO_TARGET} ± {RATIO_TOL}; "
                  "the two searches do not get the same budget", flush=True)
        print()
        flat_space, staged_space, asha_space = write_sweeps(work, budget, wide_rows)
        for seed in seeds:
            flat = run_search("flat", flat_space, seed, root, storage, full_rows)
            staged = run_search("staged", staged_space, seed, root, storage, full_rows)
            for line in (storage / f"staged-seed{seed}.log").read_text().splitlines():
                if line.startswith("rank transfer"):
                    print(f"    {line}")
            asha = run_search("asha", asha_space, seed, root, storage, full_rows)
            results.append((flat, staged, asha))
        if args.keep:
            (work / "staged_vs_flat.json").write_text(json.dumps(
                {"budget": asdict(budget), "full_rows": full_rows, "wide_rows": wide_rows,
                 "results": [[asdict(r) for r in row] for row in results]}, indent=2, default=str))
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    total = time.perf_counter() - total_start

    head = f"{'seed':>6}{'flat best dB':>14}{'staged best dB':>16}{'staged−flat':>13}{'ASHA+budget':>13}" \
           f"{'ASHA−flat':>11}{'flat t-ep':>11}{'staged t-ep':>13}{'ASHA t-ep':>11}"
    print(f"\n{head}")
    for f, s, a in results:
        print(f"{f.seed:>6}{f.best:14.3f}{s.best:16.3f}{fmt_signed(s.best - f.best):>13}{a.best:13.3f}"
              f"{fmt_signed(a.best - f.best):>11}{f.trial_epochs:11.2f}{s.trial_epochs:13.2f}{a.trial_epochs:11.2f}")

    def med(values: list[float]) -> float:
        return statistics.median(values)

    diffs = [s.best - f.best for f, s, _ in results]
    asha_diffs = [a.best - f.best for f, _, a in results]
    ratios = [s.trial_epochs / f.trial_epochs for f, s, _ in results]
    walls = [s.wall_s / f.wall_s for f, s, _ in results]
    print(f"{'median':>6}{med([f.best for f, _, _ in results]):14.3f}{med([s.best for _, s, _ in results]):16.3f}"
          f"{fmt_signed(med(diffs)):>13}{med([a.best for _, _, a in results]):13.3f}{fmt_signed(med(asha_diffs)):>11}"
          f"{med([f.trial_epochs for f, _, _ in results]):11.2f}{med([s.trial_epochs for _, s, _ in results]):13.2f}"
          f"{med([a.trial_epochs for _, _, a in results]):11.2f}")
    print(f"(t-ep: trial-epochs, epochs × train-row share; whole benchmark {total / 60:.1f} min; ASHA+budget: "
          f"flat, ASHA min_iter 1 eta 2, {budget.narrow[1]}-epoch trials until the flat budget is spent)")

    n = len(results)
    of = f"median of {n} seed{'s' if n > 1 else ''}"
    wins = sum(d > 0 for d in diffs)
    print()
    print(f"staged − flat best val SI-SDR ({of}): {fmt_signed(med(diffs))} dB (target > 0)")
    print(f"seeds where staged beats flat: {wins}/{n} (target >= {n // 2 + 1})")
    print(f"ASHA with a budget − flat best val SI-SDR ({of}): {fmt_signed(med(asha_diffs))} dB "
          "(target none: reference)")
    print(f"trial-epochs staged/flat ({of}): {med(ratios):.2f} (target {RATIO_TARGET} ± {RATIO_TOL})")
    print(f"wall time staged/flat ({of}): {med(walls):.2f} (target none: reference)")


if __name__ == "__main__":
    main()
