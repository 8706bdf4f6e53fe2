"""ConvTasNet training-step throughput on the GPU: fp32 vs bf16, inside a Tune trial vs bare, shared GPUs.

Three parts (``benchmarks/gpu_check.sh`` runs all three in about 4.5 minutes on one H200):

(a) default: one training step exactly as ``polsess.trainer.Trainer`` takes it (``build_model`` from
    ``configs/convtasnet_sb.yaml`` at the paper size N=512 B=128 H=512 P=3 X=8 R=3, SB task → 2
    sources; forward under autocast, ``score_batch`` PIT SI-SDR loss in float64, backward, grad-norm
    clip 5, Adam step, one ``.item()`` sync) on random 4 s segments at 8 kHz, batch 4: samples/s
    (median of ``--blocks`` timed blocks after a warm-up) and peak memory
    (``torch.cuda.max_memory_allocated``) in fp32 and under bf16 autocast (what the trainer uses on a
    GPU), both with cudnn.benchmark off as in the trainer, then bf16 with it on. Data loading is not
    part of the step (see benchmarks/data_loading.py).
(b) ``--in-tune``: the same step loop bare in this process, then inside a one-trial ``tune.Tuner``
    (resources {"cpu": C, "gpu": 1}, or no GPU on a CPU machine; the trial pins
    ``torch.set_num_threads(C)`` like tune_app.tune.trainable and calls ``tune.report`` after every block of
    steps, the report's own cost included in the block's time), then bare again. Figure: median
    in-trial samples/s ÷ median bare samples/s, target ≥ 0.95.
(c) ``--search``: ``polsess-tune run`` (as ``python -m tune_app.cli run``) of a short FIFO search (4 trials
    of the paper-size model, 2 epochs on a 64-row corpus of 4 s clips made here, batch 4) with
    ``--gpus-per-trial 0.25`` (4 trials share the GPU) and with ``1`` (one at a time), the same
    ``--cpus-per-trial`` for both: trials per hour = trials ÷ command wall time × 3600, and the
    median epoch time (``time_training_s``) that shows what sharing costs each trial.

(e) ``--compile``: the step of (a) eager, with the depthwise convs as shifted multiply-adds
    (``polsess.fast_conv``), and compiled (``speed_up``: torch.compile of the swapped model), fp32
    and bf16: samples/s, the one-off compile time and the training time it takes to pay back, and
    the first step's score against eager (same result within float tolerance).

(d) ``--profile``: a few steps of (a) under ``torch.profiler``, fp32 and bf16: the top ops by device
    time (CPU time without a GPU), kernel launches per step and the share of the step the GPU is
    busy, to tell a launch-bound step (busy share low, many small kernels: bf16 cannot help) from
    a math-bound one.

Without a GPU, (a) and (b) use a small model (N=64 B=32 H=64 X=4 R=2) on 1 s segments and 1 thread
(the demo's 1 CPU per trial) so they finish in a minute, bf16 is skipped, and (c) says it needs a GPU
(``--search --cpu-test`` runs the same code with 1 vs 2 CPUs per trial instead, to test it).

    python benchmarks/gpu_step.py                  # (a)
    python benchmarks/gpu_step.py --in-tune        # (b)
    python benchmarks/gpu_step.py --search         # (c)
    python benchmarks/gpu_step.py --profile        # (d)
    python benchmarks/gpu_step.py --compile        # (e)
    python benchmarks/gpu_step.py --quick ...      # fewer steps / trials
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
# Ray workers (b) and the CLI subprocesses (c) import polsess / tune_app from the repository too.
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)

import torch  # noqa: E402
from _run import run_logged  # noqa: E402  (benchmarks/ is sys.path[0] when run as a script)

PAPER = {"N": 512, "B": 128, "H": 512, "P": 3, "X": 8, "R": 3}
SMALL = {"N": 64, "B": 32, "H": 64, "P": 3, "X": 4, "R": 2}
IN_TUNE_TARGET = 0.95
BF16_TARGET = 1.0
MEMORY_SHARE_TARGET = 0.25
SHARE_TARGET = 1.5
AUTO_TARGET = 3.0  # --gpus-per-trial auto's trials/hour ÷ one trial per GPU, issue #14
COMPILE_TARGET = 3.0  # × today's fp32 eager step (35.4 samples/s on an H200), issue #14
PAYBACK_TARGET_S = 120.0
GIB = 2**30


# --------------------------------------------------------------------------- the step


def build(model_size: dict[str, int], device: torch.device):
    from polsess.config import load_config
    from polsess.model import build_model, count_parameters

    overrides = {f"model.convtasnet.{k}": v for k, v in model_size.items()}
    overrides["data.task"] = "SB"
    cfg = load_config(REPO / "configs" / "convtasnet_sb.yaml", overrides)
    torch.manual_seed(0)
    model = build_model(cfg).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.training.lr)
    return model, optimizer, count_parameters(model), cfg.training.grad_clip_norm


def make_batch(batch: int, samples: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    clean = 0.1 * torch.randn(batch, 2, samples, generator=g)
    mix = clean.sum(1) + 0.02 * torch.randn(batch, samples, generator=g)
    return mix.to(device), clean.to(device)


def step_fn(model, optimizer, mix, clean, dtype: torch.dtype | None, clip: float | None) -> Callable[[], float]:
    """One Trainer step (``_train_pass`` + ``_step``), bf16/fp16 autocast when ``dtype`` is given."""
    from polsess.metrics import score_batch

    device_type = mix.device.type
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)

    def step() -> float:
        model.train()
        with torch.autocast(device_type, dtype=dtype) if dtype is not None else nullcontext():
            estimate = model(mix.unsqueeze(1))
        score, _ = score_batch(estimate.float(), clean, mix)
        loss = -score.mean()
        scaler.scale(loss).backward()
        if clip:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        return score.detach().sum().item()  # the trainer's per-step sync

    return step


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def set_cudnn_benchmark(on: bool) -> None:
    # Imported here: a module-level reference would make Ray's cloudpickle try (and fail) to pickle
    # torch.backends.cudnn's module object along with the trial function.
    import torch.backends.cudnn as cudnn

    cudnn.benchmark = on


def step_loop(spec: dict[str, Any], report: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Warm up, then ``blocks`` timed blocks of ``steps`` steps; samples/s of each block.

    ``report`` (a ``tune.report``) is called after every block, inside the block's time."""
    device = torch.device(spec["device"])
    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[spec["precision"]]
    set_cudnn_benchmark(bool(spec.get("cudnn_benchmark", False)))  # the trainer leaves it off
    model, optimizer, params, clip = build(spec["model"], device)
    mix, clean = make_batch(spec["batch"], spec["samples"], device)
    fast, compile_s, first_loss = spec.get("fast", "eager"), 0.0, None
    if fast == "shifted":
        from polsess.fast_conv import swap_depthwise

        swap_depthwise(model)
    net = model
    if fast == "compiled":
        from polsess.fast_conv import speed_up

        start = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext():
            net, how = speed_up(model, mix.unsqueeze(1))
        sync(device)
        compile_s = time.perf_counter() - start
        print(f"  ({how}, {compile_s:.1f} s)", flush=True)
    step = step_fn(net, optimizer, mix, clean, dtype, clip)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    for i in range(spec["warmup"]):
        start = time.perf_counter()
        loss = step()
        if i == 0:
            first_loss = loss
            sync(device)
            compile_s += time.perf_counter() - start if fast == "compiled" else 0.0  # backward compiles lazily
    sync(device)
    rates: list[float] = []
    for block in range(spec["blocks"]):
        start = time.perf_counter()
        for _ in range(spec["steps"]):
            step()
        sync(device)
        if report is not None:
            report({"block": block, "samples_per_s": rates[-1] if rates else 0.0})
        rates.append(spec["steps"] * spec["batch"] / (time.perf_counter() - start))
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0
    out = {"rates": rates, "median": statistics.median(rates), "peak_bytes": peak, "params": params,
           "threads": torch.get_num_threads(), "compile_s": compile_s, "first_score": first_loss}
    del model, net, optimizer, mix, clean, step
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return out


