"""Two trials on a 2-core machine: torch threads pinned to the trial's CPU vs torch's default, without Ray.

What tune_app.tune.trainable does for a trial with ``cpus`` CPUs is ``torch.set_num_threads(int(cpus))`` and
``num_workers = min(data.num_workers, cpus - 1)`` (no loader worker at 1 CPU). This runs what two such
trials do at once, as two subprocesses each training ``polsess.trainer.Trainer`` epochs on the demo
config (configs/demo.yaml, the demo corpus), in these scenarios:

* ``pinned``: ``torch.set_num_threads(1)`` in each process, no loader worker (the trainable at 1 CPU);
* ``default``: torch's default thread count (= every core) in each process, no loader worker: 2 × nproc
  threads on nproc cores, the oversubscription the trainable avoids;
* ``worker``: pinned to 1 thread plus one DataLoader worker process each (what ``data.num_workers: 1``
  would give if the trainable did not cap it).

Figures, medians over ``--rounds`` rounds (the scenario order alternates between rounds, so a change in
the machine's background load hits every scenario alike):

* median epoch time (``train_epoch()``: the train pass and validation) and median train-pass time over
  both processes and all epochs; ``default ÷ pinned`` and ``worker ÷ pinned`` ratios;
* total wall time of the pair (launch of both to the exit of the last, imports and set-up included);
* data wait: the share of the train pass spent waiting for the next batch (time in the DataLoader
  iterator's ``__next__``), i.e. how much a trial is starved of data.

    python benchmarks/threads.py             # 200 rows, 3 epochs, 2 rounds (≈ 6 min on 2 idle cores)
    python benchmarks/threads.py --quick     # 64 rows, 2 epochs, 1 round, pinned vs default (≈ 1 min)
    python benchmarks/threads.py --data-root /data/PolSESS_C_in --rows 400 --epochs 4
    python benchmarks/threads.py --solo      # also one process alone at 1 thread and at the default
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SCENARIOS = {
    "pinned": {"threads": 1, "workers": 0},
    "default": {"threads": None, "workers": 0},
    "worker": {"threads": 1, "workers": 1},
}
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
WAIT_TARGET = 0.05


# --------------------------------------------------------------------------- one trial (subprocess)


class TimedIterable:
    """Wraps a DataLoader; adds the time spent in its iterator's ``__next__`` to ``waits``."""

    def __init__(self, loader, waits: list[float]) -> None:
        self.loader, self.waits = loader, waits

    def __iter__(self):
        it = iter(self.loader)
        while True:
            start = time.perf_counter()
            try:
                batch = next(it)
            except StopIteration:
                return
            finally:
                self.waits.append(time.perf_counter() - start)
            yield batch


def worker(args: argparse.Namespace) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from polsess.config import load_config
    from polsess.trainer import Trainer

    overrides = {"data.data_root": str(args.data_root), "data.num_workers": args.workers,
                 "data.train_max_samples": args.rows, "data.val_max_samples": args.val_rows,
                 "training.num_epochs": args.epochs}
    cfg = load_config(REPO / "configs" / "demo.yaml", overrides)
    trainer = Trainer(cfg, device="cpu", log=lambda _m: None)
    waits: list[float] = []
    passes: list[float] = []
    make_loader, train_pass = trainer._loader, trainer._train_pass

    def timed_loader(dataset, shuffle, epoch=0):
        loader = make_loader(dataset, shuffle, epoch)
        return TimedIterable(loader, waits) if shuffle else loader  # time the train loader only

    def timed_pass(epoch):
        start = time.perf_counter()
        try:
            return train_pass(epoch)
        finally:
            passes.append(time.perf_counter() - start)

    trainer._loader, trainer._train_pass = timed_loader, timed_pass
    print(json.dumps({"ready": time.time(), "threads": torch.get_num_threads()}), flush=True)
    while not trainer.done:
        waits.clear()
        start = time.perf_counter()
        metrics = trainer.train_epoch()
        print(json.dumps({"epoch": metrics["epoch"], "epoch_s": time.perf_counter() - start,
                          "train_s": passes[-1], "wait_s": sum(waits)}), flush=True)


# --------------------------------------------------------------------------- the pair (driver)


