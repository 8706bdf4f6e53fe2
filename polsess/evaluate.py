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

    "overall" is the validation protocol: one variant per row, ``random.Random(index)`` over the
    variants the row fits, so it is comparable with the numbers the tuner reports. Whole files are
    scored (no cropping).
    """
    ds = make_dataset(trainer.cfg, subset, None, max_samples, whole_files=True)
    scores, improvements = trainer._scores(ds)
    out: dict[str, Any] = {
        "subset": subset,
        "task": trainer.cfg.data.task,
        "overall": _summary(scores, improvements),
        "variants": {},
    }
    for variant in ALL_VARIANTS:
        rows = ds.indices_for_variant(variant)
        if not rows:
            continue
        ds.fixed_variant = variant
        s, i = trainer._scores(Subset(ds, rows))
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
    lines = [f"{'variant':<8} {'n':>5} {'SI-SDR':>8} {'SI-SDRi':>8}"]
    for name, row in [*result["variants"].items(), ("overall", result["overall"])]:
        si_sdri = "n/a" if row["si_sdri"] is None else f"{row['si_sdri']:.2f}"
        lines.append(f"{name:<8} {row['n']:>5} {row['si_sdr']:>8.2f} {si_sdri:>8}")
    lines.append("(SI-SDRi is n/a where the input already is the target, e.g. variant C of ES/EB)")
    return "\n".join(lines)
