"""How much of a `polsess-tune run` search is spent training, and where the rest of the time goes.

Runs real small searches with the CLI in a subprocess (``polsess-tune run`` on the demo sweep,
8 trials as in its ``run_cap`` (4 with ``--quick``), 2 at a time, 1 CPU each, W&B offline, ASHA's grace
period set to the epoch count so every trial runs all its epochs) and reports, as medians over
``--repeats`` searches:

1. training share of slot time: Σ over trials of Σ ``time_training_s`` (the seconds each epoch
   spent in ``trainer.train_epoch()``) ÷ (search span × concurrent slots), where the search span
   runs from the first trial being scheduled to the last trial's last report. The same share over
   the whole command (launch to exit) is printed beside it.
2. run to first step: from the subprocess launch to the first trial's first training step, taken
   as (the time of that trial's first report − that epoch's ``time_training_s``) − launch, minimised
   over trials. The report time is the worker's ``timestamp`` (whole seconds, rounded down) narrowed
   by the report's arrival at the driver and the actor's start (see below): ±0.5 s at worst.
3. the command's wall time and its split: before Ray (interpreter start, imports, the dry checks),
   Ray start-up (``import ray`` + ``ray.init``), Tune set-up (Tuner, searcher and callbacks, up to the
   first trial being scheduled), the search (the span of 1.) and the tail (last report to exit:
   stopping actors, W&B finish, the final sync, ``ray.shutdown()``, the results table). The five
   parts add up to the wall time exactly.

Method (no instrumentation of the app; everything comes from what a normal run leaves behind):

* The CLI's stdout (with ``PYTHONUNBUFFERED=1``) is read live and every line is stamped with
  ``time.time()``; the line ``search <name>: …`` is printed right after the dry checks, before Ray is
  imported. The launch and exit times are stamped around ``subprocess.Popen`` / ``wait``.
* Each search gets its own Ray temp folder (``RAY_TMPDIR``), so its session folder is known even on
  a machine where other Ray sessions come and go. The driver's core-worker log
  (``logs/python-core-driver-*.log``) starts when ``ray.init`` has the node up and the driver
  connected (its first timestamp ends "Ray start-up"), and has a ms timestamp for ``ray.shutdown()``.
* Tune writes trial files first in its driver staging folder
  (``<session>/artifacts/<time>/<name>/driver_artifacts/trial_*``) and only copies them to the
  experiment folder on each sync, so the timestamps come from the staging folder: the trial folder's
  birth time = trial scheduled (actor requested); ``params.json``'s birth time = actor ready (Tune's
  ``on_trial_start``); ``progress.csv``'s birth time = first report received by the driver (the CSV
  logger writes it on the first result, after the W&B callback has handled it); ``result.json``'s
  modification time = last report received. Birth times need ``stat -c %W`` (GNU coreutils, a file
  system that records it, e.g. ext4); without them the script falls back to modification times and
  says so. The worker-side time of the first report is its ``timestamp`` field (whole seconds)
  narrowed by the arrival and by the actor being ready before the first step: the middle of
  [max(timestamp, ready + first time_this_iter_s), min(timestamp + 1, arrival)].
* Per trial, the slot time from being scheduled to the last report splits exactly into: actor start
  (scheduled → ready: worker process, imports, Trainable set-up), start callbacks (ready → first
  ``step()`` = first report − first ``time_this_iter_s``; the driver's ``on_trial_start`` callbacks and
  the ``train`` call reaching the actor), in-trial set-up (first ``time_this_iter_s`` − its
  ``time_training_s``: Trainer, datasets, model, then the first checkpoint save and report), the first
  report reaching the driver (report → arrival), training, per-epoch report cost
  (``time_this_iter_s − time_training_s`` of later epochs: checkpoint save and report) and driver gaps
  between epochs (the synchronous report waiting for the driver: arrival spacing not covered by
  ``time_this_iter_s``). What is left of span × slots is idle slot time (a slot between one trial's
  end and the next trial being scheduled, or after the last trial there).
* Reference figures, each in a fresh interpreter: importing ``tune_app.tune.trainable`` (what every trial
  worker pays), a bare ``import ray; ray.init(); ray.shutdown()``, and ``polsess-tune run --dry-run``.

    python benchmarks/driver_overhead.py            # 3 searches of 8 trials, 4 epochs of 2 s clips: trials >= 30 s
    python benchmarks/driver_overhead.py --quick    # 1 search of 4 trials, 2 epochs of 1 s crops (1-2 min)
    python benchmarks/driver_overhead.py --data-root /data/PolSESS_C_in --repeats 5
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLI = Path(sys.executable).with_name("polsess-tune")
SPACE = REPO / "search_spaces" / "demo.yaml"
SHARE_TARGET = 0.9
FIRST_STEP_TARGET_S = 15.0
MIN_TRIAL_S = 30.0
LOG_TIME = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


@dataclass
class Trial:
    trial_id: str
    scheduled: float
    ready: float
    first_arrival: float
    last_arrival: float
    rows: list[dict]

    @property
    def training_s(self) -> float:
        return sum(r["time_training_s"] for r in self.rows)

    @property
    def first_report(self) -> float:
        """When the worker made its first report. Its ``timestamp`` is the whole second (rounded down);
        the report came no earlier than the first step() plus that step's length (the step starts
        after the actor is ready) and no later than its arrival at the driver: the middle of what
        those bounds leave."""
        ts = float(self.rows[0]["timestamp"])
        low = max(ts, self.ready + self.rows[0]["time_this_iter_s"])
        high = min(ts + 1.0, self.first_arrival)
        if low > high:  # the bounds disagree (e.g. no birth times): trust the arrival
            return self.first_arrival
        return (low + high) / 2

    @property
    def first_step(self) -> float:  # Tune's first step() call on the actor
        return self.first_report - self.rows[0]["time_this_iter_s"]

    @property
    def first_training(self) -> float:  # the first train_epoch() call
        return self.first_report - self.rows[0]["time_training_s"]

    def parts(self) -> dict[str, float]:
        first, later = self.rows[0], self.rows[1:]
        return {
            "actor start (scheduled -> ready)": self.ready - self.scheduled,
            "start callbacks (ready -> first step)": self.first_step - self.ready,
            "in-trial set-up + first report (worker)": first["time_this_iter_s"] - first["time_training_s"],
            "first report reaching the driver": self.first_arrival - self.first_report,
            "training (time_training_s)": self.training_s,
            "report + checkpoint, later epochs": sum(r["time_this_iter_s"] - r["time_training_s"] for r in later),
            "driver gaps between epochs": (self.last_arrival - self.first_arrival)
            - sum(r["time_this_iter_s"] for r in later),
        }


@dataclass
class Run:
    wall: float
    pre_ray: float
    ray_start: float
    tune_setup: float
    span: float
    tail: float
    tail_to_shutdown: float | None
    share_span: float
    share_wall: float
    first_step: float
    first_chain: dict[str, float]
    parts: dict[str, float]  # summed over trials
    trial_s: list[float]  # scheduled -> last report, per trial
    epochs: list[int]
    notes: list[str] = field(default_factory=list)
    per_trial: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- file times


def birth_times(paths: list[Path]) -> list[float]:
    """Birth times (0.0 where the file system does not record them)."""
    if not paths:
        return []
    try:
        out = subprocess.run(["stat", "-c", "%.9W", *map(str, paths)], capture_output=True, text=True, check=True)
        return [float(v) for v in out.stdout.split()]
    except (OSError, subprocess.CalledProcessError, ValueError):
        return [0.0] * len(paths)


def log_times(path: Path) -> list[tuple[float, str]]:
    out = []
    for line in path.read_text(errors="replace").splitlines():
        m = LOG_TIME.match(line)
        if m:
            out.append((datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp(), line))
    return out


def read_rows(path: Path) -> list[dict]:
    rows = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if "time_training_s" in row:
            rows.append(row)
    return rows


def staging_trials(session: Path, name: str, notes: list[str]) -> list[Trial]:
    folders = sorted(session.glob(f"artifacts/*/{name}/driver_artifacts/trial_*"))
    if not folders:
        raise SystemExit(f"no trial folders under {session}/artifacts/*/{name}/driver_artifacts")
    probes = []
    for f in folders:
        probes += [f, f / "params.json", f / "progress.csv"]
    births = birth_times(probes)
    trials = []
    for i, folder in enumerate(folders):
        rows = read_rows(folder / "result.json")
        if not rows:
            notes.append(f"{folder.name}: no report; left out")
            continue
        last = (folder / "result.json").stat().st_mtime
        scheduled, ready, first = births[3 * i: 3 * i + 3]
        if not (scheduled and ready and first):
            if "no birth times" not in " ".join(notes):
                notes.append("no birth times on this file system: trial scheduled = actor ready = params.json "
                             "mtime; first report = last report - later epochs' time_this_iter_s")
            ready = scheduled = (folder / "params.json").stat().st_mtime
            first = last - sum(r["time_this_iter_s"] for r in rows[1:])
        trials.append(Trial(folder.name.removeprefix("trial_"), scheduled, ready, first, last, rows))
    return trials


# --------------------------------------------------------------------------- one search


def stop(proc: subprocess.Popen) -> None:
    """Ctrl-C the CLI (it stops Tune and shuts Ray down); if it is still there a minute later, kill
    what is left of its process group, which is its own (start_new_session) and holds its Ray."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=60)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def run_search(index: int, args: argparse.Namespace, data_root: Path, work: Path) -> Run:
    name = f"bench-{index}"
    ray_tmp = Path(tempfile.mkdtemp(prefix="pb", dir="/tmp"))  # short: Ray's socket paths have a length limit
    storage = work / "runs"
    cmd = [
        *args.cli, "run", "--space", str(SPACE), "--data-root", str(data_root),
        "--num-samples", str(args.num_samples), "--max-concurrent", str(args.max_concurrent),
        "--cpus-per-trial", "1", "--gpus-per-trial", "0", "--wandb", args.wandb,
        "--storage", str(storage), "--name", name, "--grace-period", str(args.epochs),
        "--set", f"training.num_epochs={args.epochs}", "--set", f"data.segment_seconds={args.segment}",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "RAY_TMPDIR": str(ray_tmp)}
    lines: list[tuple[float, str]] = []
    launch = time.time()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            bufsize=1, start_new_session=True)
    watchdog = threading.Timer(args.timeout, stop, (proc,))
    watchdog.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append((time.time(), line.rstrip("\n")))
        rc = proc.wait()
    except BaseException:
        stop(proc)
        shutil.rmtree(ray_tmp, ignore_errors=True)
        raise
    finally:
        watchdog.cancel()
    exit_t = time.time()
    (work / f"{name}.log").write_text("".join(f"{t - launch:9.3f}  {text}\n" for t, text in lines))
    if rc != 0:
        shutil.rmtree(ray_tmp, ignore_errors=True)
        tail = "\n".join(text for _, text in lines[-30:])
        why = f"stopped after --timeout {args.timeout:g} s" if exit_t - launch >= args.timeout else f"exited with {rc}"
        raise SystemExit(f"{' '.join(cmd)}\n{why}:\n{tail}")

    try:
        return measure(name, args, lines, launch, exit_t, ray_tmp)
    finally:
        if not args.keep:
            shutil.rmtree(ray_tmp, ignore_errors=True)


