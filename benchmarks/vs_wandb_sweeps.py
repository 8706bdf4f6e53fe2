"""polsess-tune against W&B's own sweep engine, side by side: the best model per trial-epoch spent.

The users tune today with ``wandb sweep`` + ``wandb agent``: ``method: bayes``, ``early_terminate:
hyperband``. Its algorithms are the open-source package ``sweeps`` (benchmarks/wandb_engine.py drives
them with no W&B server). For each seed, on the same sweep file, corpus, trainer (``polsess.trainer``),
2 trials at a time with 1 CPU each, and the same budget B of trial-epochs (``--budget``; default four
full trainings' worth, 4 × the epochs per trial):

1. polsess-tune: ``polsess-tune run --space SPACE --seed S --budget-epochs B`` as a user runs it
   (Optuna TPE + ASHA, trials proposed until B trial-epochs are trained).
2. W&B: 2 agents; each asks ``sweeps.next_run`` for a run, trains it epoch by epoch, reports every
   epoch; after every epoch ``sweeps.stop_runs`` (W&B's hyperband) stops runs; it ends when B
   trial-epochs are spent.

Printed per seed and as medians: best-so-far val SI-SDR against trial-epochs for both (at 25/50/75/100 %
of B), the trial-epochs polsess-tune needed to reach W&B's final best (ratio to B), and both bests at B.

    python benchmarks/vs_wandb_sweeps.py --quick        # 3 seeds, 4-epoch trials (~12 min on 2 cores)
    python benchmarks/vs_wandb_sweeps.py --quick --sampler gp   # another sampler; W&B's side from the cache
    python benchmarks/vs_wandb_sweeps.py --prior none          # polsess-tune without its prior (on by default)
    python benchmarks/vs_wandb_sweeps.py                # 5 seeds, the demo sweep as it ships
    python benchmarks/vs_wandb_sweeps.py --space search_spaces/convtasnet_training.yaml --data-root /data/PolSESS
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)

import yaml  # noqa: E402
from _run import run_logged  # noqa: E402
from wandb_engine import Engine, load_sweeps  # noqa: E402

CACHE = REPO / "benchmarks" / ".cache"  # W&B's side per seed and budget, to compare samplers without retraining it
RATIO_TARGET = 1 / 3 + 0.005  # "≤ 1/3 of the trial-epochs", printed as 0.34
DELTA_TARGET = 0.0
METRIC = "val_sisdr"


# --------------------------------------------------------------------------- one W&B agent's trainer


def _agent(conn: Any) -> None:
    """One agent slot, in a process of its own: ``("start", flat config)`` then ``("epoch",)`` until done."""
    import torch

    from polsess.config import config_from_flat
    from polsess.trainer import Trainer

    torch.set_num_threads(1)  # what a 1-CPU trial gets (polsess.device.cpu_share)
    trainer = None
    while True:
        msg = conn.recv()
        if msg[0] == "start":
            cfg = config_from_flat(msg[1])
            cfg.data.num_workers = 0
            trainer = Trainer(cfg, device="cpu", log=lambda _line: None)
            conn.send("started")
        elif msg[0] == "epoch":
            metrics = trainer.train_epoch()
            conn.send((metrics, trainer.done))
        else:
            return


def wandb_side(sweep: dict[str, Any], base_flat: dict[str, Any], seed: int, budget: int,
               concurrency: int) -> list[tuple[int, float]]:
    """(trial-epochs spent, val SI-SDR) of every epoch W&B's engine ran, in the order they ended."""
    from polsess.config import resolve_name

    engine = Engine(sweep, seed)
    ctx = mp.get_context("spawn")
    slots = []
    for _ in range(concurrency):
        mine, theirs = ctx.Pipe()
        proc = ctx.Process(target=_agent, args=(theirs,), daemon=True)
        proc.start()
        slots.append({"conn": mine, "proc": proc, "run": None})
    spent, events, started = 0, [], 0
    try:
        while spent < budget:
            for slot in slots:
                if slot["run"] is None:
                    started += 1
                    name = f"wb{started}"
                    params = engine.propose(name)
                    flat = dict(base_flat)
                    flat.update({resolve_name(k): v for k, v in params.items() if k != "config"})
                    slot["conn"].send(("start", flat))
                    slot["conn"].recv()
                    slot["run"] = name
            running = [s for s in slots if s["run"] is not None][: max(1, budget - spent)]
            for slot in running:
                slot["conn"].send(("epoch",))
            for slot in running:  # both train at once; collect in slot order
                metrics, done = slot["conn"].recv()
                spent += 1
                events.append((spent, float(metrics[METRIC])))
                engine.report(slot["run"], {METRIC: float(metrics[METRIC]), "epoch": metrics["epoch"]})
                if done:
                    engine.finish(slot["run"])
                    slot["run"] = None
            stop = set(engine.to_stop())
            for slot in slots:
                if slot["run"] in stop:
                    engine.finish(slot["run"], stopped=True)
                    slot["run"] = None
    finally:
        for slot in slots:
            slot["conn"].send(("quit",))
            slot["proc"].join(timeout=30)
    return events