def run_pair(name: str, args: argparse.Namespace, root: Path, count: int = 2) -> dict:
    """``count`` trial processes of scenario ``name`` at once (2: the pair; 1: alone, for reference)."""
    spec = SCENARIOS[name]
    env = {k: v for k, v in os.environ.items() if k not in THREAD_ENV}
    cmd = [sys.executable, __file__, "--worker", "--data-root", str(root), "--epochs", str(args.epochs),
           "--rows", str(args.rows), "--val-rows", str(args.val_rows), "--workers", str(spec["workers"])]
    if spec["threads"]:
        cmd += ["--threads", str(spec["threads"])]
    start = time.perf_counter()
    procs = [subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True) for _ in range(count)]
    outputs = [p.communicate()[0] for p in procs]
    wall = time.perf_counter() - start
    if any(p.returncode for p in procs):
        sys.exit(f"{name}: a trial process failed (exit {[p.returncode for p in procs]})")
    rows = [json.loads(line) for out in outputs for line in out.splitlines() if line.startswith("{")]
    epochs = [r for r in rows if "epoch" in r]
    threads = sorted({r["threads"] for r in rows if "threads" in r})
    result = {
        "wall": wall,
        "epoch": statistics.median(r["epoch_s"] for r in epochs),
        "train": statistics.median(r["train_s"] for r in epochs),
        "wait_share": sum(r["wait_s"] for r in epochs) / sum(r["train_s"] for r in epochs),
        "threads": threads,
    }
    label = name if count == 2 else f"{name} alone"
    print(f"  {label:8} threads {threads} workers {spec['workers']}: median epoch {result['epoch']:6.2f} s, "
          f"train pass {result['train']:6.2f} s, data wait {result['wait_share']:6.1%}, pair wall {wall:6.1f} s",
          flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="64 rows, 2 epochs, 1 round, pinned vs default")
    parser.add_argument("--data-root", type=Path, help="corpus (default: the demo corpus, made once)")
    parser.add_argument("--rows", type=int, help="training rows per epoch (default 200; --quick 64)")
    parser.add_argument("--val-rows", type=int, help="validation rows (default 40; --quick 16)")
    parser.add_argument("--epochs", type=int, help="epochs per trial (default 3; --quick 2)")
    parser.add_argument("--rounds", type=int, help="rounds of every scenario (default 2; --quick 1)")
    parser.add_argument("--scenarios", help="comma-separated, of pinned, default, worker "
                                            "(default all three; --quick pinned,default)")
    parser.add_argument("--solo", action="store_true", help="also run one process alone, pinned and default "
                                                            "(what the threads buy without a second trial)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    args.rows = args.rows or (64 if args.quick else 200)
    args.val_rows = args.val_rows or (16 if args.quick else 40)
    args.epochs = args.epochs or (2 if args.quick else 3)
    rounds = args.rounds or (1 if args.quick else 2)
    names = (args.scenarios or ("pinned,default" if args.quick else "pinned,default,worker")).split(",")
    if "pinned" not in names or any(n not in SCENARIOS for n in names):
        sys.exit(f"--scenarios: give pinned and any of {', '.join(SCENARIOS)}")
    root = args.data_root
    if root is None:
        from polsess.synth import ensure_demo_corpus

        root = ensure_demo_corpus()
    import torch

    print(f"2 trial processes at once on {os.cpu_count()} cores (torch default {torch.get_num_threads()} threads), "
          f"configs/demo.yaml, {args.rows} train / {args.val_rows} val rows, {args.epochs} epochs, "
          f"{rounds} round(s); corpus {root}", flush=True)
    results: dict[str, list[dict]] = {n: [] for n in names}
    for r in range(rounds):
        order = names if r % 2 == 0 else names[::-1]
        print(f"round {r + 1}: {', '.join(order)}", flush=True)
        for name in order:
            results[name].append(run_pair(name, args, root))

    def med(name: str, key: str) -> float:
        return statistics.median(x[key] for x in results[name])

    base = {k: med("pinned", k) for k in ("epoch", "train", "wall", "wait_share")}
    lines = [
        f"pinned (1 thread per trial): median epoch {base['epoch']:.2f} s, train pass {base['train']:.2f} s, "
        f"pair wall {base['wall']:.1f} s (target none: reference)",
        f"data wait share of the train pass, pinned: {base['wait_share']:.1%} (target <= {WAIT_TARGET:.0%})",
    ]
    for name in names:
        if name == "pinned":
            continue
        threads = results[name][0]["threads"]
        what = f"torch default ({'/'.join(map(str, threads))} threads per trial)" if name == "default" else \
            "1 thread + 1 loader worker per trial"
        lines.append(f"{what} ÷ pinned, median epoch time: {med(name, 'epoch') / base['epoch']:.2f} "
                     f"({med(name, 'epoch'):.2f} vs {base['epoch']:.2f} s) (target >= 1.0: pinning is not slower)")
        lines.append(f"{what} ÷ pinned, pair wall time: {med(name, 'wall') / base['wall']:.2f} "
                     f"({med(name, 'wall'):.1f} vs {base['wall']:.1f} s) (target >= 1.0)")
        lines.append(f"data wait share of the train pass, {name}: {med(name, 'wait_share'):.1%} "
                     "(target none: reference)")
    if args.solo:
        print("alone (one trial process, reference):", flush=True)
        solo = {name: run_pair(name, args, root, count=1) for name in ("pinned", "default")}
        lines.append(f"one process alone, torch default ({'/'.join(map(str, solo['default']['threads']))} threads) "
                     f"÷ 1 thread, median epoch time: {solo['default']['epoch'] / solo['pinned']['epoch']:.2f} "
                     f"({solo['default']['epoch']:.2f} vs {solo['pinned']['epoch']:.2f} s) (target none: reference)")
    print()
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
