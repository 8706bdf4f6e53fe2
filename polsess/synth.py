"""Synthetic corpora in exactly the PolSESS layout, for the demo and the tests.

No real PolSESS copy can be shipped (tens of GB), so everything that runs out of the box runs on a
corpus made here. It follows ``docs/polsess-format.md`` to the letter (folders, 34 CSV columns,
file naming, indoor/outdoor rows, the mix identity) so that the loader cannot tell it from the
real thing. The audio is crude but not trivial: harmonic voices with a per-speaker pitch range and
moving formants, structured background textures, transient events and synthetic reverb, so that a
separation model has something real to learn and SI-SDR moves when it does.

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
N_SPEAKERS = 20

INDOOR_SCENES = {"office": "hum", "cafe": "babble", "hall": "babble", "kitchen": "hum"}
OUTDOOR_SCENES = {"street": "traffic", "park": "wind", "rain": "rain", "market": "babble"}
EVENT_CLASSES = ("click", "beep", "knock", "clap", "ring")

DEMO_NAME = "PolSESS_demo"
DEMO_PARAMS: dict[str, Any] = {"train": 400, "val": 40, "test": 40, "sample_rate": 8000, "seconds": 2.0, "seed": 0}
CACHE_ENV = "POLSESS_TUNE_CACHE"
_MARKER = "COMPLETE.json"

_SUBSET_CODE = {"train": 0, "val": 1, "test": 2}
_ALPHABET = np.array(list("abcdefghijklmnopqrstuvwxyz0123456789"))
# Polish-ish vowel formants (F1, F2, F3) in Hz for an adult vocal tract; scaled per speaker.
_VOWELS = np.array(
    [[800, 1300, 2500], [550, 1800, 2550], [300, 2300, 3000], [500, 900, 2450], [330, 800, 2350],
     [420, 1600, 2500]],
    dtype=np.float64,
)
_BANDWIDTHS = (90.0, 110.0, 170.0)
_PEAK = 0.9 - 8 / 32768  # mix peak after scaling; the margin absorbs the parts' rounding


# --------------------------------------------------------------------------- speakers


@dataclass(frozen=True)
class Speaker:
    """One synthetic voice; pitch stays within ±15 % of ``f0`` so voices are told apart by pitch."""

    index: int
    f0: float
    formant_scale: float
    syllable_rate: float
    breathiness: float
    fricative_hz: float


def speaker_pool(seed: int = 0, n: int = N_SPEAKERS) -> tuple[Speaker, ...]:
    """The corpus's speakers: median pitches spread geometrically over 85..255 Hz, in random order."""
    rng = np.random.default_rng([seed, 1000])
    f0s = np.geomspace(85.0, 255.0, n)[rng.permutation(n)]
    out = []
    for i, f0 in enumerate(f0s):
        # Higher voices tend to have shorter vocal tracts, hence higher formants.
        scale = 0.88 + 0.25 * np.log(f0 / 85.0) / np.log(3.0) + rng.uniform(-0.03, 0.03)
        out.append(
            Speaker(
                index=i,
                f0=float(f0),
                formant_scale=float(scale),
                syllable_rate=float(rng.uniform(3.0, 6.0)),
                breathiness=float(rng.uniform(0.02, 0.12)),
                fricative_hz=float(rng.uniform(2500.0, 5500.0)),
            )
        )
    return tuple(out)


# --------------------------------------------------------------------------- signals


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x)) + 1e-20))