# --------------------------------------------------------------------------- (d)


def _device_us(event: Any) -> float:
    """An op's own device time in µs (torch renamed cuda_* to device_* in 2.x)."""
    for name in ("self_device_time_total", "self_cuda_time_total"):
        value = getattr(event, name, None)
        if value is not None:
            return float(value)
    return 0.0


def part_profile(args: argparse.Namespace, base: dict[str, Any]) -> list[str]:
    from torch.profiler import ProfilerActivity, profile

    device = torch.device(base["device"])
    cuda = device.type == "cuda"
    precisions = ["fp32"] + (["bf16" if torch.cuda.is_bf16_supported() else "fp16"] if cuda else [])
    steps = 3 if args.quick else 5
    lines = []
    for precision in precisions:
        dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
        model, optimizer, _, clip = build(base["model"], device)
        mix, clean = make_batch(base["batch"], base["samples"], device)
        step = step_fn(model, optimizer, mix, clean, dtype, clip)
        for _ in range(base["warmup"]):
            step()
        sync(device)
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
        with profile(activities=activities) as prof:
            start = time.perf_counter()
            for _ in range(steps):
                step()
            sync(device)
            wall_us = (time.perf_counter() - start) * 1e6
        events = prof.key_averages()
        sort = "self_cuda_time_total" if cuda else "self_cpu_time_total"
        print(f"--- {precision}: {steps} steps, {wall_us / steps / 1000:.1f} ms/step under the profiler")
        print(events.table(sort_by=sort, row_limit=15), flush=True)
        if cuda:
            kernels = [e for e in prof.events() if getattr(e, "device_type", None) == torch.autograd.DeviceType.CUDA]
            busy_us = sum(_device_us(e) for e in events)
            launches = sum(e.count for e in events if e.key in ("cudaLaunchKernel", "cuLaunchKernel",
                                                                   "cudaLaunchKernelExC"))
            lines.append(f"profile {precision}: GPU busy {busy_us / wall_us:.0%} of the step, "
                         f"{launches / steps:.0f} kernel launches and {len(kernels) / steps:.0f} kernels per step, "
                         f"{wall_us / steps / 1000:.1f} ms/step (target none: launch-bound if busy is low)")
        else:
            top = max(events, key=lambda e: e.self_cpu_time_total)
            lines.append(f"profile {precision} (CPU, small model): {wall_us / steps / 1000:.1f} ms/step, "
                         f"top op {top.key} {top.self_cpu_time_total / (wall_us):.0%} of it (target none)")
        del model, optimizer, mix, clean, step
        if cuda:
            torch.cuda.empty_cache()
    return lines


