"""Synthetic corpora in exactly the PolSESS layout, for the demo and the tests.

No real PolSESS copy can be shipped (tens of GB), so everything that runs out of the box runs on a
corpus made here. It follows the corpus's layout to the letter (a folder per subset with clean/,
mix/, scene/, event/ and the three reverb folders; ``corpus_<root name>_<subset>_final.csv`` with the
34 columns of the generator, reverb columns empty on outdoor rows; random 16-character file names, the
mix named ``<s1>-<s2>-<scene>-<event>[-<r>].wav``; mix = the sum of its parts) so that the loader
cannot tell it from the real thing. The sounds come from :mod:`polsess.synth_audio`.

Every row is drawn from its own ``numpy.random.Generator`` seeded by ``(seed, subset, index)``:
the same arguments give the same bytes, and a row does not change when the corpus grows.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from .synth_audio import (
    Speaker,
    event_sound,
    fft_convolve,
    quantise,
    reverb_tails,
    rms,
    scene_sound,
    speaker_pool,
    speech,
)

SYNTH_VERSION = 2  # bump when the generated audio changes, so cached demo corpora are remade
SAMPLE_RATES = (8000, 16000)
SUBSETS = ("train", "val", "test")
COMPONENT_DIRS = ("clean", "mix", "scene", "event", "sp1_reverb", "sp2_reverb", "ev_reverb")
COLUMNS = (
    "subset", "speech1OryginalPath", "speech1Start", "speech1End", "speech2OryginalPath",
    "speech2Start", "speech2End", "SSR", "sceneOryginalPath", "sceneStart", "sceneEnd",
    "sceneRandomDB", "sceneOffsetDB", "sceneVolumeGain", "eventOryginalPath", "eventStart",
    "eventEnd", "speaker1File", "speaker2File", "eventFile", "sceneFile", "reverbForSpeaker1",
    "reverbForSpeaker2", "reverbForEvent", "mixFile", "sceneClass", "eventClass",
    "preDelayForEvent", "preDelay1", "preDelay2", "highCut", "diffusion", "decay", "freqDamp",
)
REVERB_PARAM_COLUMNS = ("preDelayForEvent", "preDelay1", "preDelay2", "highCut", "diffusion", "decay", "freqDamp")

INDOOR_SCENES = {"office": "hum", "cafe": "babble", "hall": "babble", "kitchen": "hum"}
OUTDOOR_SCENES = {"street": "traffic", "park": "wind", "rain": "rain", "market": "babble"}
EVENT_CLASSES = ("click", "beep", "knock", "clap", "ring")

DEMO_NAME = "PolSESS_demo"
DEMO_PARAMS: dict[str, Any] = {"train": 400, "val": 40, "test": 40, "sample_rate": 8000, "seconds": 2.0, "seed": 0}
CACHE_ENV = "POLSESS_TUNE_CACHE"
_MARKER = "COMPLETE.json"

_SUBSET_CODE = {"train": 0, "val": 1, "test": 2}
_ALPHABET = np.array(list("abcdefghijklmnopqrstuvwxyz0123456789"))
_PEAK = 0.9 - 8 / 32768  # mix peak after scaling; the margin absorbs the parts' rounding


# --------------------------------------------------------------------------- speakers


# --------------------------------------------------------------------------- signals


def _name(rng: np.random.Generator) -> str:
    return "".join(rng.choice(_ALPHABET, 16))


# --------------------------------------------------------------------------- rows


def is_indoor_row(seed: int, subset: str, index: int) -> bool:
    """Exactly one indoor row in each pair (2k, 2k+1), chosen at random: about half, never all of one kind."""
    first = np.random.default_rng([seed, _SUBSET_CODE[subset], index // 2, 7]).random() < 0.5
    return (index % 2 == 0) == first


@dataclass(frozen=True)
class _Scene:
    """What a row's first draws decide: the two speakers and their ratio, the scene and the event and
    their levels, the mix's level."""

    sp1: Speaker
    sp2: Speaker
    ssr: float  # speaker-to-speaker ratio, dB
    scene_db: float
    scene_cls: str
    scene_kind: str  # the synthetic sound behind the scene class (hum, babble, ...)
    event_cls: str
    event_db: float
    level_db: float


