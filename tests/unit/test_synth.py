"""The synthetic corpus must be indistinguishable in layout from PolSESS: per subset a metadata CSV
whose columns name the mix, clean, scene and event WAVs, and the MM-IPC variants they allow."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from helpers import REPO

import polsess.synth as synth
from polsess.synth import demo_corpus_root, ensure_demo_corpus, make_corpus, speaker_pool

# Copied from the format document, not from the code under test.
DOC_COLUMNS = """subset, speech1OryginalPath, speech1Start, speech1End, speech2OryginalPath,
speech2Start, speech2End, SSR, sceneOryginalPath, sceneStart, sceneEnd,
sceneRandomDB, sceneOffsetDB, sceneVolumeGain, eventOryginalPath, eventStart,
eventEnd, speaker1File, speaker2File, eventFile, sceneFile, reverbForSpeaker1,
reverbForSpeaker2, reverbForEvent, mixFile, sceneClass, eventClass,
preDelayForEvent, preDelay1, preDelay2, highCut, diffusion, decay, freqDamp"""
COLUMNS = [c.strip() for c in DOC_COLUMNS.replace("\n", " ").split(",")]
FOLDERS = ("clean", "mix", "scene", "event", "sp1_reverb", "sp2_reverb", "ev_reverb")
PARTS = {  # column → folder
    "speaker1File": "clean", "speaker2File": "clean", "sceneFile": "scene", "eventFile": "event",
    "reverbForSpeaker1": "sp1_reverb", "reverbForSpeaker2": "sp2_reverb", "reverbForEvent": "ev_reverb",
}
REVERB = ["reverbForSpeaker1", "reverbForSpeaker2", "reverbForEvent"]
LSB = 1 / 32768
NAME = r"[A-Za-z0-9]{16}"


def read_csv(root: Path, subset: str) -> pd.DataFrame:
    return pd.read_csv(root / subset / f"corpus_{root.name}_{subset}_final.csv")


def read(root: Path, subset: str, folder: str, name: str) -> np.ndarray:
    data, _ = sf.read(root / subset / folder / name, dtype="float64")
    return data


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout_columns_and_names(demo_corpus: Path) -> None:
    assert len(COLUMNS) == 34
    for subset, rows in {"train": 16, "val": 8, "test": 8}.items():
        for folder in FOLDERS:
            assert (demo_corpus / subset / folder).is_dir()
        df = read_csv(demo_corpus, subset)
        assert list(df.columns) == COLUMNS
        assert len(df) == rows
        assert (df["subset"] == subset).all()
        assert df[COLUMNS].iloc[:, :17].notna().all().all()  # everything up to eventEnd is always filled
        listed = set()
        for _, row in df.iterrows():
            for column, folder in PARTS.items():
                if isinstance(row[column], str):
                    listed.add(f"{folder}/{row[column]}")
            listed.add(f"mix/{row['mixFile']}")
            for column in ("speaker1File", "speaker2File", "sceneFile", "eventFile"):
                assert re.fullmatch(NAME + r"\.wav", row[column])
            stems = [row[c][:-4] for c in ("speaker1File", "speaker2File", "sceneFile", "eventFile")]
            if isinstance(row["reverbForSpeaker1"], str):
                r = re.fullmatch(r"sp1_(" + NAME + r")\.wav", row["reverbForSpeaker1"]).group(1)
                assert row["reverbForSpeaker2"] == f"sp2_{r}.wav"
                assert row["reverbForEvent"] == f"ev_{r}.wav"
                stems.append(r)
            assert row["mixFile"] == "-".join(stems) + ".wav"
            assert -5 <= row["SSR"] <= 5 and 0 <= row["sceneRandomDB"] <= 14
            assert row["speech1End"] > row["speech1Start"] and row["eventEnd"] > row["eventStart"]
        on_disk = {f"{p.parent.name}/{p.name}" for p in (demo_corpus / subset).rglob("*.wav")}
        assert on_disk == listed
        for rel in sorted(listed)[:6]:
            info = sf.info(demo_corpus / subset / rel)
            assert (info.samplerate, info.channels, info.frames, info.subtype) == (8000, 1, 8000, "PCM_16")
    assert not list(demo_corpus.parent.glob(".*tmp*"))  # the build folder was renamed, not left behind


def test_indoor_rows_have_reverb_outdoor_rows_have_nan(demo_corpus: Path) -> None:
    for subset in ("train", "val", "test"):
        df = read_csv(demo_corpus, subset)
        indoor = df["reverbForSpeaker1"].notna()
        assert 0 < indoor.sum() < len(df)  # both kinds in every subset
        assert (df[REVERB].notna().all(axis=1) == indoor).all()
        assert df.loc[~indoor, REVERB].isna().all().all()
        assert df.loc[indoor, ["decay", "preDelay1", "highCut"]].notna().all().all()
        assert df.loc[indoor, "decay"].between(0.2, 0.8).all()
        for _, row in df[indoor].iterrows():
            for column in REVERB:
                assert (demo_corpus / subset / PARTS[column] / row[column]).is_file()
        outdoor_scenes, indoor_scenes = set(df.loc[~indoor, "sceneClass"]), set(df.loc[indoor, "sceneClass"])
        assert not outdoor_scenes & indoor_scenes


def test_mix_is_the_sum_of_its_parts(demo_corpus: Path) -> None:
    df = read_csv(demo_corpus, "val")
    kinds = set()
    for _, row in df.iterrows():
        mix = read(demo_corpus, "val", "mix", row["mixFile"])
        total = sum(read(demo_corpus, "val", folder, row[col]) for col, folder in PARTS.items()
                    if isinstance(row[col], str))
        assert np.abs(mix - total).max() <= 4 * LSB
        assert np.abs(mix).max() <= 0.9
        s1 = read(demo_corpus, "val", "clean", row["speaker1File"])
        s2 = read(demo_corpus, "val", "clean", row["speaker2File"])
        scene = read(demo_corpus, "val", "scene", row["sceneFile"])
        ssr = 10 * np.log10(np.mean(s1**2) / np.mean(s2**2))
        scene_db = 10 * np.log10(np.mean((s1 + s2) ** 2) / np.mean(scene**2))
        assert ssr == pytest.approx(row["SSR"], abs=0.05)
        assert scene_db == pytest.approx(row["sceneRandomDB"], abs=0.05)
        kinds.add(isinstance(row["reverbForSpeaker1"], str))
    assert kinds == {True, False}


def test_reverb_files_are_wet_only(demo_corpus: Path) -> None:
    df = read_csv(demo_corpus, "train")
    for _, row in df[df["reverbForSpeaker1"].notna()].iterrows():
        dry = read(demo_corpus, "train", "clean", row["speaker1File"])
        wet = read(demo_corpus, "train", "sp1_reverb", row["reverbForSpeaker1"])
        assert 0 < np.sum(wet**2) < 3 * np.sum(dry**2)
        # A dry direct path left in would correlate strongly with the dry signal at lag 0.
        assert abs(np.corrcoef(dry, wet)[0, 1]) < 0.5


def test_speakers_have_distinct_pitch(demo_corpus: Path) -> None:
    """Rough autocorrelation pitch of each clean file matches its speaker's pitch in the pool."""
    pool = speaker_pool(0)
    df = read_csv(demo_corpus, "train")
    estimates: dict[int, list[float]] = {}
    for _, row in df.iterrows():
        for column, path_column in (("speaker1File", "speech1OryginalPath"), ("speaker2File", "speech2OryginalPath")):
            sid = int(re.search(r"spk(\d+)", row[path_column]).group(1))
            estimates.setdefault(sid, []).append(_pitch(read(demo_corpus, "train", "clean", row[column]), 8000))
    assert len(estimates) >= 8
    for sid, values in estimates.items():
        for value in values:
            assert value == pytest.approx(pool[sid].f0, rel=0.1), sid
    lows = [s.f0 for s in pool if s.f0 < 120]
    highs = [s.f0 for s in pool if s.f0 > 200]
    assert lows and highs and max(lows) * 1.5 < min(highs)  # a wide, distinct spread of voices