# --------------------------------------------------------------------------- polsess-tune


def polsess_side(space: Path, data_root: str, seed: int, work: Path, sets: list[str],
                 budget: int) -> list[tuple[int, float]]:
    from tune_app.experiment.results import load_experiment

    name = f"pt-{seed}"
    cmd = [sys.executable, "-m", "tune_app.cli", "run", "--space", str(space), "--data-root", data_root,
           "--seed", str(seed), "--storage", str(work), "--name", name, "--wandb", "disabled",
           "--budget-epochs", str(budget),
           *[x for s in sets for x in ("--set", s)]]
    rc, wall = run_logged(cmd, work / f"{name}.log")
    if rc != 0:
        print((work / f"{name}.log").read_text()[-3000:])
        raise RuntimeError(f"polsess-tune run exited {rc}")
    rows = sorted((r["timestamp"], r["epoch"], r[METRIC]) for t in load_experiment(work / name).trials
                  for r in t.history if isinstance(r.get(METRIC), (int, float)))
    print(f"  polsess-tune: {len(rows)} trial-epochs in {wall:.0f} s")
    return [(i + 1, float(v)) for i, (_, _, v) in enumerate(rows)]


def sweep_copy(space: Path, base_config: Path | None, folder: Path, sampler: str | None, prior: str | None) -> Path:
    """A copy of the sweep file with ``tune.sampler`` / ``tune.prior`` set (its base config made absolute)."""
    raw = yaml.safe_load(space.read_text())
    tune = raw.setdefault("tune", {})
    if sampler:
        tune["sampler"] = sampler
    if prior:
        tune["prior"] = prior
    if base_config is not None:
        raw["parameters"]["config"] = {"value": str(base_config)}
    out = folder / f"{space.stem}-{sampler or 'sampler'}-{prior or 'prior'}.yaml"
    out.write_text(yaml.safe_dump(raw, sort_keys=False))
    return out


# --------------------------------------------------------------------------- figures


def best_by(events: list[tuple[int, float]], spent: int) -> float:
    return max((v for e, v in events if e <= spent), default=-math.inf)