def make_row(seed: int, subset: str, index: int, sample_rate: int, seconds: float,
             pool: tuple[Speaker, ...] | None = None
             ) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, str]]:
    """One corpus row: its CSV record, its parts as int16 arrays and their file names, by component.

    The row's generator is drawn from in one fixed order (the bytes depend on it): the scene, the dry
    parts, the reverb (indoor rows), the file names, then the provenance columns of the record."""
    sr, n = sample_rate, round(seconds * sample_rate)
    pool = speaker_pool(seed) if pool is None else pool
    rng = np.random.default_rng([seed, _SUBSET_CODE[subset], index])
    indoor = is_indoor_row(seed, subset, index)
    scene = _draw_scene(rng, pool, indoor)
    parts, speech_rms, event_span = _dry_parts(rng, scene, n, sr)
    reverb: dict[str, Any] = dict.fromkeys(REVERB_PARAM_COLUMNS, np.nan)
    if indoor:
        reverb = _add_reverb(rng, parts, n, sr)
    q, gain = _mix_down(parts, scene.level_db, speech_rms)
    files = _file_names(rng, indoor)
    record = _record(rng, subset, seconds, sr, scene, files, (speech_rms, gain), event_span)
    return {**record, **reverb}, q, files


def _draw_scene(rng: np.random.Generator, pool: tuple[Speaker, ...], indoor: bool) -> _Scene:
    sp1, sp2 = (pool[i] for i in rng.choice(len(pool), 2, replace=False))
    ssr = round(float(rng.uniform(-5.0, 5.0)), 2)
    scene_db = round(float(rng.uniform(0.0, 14.0)), 2)
    scenes = INDOOR_SCENES if indoor else OUTDOOR_SCENES
    scene_cls = str(rng.choice(list(scenes)))
    event_cls = str(rng.choice(EVENT_CLASSES))
    event_db, level_db = rng.uniform(-8.0, 2.0), rng.uniform(-28.0, -20.0)
    return _Scene(sp1, sp2, ssr, scene_db, scene_cls, scenes[scene_cls], event_cls, event_db, level_db)


def _dry_parts(rng: np.random.Generator, scene: _Scene, n: int, sr: int
               ) -> tuple[dict[str, np.ndarray], float, tuple[int, int]]:
    """The two speakers, the scene and the event as float arrays (the scene and the event set against
    the speech level), the speech level, and the event's (start, end) in samples."""
    s1 = speech(rng, scene.sp1, n, sr)
    s2 = speech(rng, scene.sp2, n, sr) * 10 ** (-scene.ssr / 20)
    speech_rms = rms(s1 + s2)
    background = scene_sound(rng, scene.scene_kind, n, sr) * speech_rms * 10 ** (-scene.scene_db / 20)
    event_raw, ev_start, ev_end = event_sound(rng, scene.event_cls, n, sr)
    event = event_raw * speech_rms * 10 ** (scene.event_db / 20)
    return {"speaker1": s1, "speaker2": s2, "scene": background, "event": event}, speech_rms, (ev_start, ev_end)


def _add_reverb(rng: np.random.Generator, parts: dict[str, np.ndarray], n: int, sr: int) -> dict[str, Any]:
    """An indoor row's reverberant copies of both speakers and the event (added to ``parts``), and the
    reverb's parameters as the record's columns."""
    rt60 = float(rng.uniform(0.2, 0.8))
    pre = np.round(rng.uniform(5.0, 40.0, 3), 1)
    reverb = {
        "preDelayForEvent": pre[2], "preDelay1": pre[0], "preDelay2": pre[1],
        "highCut": round(float(rng.uniform(2500.0, 8000.0)), 1),
        "diffusion": round(float(rng.uniform(0.4, 1.0)), 3),
        "decay": round(rt60, 3),
        "freqDamp": round(float(rng.uniform(0.1, 0.9)), 3),
    }
    h = reverb_tails(rng, n, sr, reverb["decay"], pre, reverb["highCut"], reverb["diffusion"], reverb["freqDamp"])
    dry = np.stack([parts["speaker1"], parts["speaker2"], parts["event"]])
    wet = fft_convolve(dry, h, n)
    # Direct-to-reverberant ratio 3..12 dB, as a plug-in reverb's wet mix would set it.
    drr_db = rng.uniform(3.0, 12.0)
    dry_rms = np.sqrt(np.mean(dry**2, axis=1, keepdims=True)) + 1e-12
    wet_rms = np.sqrt(np.mean(wet**2, axis=1, keepdims=True)) + 1e-12
    wet = wet * (dry_rms / wet_rms) * 10 ** (-drr_db / 20)
    parts.update(sp1_reverb=wet[0], sp2_reverb=wet[1], ev_reverb=wet[2])
    return reverb