def _pitch(x: np.ndarray, sr: int) -> float:
    frame = int(0.04 * sr)
    starts = range(0, len(x) - frame, frame // 2)
    energy = np.array([np.sum(x[s:s + frame] ** 2) for s in starts])
    found = []
    for s, e in zip(starts, energy, strict=True):
        if e < np.percentile(energy, 60):
            continue
        seg = x[s:s + frame] * np.hanning(frame)
        ac = np.fft.irfft(np.abs(np.fft.rfft(seg, 2 * frame)) ** 2)[:frame]
        lo, hi = sr // 320, sr // 60
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] > 0.3 * ac[0]:
            found.append(sr / lag)
    return float(np.median(found))


def test_speech_has_pauses_and_syllables(demo_corpus: Path) -> None:
    row = read_csv(demo_corpus, "train").iloc[0]
    x = read(demo_corpus, "train", "clean", row["speaker1File"])
    frames = x[: len(x) // 80 * 80].reshape(-1, 80)  # 10 ms
    level = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    assert np.mean(level < level.max() - 30) > 0.03  # gaps between syllables or words
    assert np.std(level) > 6  # strongly modulated, unlike stationary noise


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    kwargs = {"train": 3, "val": 1, "test": 1, "seconds": 0.5}
    a = make_corpus(tmp_path / "a" / "PolSESS_det", **kwargs)
    b = make_corpus(tmp_path / "b" / "PolSESS_det", **kwargs)
    c = make_corpus(tmp_path / "c" / "PolSESS_det", **kwargs, seed=1)
    assert tree_digest(a) == tree_digest(b)
    assert tree_digest(a).keys() != tree_digest(c).keys()  # new random names
    assert not read_csv(a, "train").equals(read_csv(c, "train"))
    # A row depends on (seed, subset, index) only: a bigger corpus starts with the same rows.
    d = make_corpus(tmp_path / "d" / "PolSESS_det", **{**kwargs, "train": 4})
    pd.testing.assert_frame_equal(read_csv(d, "train").iloc[:3], read_csv(a, "train"))


def test_16k_corpus(tmp_path: Path) -> None:
    root = make_corpus(tmp_path / "PolSESS_16k", train=2, val=1, test=1, sample_rate=16000, seconds=0.5)
    df = read_csv(root, "train")
    for _, row in df.iterrows():
        info = sf.info(root / "train" / "mix" / row["mixFile"])
        assert (info.samplerate, info.frames) == (16000, 8000)
        total = sum(read(root, "train", folder, row[col]) for col, folder in PARTS.items()
                    if isinstance(row[col], str))
        assert np.abs(read(root, "train", "mix", row["mixFile"]) - total).max() <= 4 * LSB


def test_rejects_bad_arguments_and_non_empty_root(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="8000 or 16000"):
        make_corpus(tmp_path / "x", sample_rate=22050)
    with pytest.raises(ValueError, match="train"):
        make_corpus(tmp_path / "x", train=-1)
    full = tmp_path / "full"
    full.mkdir()
    (full / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        make_corpus(full, train=1, val=1, test=1, seconds=0.2)
    assert (full / "notes.txt").read_text() == "mine"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert make_corpus(empty, train=1, val=1, test=1, seconds=0.2) == empty
    assert (empty / "val" / "corpus_empty_val_final.csv").is_file()


def test_interrupted_make_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = synth.make_row

    def interrupted(seed, subset, index, *args, **kwargs):
        if subset == "val":
            raise KeyboardInterrupt
        return real(seed, subset, index, *args, **kwargs)

    monkeypatch.setattr(synth, "make_row", interrupted)
    with pytest.raises(KeyboardInterrupt):
        make_corpus(tmp_path / "PolSESS_cut", train=2, val=1, test=1, seconds=0.2)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- the demo corpus

SMALL_DEMO = {"train": 4, "val": 2, "test": 2, "sample_rate": 8000, "seconds": 0.5, "seed": 0}


def test_cache_folder_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("POLSESS_TUNE_CACHE", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert demo_corpus_root() == tmp_path / "mine" / "demo-v2-8k-2s-400-40-40-s0" / "PolSESS_demo"
    monkeypatch.delenv("POLSESS_TUNE_CACHE")
    assert demo_corpus_root().parent.parent == tmp_path / "xdg" / "polsess-tune"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert demo_corpus_root().parent.parent == tmp_path / "home" / ".cache" / "polsess-tune"
    assert demo_corpus_root(tmp_path / "given").parent.parent == tmp_path / "given"


def test_demo_corpus_made_once_then_reused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("POLSESS_TUNE_CACHE", str(tmp_path / "cache"))
    for key, value in SMALL_DEMO.items():
        monkeypatch.setitem(synth.DEMO_PARAMS, key, value)
    logs: list[str] = []
    root = ensure_demo_corpus(log=logs.append)
    assert root == demo_corpus_root() and root.is_relative_to(tmp_path / "cache")
    assert root.name == "PolSESS_demo" and root.parent.name == "demo-v2-8k-0.5s-4-2-2-s0"
    assert len(logs) == 1 and str(root) in logs[0]
    assert len(read_csv(root, "train")) == 4
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    again: list[str] = []
    assert ensure_demo_corpus(log=again.append) == root
    assert again == []
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == before


def test_incomplete_demo_corpus_is_remade(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("POLSESS_TUNE_CACHE", str(tmp_path))
    for key, value in SMALL_DEMO.items():
        monkeypatch.setitem(synth.DEMO_PARAMS, key, value)
    root = demo_corpus_root()
    (root / "train").mkdir(parents=True)  # a corpus left without its completion marker
    assert ensure_demo_corpus(log=None) == root
    assert len(read_csv(root, "train")) == 4


def test_demo_corpus_two_processes_at_once(tmp_path: Path) -> None:
    code = (
        "import polsess.synth as s\n"
        f"s.DEMO_PARAMS.update({SMALL_DEMO!r})\n"
        "print('ROOT', s.ensure_demo_corpus(log=lambda m: print('MADE', m)))\n"
    )
    env = {**os.environ, "POLSESS_TUNE_CACHE": str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env,
                              cwd=REPO) for _ in range(2)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    lines = "".join(outs).splitlines()
    assert sum(line.startswith("MADE") for line in lines) == 1
    roots = {line for line in lines if line.startswith("ROOT")}
    assert len(roots) == 1
