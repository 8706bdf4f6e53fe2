"""The replay benchmark: search engines compared on real learning curves, many seeds, with intervals.

Three live seeds cannot tell 0.3 dB from noise (benchmarks/vs_wandb_sweeps.py). Here each engine's
real decision code runs hundreds of searches on a simulated clock (benchmarks/replay_sim.py) whose
curves come from a surrogate fitted on real trainings of the demo space (``replay_curves.py``'s
table). Arms, on the demo sweep (2 workers, budgets of 5 and 20 full trainings in trial-epochs):

- ``wandb``: W&B's sweep engine (bayes + hyperband), ``wandb+base``: the same seeded with the base
  config as its first run (the users' workaround, wandb#1809);
- ``random``: random + polsess-tune's ASHA; ``tpe``: polsess-tune without a prior;
- ``prior``: polsess-tune as it ships, the base config as the prior (``standing`` policy);
  ``prior-pibo`` / ``prior-priorband``: the other policies (tune_app/space/prior.py);
- ``wrong`` / ``wrong-pibo``: the same with a deliberately wrong prior (the base config moved to the
  corner of the unit cube nearest the worst decile of configs); ``good`` / ``good-pibo``: centred on
  the table's best config (an oracle's prior: what a well-tuned baseline would give, for scale only).

Figures, each with a 90 % bootstrap interval over seeds (the curves are the median over seeds of
the incumbent's true score against trial-epochs spent):
(a) trial-epochs to reach W&B's median final best, as a ratio of W&B's own (target ≤ 1/3, upper
bound ≤ 1/2); (b) best at equal budget minus W&B's (mean, dB; target ≥ +0.1, lower bound > 0);
(c) (a) with the wrong prior (target ≤ 1.5); (d) the surrogate's held-out Spearman (target ≥ 0.7).

    python benchmarks/replay.py            # 30 seeds, budgets 5 and 20 (minutes)
    python benchmarks/replay.py --quick    # 10 seeds, budget 5
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import yaml  # noqa: E402
from replay_arms import TuneArm, WandbArm, base_flat  # noqa: E402
from replay_sim import TABLE, Surrogate, Table, Trace, held_out_spearman, simulate  # noqa: E402

from tune_app.space.prior import DEFAULT_POLICY, PriorSetting, resolve_prior  # noqa: E402
from tune_app.space.sweep import load_search  # noqa: E402

SPACE = HERE.parent / "search_spaces" / "demo.yaml"
CACHE = HERE / ".cache" / "replay"  # W&B's traces per table, seed and budget
ARMS = ("wandb", "wandb+base", "random", "tpe", "prior", "prior-pibo", "prior-priorband", "wrong", "wrong-pibo",
        "good", "good-pibo")
BOOTSTRAP = 2000


def first_configs(table: Table, n: int) -> Table:
    """The table's runs of the first ``n`` configs of replay_curves.py's design (base config first)."""
    from replay_curves import design, row_key

    points, _ = design(max(0, n - 1))
    keep = {row_key(p, s) for p in points for s in {r["seed"] for r in table.rows}}
    return Table(table.params, [r for r in table.rows if row_key(r["config"], r["seed"]) in keep], table.provenance)


def wrong_base(table: Table, surrogate: Surrogate, flat: dict[str, Any]) -> tuple[dict[str, Any], float]:
    """The base config moved to the cube corner nearest the worst decile of the table's configs."""
    configs = [cfg for cfg, _ in table.by_config()]
    finals = np.array([surrogate.final(c) for c in configs])
    worst = [c for c, f in zip(configs, finals, strict=True) if f <= np.quantile(finals, 0.1)]
    centre = np.mean([table.unit(c) for c in worst], axis=0)
    corner = {path: p.from_unit(round(float(u))) for (path, p), u in zip(table.params.items(), centre, strict=True)}
    return {**flat, **corner}, surrogate.final(corner)


def make_arm(name: str, seed: int, ctx: dict[str, Any]) -> Any:
    spec, trials = ctx["spec"], ctx["trials"]
    if name.startswith("wandb"):
        return WandbArm(ctx["sweep"], spec, seed, base=ctx["base_point"] if name == "wandb+base" else None)
    if name in ("random", "tpe"):
        arm_spec = ctx["random_spec"] if name == "random" else spec
        return TuneArm(arm_spec, seed, trials)
    flat = {"wrong": ctx["wrong_flat"], "good": ctx["good_flat"]}.get(name.split("-")[0], ctx["flat"])
    policy = name.split("-")[1] if "-" in name else DEFAULT_POLICY
    prior = resolve_prior(spec.space, PriorSetting("base", 0.25, policy), flat)
    return TuneArm(spec, seed, trials, prior=prior)


def interval(values: list[float], stat, rng: np.random.Generator) -> tuple[float, float, float]:
    """``stat`` of ``values`` and its 90 % bootstrap interval."""
    arr = np.array(values)
    boots = [stat(rng.choice(arr, size=len(arr))) for _ in range(BOOTSTRAP)]
    return stat(arr), float(np.quantile(boots, 0.05)), float(np.quantile(boots, 0.95))


