"""``early_terminate:`` and the ``tune:`` scheduler keys → :class:`SchedulerSpec` (ASHA / median / FIFO).

W&B's hyperband becomes Ray's ASHA: ``min_iter`` is the grace period, ``eta`` the reduction factor,
``max_t`` the epochs a trial trains; one iteration is one epoch.
"""

from __future__ import annotations

import math
from typing import Any

from .context import Ctx
from .param import fmt, is_number
from .spec import SchedulerSpec

SCHEDULERS = ("asha", "median", "fifo")

def read_scheduler(ctx: Ctx, block: Any, tune: dict[str, Any], max_t: int) -> SchedulerSpec:
    """early_terminate → ASHA (hyperband) / median / FIFO, then the tune: overrides."""
    sched = SchedulerSpec()
    if block is not None:
        if not isinstance(block, dict) or "type" not in block:
            ctx.fail("early_terminate", "expected {type: hyperband, min_iter: N, eta: 3}")
        et_type = block["type"]
        if et_type == "hyperband":
            _hyperband(ctx, block, sched)
        elif et_type == "median_stopping":
            for k in block:
                if k not in ("type", "min_iter"):
                    ctx.fail(f"early_terminate.{k}", "unknown key; median_stopping takes min_iter")
            sched.type = "median"
            sched.grace_period = (ctx.pos_int("early_terminate.min_iter", block["min_iter"])
                                  if "min_iter" in block else 1)
        else:
            ctx.fail("early_terminate.type", f"unknown type {et_type!r}; use hyperband or median_stopping")

    if "scheduler" in tune and tune["scheduler"] != sched.type:
        sched.notes.append(f"tune.scheduler: {tune['scheduler']} replaces {sched.type}")
        sched.type = tune["scheduler"]
        if sched.type == "fifo":
            sched.grace_period = sched.reduction_factor = None
        elif sched.type == "asha":
            sched.grace_period = sched.grace_period or 1
            sched.reduction_factor = sched.reduction_factor or 3.0
        else:
            sched.grace_period = sched.grace_period or 1
            sched.reduction_factor = None
    for k in ("grace_period", "reduction_factor"):
        if k not in tune:
            continue
        if sched.type == "fifo":
            ctx.fail(f"tune.{k}", "the scheduler is fifo (no early_terminate), which stops nothing; "
                                  "set tune.scheduler: asha or remove it")
        if k == "reduction_factor" and sched.type != "asha":
            ctx.fail(f"tune.{k}", f"only ASHA has a reduction factor (scheduler is {sched.type}); remove it")
        sched.notes.append(f"tune.{k}: {fmt(tune[k])} replaces {fmt(getattr(sched, k))}")
        setattr(sched, k, tune[k])
    sched.fit_to(max_t)
    ctx.notes.extend(f"scheduler: {n}" for n in sched.notes)
    return sched


def _hyperband(ctx: Ctx, block: dict[str, Any], sched: SchedulerSpec) -> None:
    for k in block:
        if k not in ("type", "min_iter", "max_iter", "s", "eta", "strict"):
            ctx.fail(f"early_terminate.{k}",
                     "unknown key; hyperband takes min_iter, max_iter, s, eta, strict")
    eta = block.get("eta", 3)
    if not is_number(eta) or not math.isfinite(eta) or eta <= 1:
        ctx.fail("early_terminate.eta", f"expected a number > 1, got {eta!r}")
    sched.type = "asha"
    sched.reduction_factor = float(eta)
    # W&B's hyperband (sweeps.hyperband_stopping) judges a run at 0-based history index `band`, so a
    # run is first compared once it has band + 1 epochs: min_iter 1 means "after the 2nd epoch".
    # ASHA's grace period counts epochs, hence the + 1 (benchmarks/vs_wandb_sweeps.py found it).
    if "min_iter" in block:
        min_iter = ctx.pos_int("early_terminate.min_iter", block["min_iter"])
        sched.grace_period = min_iter + 1
        sched.notes.append(f"grace period {sched.grace_period}: W&B's hyperband first judges a run after "
                           f"min_iter + 1 = {min_iter + 1} epochs")
        for k in ("max_iter", "s"):
            if k in block:
                sched.notes.append(f"early_terminate.{k} ignored: min_iter sets the grace period")
    elif "max_iter" in block:
        max_iter = ctx.pos_int("early_terminate.max_iter", block["max_iter"])
        if "s" not in block:
            ctx.fail("early_terminate.s", "max_iter needs s (the number of brackets below it); add s: 2, "
                                          "or give min_iter instead")
        s = ctx.pos_int("early_terminate.s", block["s"], minimum=0)
        band = float(max_iter)  # W&B's bands: max_iter / eta, / eta², … (s of them, floored, >= 1)
        bands = [max_iter]
        for _ in range(s):
            band /= eta
            if band < 1:
                break
            bands.append(int(band))
        sched.grace_period = min(bands) + 1
        sched.notes.append(f"grace period {sched.grace_period}: W&B's smallest band, max_iter {max_iter} / "
                           f"eta^{len(bands) - 1} ({fmt(float(eta))}) floored, + 1 (it judges a run after band + 1 "
                           "epochs)")
    else:
        ctx.fail("early_terminate", "hyperband needs min_iter (or max_iter and s); add min_iter: 1")
    if "strict" in block:
        if not isinstance(block["strict"], bool):
            ctx.fail("early_terminate.strict", f"expected true or false, got {block['strict']!r}")
        sched.notes.append("early_terminate.strict accepted; ASHA has no strict mode")