def _mix_down(parts: dict[str, np.ndarray], level_db: float, speech_rms: float
              ) -> tuple[dict[str, np.ndarray], float]:
    """Every part scaled to the row's level (peak below 0.9) and quantised, and the mix as their exact
    int16 sum; returns the arrays and the gain applied."""
    gain = 10 ** (level_db / 20) / speech_rms
    peak = np.max(np.abs(sum(parts.values()))) * gain
    if peak > _PEAK:
        gain *= _PEAK / peak
    q = {k: quantise(v * gain) for k, v in parts.items()}
    mix = np.sum([v.astype(np.int32) for v in q.values()], axis=0)
    if np.abs(mix).max() > 32767:  # pragma: no cover - the 0.9 peak leaves ~3000 LSB of headroom
        raise AssertionError("mix would clip")
    q["mix"] = mix.astype(np.int16)
    return q, gain


def _file_names(rng: np.random.Generator, indoor: bool) -> dict[str, str]:
    """Random 16-character names; the mix is ``<s1>-<s2>-<scene>-<event>[-<r>].wav``."""
    names = {k: _name(rng) for k in ("speaker1", "speaker2", "scene", "event")}
    r = _name(rng) if indoor else None
    mix_name = "-".join([names["speaker1"], names["speaker2"], names["scene"], names["event"]] + ([r] if r else []))
    files = {k: f"{v}.wav" for k, v in names.items()} | {"mix": mix_name + ".wav"}
    if r:
        files.update(sp1_reverb=f"sp1_{r}.wav", sp2_reverb=f"sp2_{r}.wav", ev_reverb=f"ev_{r}.wav")
    return files


def _record(rng: np.random.Generator, subset: str, seconds: float, sr: int, scene: _Scene,
            files: dict[str, str], levels: tuple[float, float], event_span: tuple[int, int]) -> dict[str, Any]:
    """The row's CSV columns but the reverb's; the source-file columns are drawn (the generator's
    provenance, which nothing reads back). ``levels``: (the dry speech RMS, the mix-down gain)."""
    s1_start, s2_start = rng.uniform(0.0, 20.0, 2)
    sc_start = rng.uniform(0.0, 60.0)
    utt = rng.integers(0, 1000, 2)
    sp1, sp2, scene_cls, event_cls = scene.sp1, scene.sp2, scene.scene_cls, scene.event_cls
    speech_rms, gain = levels
    return {
        "subset": subset,
        "speech1OryginalPath": f"speech/spk{sp1.index:02d}/spk{sp1.index:02d}_utt{utt[0]:04d}.wav",
        "speech1Start": round(float(s1_start), 3), "speech1End": round(float(s1_start) + seconds, 3),
        "speech2OryginalPath": f"speech/spk{sp2.index:02d}/spk{sp2.index:02d}_utt{utt[1]:04d}.wav",
        "speech2Start": round(float(s2_start), 3), "speech2End": round(float(s2_start) + seconds, 3),
        "SSR": scene.ssr,
        "sceneOryginalPath": f"scenes/{scene_cls}/{scene_cls}_{int(rng.integers(0, 100)):03d}.wav",
        "sceneStart": round(float(sc_start), 3), "sceneEnd": round(float(sc_start) + seconds, 3),
        "sceneRandomDB": scene.scene_db,
        "sceneOffsetDB": round(20 * np.log10(speech_rms * gain), 2),  # the speech level the scene is set against
        "sceneVolumeGain": round(float(speech_rms * 10 ** (-scene.scene_db / 20) * gain), 6),
        "eventOryginalPath": f"events/{event_cls}/{event_cls}_{int(rng.integers(0, 100)):03d}.wav",
        "eventStart": round(event_span[0] / sr, 3), "eventEnd": round(event_span[1] / sr, 3),
        "speaker1File": files["speaker1"], "speaker2File": files["speaker2"],
        "eventFile": files["event"], "sceneFile": files["scene"],
        "reverbForSpeaker1": files.get("sp1_reverb", np.nan),
        "reverbForSpeaker2": files.get("sp2_reverb", np.nan),
        "reverbForEvent": files.get("ev_reverb", np.nan),
        "mixFile": files["mix"], "sceneClass": scene_cls, "eventClass": event_cls,
    }


_FOLDER = {"speaker1": "clean", "speaker2": "clean", "scene": "scene", "event": "event", "mix": "mix",
           "sp1_reverb": "sp1_reverb", "sp2_reverb": "sp2_reverb", "ev_reverb": "ev_reverb"}