def epochs_to(curves: np.ndarray, target: float) -> float:
    """First trial-epoch count at which the median-over-seeds incumbent curve reaches ``target``."""
    median = np.median(curves, axis=0)
    hit = np.nonzero(median >= target - 1e-9)[0]
    return float(hit[0] + 1) if len(hit) else math.inf


def ratio_interval(arm: np.ndarray, ref: np.ndarray, rng: np.random.Generator) -> tuple[float, float, float]:
    """Trial-epochs for the arm's median curve to reach W&B's median final best, over W&B's own (its
    median curve reaches it by the end, by construction), with a 90 % bootstrap interval over seeds."""

    def ratio(a: np.ndarray, r: np.ndarray) -> float:
        target = float(np.median(r[:, -1]))
        mine, theirs = epochs_to(a, target), epochs_to(r, target)
        return math.inf if math.isinf(mine) else mine / theirs

    boots = [ratio(arm[rng.integers(0, len(arm), len(arm))], ref[rng.integers(0, len(ref), len(ref))])
             for _ in range(BOOTSTRAP)]
    # inverted_cdf: no interpolation, so a bound among searches that never reach the target is inf, not nan
    return ratio(arm, ref), float(np.quantile(boots, 0.05, method="inverted_cdf")), \
        float(np.quantile(boots, 0.95, method="inverted_cdf"))


def diff_interval(arm: list[float], ref: list[float], rng: np.random.Generator) -> tuple[float, float, float]:
    a, r = np.array(arm), np.array(ref)
    boots = [float(rng.choice(a, len(a)).mean() - rng.choice(r, len(r)).mean()) for _ in range(BOOTSTRAP)]
    return float(a.mean() - r.mean()), float(np.quantile(boots, 0.05)), float(np.quantile(boots, 0.95))


def fmt(v: float) -> str:
    return "inf" if math.isinf(v) else f"{v:.2f}"


CTX: dict[str, Any] = {}  # set before the pool forks: every worker process reads it


def _one(job: tuple[str, int, int]) -> tuple[str, int, Trace]:
    name, seed, budget = job
    return name, seed, simulate(make_arm(name, seed, CTX), CTX["surrogate"], budget, CTX["workers"], seed,
                                CTX["max_t"])


def run_budget(n_full: int, seeds: list[int], arms: list[str], ctx: dict[str, Any],
               processes: int) -> dict[str, list[Trace]]:
    """Every arm's searches at one budget, in a pool of processes; W&B's (deterministic, slow: its
    bayes fits a GP per proposal) come from the cache when this table, seed and budget ran before."""
    budget = n_full * ctx["max_t"]
    ctx["trials"] = max(1, round(budget / ctx["spec"].scheduler.epochs_per_trial()))
    CTX.clear()
    CTX.update(ctx)
    traces: dict[tuple[str, int], Trace] = {}
    jobs = []
    for name in arms:
        for seed in seeds:
            cached = _cache_file(ctx, name, seed, budget)
            if name.startswith("wandb") and cached.exists():
                traces[(name, seed)] = Trace(**json.loads(cached.read_text()))
            else:
                jobs.append((name, seed, budget))
    start = time.perf_counter()
    with mp.get_context("fork").Pool(processes) as pool:
        for name, seed, trace in pool.imap_unordered(_one, jobs):
            traces[(name, seed)] = trace
            if name.startswith("wandb"):
                _cache_file(ctx, name, seed, budget).write_text(json.dumps(dataclasses.asdict(trace)))
    print(f"  {len(jobs)} searches in {time.perf_counter() - start:.0f} s ({len(seeds) * len(arms) - len(jobs)} "
          f"of W&B's from {CACHE.relative_to(HERE.parent)})", flush=True)
    out = {name: [traces[(name, s)] for s in seeds] for name in arms}
    for name, ts in out.items():
        print(f"  {name:<11} median best {statistics.median(t.final for t in ts):.3f} dB; median trials "
              f"{statistics.median(t.trials for t in ts):.0f}")
    return out


def _cache_file(ctx: dict[str, Any], name: str, seed: int, budget: int) -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    return CACHE / f"{ctx['table_sha']}-{name}-s{seed}-b{budget}-w{ctx['workers']}.json"


def figures(n_full: int, traces: dict[str, list[Trace]], rng: np.random.Generator) -> list[str]:
    wb = np.array([t.curve for t in traces["wandb"]])
    lines = [f"[budget {n_full} trainings] W&B's median final best: {np.median(wb[:, -1]):.3f} dB, reached by its "
             f"median curve at trial-epoch {fmt(epochs_to(wb, float(np.median(wb[:, -1]))))}"]
    for name in traces:
        if name == "wandb":
            continue
        curves = np.array([t.curve for t in traces[name]])
        r = ratio_interval(curves, wb, rng)
        d = diff_interval(list(curves[:, -1]), list(wb[:, -1]), rng)
        wrong = name.startswith("wrong")
        tag = "(c) " if wrong else "(a) " if name.startswith("prior") else ""
        r_target = "target <= 1.5" if wrong else "target <= 0.33, upper <= 0.5"
        lines.append(f"{tag}trial-epochs to W&B's median best, {name} / wandb, budget {n_full}: {fmt(r[0])} "
                     f"[{fmt(r[1])}, {fmt(r[2])}] ({r_target})")
        tag = "(b) " if name.startswith("prior") else ""
        lines.append(f"{tag}best at equal budget, {name} - wandb, budget {n_full}: {d[0]:+.3f} dB "
                     f"[{d[1]:+.3f}, {d[2]:+.3f}] (target >= +0.1, lower > 0)")
        lines.append(_observed_line(name, n_full, traces, rng))
    return lines


