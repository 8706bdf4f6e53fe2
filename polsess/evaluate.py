"""Score a trained model per MM-IPC variant, the way results on PolSESS are reported."""

from __future__ import annotations

from typing import Any

import numpy as np
from torch.utils.data import Subset

from .config import ALL_VARIANTS
from .trainer import Trainer, make_dataset


def evaluate(trainer: Trainer, subset: str = "test", max_samples: int | None = None) -> dict[str, Any]:
    """SI-SDR / SI-SDRi per variant (every row the variant fits) and overall.

    SI-SDRi leaves out rows whose input already is the target (SI-SDR above ``CLEAN_INPUT_DB``):
    their improvement is minus a near-infinite baseline, not a property of the model.

    "overall": every row once, in one variant drawn per row (``random.Random(index)`` over every
    variant the row fits). "validation": the protocol the trainer validates with, i.e. the rows and
    variants ``training.validation_variants`` allows (``[SER, SE]`` keeps every row, ``[SER]`` the
    indoor ones), one variant per row the same way: the number a search reports per trial, on this
    subset. Whole files are scored (no cropping). ``n`` is the number of rows scored.
    """
    ds = make_dataset(trainer.cfg, subset, None, max_samples, whole_files=True)
    scores, improvements = trainer.scores(ds)
    variants = trainer.cfg.training.validation_variants
    protocol = make_dataset(trainer.cfg, subset, variants, max_samples, whole_files=True)
    out: dict[str, Any] = {
        "subset": subset,
        "task": trainer.cfg.data.task,
        "overall": _summary(scores, improvements),
        "validation": {**_summary(*trainer.scores(protocol)), "validation_variants": variants},
        "variants": {},
    }
    for variant in ALL_VARIANTS:
        rows = ds.indices_for_variant(variant)
        if not rows:
            continue
        ds.fixed_variant = variant
        s, i = trainer.scores(Subset(ds, rows))
        out["variants"][variant] = _summary(s, i)
    ds.fixed_variant = None
    return out


# An input scoring above this already is the target (variant C of ES/EB: nothing left to remove),
# so its SI-SDRi says nothing about the model and is left out of the SI-SDRi mean.
CLEAN_INPUT_DB = 60.0


def _summary(scores: list[float], improvements: list[float]) -> dict[str, float | None]:
    kept = [i for s, i in zip(scores, improvements, strict=True) if s - i < CLEAN_INPUT_DB]
    return {"si_sdr": float(np.mean(scores)), "si_sdri": float(np.mean(kept)) if kept else None,
            "n": len(scores)}


def format_evaluation(result: dict[str, Any]) -> str:
    lines = [f"{'variant':<10} {'n':>5} {'SI-SDR':>8} {'SI-SDRi':>8}"]
    rows = [*result["variants"].items(), ("overall", result["overall"]), ("validation", result["validation"])]
    for name, row in rows:
        si_sdri = "n/a" if row["si_sdri"] is None else f"{row['si_sdri']:.2f}"
        lines.append(f"{name:<10} {row['n']:>5} {row['si_sdr']:>8.2f} {si_sdri:>8}")
    allowed = result["validation"]["validation_variants"]
    lines += [
        "",
        "n: rows scored. A variant row scores every row that variant fits.",
        "overall: every row once, in one of the variants it fits (drawn per row as validation does).",
        f"validation: training.validation_variants {allowed or 'all'}, one variant per row: the score "
        "a search reports per trial (it reports it on the val subset).",
        "SI-SDRi is n/a where the input already is the target, e.g. variant C of ES/EB.",
    ]
    return "\n".join(lines)
