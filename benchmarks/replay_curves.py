"""The table the replay benchmark reads: real learning curves of a fixed design over the demo space.

``benchmarks/replay.py`` compares search engines on a simulated clock; what it simulates must come
from real trainings. This script trains a fixed design of ``search_spaces/demo.yaml``'s space on the
demo corpus: the base config (``configs/demo.yaml``, clamped into the space where it lies outside)
plus the first ``--configs`` points of a scrambled Sobol sequence over the space's unit cube (each
parameter on its own scale: log for a log range; :meth:`Param.from_unit`), every one to the full
epochs with each of ``--seeds`` training seeds.

It runs as a polsess-tune search itself (``method: random`` whose trials are exactly the design,
given as ``tune.points_to_evaluate``; FIFO, so no trial is stopped; W&B off), so it is resumable
after a kill like any search: run the same command again and it resumes. It can also run in pieces
across machines and days: the design is deterministic, the committed table's rows are kept, and a
new piece trains only the (config, seed) pairs the table lacks (a search ``replay-curves-<n>`` in
``--work``). At its end it writes the table, ``benchmarks/data/replay_curves.json.gz``: one row per
(config, seed) with the per-epoch val SI-SDR and seconds, and each piece's provenance (commit,
corpus, machine, load, the command that remakes it).

    python benchmarks/replay_curves.py                 # 96 + 1 configs × 2 seeds (~2 h on 2 cores)
    python benchmarks/replay_curves.py --collect-only  # write the table from what has finished
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import yaml  # noqa: E402

from polsess.config import flatten, load_config, to_flat  # noqa: E402
from tune_app.experiment.layout import RESULT_FILE, trial_dirs  # noqa: E402
from tune_app.space.sweep import load_search  # noqa: E402

SPACE = REPO / "search_spaces" / "demo.yaml"
WORK = Path.home() / ".cache" / "polsess-tune" / "replay-curves"  # outside the tree: it outlives a checkout
TABLE = REPO / "benchmarks" / "data" / "replay_curves.json.gz"
NAME = "replay-curves"  # the first piece's search; later pieces are replay-curves-2, -3, …
METRIC = "val_sisdr"
SEED_PATH = "training.seed"


def design(n_configs: int, sobol_seed: int = 0) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The base config's point (clamped into the space) and ``n_configs`` scrambled-Sobol points,
    each ``{path: value}`` over the demo space's searched parameters."""
    from scipy.stats import qmc

    spec = load_search(SPACE)
    params = list(spec.space.values())
    base_flat = to_flat(load_config(spec.base_config, spec.fixed))
    base = {p.path: (base_flat[p.path] if p.contains(base_flat[p.path])
                     else p.from_unit(0.0 if p.kind != "categorical" and base_flat[p.path] < p.low else 1.0))
            for p in params}
    with warnings.catch_warnings():  # n need not be a power of 2 for a first-n design
        warnings.simplefilter("ignore", UserWarning)
        unit = qmc.Sobol(d=len(params), scramble=True, seed=sobol_seed).random(n_configs)
    points = [{p.path: p.from_unit(u) for p, u in zip(params, row, strict=True)} for row in unit]
    return [base, *points], {p.path: p.as_dict() for p in params}


def row_key(config: dict[str, Any], seed: int) -> str:
    return json.dumps([config, seed], sort_keys=True)


def read_table(path: Path = TABLE) -> dict[str, Any] | None:
    if not path.exists():
        return None
    with gzip.open(path, "rt") as f:
        return json.load(f)


def sweep_file(trials: list[dict[str, Any]], concurrency: int, work: Path) -> Path:
    """The demo sweep whose trials are ``trials`` (each a design point with its seed), FIFO."""
    raw = yaml.safe_load(SPACE.read_text())
    raw["method"] = "random"
    raw.pop("early_terminate", None)
    raw.pop("run_cap", None)
    raw["parameters"]["config"] = {"value": str(REPO / "configs" / "demo.yaml")}
    raw["parameters"]["seed"] = {"values": sorted({t[SEED_PATH] for t in trials})}
    raw["tune"] = {**raw.get("tune", {}), "scheduler": "fifo", "num_samples": len(trials), "prior": "none",
                   "max_concurrent_trials": concurrency, "points_to_evaluate": trials}
    work.mkdir(parents=True, exist_ok=True)
    out = work / "space.yaml"
    out.write_text(yaml.safe_dump(raw, sort_keys=False))
    return out


def piece_name(work: Path) -> str:
    """The search to run or resume: the newest unfinished piece, else a new one."""
    storage = work / "runs"
    pieces = sorted(p.name for p in storage.glob(f"{NAME}*") if p.is_dir()) if storage.exists() else []
    unfinished = [p for p in pieces if not (storage / p / "results.csv").exists()]
    if unfinished:
        return unfinished[-1]
    return NAME if not pieces else f"{NAME}-{len(pieces) + 1}"


