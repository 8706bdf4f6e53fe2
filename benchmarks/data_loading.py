"""How fast PolSESSDataset feeds a DataLoader, next to simply reading the same WAV files.

The loader subtracts parts from the mix and checks every file's header; this shows what that costs
against the floor (one soundfile.read of every file of every row). Loader figures are samples/s
(one sample = one item); the raw figure is rows/s. Medians over --repeats passes, warm page cache.

    python benchmarks/data_loading.py            # 200 rows, 8 kHz, 4 s, in a temporary corpus
    python benchmarks/data_loading.py --quick    # 60 rows
    python benchmarks/data_loading.py --data-root /data/PolSESS_C_in --subset val
    python benchmarks/data_loading.py --packed 4 --cpus-per-trial 4   # 4 trials' loaders at once

``--packed N``: N loaders read at once, each in a process of its own with the workers a trial of
``--cpus-per-trial`` CPUs gets (``polsess.device.cpu_share``: one CPU trains, the rest load), SB task,
4 s crops, batch 4 — what N trials packed onto one GPU ask of the CPUs. Figure: the slowest
loader's samples/s against what one trial's GPU step consumes at the step target of
benchmarks/gpu_step.py (3 × 35.4 samples/s, the paper-size step on an H200).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import soundfile as sf
from torch.utils.data import DataLoader

from polsess.data import COMPONENTS, PolSESSDataset, collate
from polsess.synth import make_corpus

TASKS = ("ES", "EB", "SB")
RATIO_TARGET = 0.5
GPU_STEP_NEED = 3 * 35.4  # samples/s one trial's step consumes at gpu_step.py's compiled-step target
MAKE_TARGET_S = 60.0


def median_rate(run: Callable[[], int], repeats: int) -> float:
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        count = run()
        rates.append(count / (time.perf_counter() - start))
    return statistics.median(rates)


def every_file(ds: PolSESSDataset) -> list[str]:
    out = []
    for _, row in ds.metadata.iterrows():
        for folder, column in COMPONENTS.values():
            if isinstance(row[column], str):
                out.append(str(ds.subset_dir / folder / row[column]))
    return out


def raw_read(files: list[str], rows: int) -> Callable[[], int]:
    def run() -> int:
        for path in files:
            sf.read(path, dtype="float32")
        return rows

    return run


def loader_pass(ds: PolSESSDataset, workers: int) -> Callable[[], int]:
    def run() -> int:
        count = 0
        for batch in DataLoader(ds, batch_size=4, num_workers=workers, collate_fn=collate):
            count += batch["mix"].shape[0]
        return count

    return run


def _packed_loader(root: str, cpus: int, passes: int, start: Any, out: Any) -> None:
    """One trial's loader, in its own process: median samples/s over ``passes`` passes."""
    import torch

    from polsess.device import cpu_share

    threads, workers = cpu_share(cpus, 8)
    torch.set_num_threads(threads)
    ds = PolSESSDataset(root, "train", "SB")
    ds.segment_samples = 4 * ds.sample_rate
    start.wait()
    out.put(median_rate(loader_pass(ds, workers), passes))


def packed(root: Path, trials: int, cpus: int, passes: int) -> list[str]:
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    start, out = ctx.Barrier(trials), ctx.Queue()
    procs = [ctx.Process(target=_packed_loader, args=(str(root), cpus, passes, start, out)) for _ in range(trials)]
    for p in procs:
        p.start()
    rates = sorted(out.get(timeout=900) for _ in procs)
    for p in procs:
        p.join()
    workers = max(0, cpus - 1)
    print(f"{trials} loaders at once, {cpus} CPUs each ({workers} workers): samples/s " +
          " ".join(f"{r:.1f}" for r in rates))
    return [f"loader samples/s per trial, {trials} packed trials x {cpus} CPUs, slowest: {rates[0]:.1f} "
            f"(target >= {GPU_STEP_NEED:.1f}, one trial's GPU step at its target)"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="60 rows instead of 200")
    parser.add_argument("--data-root", type=Path, help="an existing corpus (default: make one in a temp dir)")
    parser.add_argument("--subset", default="train", choices=["train", "val", "test"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--packed", type=int, help="N trials' loaders at once (see above)")
    parser.add_argument("--cpus-per-trial", type=int, default=4, help="with --packed (default 4)")
    args = parser.parse_args()

    rows = 60 if args.quick else 200
    summary: list[str] = []
    with tempfile.TemporaryDirectory(prefix="polsess-bench-") as tmp:
        root = args.data_root
        if root is None:
            start = time.perf_counter()
            root = make_corpus(Path(tmp) / "PolSESS_bench", train=rows, val=0, test=0, sample_rate=8000,
                               seconds=4.0, seed=0)
            made = time.perf_counter() - start
            print(f"made {rows} rows (8 kHz, 4 s) in {made:.1f} s at {root}")
            summary.append(f"make_corpus {rows} rows 8 kHz 4 s: {made:.1f} s (target < {MAKE_TARGET_S:.0f} s)")
        if args.packed:
            summary += packed(root, args.packed, args.cpus_per_trial, args.repeats)
            print("\n".join(["", *summary]))
            return
        probe = PolSESSDataset(root, args.subset, "ES", max_samples=None if args.data_root else rows)
        files = every_file(probe)
        n = len(probe)
        print(f"{n} rows, {len(files)} files, {probe.sample_rate} Hz; batch_size 4, all variants, "
              f"median of {args.repeats}, warm cache\n")
        raw_read(files, n)()  # warm the page cache so every figure reads from memory
        raw = median_rate(raw_read(files, n), args.repeats)
        print(f"{'':14}{'samples/s':>12}{'loader/raw':>12}")
        print(f"{'raw read':14}{raw:12.1f}{'1.00x':>12}   (every file of every row, rows/s)")
        summary.append(f"raw soundfile read: {raw:.1f} rows/s (reference)")
        for task in TASKS:
            ds = PolSESSDataset(root, args.subset, task, max_samples=n)
            for workers in (0, 1):
                rate = median_rate(loader_pass(ds, workers), args.repeats)
                ratio = rate / raw
                print(f"{task + f' workers={workers}':14}{rate:12.1f}{ratio:11.2f}x")
                summary.append(f"loader/raw ratio {task} workers={workers}: {ratio:.2f}x "
                               f"(target >= {RATIO_TARGET}x)")
    print()
    for line in summary:
        print(line)


if __name__ == "__main__":
    main()
