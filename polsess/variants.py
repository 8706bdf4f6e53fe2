"""The MM-IPC variant rules of PolSESS, exactly as the research code has them: which variants a row
can take, what a variant subtracts from the mix, what the task's target is.

A variant's letters name what the input KEEPS (S scene, E event, R reverb; C clean keeps none):
indoor rows (reverb columns filled) take SER, SR, ER, R, C; outdoor rows (reverb columns empty) take
SE, S, E, C. Scene not kept: subtract scene. Event not kept: subtract event and, indoor, ev_reverb.
C on an indoor row: also subtract sp1_reverb and sp2_reverb. Task ES: subtract speaker2, and on an
indoor row its sp2_reverb too.
"""

from __future__ import annotations

from typing import Any

from polsess.config import ALL_VARIANTS, INDOOR_VARIANTS, OUTDOOR_VARIANTS, TASKS


def row_variants(indoor: bool) -> tuple[str, ...]:
    """The MM-IPC variants a row can take: reverb variants exist only where there is reverb."""
    return INDOOR_VARIANTS if indoor else OUTDOOR_VARIANTS


def removed_components(variant: str, task: str, indoor: bool) -> tuple[str, ...]:
    """What is subtracted from the mix for this variant and task (the research code's rules).

    Each component appears once even when two rules ask for it (ES on an indoor C row).
    """
    if variant not in row_variants(indoor):
        kind = "indoor" if indoor else "outdoor"
        raise ValueError(f"variant {variant!r} does not fit an {kind} row ({', '.join(row_variants(indoor))})")
    if task not in TASKS:
        raise ValueError(f"task {task!r}: use one of {', '.join(TASKS)}")
    out: list[str] = []
    if "S" not in variant:
        out.append("scene")
    if "E" not in variant:
        out.append("event")
        if indoor:
            out.append("ev_reverb")
    if indoor and variant == "C":
        out += ["sp1_reverb", "sp2_reverb"]
    if task == "ES":
        out.append("speaker2")
        if indoor and "sp2_reverb" not in out:
            out.append("sp2_reverb")
    return tuple(out)


def target_components(task: str) -> tuple[str, ...]:
    if task not in TASKS:
        raise ValueError(f"task {task!r}: use one of {', '.join(TASKS)}")
    return ("speaker1",) if task == "ES" else ("speaker1", "speaker2")


def check_variant_name(v: Any, what: str) -> str:
    if v not in ALL_VARIANTS:
        raise ValueError(f"{what}: unknown MM-IPC variant {v!r}; variants are {', '.join(ALL_VARIANTS)}")
    return v