def measure(name: str, args: argparse.Namespace, lines: list[tuple[float, str]], launch: float, exit_t: float,
            ray_tmp: Path) -> Run:
    notes: list[str] = []
    sessions = [p for p in (ray_tmp / "ray").glob("session_2*") if p.is_dir()]
    if len(sessions) != 1:
        raise SystemExit(f"{ray_tmp}: expected one Ray session folder, found {len(sessions)}")
    session = sessions[0]
    trials = staging_trials(session, name, notes)
    driver_log = log_times(next(session.glob("logs/python-core-driver-*.log")))

    search_line = next((t for t, text in lines if text.startswith(f"search {name}:")), None)
    if search_line is None:
        raise SystemExit("the CLI did not print its `search <name>:` line")
    ray_up = driver_log[0][0]
    shutdown = next((t for t, text in driver_log if "ray.shutdown()" in text), None)
    first_sched = min(t.scheduled for t in trials)
    last_report = max(t.last_arrival for t in trials)
    span = last_report - first_sched
    slots = min(args.max_concurrent, os.cpu_count() or 1)  # 1 CPU per trial: Ray runs no more than this
    training = sum(t.training_s for t in trials)

    first = min(trials, key=lambda t: t.first_training)
    chain = {
        "launch -> dry checks done (`search` line)": search_line - launch,
        "-> ray.init done (driver connected)": ray_up - search_line,
        "-> first trial scheduled": first_sched - ray_up,
        "-> that trial's actor ready": first.ready - first_sched,
        "-> its first step()": first.first_step - first.ready,
        "-> its first train_epoch()": first.first_training - first.first_step,
    }
    arrival = {"(its first report reached the driver at, from launch)": first.first_arrival - launch}
    if first.scheduled != first_sched:
        notes.append("the first trial to train was not the first scheduled")
    parts: dict[str, float] = {}
    for t in trials:
        for k, v in t.parts().items():
            parts[k] = parts.get(k, 0.0) + v
    parts["idle slot time"] = span * slots - sum(parts.values())

    if args.keep:
        notes.append(f"Ray session kept in {session}")
    per_trial = []
    for t in sorted(trials, key=lambda t: t.scheduled):
        p = list(t.parts().values())
        per_trial.append(f"{t.trial_id}  scheduled at {t.scheduled - launch:6.1f} s, last report at "
                         f"{t.last_arrival - launch:6.1f} s: actor {p[0]:4.1f}, callbacks {p[1]:4.1f}, "
                         f"set-up {p[2]:4.1f}, 1st report wait {p[3]:3.1f}, training {p[4]:5.1f}, "
                         f"reports {p[5]:3.1f}, gaps {p[6]:3.1f} s")
    return Run(
        wall=exit_t - launch,
        pre_ray=search_line - launch,
        ray_start=ray_up - search_line,
        tune_setup=first_sched - ray_up,
        span=span,
        tail=exit_t - last_report,
        tail_to_shutdown=None if shutdown is None else shutdown - last_report,
        share_span=training / (span * slots),
        share_wall=training / ((exit_t - launch) * slots),
        first_step=first.first_training - launch,
        first_chain={**chain, **arrival},
        parts=parts,
        trial_s=[t.last_arrival - t.scheduled for t in trials],
        epochs=[len(t.rows) for t in trials],
        notes=notes,
        per_trial=per_trial,
    )