def _observed_line(name: str, n_full: int, traces: dict[str, list[Trace]], rng: np.random.Generator) -> str:
    """The figure a live check prints: the best noisy epoch a search saw, not its incumbent's true mean,
    so that the replay can be held against ``vs_wandb_sweeps.py`` like for like."""
    o = diff_interval([t.best_seen for t in traces[name]], [t.best_seen for t in traces["wandb"]], rng)
    return (f"best epoch seen (a live search's figure), {name} - wandb, budget {n_full}: {o[0]:+.3f} dB "
            f"[{o[1]:+.3f}, {o[2]:+.3f}]")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="10 seeds, budget 5 only")
    ap.add_argument("--seeds", type=int, help="searches per arm (default 30; 10 with --quick)")
    ap.add_argument("--budgets", default=None, help="budgets in full trainings, comma-separated (default 5,20)")
    ap.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated, of {', '.join(ARMS)}")
    ap.add_argument("--workers", type=int, default=2, help="trials at once (default 2)")
    ap.add_argument("--table", type=Path, default=TABLE, help="the curves table (replay_curves.py)")
    ap.add_argument("--configs", type=int, help="use only the table's first N design configs (default: all)")
    ap.add_argument("--processes", type=int, default=os.cpu_count(), help="searches at once (default: CPUs)")
    args = ap.parse_args()
    seeds = list(range(args.seeds or (10 if args.quick else 30)))
    budgets = [int(b) for b in (args.budgets or ("5" if args.quick else "5,20")).split(",")]
    arms = [a for a in args.arms.split(",") if a]
    if "wandb" not in arms:
        arms.insert(0, "wandb")
    started = time.perf_counter()
    table = Table.load(args.table)
    if args.configs:
        table = first_configs(table, args.configs)
    groups = table.by_config()
    print(f"table: {len(table.rows)} runs, {len(groups)} configs with full curves, {table.epochs} epochs; "
          f"made in {len(table.provenance)} piece(s): "
          + "; ".join(f"{p.get('runs', '?')} runs at {p.get('commit', '?')[:9]}, load "
                      f"{[round(x, 1) for x in p.get('load_at_start') or []]}"
                      for p in table.provenance) + "; "
          f"this run's load {[round(x, 1) for x in os.getloadavg()]}")
    rho, n_out = held_out_spearman(table)
    surrogate = Surrogate.fit(table)
    print(f"surrogate: seed noise sigma_run {surrogate.sigma_run:.3f} dB, sigma_epoch "
          f"{np.round(surrogate.sigma_eps, 3).tolist()} dB")
    spec = load_search(SPACE)
    random_spec = load_search(SPACE)
    random_spec.method = "random"
    flat = base_flat(spec)
    prior = resolve_prior(spec.space, PriorSetting(), flat)
    wrong_flat, wrong_final = wrong_base(table, surrogate, flat)
    print(f"base config's mean final: {surrogate.final(prior.base_point):.3f} dB; wrong prior "
          f"{ {p: wrong_flat[p] for p in spec.space} } at {wrong_final:.3f} dB")
    best_cfg = max((cfg for cfg, _ in groups), key=surrogate.final)
    good_flat = {**flat, **best_cfg}
    print(f"good prior (the table's best config) {best_cfg} at {surrogate.final(best_cfg):.3f} dB")
    sha = hashlib.sha256(json.dumps(table.rows, sort_keys=True).encode()).hexdigest()[:12]
    ctx = {"spec": spec, "random_spec": random_spec, "flat": flat, "wrong_flat": wrong_flat, "good_flat": good_flat,
           "table_sha": sha, "surrogate": surrogate,
           "sweep": yaml.safe_load(SPACE.read_text()), "base_point": prior.base_point, "workers": args.workers,
           "max_t": table.epochs}
    rng = np.random.default_rng(0)
    lines = []
    for n_full in budgets:
        print(f"budget {n_full} full trainings ({n_full * table.epochs} trial-epochs), {len(seeds)} seeds:")
        lines += figures(n_full, run_budget(n_full, seeds, arms, ctx, args.processes), rng)
    print()
    print("\n".join(lines))
    print(f"(d) surrogate held-out Spearman of the final epoch ({n_out} configs): {rho:.2f} (target >= 0.7)")
    print(f"wall time: {(time.perf_counter() - started) / 60:.1f} min (target <= 10 with --quick)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