# --------------------------------------------------------------------------- (a)


def part_step(args: argparse.Namespace, base: dict[str, Any]) -> list[str]:
    device = torch.device(base["device"])
    precisions = ["fp32"]
    if device.type == "cuda":
        precisions.append("bf16" if torch.cuda.is_bf16_supported() else "fp16")
    results = {}
    tuned: dict[str, dict[str, Any]] = {}
    print(f"{'precision':10}{'cudnn.benchmark':>16}{'samples/s':>11}{'ms/step':>9}{'peak GiB':>10}   blocks")
    runs = [(p, False) for p in precisions] + ([(precisions[-1], True)] if device.type == "cuda" else [])
    for precision, bench in runs:
        r = step_loop({**base, "precision": precision, "cudnn_benchmark": bench})
        (tuned if bench else results)[precision] = r
        ms = 1000 * base["batch"] / r["median"]
        print(f"{precision:10}{'on' if bench else 'off':>16}{r['median']:11.1f}{ms:9.1f}"
              f"{r['peak_bytes'] / GIB:10.2f}   " + " ".join(f"{x:.1f}" for x in r["rates"]), flush=True)
    fp32 = results["fp32"]
    where = "GPU" if device.type == "cuda" else "CPU, small model"
    lines = [f"fp32 step ({where}): {fp32['median']:.1f} samples/s, peak {fp32['peak_bytes'] / GIB:.2f} GiB "
             "(target none: reference)"]
    if len(precisions) == 1:
        lines.append("bf16 autocast ÷ fp32 samples/s: n/a, no GPU (target >= 1.0)")
        return lines
    low = precisions[1]
    r = results[low]
    total = torch.cuda.get_device_properties(device).total_memory
    lines.append(f"{low} autocast ÷ fp32 samples/s: {r['median'] / fp32['median']:.2f} "
                 f"({r['median']:.1f} vs {fp32['median']:.1f}) (target >= {BF16_TARGET:.1f})")
    lines.append(f"{low} peak memory: {r['peak_bytes'] / GIB:.2f} GiB = {r['peak_bytes'] / total:.1%} of the GPU's "
                 f"{total / GIB:.0f} GiB (target <= {MEMORY_SHARE_TARGET:.0%}: 4 trials fit at --gpus-per-trial 0.25)")
    lines.append(f"{low} peak memory ÷ fp32: {r['peak_bytes'] / max(fp32['peak_bytes'], 1):.2f} (target <= 1.0)")
    for precision in tuned:
        on, off = tuned[precision]["median"], results[precision]["median"]
        lines.append(f"{precision} with cudnn.benchmark on ÷ off (the trainer's default): {on / off:.2f} "
                     f"({on:.1f} vs {off:.1f} samples/s) (target none: decides a trainer default)")
    return lines