def epochs_to_reach(events: list[tuple[int, float]], target: float) -> float:
    best = -math.inf
    for e, v in events:
        best = max(best, v)
        if best >= target:
            return e
    return math.inf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 seeds, 4-epoch trials")
    parser.add_argument("--seeds", help="comma-separated (default 0..4; --quick 0,1,2)")
    parser.add_argument("--space", type=Path, default=REPO / "search_spaces/demo.yaml")
    parser.add_argument("--data-root", help="a PolSESS corpus (default: the demo corpus `run` uses)")
    parser.add_argument("--concurrency", type=int, default=2, help="trials at once on both sides (default 2)")
    parser.add_argument("--budget", type=int, help="trial-epochs each side spends (default 4 x epochs per trial)")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="config overrides for both sides")
    parser.add_argument("--sampler", choices=["tpe", "gp", "random"],
                        help="polsess-tune's sampler (tune.sampler; default: the sweep file's, else tpe)")
    parser.add_argument("--prior", choices=["base", "none"],
                        help="polsess-tune's prior (tune.prior; default: the sweep file's, else base: the base "
                             "config as the prior, trial 0 the base config)")
    parser.add_argument("--no-cache", action="store_true",
                        help=f"train W&B's side again even when {CACHE.relative_to(REPO)} holds its epochs")
    args = parser.parse_args()
    seeds = [int(s) for s in (args.seeds or ("0,1,2" if args.quick else "0,1,2,3,4")).split(",")]
    sets = list(args.sets) + (["training.num_epochs=4"] if args.quick else [])
    load_sweeps()  # installs it into benchmarks/.sweeps-env on first use

    from polsess.config import load_config, parse_value, resolve_name, to_flat
    from tune_app.commands.options import resolve_data_root
    from tune_app.space import load_search

    data_root = args.data_root or resolve_data_root(None, log=lambda _line: None)
    sweep = yaml.safe_load(args.space.read_text())
    spec = load_search(args.space, cwd=REPO)
    overrides = {resolve_name(k): parse_value(v) for k, v in (s.split("=", 1) for s in sets)}
    base_flat = to_flat(load_config(spec.base_config, {**spec.fixed, **overrides, "data.data_root": data_root}))
    budget = args.budget or 4 * int(base_flat["training.num_epochs"])
    print(f"{args.space.name} on {data_root}; seeds {seeds}; {args.concurrency} trials at once, 1 CPU each; "
          f"{base_flat['training.num_epochs']} epochs per trial; budget {budget} trial-epochs; nproc {os.cpu_count()}, "
          f"load {os.getloadavg()[0]:.1f}; {time.strftime('%Y-%m-%d %H:%M')}\n")
    rows = []
    with tempfile.TemporaryDirectory(prefix="polsess-vs-wandb-") as tmp:
        space = args.space
        if args.sampler or args.prior:
            space = sweep_copy(args.space, spec.base_config, Path(tmp), args.sampler, args.prior)
            print(f"polsess-tune samples with {args.sampler or 'the file sampler'}, prior {args.prior or 'base'}\n")
        for seed in seeds:
            start = time.perf_counter()
            print(f"seed {seed}:", flush=True)
            pt = polsess_side(space, data_root, seed, Path(tmp), sets, budget)
            key = json.dumps([sweep, base_flat, seed, budget, args.concurrency], sort_keys=True, default=str)
            cached = CACHE / f"wandb-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"
            if cached.exists() and not args.no_cache:  # W&B's side is deterministic: lockstep slots, seeded
                wb = [tuple(e) for e in json.loads(cached.read_text())]
                print(f"  W&B sweeps: its {len(wb)} trial-epochs of an earlier run of this script ({cached.name})")
            else:
                wb = wandb_side(sweep, base_flat, seed, budget, args.concurrency)
                print(f"  W&B sweeps: {len(wb)} trial-epochs")
                CACHE.mkdir(exist_ok=True)
                cached.write_text(json.dumps(wb))
            reach = epochs_to_reach(pt, best_by(wb, budget))
            row = {"seed": seed, "budget": budget, "pt": best_by(pt, budget), "wb": best_by(wb, budget),
                   "reach": reach, "ratio": reach / budget,
                   "curve": [(f, best_by(pt, round(f * budget)), best_by(wb, round(f * budget)))
                             for f in (0.25, 0.5, 0.75, 1.0)]}
            rows.append(row)
            print(f"  seed done in {time.perf_counter() - start:.0f} s")
            print("  best-so-far val SI-SDR (dB) at 25/50/75/100 % of the budget: polsess-tune "
                  + " ".join(f"{p:.2f}" for _, p, _ in row["curve"]) + " | W&B "
                  + " ".join(f"{w:.2f}" for _, _, w in row["curve"]), flush=True)
    print(f"\n{'seed':>4} {'budget':>7} {'polsess-tune':>13} {'W&B':>7} {'delta':>7} {'reach':>6} {'ratio':>6}")
    for r in rows:
        print(f"{r['seed']:>4} {r['budget']:>7} {r['pt']:>13.2f} {r['wb']:>7.2f} {r['pt'] - r['wb']:>+7.2f} "
              f"{r['reach']:>6} {r['ratio']:>6.2f}")
    ratio = statistics.median(r["ratio"] for r in rows)
    delta = statistics.median(r["pt"] - r["wb"] for r in rows)
    print(f"\ntrial-epochs to reach W&B's best, ratio (median of {len(rows)} seeds): {ratio:.2f} "
          f"(target <= {RATIO_TARGET:.2f})")
    print(f"best val SI-SDR at equal budget minus W&B's, dB (median of {len(rows)} seeds): {delta:+.2f} "
          f"(target >= {DELTA_TARGET:g})")


if __name__ == "__main__":
    main()
