"""PolSESS as a map-style dataset for torch's DataLoader, with the research code's MM-IPC rules.

Every component of a PolSESS mixture is stored on its own (clean/, scene/, event/, and for indoor
rows sp1_reverb/, sp2_reverb/, ev_reverb/ beside mix/, with mix = their sum to a few 16-bit LSB), so
an input with less background is made by subtracting parts from the mix file. The rules
(:mod:`polsess.variants`), and the deterministic per-row variant choice in val/test
(``random.Random(index)`` over the variants the row fits), are kept exactly as in the research code
because published numbers depend on them. Train-time randomness comes from ``(seed, epoch, index)`` alone,
so a resumed run sees the same items and the number of DataLoader workers does not matter.

torch is imported only when an item is read: the tuning driver checks a corpus before starting Ray
and should not pay 1.3 s for a torch import it never uses.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import soundfile as sf

from polsess.config import ALL_VARIANTS, TASKS

from .variants import check_variant_name, removed_components, row_variants, target_components

if TYPE_CHECKING:
    import torch

SUBSETS = ("train", "val", "test")
REVERB_COLUMNS = ("reverbForSpeaker1", "reverbForSpeaker2", "reverbForEvent")
REQUIRED_COLUMNS = ("speaker1File", "speaker2File", "sceneFile", "eventFile", "mixFile", *REVERB_COLUMNS)
# component → (folder inside the subset, CSV column naming its file)
COMPONENTS = {
    "mix": ("mix", "mixFile"),
    "speaker1": ("clean", "speaker1File"),
    "speaker2": ("clean", "speaker2File"),
    "scene": ("scene", "sceneFile"),
    "event": ("event", "eventFile"),
    "sp1_reverb": ("sp1_reverb", "reverbForSpeaker1"),
    "sp2_reverb": ("sp2_reverb", "reverbForSpeaker2"),
    "ev_reverb": ("ev_reverb", "reverbForEvent"),
}


class PolSESSDataError(ValueError):
    """A problem with the corpus on disk; the message names the file and what is wrong with it."""


class PolSESSDataset:
    """One subset of a PolSESS corpus; items are ``{"mix", "clean", "background_complexity"}``
    (torch tensors: mix ``(time,)``, clean ``(time,)`` for ES/EB or ``(2, time)`` for SB).

    ``set_epoch`` and ``allowed_variants`` change what items look like; a DataLoader with
    ``persistent_workers=True`` keeps old copies of the dataset in its workers, so make a new
    loader (or use the default non-persistent workers) after changing them.
    """

    def __init__(
        self,
        data_root: str | os.PathLike[str],
        subset: str = "train",
        task: str = "ES",
        allowed_variants: Sequence[str] | None = None,
        max_samples: int | None = None,
        segment_samples: int | None = None,
        seed: int = 0,
    ) -> None:
        if task not in TASKS:
            raise ValueError(f"task {task!r}: use one of {', '.join(TASKS)}")
        if subset not in SUBSETS:
            raise ValueError(f"subset {subset!r}: use one of {', '.join(SUBSETS)}")
        if max_samples is not None and max_samples < 1:
            raise ValueError(f"max_samples {max_samples!r}: use a positive integer or None")
        if segment_samples is not None and segment_samples < 1:
            raise ValueError(f"segment_samples {segment_samples!r}: use a positive integer or None")
        self.task = task
        self.subset = subset
        self.seed = int(seed)
        self.segment_samples = segment_samples
        self.epoch = 0
        self.root = Path(data_root).expanduser()
        if not self.root.is_dir():
            raise PolSESSDataError(f"{self.root}: data root not found; point data.data_root (or POLSESS_DATA_ROOT) "
                                   "at a PolSESS corpus folder, or make one with `polsess-tune make-data`")
        name = self.root.name or self.root.resolve().name
        self.subset_dir = self.root / subset
        if not self.subset_dir.is_dir():
            raise PolSESSDataError(f"{self.subset_dir}: subset folder not found; a PolSESS root holds "
                                   "train/, val/ and test/")
        self.csv_path = self.subset_dir / f"corpus_{name}_{subset}_final.csv"
        if not self.csv_path.is_file():
            raise PolSESSDataError(f"{self.csv_path}: metadata CSV not found (it is named after the root "
                                   f"folder, {name!r})")
        try:
            frame = pd.read_csv(self.csv_path)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise PolSESSDataError(f"{self.csv_path}: cannot read the CSV ({exc})") from None
        for column in REQUIRED_COLUMNS:
            if column not in frame.columns:
                raise PolSESSDataError(f"{self.csv_path}: missing column {column!r}")
        if max_samples is not None:
            frame = frame.iloc[:max_samples]
        self.metadata = frame.reset_index(drop=True)
        if len(self.metadata) == 0:
            raise PolSESSDataError(f"{self.csv_path}: no rows")
        self._load_rows()
        self._sample_rate: int | None = None
        self._allowed: tuple[str, ...] | None = None
        self._fixed: str | None = None
        self.allowed_variants = allowed_variants

    def _load_rows(self) -> None:
        """Plain lists of paths (fast to index, cheap to pickle into workers); flags indoor rows."""
        md = self.metadata
        for column in REQUIRED_COLUMNS[:5]:
            empty = md[column].isna()
            if empty.any():
                i = int(np.flatnonzero(empty.to_numpy())[0])
                raise PolSESSDataError(f"{self.csv_path}: row {i}: column {column!r} is empty")
        reverb = md[list(REVERB_COLUMNS)].notna()
        partial = (reverb.any(axis=1) & ~reverb.all(axis=1)).to_numpy()
        if partial.any():
            i = int(np.flatnonzero(partial)[0])
            raise PolSESSDataError(f"{self.csv_path}: row {i} ({md['mixFile'].iloc[i]}) has only some of "
                                   f"{', '.join(REVERB_COLUMNS)} filled; indoor rows need all three, outdoor none")
        self._all_indoor: list[bool] = reverb.all(axis=1).tolist()
        self._all_paths: dict[str, list[str | None]] = {}
        for comp, (folder, column) in COMPONENTS.items():
            base = os.path.join(self.subset_dir, folder)
            self._all_paths[comp] = [os.path.join(base, str(v)) if isinstance(v, str) else None
                                     for v in md[column].tolist()]
        self._all_metadata = md

    def __len__(self) -> int:
        return len(self.metadata)

    def __repr__(self) -> str:
        return (f"PolSESSDataset({str(self.root)!r}, subset={self.subset!r}, task={self.task!r}, "
                f"rows={len(self)}, allowed_variants={self._allowed}, fixed_variant={self._fixed})")

    # ----------------------------------------------------------------------- variants

    @property
    def allowed_variants(self) -> tuple[str, ...] | None:
        return self._allowed

    @allowed_variants.setter
    def allowed_variants(self, variants: Iterable[str] | None) -> None:
        """Restrict the variants, as the research loader does: a list that fits only indoor rows
        (``["SER"]``, ``["R", "SR"]``) keeps only the indoor rows, one that fits only outdoor rows
        (``["SE"]``, ``["E"]``) only the outdoor ones, any other list every row. ``len()``,
        ``metadata`` and the indices follow the kept rows. A list that fits no row is an error."""
        if variants is None:
            self._allowed = None
            self._keep(list(range(len(self._all_indoor))))
            return
        if isinstance(variants, str):
            raise ValueError(f"allowed_variants {variants!r}: give a list of variants, e.g. [{variants!r}]")
        chosen = tuple(check_variant_name(v, "allowed_variants") for v in variants)
        if not chosen:
            raise ValueError(f"allowed_variants: empty list; give some of {', '.join(ALL_VARIANTS)} or None")
        kinds = {indoor for indoor in (True, False) if any(v in row_variants(indoor) for v in chosen)}
        rows = [i for i, indoor in enumerate(self._all_indoor) if indoor in kinds]
        if not rows:
            kind, other = ("indoor", "SE, S, E") if True in kinds else ("outdoor", "SER, SR, ER, R")
            raise PolSESSDataError(f"{self.csv_path}: allowed_variants {list(chosen)} fit only {kind} rows, and "
                                   f"this subset has none; allow {other} or C as well")
        self._allowed = chosen
        self._keep(rows)

    def _keep(self, rows: list[int]) -> None:
        """The view the dataset shows: these rows of the subset, renumbered from 0."""
        self._indoor = [self._all_indoor[i] for i in rows]
        self._paths = {comp: [paths[i] for i in rows] for comp, paths in self._all_paths.items()}
        self.metadata = self._all_metadata.iloc[rows].reset_index(drop=True)

    @property
    def fixed_variant(self) -> str | None:
        """When set, every item uses this variant (per-variant evaluation); rows it does not fit fail."""
        return self._fixed

    @fixed_variant.setter
    def fixed_variant(self, variant: str | None) -> None:
        self._fixed = None if variant is None else check_variant_name(variant, "fixed_variant")

    @property
    def indoor(self) -> list[bool]:
        """Per row: True where the row has reverb files (indoor), False for outdoor rows."""
        return list(self._indoor)

    def indices_for_variant(self, variant: str) -> list[int]:
        """The rows this variant fits (indoor variants on indoor rows, outdoor on outdoor, C on all)."""
        check_variant_name(variant, "variant")
        return [i for i, indoor in enumerate(self._indoor) if variant in row_variants(indoor)]

    def set_epoch(self, epoch: int) -> None:
        """Train items depend on (seed, epoch, index) only; call before each epoch."""
        self.epoch = int(epoch)

    def _compatible(self, index: int, allowed: Sequence[str] | None = None) -> list[str]:
        fits = row_variants(self._indoor[index])
        allowed = allowed or self._allowed or ALL_VARIANTS
        compatible = [v for v in allowed if v in fits]
        if not compatible:
            raise PolSESSDataError(
                f"{self._paths['mix'][index]}: none of the allowed variants {list(allowed)} fits this "
                f"{'indoor' if self._indoor[index] else 'outdoor'} row (it takes {', '.join(fits)})"
            )
        return compatible

    def _rng(self, index: int) -> random.Random:
        # A string seed is hashed with SHA-512 by random.Random: stable across processes, unlike hash().
        return random.Random(f"{self.seed}:{self.epoch}:{index}")

    def _draw(self, index: int) -> tuple[str, random.Random | None]:
        """The variant for this item and, in train, the rng that goes on to choose the crop."""
        rng = self._rng(index) if self.subset == "train" else None
        if self._fixed is not None:
            variant = self._fixed
            if variant not in row_variants(self._indoor[index]):
                raise PolSESSDataError(f"{self._paths['mix'][index]}: fixed_variant {variant!r} does not fit "
                                       f"this row; use indices_for_variant({variant!r}) to pick rows")
        elif rng is not None:
            variant = rng.choice(self._compatible(index))
        else:
            variant = random.Random(index).choice(self._compatible(index))
        return variant, rng

    def variant_for(self, index: int) -> str:
        """The variant item ``index`` uses now (this epoch, these allowed variants); reads no audio."""
        return self._draw(self._check_index(index))[0]

    def files_for(self, index: int, variant: str | None = None) -> dict[str, str]:
        """The files an item reads, by component: the mix, the parts subtracted, the targets. No others."""
        index = self._check_index(index)
        if variant is None:
            variant = self.variant_for(index)
        indoor = self._indoor[index]
        if variant not in row_variants(indoor):
            raise PolSESSDataError(f"{self._paths['mix'][index]}: variant {variant!r} does not fit this row")
        comps = dict.fromkeys(("mix", *removed_components(variant, self.task, indoor),
                               *target_components(self.task)))
        return {c: self._paths[c][index] for c in comps}  # type: ignore[misc]

    # ----------------------------------------------------------------------- files

    @property
    def sample_rate(self) -> int:
        """The corpus rate, from the first row's mix header; every file read is checked against it."""
        if self._sample_rate is None:
            path = self._paths["mix"][0]
            if not os.path.exists(path):  # type: ignore[arg-type]
                raise PolSESSDataError(f"{path}: file not found (row 0, mix)")
            try:
                self._sample_rate = int(sf.info(path).samplerate)
            except RuntimeError as exc:
                raise PolSESSDataError(f"{path}: cannot read the audio header ({exc})") from None
        return self._sample_rate

    def check_files(self, headers: bool = True) -> int:
        """Every file of every row exists and, with ``headers``, its WAV header reads as mono at the
        corpus rate with its mix's length (a header read per file: ~0.1 ms, no audio). Sets
        :attr:`shortest_mix` (frames). Returns how many files were checked; raises PolSESSDataError
        listing the first five problems."""
        problems: list[str] = []
        checked, shortest = 0, None
        for row, comps in enumerate(zip(*self._paths.values(), strict=True)):
            mix_frames = None
            for comp, path in zip(self._paths, comps, strict=True):
                if path is None:
                    continue
                checked += 1
                if not os.path.exists(path):
                    problems.append(f"{path}: missing")
                elif headers:
                    try:
                        info = sf.info(path)
                    except RuntimeError as exc:  # libsndfile: not a WAV, cut short, ...
                        problems.append(f"{path}: unreadable audio header ({str(exc).splitlines()[0][-80:]})")
                        continue
                    mix_frames = info.frames if comp == "mix" else mix_frames
                    if info.samplerate != self.sample_rate or info.channels != 1:
                        problems.append(f"{path}: {info.channels} channel(s) at {info.samplerate} Hz; the corpus "
                                        f"is mono at {self.sample_rate} Hz")
                    elif mix_frames is not None and info.frames != mix_frames:
                        problems.append(f"{path}: {info.frames} samples, its row's mix has {mix_frames} (row {row})")
            if mix_frames is not None:
                shortest = mix_frames if shortest is None else min(shortest, mix_frames)
        self.shortest_mix = shortest
        if problems:
            shown = "\n  ".join(problems[:5])
            more = f"\n  ... and {len(problems) - 5} more" if len(problems) > 5 else ""
            raise PolSESSDataError(f"{len(problems)} of {checked} files listed in {self.csv_path} cannot be used:"
                                   f"\n  {shown}{more}")
        return checked

    def _check_index(self, index: int) -> int:
        index = int(index)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} rows")
        return index

    def _read(self, index: int, comp: str, span: tuple[int, int] | None, total: int | None,
              rng: random.Random | None = None) -> tuple[np.ndarray, int, tuple[int, int]]:
        """Read the span ``(start, frames)`` (None: the crop for this item), checking rate, channels
        and, given ``total``, the length. Returns the samples, the file's length and the span."""
        path = self._paths[comp][index]
        if path is None or not os.path.exists(path):
            raise PolSESSDataError(f"{path}: file not found (row {index}, {comp}); "
                                   "`check_files()` lists every missing file")
        try:
            with sf.SoundFile(path) as f:
                if f.samplerate != self.sample_rate:
                    raise PolSESSDataError(f"{path}: sample rate {f.samplerate} Hz, but the corpus is "
                                           f"{self.sample_rate} Hz (from {self._paths['mix'][0]})")
                if f.channels != 1:
                    raise PolSESSDataError(f"{path}: {f.channels} channels; PolSESS files are mono")
                if total is not None and f.frames != total:
                    raise PolSESSDataError(f"{path}: {f.frames} samples, but the row's mix "
                                           f"{self._paths['mix'][index]} has {total}; all files of a row "
                                           "must have the same length")
                length = f.frames
                start, frames = span if span is not None else self._crop(length, rng)
                if start:
                    f.seek(start)
                data = f.read(frames, dtype="float32")
        except RuntimeError as exc:  # libsndfile: not a WAV, truncated, ...
            raise PolSESSDataError(f"{path}: cannot read the audio ({exc})") from None
        return data, length, (start, frames)

    def _crop(self, total: int, rng: random.Random | None) -> tuple[int, int]:
        seg = self.segment_samples
        if seg is None or total <= seg:
            return 0, total
        return (rng.randrange(total - seg + 1) if rng is not None else 0), seg

    # ----------------------------------------------------------------------- items

    def __getitem__(self, index: int) -> dict[str, Any]:
        import torch

        index = self._check_index(index)
        variant, rng = self._draw(index)
        indoor = self._indoor[index]
        removed = removed_components(variant, self.task, indoor)
        x, total, span = self._read(index, "mix", None, None, rng)
        parts: dict[str, np.ndarray] = {}
        for comp in dict.fromkeys((*removed, *target_components(self.task))):
            parts[comp] = self._read(index, comp, span, total)[0]
        for comp in removed:
            x -= parts[comp]
        if self.task == "ES":
            clean = parts["speaker1"]
        elif self.task == "EB":
            clean = parts["speaker1"] + parts["speaker2"]
        else:
            clean = np.stack([parts["speaker1"], parts["speaker2"]])
        if self.segment_samples is not None and span[1] < self.segment_samples:
            pad = self.segment_samples - span[1]
            x = np.pad(x, (0, pad))
            clean = np.pad(clean, [(0, 0)] * (clean.ndim - 1) + [(0, pad)])
        return {
            "mix": torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
            "clean": torch.from_numpy(np.ascontiguousarray(clean, dtype=np.float32)),
            "background_complexity": variant,
        }


def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack items into a batch, cropping to the shortest so rows of unequal length still batch."""
    if not batch:
        raise ValueError("collate: empty batch")
    length = min(int(item["mix"].shape[-1]) for item in batch)
    return {
        "mix": _stack([item["mix"][..., :length] for item in batch]),
        "clean": _stack([item["clean"][..., :length] for item in batch]),
        "background_complexity": [item["background_complexity"] for item in batch],
    }


def _stack(tensors: list[torch.Tensor]) -> torch.Tensor:
    import torch

    # numpy's single-threaded copy: torch.stack of large CPU tensors goes through OpenMP, which on a
    # busy 2-core machine (the trainer running beside the loader) was measured 10-300x slower.
    if all(t.device.type == "cpu" and not t.requires_grad for t in tensors):
        return torch.from_numpy(np.stack([t.numpy() for t in tensors]))
    return torch.stack(tensors)
