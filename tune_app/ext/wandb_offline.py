"""Read W&B offline runs back from disk.

wandb 0.31 writes every run to a `.wandb` transaction log (through its Go
`wandb-core` service) but ships no Python reader for it, and `wandb.Api` needs
a server. Tests and reports need the logged config/history of offline runs, so
this module decodes the log directly.

Format (wandb-core `core/pkg/leveldb`, a LevelDB log with a file header):

* a 7-byte file header ``<ident ':W&B', magic u16 0xBEE1, version u8 0>``
  that occupies the start of block 0;
* 32 KiB blocks of chunks, each with a 7-byte header
  ``<crc32 u32, length u16, type u8>`` (little-endian, IEEE CRC-32 over the
  type byte and the payload), type FULL/FIRST/MIDDLE/LAST; a record that does
  not fit in a block continues in the next one; fewer than 7 bytes left at the
  end of a block are zero padding;
* each reassembled record is a serialized ``wandb_internal_pb2.Record``.

Only the protobuf classes are taken from wandb (imported lazily); Ray is not
needed.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..names import EPOCH

if TYPE_CHECKING:
    from wandb.proto.wandb_internal_pb2 import Record

    from ..experiment.results import Experiment

__all__ = [
    "BLOCK_SIZE",
    "OfflineRun",
    "ReadStats",
    "find_offline_runs",
    "incomplete_runs",
    "incomplete_runs_line",
    "metric_history",
    "read_offline_run",
    "read_records",
]

BLOCK_SIZE = 32 * 1024
FILE_IDENT = b":W&B"
FILE_MAGIC = 0xBEE1
FILE_VERSION = 0

_FILE_HEADER = struct.Struct("<4sHB")
_CHUNK_HEADER = struct.Struct("<IHB")
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4

# W&B bookkeeping that is not part of what the user logged.
_INTERNAL_KEY = "_wandb"


@dataclass
class ReadStats:
    """What `read_records` had to skip, so callers can tell a clean log from a damaged one."""

    records: int = 0
    truncated: bool = False  # the file ends inside a chunk or between fragments of one record
    skipped_chunks: int = 0  # chunks dropped for a bad checksum, type or fragment order


def _check_file_header(head: bytes, path: Path) -> None:
    ident, magic, version = _FILE_HEADER.unpack(head)
    if ident != FILE_IDENT or magic != FILE_MAGIC:
        raise ValueError(f"{path} is not a W&B transaction log (header {head!r})")
    if version != FILE_VERSION:
        raise ValueError(f"{path}: unsupported W&B log version {version}")


def _iter_payloads(path: Path, stats: ReadStats) -> Iterator[bytes]:
    """Reassemble record payloads; on damage, resynchronise at the next block like LevelDB."""
    with open(path, "rb") as f:
        head = f.read(_FILE_HEADER.size)
        if len(head) < _FILE_HEADER.size:
            if not FILE_IDENT.startswith(head[: len(FILE_IDENT)]):
                raise ValueError(f"{path} is not a W&B transaction log")
            stats.truncated = bool(head) or stats.truncated
            return
        _check_file_header(head, path)

        pending: bytearray | None = None
        pos = _FILE_HEADER.size  # offset inside the current block
        block = head + f.read(BLOCK_SIZE - _FILE_HEADER.size)
        while True:
            if BLOCK_SIZE - pos < _CHUNK_HEADER.size or pos >= len(block):
                if len(block) < BLOCK_SIZE:  # that was the last (short) block
                    break
                block = f.read(BLOCK_SIZE)
                pos = 0
                if not block:
                    break
                continue
            if len(block) - pos < _CHUNK_HEADER.size:
                stats.truncated = True  # cut inside a chunk header
                return
            crc, length, ctype = _CHUNK_HEADER.unpack_from(block, pos)
            start, end = pos + _CHUNK_HEADER.size, pos + _CHUNK_HEADER.size + length
            if crc == 0 and length == 0 and ctype == 0:
                # Zero-filled rest of a block (preallocated or crash-zeroed space).
                if pending is not None:
                    stats.skipped_chunks += 1
                    pending = None
                pos = BLOCK_SIZE
                continue
            if end > len(block):
                if len(block) < BLOCK_SIZE:
                    stats.truncated = True  # cut inside a chunk payload
                    return
                stats.skipped_chunks += 1  # length overflows a full block: corrupt header
                pending, pos = None, BLOCK_SIZE
                continue
            payload = block[start:end]
            if zlib.crc32(payload, zlib.crc32(bytes((ctype,)))) != crc or ctype not in (1, 2, 3, 4):
                stats.skipped_chunks += 1
                pending, pos = None, BLOCK_SIZE
                continue
            pos = end
            pending, record = _assemble(ctype, payload, pending, stats)
            if record is not None:
                yield record
        if pending is not None:
            stats.truncated = True  # file ends between fragments of one record


def _assemble(ctype: int, payload: bytes, pending: bytearray | None,
              stats: ReadStats) -> tuple[bytearray | None, bytes | None]:
    """One valid chunk into the record being put together: (what is pending now, a whole record or None)."""
    if ctype in (_FULL, _FIRST):
        if pending is not None:  # previous record never got its LAST chunk
            stats.skipped_chunks += 1
        return (None, payload) if ctype == _FULL else (bytearray(payload), None)
    if pending is None:  # MIDDLE/LAST of a record whose start was skipped
        stats.skipped_chunks += 1
        return None, None
    pending += payload
    return (None, bytes(pending)) if ctype == _LAST else (pending, None)


def read_records(path: str | os.PathLike[str], stats: ReadStats | None = None) -> Iterator[Record]:
    """Yield the records of a `.wandb` file; damage is reported in `stats` instead of raised.

    A file that is still being written (or was cut) ends with a partial record:
    iteration stops cleanly before it and sets ``stats.truncated``. Only a file
    that is not a W&B log at all raises `ValueError`.
    """
    from google.protobuf.message import DecodeError
    from wandb.proto.wandb_internal_pb2 import Record

    stats = stats if stats is not None else ReadStats()
    for payload in _iter_payloads(Path(path), stats):
        record = Record()
        try:
            record.ParseFromString(payload)
        except DecodeError:
            stats.skipped_chunks += 1
            continue
        stats.records += 1
        yield record


@dataclass
class OfflineRun:
    """One offline run folder, decoded into plain Python values."""

    run_id: str
    path: Path  # the offline-run-<date>-<id> folder
    project: str
    group: str
    name: str
    tags: list[str]
    config: dict[str, Any]
    history: list[dict[str, Any]]
    summary: dict[str, Any]
    exit_code: int | None  # None: no exit record, the run did not finish
    truncated: bool
    file: Path | None = None
    entity: str = ""
    start_time: float | None = None  # seconds since the epoch
    resumed: bool = False  # wandb.init got resume=...; offline each (re)start is its own folder
    skipped_chunks: int = 0
    records: int = 0
    internal_config: dict[str, Any] = field(default_factory=dict)  # the `_wandb` key dropped from config


def _item_path(item: Any) -> list[str]:
    return [item.key] if item.key else list(item.nested_key)


def _loads(text: str) -> Any:
    return json.loads(text) if text else None


def _history_value(item: Any) -> Any:
    """Prefer the typed value (exact int/float) that newer SDKs can write next to the JSON."""
    kind = item.WhichOneof("value")
    if kind is None:
        return _loads(item.value_json)
    if kind == "none":
        return None
    if kind == "json":
        return _loads(item.json)
    return getattr(item, kind)


def _set_path(target: dict[str, Any], path: Sequence[str], value: Any) -> None:
    for key in path[:-1]:
        child = target.get(key)
        if not isinstance(child, dict):
            child = target[key] = {}
        target = child
    target[path[-1]] = value


def _del_path(target: dict[str, Any], path: Sequence[str]) -> None:
    for key in path[:-1]:
        target = target.get(key)
        if not isinstance(target, dict):
            return
    target.pop(path[-1], None)


def _apply_items(target: dict[str, Any], updates: Iterable[Any], removes: Iterable[Any]) -> None:
    for item in updates:
        path = _item_path(item)
        if path:
            _set_path(target, path, _loads(item.value_json))
    for item in removes:
        path = _item_path(item)
        if path:
            _del_path(target, path)


def _wandb_file_in(run_dir: Path) -> Path:
    files = sorted(run_dir.glob("run-*.wandb"))
    if not files:
        raise FileNotFoundError(f"no run-*.wandb file in {run_dir}")
    if len(files) > 1:
        raise ValueError(f"several .wandb files in {run_dir}: {[f.name for f in files]}")
    return files[0]


def read_offline_run(run_dir_or_wandb_file: str | os.PathLike[str]) -> OfflineRun:
    """Decode one offline run, given its `offline-run-*` folder or its `run-*.wandb` file."""
    target = Path(run_dir_or_wandb_file)
    wandb_file = _wandb_file_in(target) if target.is_dir() else target
    stats = ReadStats()
    run = OfflineRun(
        run_id="",
        path=wandb_file.parent,
        project="",
        group="",
        name="",
        tags=[],
        config={},
        history=[],
        summary={},
        exit_code=None,
        truncated=False,
        file=wandb_file,
    )
    for record in read_records(wandb_file, stats):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            r = record.run
            run.run_id = r.run_id or run.run_id
            run.project = r.project or run.project
            run.group = r.run_group or run.group
            run.name = r.display_name or run.name
            run.entity = r.entity or run.entity
            run.tags = list(r.tags) or run.tags
            run.resumed = run.resumed or r.resume or r.resumed
            if r.HasField("start_time"):
                run.start_time = r.start_time.seconds + r.start_time.nanos / 1e9
            _apply_items(run.config, r.config.update, r.config.remove)
        elif kind == "config":
            _apply_items(run.config, record.config.update, record.config.remove)
        elif kind == "history":
            row: dict[str, Any] = {}
            for item in record.history.item:
                path = _item_path(item)
                if path:
                    _set_path(row, path, _history_value(item))
            if "_step" not in row and record.history.HasField("step"):
                row["_step"] = record.history.step.num
            run.history.append(row)
        elif kind == "summary":
            _apply_items(run.summary, record.summary.update, record.summary.remove)
        elif kind == "exit":
            run.exit_code = record.exit.exit_code
    run.internal_config = run.config.pop(_INTERNAL_KEY, None) or {}
    run.summary.pop(_INTERNAL_KEY, None)
    if not run.run_id:  # the run record was lost; the file name still carries the id
        run.run_id = wandb_file.stem.removeprefix("run-")
    run.truncated = stats.truncated
    run.skipped_chunks = stats.skipped_chunks
    run.records = stats.records
    return run


def find_offline_runs(root: str | os.PathLike[str]) -> list[OfflineRun]:
    """Decode every `offline-run-*/run-*.wandb` under `root`, oldest first.

    Matches what `wandb sync <root>` would pick up for offline runs. The
    `latest-run` link (and the real copy of it that Ray's storage sync makes)
    is skipped, so each run folder is read once. A resumed run id appears once
    per folder: offline W&B never merges them.
    """
    seen: set[Path] = set()
    runs = []
    for wandb_file in sorted(Path(root).rglob("run-*.wandb")):
        if not wandb_file.parent.name.startswith("offline-run-"):
            continue
        real = wandb_file.resolve()
        if real in seen:
            continue
        seen.add(real)
        runs.append(read_offline_run(wandb_file))
    runs.sort(key=lambda r: (r.start_time or 0.0, str(r.path)))
    return runs


def metric_history(run: OfflineRun, key: str | Sequence[str]) -> list[tuple[int, float]]:
    """(step, value) pairs of one numeric metric, in log order, for plots and assertions.

    `key` is a history key as logged (Ray's WandbLoggerCallback flattens
    nested results to "a/b" keys), or a tuple path into a nested dict logged
    directly with `wandb.log`. Rows without a numeric value are skipped.
    """
    path = [key] if isinstance(key, str) else list(key)
    points = []
    for index, row in enumerate(run.history):
        value: Any = row
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            points.append((int(row.get("_step", index)), float(value)))
    return points


def _epochs(rows: Iterable[dict[str, Any]]) -> set[int]:
    return {int(row[EPOCH]) for row in rows if isinstance(row.get(EPOCH), (int, float))}


def incomplete_runs(exp: Experiment, wandb_dir: str | os.PathLike[str]) -> list[str]:
    """The trials whose W&B offline runs lack an epoch the trial reported, or never finished writing
    (no exit record in any of its folders): what W&B lost, though Tune's results hold it all.

    Read from disk, so it holds whatever happened (a logging actor killed, a driver killed); a resumed
    trial's folders count together, as ``wandb sync`` uploads them all. [] for a search not logged
    offline: its ``wandb_mode`` (an older search without one was, as ``resume`` assumes), or no
    ``wandb_dir`` (the driver makes it before any trial starts).
    """
    root = Path(wandb_dir)
    if exp.search.get("wandb_mode", "offline") != "offline" or not root.is_dir():
        return []
    logged: dict[str, set[int]] = {}
    finished: set[str] = set()
    for wandb_file in sorted(root.rglob("offline-run-*/run-*.wandb")):
        try:
            run = read_offline_run(wandb_file)
        except (OSError, ValueError):  # unreadable: it holds nothing
            continue
        logged.setdefault(run.run_id, set()).update(_epochs(run.history))
        if run.exit_code is not None:
            finished.add(run.run_id)
    return [t.trial_id for t in exp.trials if (reported := _epochs(t.history))
            and (reported - logged.get(t.trial_id, set()) or t.trial_id not in finished)]


def incomplete_runs_line(exp: Experiment, wandb_dir: str | os.PathLike[str]) -> str | None:
    """One line for the end of a search naming the incomplete runs (:func:`incomplete_runs`), or None."""
    ids = incomplete_runs(exp, wandb_dir)
    if not ids:
        return None
    return (f"W&B: {len(ids)} offline run(s) incomplete (an epoch missing or the run never finished writing): "
            f"trial(s) {', '.join(ids)}, in {Path(wandb_dir)}; each trial's result.json still holds every epoch")