def _smooth_track(rng: np.random.Generator, n: int, sr: int, rate_hz: float) -> np.ndarray:
    """Zero-mean unit-ish random curve that moves at about ``rate_hz`` (piecewise-linear)."""
    step = max(1, int(sr / rate_hz))
    points = rng.standard_normal(n // step + 2)
    return np.interp(np.arange(n), np.arange(points.size) * step, points)


def _shaped_noise(rng: np.random.Generator, n: int, sr: int, gain: Callable[[np.ndarray], np.ndarray],
                  source: np.ndarray | None = None) -> np.ndarray:
    x = rng.standard_normal(n) if source is None else source
    spec = np.fft.rfft(x)
    freqs = np.fft.rfftfreq(n, 1.0 / sr)
    y = np.fft.irfft(spec * gain(freqs), n)
    return y / _rms(y)


def _speech(rng: np.random.Generator, spk: Speaker, n: int, sr: int) -> np.ndarray:
    """One utterance: syllables of (optional) fricative onset + voiced nucleus, with pauses; RMS 1."""
    segs: list[tuple[int, int, int, int]] = []  # start, length, kind (0 pause, 1 unvoiced, 2 voiced), vowel
    pos = int(rng.uniform(0.0, 0.25) * sr)
    if pos:
        segs.append((0, pos, 0, 0))
    while pos < n:
        syl = max(8, int(sr / spk.syllable_rate * rng.uniform(0.7, 1.3)))
        if rng.random() < 0.4:
            onset = int(syl * rng.uniform(0.25, 0.4))
            segs.append((pos, onset, 1, 0))
            pos += onset
            syl -= onset
        segs.append((pos, syl, 2, int(rng.integers(len(_VOWELS)))))
        pos += syl
        if rng.random() < 0.2:
            pause = int(rng.uniform(0.08, 0.35) * sr)
            segs.append((pos, pause, 0, 0))
            pos += pause
    starts, lens, kinds, vowels = (np.array(c) for c in zip(*segs, strict=True))
    gains = rng.uniform(0.5, 1.0, len(segs))
    seg = np.repeat(np.arange(len(segs)), lens)[:n]
    t = np.arange(n)
    shape = np.sin(np.pi * (t - starts[seg] + 0.5) / lens[seg])
    env_v = np.where(kinds[seg] == 2, shape**0.6, 0.0) * gains[seg]
    env_u = np.where(kinds[seg] == 1, shape, 0.0) * gains[seg]

    # Pitch: slow wander and a falling declination, clipped to the speaker's ±15 % range.
    decl = 1.04 - 0.08 * t / n
    f0 = spk.f0 * np.exp(0.05 * np.clip(_smooth_track(rng, n, sr, 4.0), -2, 2)) * decl
    f0 = np.clip(f0, 0.85 * spk.f0, 1.15 * spk.f0)
    phase = (2 * np.pi / sr) * np.cumsum(f0)

    # Formant tracks glide between the vowels of consecutive voiced segments.
    voiced = kinds == 2
    if not voiced.any():
        voiced = np.ones_like(voiced)
    centers = (starts + lens / 2)[voiced]
    formants = [np.interp(t, centers, _VOWELS[vowels[voiced], j] * spk.formant_scale) for j in range(3)]

    # Harmonic amplitudes at a 2 ms control rate (cheap), linearly interpolated to audio rate.
    hop = max(1, sr // 500)
    tc = np.arange(0, n + hop, hop)
    tc_clip = np.minimum(tc, n - 1)
    limit = min(0.95 * sr / 2, 5000.0)
    n_harm = int(limit / (0.85 * spk.f0))
    k = np.arange(1, n_harm + 1, dtype=np.float64)[:, None]
    fk = k * f0[tc_clip][None, :]
    amp = np.where(fk < limit, 1.0, 0.0) / k**0.5
    for j, bw in enumerate(_BANDWIDTHS):
        fj = formants[j][tc_clip][None, :]
        amp = amp * (fj**2 / np.sqrt((fj**2 - fk**2) ** 2 + (fk * bw) ** 2))
    # The audio-rate (harmonics x samples) work is done in float32; the phase is wrapped first so
    # that k * phase stays below ~450 rad, where float32 still resolves ~3e-5 rad.
    idx = np.minimum(t // hop, tc.size - 2)
    frac = ((t - idx * hop) / hop).astype(np.float32)[None, :]
    amp = amp.astype(np.float32)
    amp_full = amp[:, idx]
    amp_full += (amp[:, idx + 1] - amp_full) * frac
    offsets = rng.uniform(0, 2 * np.pi, n_harm).astype(np.float32)[:, None]
    arg = k.astype(np.float32) * np.mod(phase, 2 * np.pi).astype(np.float32)[None, :]
    arg += offsets
    np.sin(arg, out=arg)
    v = np.einsum("kn,kn->n", amp_full, arg).astype(np.float64)
    v /= _rms(v[env_v > 0.1]) if np.any(env_v > 0.1) else _rms(v)

    # Fricatives: noise with a speaker-specific band, kept below the Nyquist frequency.
    centre = min(spk.fricative_hz, 0.7 * sr / 2)
    u = _shaped_noise(rng, n, sr, lambda f: np.exp(-0.5 * (np.log2((f + 1.0) / centre) / 0.6) ** 2) + 0.02)
    x = v * env_v + 0.35 * u * env_u + spk.breathiness * u * env_v
    return x / _rms(x)


def _syllable_envelope(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    t = np.arange(n) / sr
    rate = rng.uniform(3.0, 6.0)
    return np.abs(np.sin(np.pi * rate * t + rng.uniform(0, np.pi))) ** 1.5 * (0.6 + 0.4 * np.sin(
        2 * np.pi * rng.uniform(0.2, 0.6) * t + rng.uniform(0, 2 * np.pi)))


def _scene(rng: np.random.Generator, texture: str, n: int, sr: int) -> np.ndarray:
    """A background texture with some structure; RMS 1."""
    t = np.arange(n) / sr
    if texture == "hum":
        mains = rng.choice([50.0, 60.0]) * rng.uniform(0.995, 1.005)
        hum = sum(np.sin(2 * np.pi * mains * h * t + rng.uniform(0, 2 * np.pi)) / h for h in range(1, 9))
        pink = _shaped_noise(rng, n, sr, lambda f: 1.0 / np.sqrt(np.maximum(f, 20.0)))
        x = hum / _rms(hum) + rng.uniform(0.3, 0.8) * pink
    elif texture == "babble":
        ltas = lambda f: np.exp(-0.5 * (np.log2(np.maximum(f, 1.0) / 700.0) / 1.2) ** 2)  # noqa: E731
        x = np.zeros(n)
        for _ in range(int(rng.integers(4, 8))):
            x += _shaped_noise(rng, n, sr, ltas) * _syllable_envelope(rng, n, sr)
    elif texture == "wind":
        low = _shaped_noise(rng, n, sr, lambda f: 1.0 / (1.0 + (f / rng.uniform(150.0, 400.0)) ** 2))
        gusts = np.exp(0.8 * _smooth_track(rng, n, sr, rng.uniform(0.3, 1.0)))
        x = low * gusts
    elif texture == "traffic":
        brown = _shaped_noise(rng, n, sr, lambda f: 1.0 / np.maximum(f, 30.0))
        centre, width = rng.uniform(0.2, 0.8) * n / sr, rng.uniform(0.5, 2.0)
        swell = 0.4 + np.exp(-0.5 * ((t - centre) / width) ** 2)
        x = brown * swell
    elif texture == "rain":
        drops = rng.standard_normal(n) * 0.3
        hits = rng.random(n) < 60.0 / sr
        drops[hits] += rng.standard_normal(int(hits.sum())) * 8.0
        x = _shaped_noise(rng, n, sr, lambda f: f / (f + 1000.0), source=drops)
    else:  # pragma: no cover - the class tables above are the only callers
        raise ValueError(f"unknown scene texture {texture!r}")
    return x / _rms(x)


def _event(rng: np.random.Generator, cls: str, n: int, sr: int) -> tuple[np.ndarray, int, int]:
    """A short transient placed somewhere in the clip; RMS 1 over its active part. Returns (x, start, end)."""
    nyq = sr / 2
    if cls == "click":
        count, gap = int(rng.integers(3, 7)), rng.uniform(0.02, 0.04)
        length = int((count * gap + 0.02) * sr)
        ev = np.zeros(length)
        tt = np.arange(int(0.01 * sr)) / sr
        click = rng.standard_normal(tt.size) * np.exp(-tt / 0.0015)
        for i in range(count):
            s = int(i * gap * sr)
            ev[s:s + click.size] += click * rng.uniform(0.6, 1.0)
    elif cls == "beep":
        dur, freq = rng.uniform(0.15, 0.5), min(rng.uniform(600.0, 2000.0), 0.8 * nyq)
        tt = np.arange(int(dur * sr)) / sr
        ramp = np.minimum(1.0, np.minimum(tt, tt[-1] - tt) / 0.01)
        ev = np.sin(2 * np.pi * freq * tt) * ramp
    elif cls == "knock":
        count, gap = int(rng.integers(2, 5)), rng.uniform(0.12, 0.2)
        tt = np.arange(int(0.08 * sr)) / sr
        freq = rng.uniform(100.0, 300.0)
        knock = (np.sin(2 * np.pi * freq * tt) + 0.3 * rng.standard_normal(tt.size)) * np.exp(-tt / 0.015)
        ev = np.zeros(int((count - 1) * gap * sr) + tt.size)
        for i in range(count):
            s = int(i * gap * sr)
            ev[s:s + tt.size] += knock
    elif cls == "clap":
        count, gap = int(rng.integers(1, 4)), rng.uniform(0.25, 0.45)
        tt = np.arange(int(0.06 * sr)) / sr
        ev = np.zeros(int((count - 1) * gap * sr) + tt.size)
        for i in range(count):
            s = int(i * gap * sr)
            ev[s:s + tt.size] += rng.standard_normal(tt.size) * np.exp(-tt / 0.012)
        ev = _shaped_noise(rng, ev.size, sr, lambda f: f / (f + 500.0), source=ev)
    elif cls == "ring":
        f1, f2 = min(rng.uniform(800.0, 1200.0), 0.7 * nyq), min(rng.uniform(1300.0, 1800.0), 0.8 * nyq)
        tt = np.arange(int(rng.uniform(0.4, 0.8) * sr)) / sr
        ev = np.where((tt * 20).astype(int) % 2 == 0, np.sin(2 * np.pi * f1 * tt), np.sin(2 * np.pi * f2 * tt))
        ev *= np.minimum(1.0, np.minimum(tt, tt[-1] - tt) / 0.01)
    else:  # pragma: no cover - EVENT_CLASSES is the only caller
        raise ValueError(f"unknown event class {cls!r}")
    ev = ev[:n] / _rms(ev[:n])
    start = int(rng.integers(0, n - ev.size + 1))
    x = np.zeros(n)
    x[start:start + ev.size] = ev
    return x, start, start + ev.size


def _reverb_tails(rng: np.random.Generator, n: int, sr: int, rt60: float, pre_delays_ms: np.ndarray,
                  high_cut: float, diffusion: float, freq_damp: float) -> np.ndarray:
    """Wet-only room responses for several sources: decaying noise after a pre-delay, no direct path.

    High frequencies decay faster (``freq_damp``); a lower ``diffusion`` makes the early tail sparser.
    The direct path is left out on purpose: the corpus stores the reverberant part only.
    """
    m = len(pre_delays_ms)
    length = int((pre_delays_ms.max() / 1000.0 + 1.1 * rt60) * sr) + 1
    t = np.arange(length)
    density = np.clip(diffusion, 0.05, 1.0)
    noise = rng.standard_normal((m, length)) * (rng.random((m, length)) < density) / np.sqrt(density)
    spec = np.fft.rfft(noise, axis=-1)
    f = np.fft.rfftfreq(length, 1.0 / sr)
    lowpass = 1.0 / (1.0 + (f / min(high_cut, 0.95 * sr / 2)) ** 4)
    split = 1.0 / (1.0 + (f / 1500.0) ** 2)
    low = np.fft.irfft(spec * lowpass * split, length, axis=-1)
    high = np.fft.irfft(spec * lowpass * (1 - split), length, axis=-1)
    pd = (pre_delays_ms[:, None] / 1000.0 * sr).astype(int)
    age = np.maximum(t[None, :] - pd, 0)
    rt60_high = rt60 * (1.0 - 0.6 * freq_damp)
    h = low * np.exp(-6.91 * age / (rt60 * sr)) + high * np.exp(-6.91 * age / (rt60_high * sr))
    h[t[None, :] < pd] = 0.0
    drr_db = rng.uniform(0.0, 8.0, m)  # direct-to-reverberant energy ratio
    h *= np.sqrt(10 ** (-drr_db[:, None] / 10) / np.sum(h**2, axis=-1, keepdims=True))
    return h


def _fft_convolve(x: np.ndarray, h: np.ndarray, n: int) -> np.ndarray:
    nfft = 1 << int(np.ceil(np.log2(x.shape[-1] + h.shape[-1] - 1)))
    return np.fft.irfft(np.fft.rfft(x, nfft, axis=-1) * np.fft.rfft(h, nfft, axis=-1), nfft, axis=-1)[..., :n]


def _quantise(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)


def _name(rng: np.random.Generator) -> str:
    return "".join(rng.choice(_ALPHABET, 16))


# --------------------------------------------------------------------------- rows


def is_indoor_row(seed: int, subset: str, index: int) -> bool:
    """Exactly one indoor row in each pair (2k, 2k+1), chosen at random: about half, never all of one kind."""
    first = np.random.default_rng([seed, _SUBSET_CODE[subset], index // 2, 7]).random() < 0.5
    return (index % 2 == 0) == first


def make_row(seed: int, subset: str, index: int, sample_rate: int, seconds: float,
             pool: tuple[Speaker, ...] | None = None
             ) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, str]]:
    """One corpus row: its CSV record, its parts as int16 arrays and their file names, by component."""
    sr, n = sample_rate, round(seconds * sample_rate)
    pool = speaker_pool(seed) if pool is None else pool
    rng = np.random.default_rng([seed, _SUBSET_CODE[subset], index])
    indoor = is_indoor_row(seed, subset, index)
    sp1, sp2 = (pool[i] for i in rng.choice(len(pool), 2, replace=False))
    ssr = round(float(rng.uniform(-5.0, 5.0)), 2)
    scene_db = round(float(rng.uniform(0.0, 14.0)), 2)
    scenes = INDOOR_SCENES if indoor else OUTDOOR_SCENES
    scene_cls = str(rng.choice(list(scenes)))
    event_cls = str(rng.choice(EVENT_CLASSES))
    event_db = rng.uniform(-8.0, 2.0)
    level_db = rng.uniform(-28.0, -20.0)

    s1 = _speech(rng, sp1, n, sr)
    s2 = _speech(rng, sp2, n, sr) * 10 ** (-ssr / 20)
    speech_rms = _rms(s1 + s2)
    scene_raw = _scene(rng, scenes[scene_cls], n, sr)
    scene = scene_raw * speech_rms * 10 ** (-scene_db / 20)
    event_raw, ev_start, ev_end = _event(rng, event_cls, n, sr)
    event = event_raw * speech_rms * 10 ** (event_db / 20)
    parts = {"speaker1": s1, "speaker2": s2, "scene": scene, "event": event}
    reverb: dict[str, Any] = dict.fromkeys(REVERB_PARAM_COLUMNS, np.nan)
    if indoor:
        rt60 = float(rng.uniform(0.2, 0.8))
        pre = np.round(rng.uniform(5.0, 40.0, 3), 1)
        reverb = {
            "preDelayForEvent": pre[2], "preDelay1": pre[0], "preDelay2": pre[1],
            "highCut": round(float(rng.uniform(2500.0, 8000.0)), 1),
            "diffusion": round(float(rng.uniform(0.4, 1.0)), 3),
            "decay": round(rt60, 3),
            "freqDamp": round(float(rng.uniform(0.1, 0.9)), 3),
        }
        h = _reverb_tails(rng, n, sr, reverb["decay"], pre, reverb["highCut"], reverb["diffusion"],
                          reverb["freqDamp"])
        wet = _fft_convolve(np.stack([s1, s2, event]), h, n)
        # Direct-to-reverberant ratio 3..12 dB, as a plug-in reverb's wet mix would set it.
        drr_db = rng.uniform(3.0, 12.0)
        dry_rms = np.sqrt(np.mean(np.stack([s1, s2, event]) ** 2, axis=1, keepdims=True)) + 1e-12
        wet_rms = np.sqrt(np.mean(wet**2, axis=1, keepdims=True)) + 1e-12
        wet = wet * (dry_rms / wet_rms) * 10 ** (-drr_db / 20)
        parts.update(sp1_reverb=wet[0], sp2_reverb=wet[1], ev_reverb=wet[2])

    gain = 10 ** (level_db / 20) / speech_rms
    peak = np.max(np.abs(sum(parts.values()))) * gain
    if peak > _PEAK:
        gain *= _PEAK / peak
    q = {k: _quantise(v * gain) for k, v in parts.items()}
    mix = np.sum([v.astype(np.int32) for v in q.values()], axis=0)
    if np.abs(mix).max() > 32767:  # pragma: no cover - the 0.9 peak leaves ~3000 LSB of headroom
        raise AssertionError("mix would clip")
    q["mix"] = mix.astype(np.int16)

    names = {k: _name(rng) for k in ("speaker1", "speaker2", "scene", "event")}
    r = _name(rng) if indoor else None
    mix_name = "-".join([names["speaker1"], names["speaker2"], names["scene"], names["event"]] + ([r] if r else []))
    files = {
        "speaker1": names["speaker1"] + ".wav", "speaker2": names["speaker2"] + ".wav",
        "scene": names["scene"] + ".wav", "event": names["event"] + ".wav", "mix": mix_name + ".wav",
    }
    if r:
        files.update(sp1_reverb=f"sp1_{r}.wav", sp2_reverb=f"sp2_{r}.wav", ev_reverb=f"ev_{r}.wav")
    s1_start, s2_start = rng.uniform(0.0, 20.0, 2)
    sc_start = rng.uniform(0.0, 60.0)
    utt = rng.integers(0, 1000, 2)
    scene_gain = speech_rms * 10 ** (-scene_db / 20) * gain
    record = {
        "subset": subset,
        "speech1OryginalPath": f"speech/spk{sp1.index:02d}/spk{sp1.index:02d}_utt{utt[0]:04d}.wav",
        "speech1Start": round(float(s1_start), 3), "speech1End": round(float(s1_start) + seconds, 3),
        "speech2OryginalPath": f"speech/spk{sp2.index:02d}/spk{sp2.index:02d}_utt{utt[1]:04d}.wav",
        "speech2Start": round(float(s2_start), 3), "speech2End": round(float(s2_start) + seconds, 3),
        "SSR": ssr,
        "sceneOryginalPath": f"scenes/{scene_cls}/{scene_cls}_{int(rng.integers(0, 100)):03d}.wav",
        "sceneStart": round(float(sc_start), 3), "sceneEnd": round(float(sc_start) + seconds, 3),
        "sceneRandomDB": scene_db,
        "sceneOffsetDB": round(20 * np.log10(speech_rms * gain), 2),  # the speech level the scene is set against
        "sceneVolumeGain": round(float(scene_gain), 6),
        "eventOryginalPath": f"events/{event_cls}/{event_cls}_{int(rng.integers(0, 100)):03d}.wav",
        "eventStart": round(ev_start / sr, 3), "eventEnd": round(ev_end / sr, 3),
        "speaker1File": files["speaker1"], "speaker2File": files["speaker2"],
        "eventFile": files["event"], "sceneFile": files["scene"],
        "reverbForSpeaker1": files.get("sp1_reverb", np.nan),
        "reverbForSpeaker2": files.get("sp2_reverb", np.nan),
        "reverbForEvent": files.get("ev_reverb", np.nan),
        "mixFile": files["mix"], "sceneClass": scene_cls, "eventClass": event_cls,
        **reverb,
    }
    return record, q, files


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