# --------------------------------------------------------------------------- (e)


def part_compile(args: argparse.Namespace, base: dict[str, Any]) -> list[str]:
    """Eager vs shifted depthwise convs vs compiled (polsess.fast_conv), fp32 and, on a GPU, bf16."""
    device = torch.device(base["device"])
    low = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if device.type == "cuda" else None
    runs = [("fp32", "eager"), ("fp32", "shifted"), ("fp32", "compiled")]
    if low:
        runs += [(low, "eager"), (low, "compiled")]
    res = {}
    print(f"{'precision':10}{'step':>10}{'samples/s':>11}{'ms/step':>9}{'compile s':>11}{'peak GiB':>10}   blocks")
    for precision, fast in runs:
        r = step_loop({**base, "precision": precision, "fast": fast})
        res[precision, fast] = r
        print(f"{precision:10}{fast:>10}{r['median']:11.1f}{1000 * base['batch'] / r['median']:9.1f}"
              f"{r['compile_s']:11.1f}{r['peak_bytes'] / GIB:10.2f}   " + " ".join(f"{x:.1f}" for x in r["rates"]),
              flush=True)
    where = "GPU" if device.type == "cuda" else "CPU, small model"
    target = f">= {COMPILE_TARGET:.1f}" if device.type == "cuda" else "none on the CPU: auto leaves it off there"
    eager = res["fp32", "eager"]
    lines = []
    for precision, fast in runs[1:]:
        r = res[precision, fast]
        goal = target if fast == "compiled" else "none"
        lines.append(f"{precision} {fast} ÷ fp32 eager samples/s ({where}): {r['median'] / eager['median']:.2f} "
                     f"({r['median']:.1f} vs {eager['median']:.1f}) (target {goal})")
    best = max((k for k in res if k[1] == "compiled"), key=lambda k: res[k]["median"])
    r = res[best]
    te, tc = base["batch"] / eager["median"], base["batch"] / r["median"]
    pays = r["compile_s"] / (te - tc) * te if te > tc else float("inf")
    lines.append(f"{best[0]} compiled: compile {r['compile_s']:.1f} s, paid back after {pays:.0f} s of eager training "
                 f"(target <= {PAYBACK_TARGET_S:.0f} s: a trial of a few minutes does not lose)")
    diff = abs(res["fp32", "compiled"]["first_score"] - eager["first_score"])
    scale = abs(eager["first_score"]) or 1.0
    lines.append(f"fp32 compiled vs eager, first step's summed SI-SDR: relative difference {diff / scale:.1e} "
                 f"(target <= 1e-4)")
    return lines


# --------------------------------------------------------------------------- (b)


def tune_trial(config: dict[str, Any]) -> None:
    """The step loop as a Tune function trainable, pinned to the trial's CPUs like tune_app.tune.trainable."""
    from ray import tune

    from tune_app.tune.trainable import trial_resources

    cpus, _ = trial_resources()
    spec = dict(config["spec"])
    spec["threads"] = max(1, int(cpus))
    if spec["device"] == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("the trial sees no GPU")
    out = step_loop(spec, report=tune.report)
    tune.report({"block": spec["blocks"], "samples_per_s": out["median"], "rates": out["rates"],
                 "threads": out["threads"], "visible": os.environ.get("CUDA_VISIBLE_DEVICES", "")})