def _write_subset(folder: Path, corpus_name: str, subset: str, count: int, sample_rate: int, seconds: float,
                  seed: int, pool: tuple[Speaker, ...]) -> None:
    import pandas as pd

    for d in COMPONENT_DIRS:
        (folder / d).mkdir(parents=True, exist_ok=True)
    records = []
    for index in range(count):
        record, parts, files = make_row(seed, subset, index, sample_rate, seconds, pool)
        for role, data in parts.items():
            sf.write(folder / _FOLDER[role] / files[role], data, sample_rate, subtype="PCM_16", format="WAV")
        records.append(record)
    frame = pd.DataFrame(records, columns=list(COLUMNS))
    frame.to_csv(folder / f"corpus_{corpus_name}_{subset}_final.csv", index=False)


# --------------------------------------------------------------------------- corpus


def make_corpus(
    root: str | Path,
    train: int = 160,
    val: int = 40,
    test: int = 40,
    sample_rate: int = 8000,
    seconds: float = 4.0,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> Path:
    """Write a synthetic corpus at ``root`` (whose folder name is the corpus name); returns ``root``.

    The corpus is built in a hidden temporary folder beside ``root`` and renamed into place at the
    end, so an interrupted run never leaves something at ``root`` that looks like a corpus.
    """
    root = Path(root).expanduser()
    if sample_rate not in SAMPLE_RATES:
        raise ValueError(f"sample_rate {sample_rate!r}: PolSESS corpora are 8000 or 16000 Hz")
    if not seconds > 0 or round(seconds * sample_rate) < sample_rate // 10:
        raise ValueError(f"seconds {seconds!r}: give a clip length of at least 0.1 s")
    counts = {"train": train, "val": val, "test": test}
    for subset, count in counts.items():
        if not isinstance(count, (int, np.integer)) or isinstance(count, bool) or count < 0:
            raise ValueError(f"{subset} {count!r}: the number of rows must be an integer >= 0")
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise ValueError(f"{root}: already exists and is not empty; choose a new folder or remove it first")
    root.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if log:
        log(f"making a synthetic PolSESS corpus at {root} ({train}/{val}/{test} rows, {sample_rate} Hz, {seconds:g} s)")
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
    try:
        pool = speaker_pool(seed)
        for subset, count in counts.items():
            _write_subset(tmp / subset, root.name, subset, int(count), sample_rate, seconds, seed, pool)
        tmp.chmod(0o755)
        os.rename(tmp, root)  # atomic; replaces an empty folder, fails on a non-empty one
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if log:
        log(f"wrote {root} in {time.perf_counter() - start:.1f} s")
    return root


def _cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "polsess-tune"


def _demo_folder(cache_dir: Path | None) -> Path:
    p = DEMO_PARAMS
    name = (f"demo-v{SYNTH_VERSION}-{p['sample_rate'] // 1000}k-{p['seconds']:g}s-"
            f"{p['train']}-{p['val']}-{p['test']}-s{p['seed']}")
    return (cache_dir if cache_dir is not None else _cache_dir()) / name


def demo_corpus_root(cache_dir: Path | None = None) -> Path:
    """Where the embedded demo corpus lives (made or not); the folder name encodes its parameters."""
    return _demo_folder(cache_dir) / DEMO_NAME


def ensure_demo_corpus(log: Callable[[str], None] | None = print, cache_dir: Path | None = None) -> Path:
    """The demo corpus, made once per cache; safe when several processes (Ray trials) ask at once.

    A lock file serialises the makers; the marker file is written last, so a corpus without it
    (left by a killed process) is remade rather than trusted.
    """
    folder = _demo_folder(cache_dir)
    root = folder / DEMO_NAME
    marker = folder / _MARKER
    if marker.is_file() and root.is_dir():
        return root
    folder.mkdir(parents=True, exist_ok=True)
    with _locked(folder / ".lock"):
        if marker.is_file() and root.is_dir():
            return root  # another process made it while we waited
        for stale in folder.glob(f".{DEMO_NAME}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        if root.exists():
            shutil.rmtree(root)
        p = DEMO_PARAMS
        if log:
            log(f"making the synthetic demo corpus once ({p['train']}/{p['val']}/{p['test']} rows, "
                f"{p['sample_rate']} Hz, {p['seconds']:g} s) at {root}")
        make_corpus(root, **p)
        tmp_marker = folder / f".{_MARKER}.tmp"
        tmp_marker.write_text(json.dumps({"version": SYNTH_VERSION, **p}) + "\n")
        os.replace(tmp_marker, marker)
    return root


class _locked:
    """An exclusive ``flock`` on a file for the duration of a ``with`` block (no-op without fcntl)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def __enter__(self) -> _locked:
        self.fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return self
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing releases the lock
            self.fd = None