def run_search(space: Path, work: Path, name: str) -> int:
    """Start the piece's search, or resume it where an earlier run of this script left it."""
    exe = [sys.executable, "-m", "tune_app.cli"]
    storage = work / "runs"
    if (storage / name).exists():
        cmd = [*exe, "resume", str(storage / name)]
    else:
        cmd = [*exe, "run", "--space", str(space), "--storage", str(storage), "--name", name, "--wandb", "disabled"]
    print("$", " ".join(cmd), flush=True)
    return subprocess.run(cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}).returncode


def trained_rows(params: dict[str, Any], folder: Path) -> list[dict[str, Any]]:
    """One row per trial of a piece that reported at least one epoch."""
    rows = []
    for trial in trial_dirs(folder):
        config = flatten(json.loads((trial / "params.json").read_text()))
        reports = [json.loads(line) for line in (trial / RESULT_FILE).read_text().splitlines() if line.strip()]
        by_epoch = {int(r["training_iteration"]): r for r in reports if METRIC in r}
        if not by_epoch:
            continue
        epochs = sorted(by_epoch)
        rows.append({
            "config": {p: config[p] for p in params},
            "seed": config[SEED_PATH],
            METRIC: [by_epoch[e][METRIC] for e in epochs],
            "seconds": [by_epoch[e].get("time_training_s", by_epoch[e]["time_this_iter_s"]) for e in epochs],
        })
    return rows


def collect(params: dict[str, Any], work: Path, n_configs: int, seeds: list[int], load: list[float],
            command: str) -> int:
    """Merge the committed table with every piece's trials (the longest curve of a pair wins); write it."""
    old = read_table() or {"rows": [], "provenance": []}
    merged = {row_key(r["config"], r["seed"]): r for r in old["rows"]}
    pieces = {p.get("piece", str(i)): p for i, p in enumerate(
        old["provenance"] if isinstance(old["provenance"], list) else [old["provenance"]])}
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    for folder in sorted((work / "runs").glob(f"{NAME}*")):
        rows = trained_rows(params, folder)
        for row in rows:
            key = row_key(row["config"], row["seed"])
            if len(row[METRIC]) > len(merged.get(key, {METRIC: []})[METRIC]):
                merged[key] = row
        # The search's first state file dates it: another tree on a machine of the same name starts
        # its own replay-curves again, and must not take the earlier piece's place in the provenance.
        states = sorted(folder.glob("experiment_state-*.json"))
        piece = f"{platform.node()}:{folder.name}" + (f":{states[0].stem.split('-', 1)[1]}" if states else "")
        pieces[piece] = {
            "piece": piece, "runs": len(rows), "commit": pieces.get(piece, {}).get("commit", commit),
            "corpus": json.loads((work / "corpus.json").read_text()),
            "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs",
            "load_at_start": pieces.get(piece, {}).get("load_at_start", load), "load_at_end": list(os.getloadavg()),
            "written": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "command": command,
            "space": str(SPACE.relative_to(REPO)), "base_config": "configs/demo.yaml",
        }
    table = {"version": 1, "metric": METRIC, "params": params, "seeds": seeds, "configs": n_configs + 1,
             "rows": list(merged.values()), "provenance": list(pieces.values())}
    TABLE.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(TABLE, "wt") as f:
        json.dump(table, f, separators=(",", ":"))
    return len(merged)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--configs", type=int, default=96, help="Sobol points beside the base config (default 96)")
    ap.add_argument("--seeds", default="1,2", help="training seeds, comma-separated (default 1,2)")
    ap.add_argument("--concurrency", type=int, default=2, help="trainings at once (default 2, one CPU each)")
    ap.add_argument("--work", type=Path, default=WORK, help=f"where the pieces' searches live (default {WORK})")
    ap.add_argument("--collect-only", action="store_true", help="write the table from what has finished")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    load = list(os.getloadavg())
    points, params = design(args.configs)
    from polsess.synth import ensure_demo_corpus

    root = ensure_demo_corpus()
    args.work.mkdir(parents=True, exist_ok=True)
    (args.work / "corpus.json").write_text(json.dumps({"folder": root.parent.name, "kind": "built-in demo corpus"}))
    have = {row_key(r["config"], r["seed"]) for r in (read_table() or {"rows": []})["rows"]
            if len(r[METRIC]) >= int(load_config(REPO / "configs" / "demo.yaml").training.num_epochs)}
    missing = [{**point, SEED_PATH: seed} for point in points for seed in seeds if row_key(point, seed) not in have]
    rc = 0
    if missing and not args.collect_only:
        print(f"{len(missing)} of {len(points) * len(seeds)} trainings to go", flush=True)
        name = piece_name(args.work)
        rc = run_search(sweep_file(missing, args.concurrency, args.work), args.work, name)
    command = f"python benchmarks/replay_curves.py --configs {args.configs} --seeds {args.seeds}"
    n = collect(params, args.work, args.configs, seeds, load, command)
    print(f"rows written: {n} of {len(points) * len(seeds)} (target == {len(points) * len(seeds)}) → "
          f"{TABLE.relative_to(REPO)} ({TABLE.stat().st_size / 1e3:.0f} kB)")
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