# --------------------------------------------------------------------------- reference figures


def timed_python(code: str, env: dict[str, str] | None = None) -> str:
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         env={**os.environ, **(env or {})}, check=True)
    return out.stdout.strip().splitlines()[-1]


def reference(data_root: Path, repeats: int) -> dict[str, float]:
    found: dict[str, list[float]] = {}
    for _ in range(repeats):
        line = timed_python("import time; t = time.perf_counter(); import tune_app.tune.trainable; "
                            "print(time.perf_counter() - t)")
        found.setdefault("import tune_app.tune.trainable (every worker)", []).append(float(line))
        ray_tmp = tempfile.mkdtemp(prefix="pb", dir="/tmp")
        line = timed_python(
            "import time; t0 = time.perf_counter(); import ray; t1 = time.perf_counter(); "
            "ray.init(include_dashboard=False, logging_level='WARNING', log_to_driver=False); "
            "t2 = time.perf_counter(); ray.shutdown(); t3 = time.perf_counter(); "
            "print(t1 - t0, t2 - t1, t3 - t2)",
            env={"RAY_TMPDIR": ray_tmp},
        )
        shutil.rmtree(ray_tmp, ignore_errors=True)
        imp, init, down = map(float, line.split())
        found.setdefault("bare import ray", []).append(imp)
        found.setdefault("bare ray.init()", []).append(init)
        found.setdefault("bare ray.shutdown()", []).append(down)
        start = time.perf_counter()
        subprocess.run([str(CLI), "run", "--space", str(SPACE), "--data-root", str(data_root), "--dry-run"],
                       cwd=REPO, capture_output=True, check=True)
        found.setdefault("polsess-tune run --dry-run (whole command)", []).append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in found.items()}