def part_in_tune(args: argparse.Namespace, base: dict[str, Any]) -> list[str]:
    import ray
    from ray import tune
    from ray.tune import RunConfig, TuneConfig

    spec = {**base, "precision": "bf16" if base["device"] == "cuda" and torch.cuda.is_bf16_supported() else "fp32"}
    threads = spec["threads"]
    bare = []
    first = step_loop(spec)
    bare += first["rates"]
    print(f"bare  ({spec['precision']}, {first['threads']} threads): " + " ".join(f"{x:.1f}" for x in first["rates"]),
          flush=True)

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    storage = tempfile.mkdtemp(prefix="polsess-gpu-tune-")
    ray.init(address="local", include_dashboard=False, logging_level="WARNING", log_to_driver=False,
             num_cpus=os.cpu_count())
    try:
        resources = {"cpu": threads, "gpu": 1 if spec["device"] == "cuda" else 0}
        start = time.perf_counter()
        grid = tune.Tuner(
            tune.with_resources(tune_trial, resources),
            param_space={"spec": spec},
            tune_config=TuneConfig(num_samples=1),
            run_config=RunConfig(name="in-tune", storage_path=storage, verbose=0),
        ).fit()
        trial_wall = time.perf_counter() - start
        result = grid[0]
        if result.error:
            raise RuntimeError(f"the trial failed: {result.error}")
        in_tune = result.metrics["rates"]
    finally:
        ray.shutdown()
        shutil.rmtree(storage, ignore_errors=True)
    print(f"tune  ({spec['precision']}, {result.metrics['threads']} threads, "
          f"CUDA_VISIBLE_DEVICES={result.metrics['visible']!r}): " + " ".join(f"{x:.1f}" for x in in_tune)
          + f"   (Tuner.fit {trial_wall:.1f} s)", flush=True)
    second = step_loop(spec)
    bare += second["rates"]
    print("bare  again: " + " ".join(f"{x:.1f}" for x in second["rates"]), flush=True)
    ratio = statistics.median(in_tune) / statistics.median(bare)
    where = "GPU" if spec["device"] == "cuda" else f"CPU, small model, {threads} threads"
    return [
        f"step in a Tune trial ({where}): {statistics.median(in_tune):.1f} samples/s; bare "
        f"{statistics.median(bare):.1f} samples/s (target none: reference)",
        f"in-trial ÷ bare samples/s: {ratio:.3f} (target >= {IN_TUNE_TARGET})",
    ]


# --------------------------------------------------------------------------- (c)


