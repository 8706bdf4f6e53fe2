"""The sounds of the synthetic corpus: voices, background scenes, events and reverb (numpy only).

Crude but not trivial: harmonic voices with a per-speaker pitch range and moving formants,
structured background textures, transient events and synthetic reverb, so that a separation model
has something real to learn and SI-SDR moves when it does. :mod:`polsess.synth` lays them out as a
PolSESS corpus. Every function draws from the ``numpy.random.Generator`` it is given: the same
generator state gives the same samples. Signals are float64 arrays of shape ``(n,)`` (``(k, n)``
where stacked).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

N_SPEAKERS = 20


# Polish-ish vowel formants (F1, F2, F3) in Hz for an adult vocal tract; scaled per speaker.
_VOWELS = np.array(
    [[800, 1300, 2500], [550, 1800, 2550], [300, 2300, 3000], [500, 900, 2450], [330, 800, 2350],
     [420, 1600, 2500]],
    dtype=np.float64,
)


_BANDWIDTHS = (90.0, 110.0, 170.0)


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


def rms(x: np.ndarray) -> float:
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
    return y / rms(y)


def speech(rng: np.random.Generator, spk: Speaker, n: int, sr: int) -> np.ndarray:
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
    v /= rms(v[env_v > 0.1]) if np.any(env_v > 0.1) else rms(v)

    # Fricatives: noise with a speaker-specific band, kept below the Nyquist frequency.
    centre = min(spk.fricative_hz, 0.7 * sr / 2)
    u = _shaped_noise(rng, n, sr, lambda f: np.exp(-0.5 * (np.log2((f + 1.0) / centre) / 0.6) ** 2) + 0.02)
    x = v * env_v + 0.35 * u * env_u + spk.breathiness * u * env_v
    return x / rms(x)


def _syllable_envelope(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    t = np.arange(n) / sr
    rate = rng.uniform(3.0, 6.0)
    return np.abs(np.sin(np.pi * rate * t + rng.uniform(0, np.pi))) ** 1.5 * (0.6 + 0.4 * np.sin(
        2 * np.pi * rng.uniform(0.2, 0.6) * t + rng.uniform(0, 2 * np.pi)))


def scene_sound(rng: np.random.Generator, texture: str, n: int, sr: int) -> np.ndarray:
    """A background texture with some structure; RMS 1."""
    t = np.arange(n) / sr
    if texture == "hum":
        mains = rng.choice([50.0, 60.0]) * rng.uniform(0.995, 1.005)
        hum = sum(np.sin(2 * np.pi * mains * h * t + rng.uniform(0, 2 * np.pi)) / h for h in range(1, 9))
        pink = _shaped_noise(rng, n, sr, lambda f: 1.0 / np.sqrt(np.maximum(f, 20.0)))
        x = hum / rms(hum) + rng.uniform(0.3, 0.8) * pink
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
    return x / rms(x)


def event_sound(rng: np.random.Generator, cls: str, n: int, sr: int) -> tuple[np.ndarray, int, int]:
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
    ev = ev[:n] / rms(ev[:n])
    start = int(rng.integers(0, n - ev.size + 1))
    x = np.zeros(n)
    x[start:start + ev.size] = ev
    return x, start, start + ev.size


def reverb_tails(rng: np.random.Generator, n: int, sr: int, rt60: float, pre_delays_ms: np.ndarray,
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


def fft_convolve(x: np.ndarray, h: np.ndarray, n: int) -> np.ndarray:
    nfft = 1 << int(np.ceil(np.log2(x.shape[-1] + h.shape[-1] - 1)))
    return np.fft.irfft(np.fft.rfft(x, nfft, axis=-1) * np.fft.rfft(h, nfft, axis=-1), nfft, axis=-1)[..., :n]


def quantise(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)