# --------------------------------------------------------------------------- main


def git_state() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, check=True).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout"
    changed = [line[3:] for line in dirty if line.strip()]
    return f"commit {head}" + (f", uncommitted changes in {', '.join(changed)}" if changed else "")


def med(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 search of 2 epochs on 1 s crops (1-2 min)")
    parser.add_argument("--repeats", type=int, help="searches to run (default 3, --quick 1)")
    parser.add_argument("--data-root", type=Path, help="an existing corpus (default: make 200/20 rows, 8 kHz, 2 s)")
    parser.add_argument("--epochs", type=int, help="epochs per trial (default 4, --quick 2)")
    parser.add_argument("--segment", type=float, help="data.segment_seconds (default 2.0, --quick 1.0)")
    parser.add_argument("--num-samples", type=int,
                        help="trials per search (default 8, the demo sweep's run_cap; --quick 4)")
    parser.add_argument("--max-concurrent", type=int, default=2, help="trials at once = slots (default 2)")
    parser.add_argument("--wandb", default="offline", choices=["offline", "disabled"],
                        help="W&B mode (default: offline)")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds one search may take (default 1200)")
    parser.add_argument("--cli", type=shlex.split, default=[str(CLI)],
                        help="the command to measure (default: the venv's polsess-tune), e.g. a patched entry point "
                             "to compare a fix: --cli 'python /tmp/patched_cli.py'")
    parser.add_argument("--keep", type=Path, help="keep the corpus, experiments and stdout logs in this folder")
    parser.add_argument("--no-reference", action="store_true", help="skip the bare import / ray.init figures")
    args = parser.parse_args()
    args.repeats = args.repeats or (1 if args.quick else 3)
    args.num_samples = args.num_samples or (4 if args.quick else 8)
    args.epochs = args.epochs or (2 if args.quick else 4)
    args.segment = args.segment or (1.0 if args.quick else 2.0)

    with tempfile.TemporaryDirectory(prefix="polsess-driver-bench-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        root = args.data_root
        if root is None:
            from polsess.synth import make_corpus

            start = time.perf_counter()
            root = make_corpus(work / "PolSESS_bench", train=200, val=20, test=0, sample_rate=8000, seconds=2.0)
            print(f"made 200/20 rows (8 kHz, 2 s) in {time.perf_counter() - start:.1f} s at {root}")
        print(f"code: {git_state()}")
        print(f"{args.repeats} search(es): {args.num_samples} trials, {args.max_concurrent} at once, 1 CPU each, "
              f"{args.epochs} epochs, segment {args.segment:g} s, W&B {args.wandb}; nproc {os.cpu_count()}\n")

        runs = []
        for i in range(args.repeats):
            load_before = os.getloadavg()[0]
            run = run_search(i, args, root, work)
            runs.append(run)
            print(f"search {i}: wall {run.wall:.1f} s, span {run.span:.1f} s, training share {run.share_span:.3f} "
                  f"(of wall {run.share_wall:.3f}), first step at {run.first_step:.1f} s, "
                  f"trials {min(run.trial_s):.0f}-{max(run.trial_s):.0f} s, epochs {run.epochs}; "
                  f"1-min load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after")
            for line in run.per_trial:
                print(f"  {line}")
            for note in run.notes:
                print(f"  note: {note}")
        ref = {} if args.no_reference else reference(root, args.repeats)
        if args.keep:
            print(f"\nkept in {work}")

    print(f"\nmedians over {len(runs)} search(es), each figure on its own (so parts need not add up to totals)")
    print("\nrun to first step, step by step:")
    for key in runs[0].first_chain:
        print(f"  {key:54}{med([r.first_chain[key] for r in runs]):7.1f} s")
    print("\ncommand wall time split:")
    split = [
        ("before Ray (interpreter, imports, dry checks)", "pre_ray"),
        ("Ray start-up (import ray, ray.init)", "ray_start"),
        ("Tune set-up (to first trial scheduled)", "tune_setup"),
        ("search (first scheduled -> last report)", "span"),
        ("tail (last report -> exit)", "tail"),
    ]
    for label, attr in split:
        print(f"  {label:48}{med([getattr(r, attr) for r in runs]):7.1f} s")
    to_shutdown = [r.tail_to_shutdown for r in runs if r.tail_to_shutdown is not None]
    if to_shutdown:
        print(f"    {'of which last report -> ray.shutdown() called':46}{med(to_shutdown):7.1f} s")
    slots = min(args.max_concurrent, os.cpu_count() or 1)
    print(f"\nslot time ({slots} slots x search span), summed over trials:")
    slot = med([r.span * slots for r in runs])
    for key in runs[0].parts:
        value = med([r.parts[key] for r in runs])
        print(f"  {key:48}{value:7.1f} s  {value / slot:6.1%}")
    trial_s = med([med(r.trial_s) for r in runs])
    print(f"  {'(median trial: scheduled -> last report)':48}{trial_s:7.1f} s")
    if ref:
        print("\nreference, fresh interpreter each:")
        for key, value in ref.items():
            print(f"  {key:48}{value:7.2f} s")
    if not args.quick and trial_s < MIN_TRIAL_S:
        print(f"\nwarning: trials ran {trial_s:.0f} s, under the {MIN_TRIAL_S:.0f} s asked for; raise --epochs")

    print()
    print(f"training share of slot time: {med([r.share_span for r in runs]):.3f} (target >= {SHARE_TARGET})")
    print(f"training share of command wall time x slots: {med([r.share_wall for r in runs]):.3f} (target none)")
    print(f"run to first step: {med([r.first_step for r in runs]):.1f} s (target <= {FIRST_STEP_TARGET_S:g} s)")
    print(f"command wall time: {med([r.wall for r in runs]):.1f} s (target none)")
    for label, attr in split:
        print(f"{label.split(' (')[0]}: {med([getattr(r, attr) for r in runs]):.1f} s (target none)")


if __name__ == "__main__":
    main()