def part_search(args: argparse.Namespace, model_size: dict[str, int]) -> list[str]:
    import yaml

    from polsess.synth import make_corpus
    from tune_app.experiment.results import load_experiment

    gpus = torch.cuda.device_count()
    if not gpus and not args.cpu_test:
        return ["trials/hour at --gpus-per-trial 0.25 ÷ 1: n/a, no GPU (target >= 1.5)"]
    trials = args.search_trials or (4 if not args.quick else 2)
    epochs = args.search_epochs or (2 if not args.quick else 1)
    rows = args.search_rows or (64 if not args.quick else 32)
    cpus = max(1, min(3, (os.cpu_count() or 1) // 4))
    if gpus and args.packing == "auto":  # --gpus-per-trial auto decides the share; Ray packs by it
        setups = [("auto", ["--gpus-per-trial", "auto", "--cpus-per-trial", str(cpus)]),
                  ("1", ["--gpus-per-trial", "1", "--cpus-per-trial", str(cpus), "--max-concurrent", "1"])]
        seconds = 4.0
    elif gpus:
        setups = [("0.25", ["--gpus-per-trial", "0.25", "--cpus-per-trial", str(cpus), "--max-concurrent", "4"]),
                  ("1", ["--gpus-per-trial", "1", "--cpus-per-trial", str(cpus), "--max-concurrent", "1"])]
        seconds = 4.0
    else:  # --cpu-test: the same machinery, packing CPUs instead of GPU shares
        setups = [("1 CPU", ["--gpus-per-trial", "0", "--cpus-per-trial", "1", "--max-concurrent", "2"]),
                  ("2 CPUs", ["--gpus-per-trial", "0", "--cpus-per-trial", "2", "--max-concurrent", "1"])]
        seconds = 1.0
    packed_auto = 1
    work = Path(tempfile.mkdtemp(prefix="polsess-gpu-search-"))
    try:
        start = time.perf_counter()
        root = make_corpus(work / "PolSESS_gpu", train=rows, val=16, test=0, sample_rate=8000,
                           seconds=seconds, seed=0)
        print(f"made {rows} rows of {seconds:g} s in {time.perf_counter() - start:.1f} s", flush=True)
        sweep = work / "gpu_search.yaml"
        sweep.write_text(yaml.safe_dump({
            "method": "random",
            "metric": {"name": "val_sisdr", "goal": "maximize"},
            "parameters": {"config": {"value": str(REPO / "configs" / "convtasnet_sb.yaml")},
                           "lr": {"distribution": "log_uniform_values", "min": 3e-4, "max": 3e-3}},
            "tune": {"seed": 0},
        }, sort_keys=False))
        sets = {f"model.convtasnet.{k}": v for k, v in model_size.items()}
        # compile off: the packing alone is measured (each trial's one-off compile is (e)'s figure).
        sets.update({"training.num_epochs": epochs, "training.compile": "off", "data.batch_size": 4,
                     "data.num_workers": 2,
                     "data.train_max_samples": rows, "data.segment_seconds": seconds})
        figures = {}
        for label, flags in setups:
            name = "share-" + label.replace(" ", "").replace(".", "p")
            cmd = [sys.executable, "-m", "tune_app.cli", "run", "--space", str(sweep), "--data-root", str(root),
                   "--num-samples", str(trials), "--seed", "0", "--wandb", "disabled",
                   "--storage", str(work / "runs"), "--name", name, *flags,
                   *[x for k, v in sets.items() for x in ("--set", f"{k}={v}")]]
            print(f"[{time.strftime('%H:%M:%S')}] {' '.join(cmd[2:])}", flush=True)
            log = work / f"{name}.log"
            rc, wall = run_logged(cmd, log)
            if rc != 0:
                print(log.read_text()[-3000:])
                raise RuntimeError(f"polsess-tune run ({label}) exited {rc}")
            chosen = [line for line in log.read_text().splitlines() if line.startswith("--gpus-per-trial auto")]
            if chosen:
                print("    " + chosen[0], flush=True)
                share = float(chosen[0].split("→")[1].split(":")[0])
                packed_auto = max(1, round(1 / share))
            exp = load_experiment(work / "runs" / name)
            rows_ = [r for t in exp.trials for r in t.history]
            epoch_s = statistics.median(r["time_training_s"] for r in rows_)
            done = sum(1 for t in exp.trials if t.status == "COMPLETED")
            ran = [t for t in exp.trials if t.history]
            starts = [min(r["timestamp"] - r.get("time_this_iter_s", 0) for r in t.history) for t in ran]
            ends = [max(r["timestamp"] for r in t.history) for t in ran]
            span = max(ends) - min(starts)
            figures[label] = (done / wall * 3600, epoch_s, wall, span, done)
            print(f"    {done}/{trials} trials completed in {wall:.0f} s (trials' span {span:.0f} s): "
                  f"{done / wall * 3600:.0f} trials/hour; median epoch {epoch_s:.1f} s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    (a_label, a), (b_label, b) = ((s[0], figures[s[0]]) for s in setups)
    packed = (packed_auto if a_label == "auto" else 4) if gpus else 2  # trials at once in the first setup
    unit = "--gpus-per-trial" if gpus else "CPUs per trial"
    return [
        f"trials/hour at {unit} {a_label}: {a[0]:.0f} ({a[4]} trials in {a[2]:.0f} s; median epoch {a[1]:.1f} s) "
        "(target none: reference)",
        f"trials/hour at {unit} {b_label}: {b[0]:.0f} ({b[4]} trials in {b[2]:.0f} s; median epoch {b[1]:.1f} s) "
        "(target none: reference)",
        f"trials/hour {a_label} ÷ {b_label}: {a[0] / b[0]:.2f} (target >= "
        f"{AUTO_TARGET if a_label == 'auto' else SHARE_TARGET})",
        f"steady-state throughput {a_label} ÷ {b_label} ({packed} × median epoch at {b_label} ÷ at {a_label}): "
        f"{packed * b[1] / a[1]:.2f} (target >= {SHARE_TARGET})",
    ]


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--in-tune", action="store_true", help="(b) the step loop in a Tune trial vs bare")
    mode.add_argument("--search", action="store_true", help="(c) polsess-tune run at 0.25 vs 1 GPU per trial")
    mode.add_argument("--profile", action="store_true", help="(d) torch.profiler view of the step, fp32 and bf16")
    mode.add_argument("--compile", action="store_true", help="(e) eager vs shifted depthwise vs torch.compile")
    parser.add_argument("--quick", action="store_true", help="fewer timed steps, trials and epochs")
    parser.add_argument("--device", default="auto", help="auto (cuda when visible), cuda or cpu")
    parser.add_argument("--model", choices=["paper", "small"], help="default: paper on a GPU, small on the CPU")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seconds", type=float, help="segment length (default 4 on a GPU, 1 on the CPU)")
    parser.add_argument("--sample-rate", type=int, default=8000)
    parser.add_argument("--steps", type=int, help="steps per timed block (default 20 GPU, 5 CPU)")
    parser.add_argument("--blocks", type=int, help="timed blocks (default 4 GPU, 5 CPU; --quick 3)")
    parser.add_argument("--warmup", type=int, help="untimed steps first (default 5 GPU, 2 CPU)")
    parser.add_argument("--cpus", type=int, help="the trial's CPUs = torch threads of every loop "
                                                 "(default min(4, nproc) with a GPU, 1 without)")
    parser.add_argument("--search-trials", type=int, help="(c) trials per search (default 4; --quick 2)")
    parser.add_argument("--search-epochs", type=int, help="(c) epochs per trial (default 2; --quick 1)")
    parser.add_argument("--search-rows", type=int, help="(c) training rows (default 64; --quick 32)")
    parser.add_argument("--packing", choices=["0.25", "auto"], default="0.25",
                        help="(c) the shared setup: 4 trials at 0.25 GPU each, or --gpus-per-trial auto")
    parser.add_argument("--cpu-test", action="store_true", help="(c) without a GPU: 1 vs 2 CPUs per trial")
    parser.add_argument("--summary-file", type=Path, help="also append the summary lines to this file")
    args = parser.parse_args()

    cuda = torch.cuda.is_available() if args.device == "auto" else args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        sys.exit("--device cuda: no GPU visible")
    device = "cuda" if cuda else "cpu"
    if cuda:
        props = torch.cuda.get_device_properties(0)
        print(f"GPU: {props.name}, {props.total_memory / GIB:.0f} GiB; torch {torch.__version__}, "
              f"CUDA {torch.version.cuda}; nproc {os.cpu_count()}")
    else:
        print(f"no GPU visible (torch.cuda.is_available() is False): CPU run with a small model; "
              f"torch {torch.__version__}; nproc {os.cpu_count()}")
    model_name = args.model or ("paper" if cuda else "small")
    model_size = PAPER if model_name == "paper" else SMALL
    seconds = args.seconds or (4.0 if cuda else 1.0)
    base = {
        "device": device,
        "model": model_size,
        "batch": args.batch,
        "samples": round(seconds * args.sample_rate),
        "steps": args.steps or (20 if cuda else 5),
        "blocks": args.blocks or (3 if args.quick else (4 if cuda else 5)),
        "warmup": args.warmup if args.warmup is not None else (5 if cuda else 2),
        # GPU: a trial's usual CPU share; CPU: 1, the demo's CPUs per trial (2 threads on a busy 2-core
        # machine measure its other load more than the step).
        "threads": args.cpus or (min(4, os.cpu_count() or 1) if cuda else 1),
    }
    if not args.search:
        print(f"ConvTasNet {model_name} ({' '.join(f'{k}={v}' for k, v in model_size.items())}), SB (2 sources), "
              f"batch {args.batch} × {seconds:g} s at {args.sample_rate} Hz, {base['steps']} steps × "
              f"{base['blocks']} blocks after {base['warmup']} warm-up, {base['threads']} threads\n", flush=True)
        torch.set_num_threads(base["threads"])
    if args.in_tune:
        lines = part_in_tune(args, base)
    elif args.search:
        lines = part_search(args, model_size)
    elif args.profile:
        lines = part_profile(args, base)
    elif args.compile:
        lines = part_compile(args, base)
    else:
        lines = part_step(args, base)
    print()
    for line in lines:
        print(line)
    if args.summary_file:
        with args.summary_file.open("a") as fh:
            fh.write("".join(line + "\n" for line in lines))


if __name__ == "__main__":
    main()
