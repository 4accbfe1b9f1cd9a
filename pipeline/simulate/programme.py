"""The played programme: a schedule of items, each synthesised from its own seed.

Every item is a bounded stretch (at most 20 s) of one sound type, so synthesising it costs
the same whatever the session length; items are cached per process, which is what lets a
block renderer fetch any sample range cheaply. Between items the source is digitally silent.
Signals are sound pressure in Pa at 1 m from the loudspeaker.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.signal import fftconvolve

SOUND_TYPES: tuple[str, ...] = ("sweep", "lowfreq", "music", "speech1", "speech2")

#: Item length range in seconds, per sound type. The sweep is one fixed measurement file (10 s,
#: 20 Hz-20 kHz) played whole each time, as a real test signal would be.
DURATIONS = {"sweep": (10.0, 10.0), "lowfreq": (8.0, 15.0), "music": (10.0, 20.0),
             "speech1": (10.0, 20.0), "speech2": (10.0, 20.0)}
#: Silent gap between items, seconds (the thesis splits on >= 1.1-1.4 s of silence).
GAP_S = (1.6, 2.8)
#: Long-term rms level at 1 m, dB SPL.
LEVEL_DB_SPL = {"sweep": 80.0, "lowfreq": 80.0, "music": 80.0, "speech1": 72.0, "speech2": 70.0}
FADE_S = 0.01


@dataclass(frozen=True)
class Item:
    """One programme item: samples ``[start, stop)`` of a session."""

    start: int
    stop: int
    sound_type: str
    seed: int


@lru_cache(maxsize=64)
def schedule(seed: int, session_index: int, n_samples: int, sample_rate: int) -> tuple[Item, ...]:
    """The programme of one session: items in order, separated by silent gaps.

    Sound types come in shuffled rounds of all five, so every type occurs in any few minutes.
    """
    rng = np.random.default_rng([seed, session_index, 0x5CED])
    items: list[Item] = []
    t = int(rng.uniform(0.5, 1.0) * sample_rate)
    order: list[str] = []
    min_len = int(2.5 * sample_rate)
    while True:
        if not order:
            order = list(rng.permutation(SOUND_TYPES))
        kind = order.pop(0)
        lo, hi = DURATIONS[kind]
        n = int(rng.uniform(lo, hi) * sample_rate)
        end_room = n_samples - int(GAP_S[0] * sample_rate)
        if t + n > end_room:
            n = end_room - t
            if n < min_len:
                break
        items.append(Item(t, t + n, kind, int(rng.integers(2**31))))
        t += n + int(rng.uniform(*GAP_S) * sample_rate)
    return tuple(items)


def render_programme(items: tuple[Item, ...], start: int, stop: int, sample_rate: int,
                     sources: str | None = None) -> np.ndarray:
    """Source signal (Pa at 1 m) for samples ``[start, stop)``; ``start`` may be negative.

    Parameters
    ----------
    items : tuple of Item
        The session's schedule (sorted, non-overlapping).
    start, stop : int
        Sample range.
    sample_rate : int
    sources : str, optional
        Directory of real recordings per sound type (see ``StudioPlan.sources``).
    """
    out = np.zeros(stop - start, np.float64)
    i = max(0, bisect.bisect_right([it.stop for it in items], start))
    for it in items[i:]:
        if it.start >= stop:
            break
        a, b = max(start, it.start), min(stop, it.stop)
        if a < b:
            sig = synth_item(it.sound_type, it.seed, it.stop - it.start, sample_rate, sources)
            out[a - start : b - start] = sig[a - it.start : b - it.start]
    return out


@lru_cache(maxsize=8)
def synth_item(sound_type: str, seed: int, n: int, sample_rate: int, sources: str | None = None) -> np.ndarray:
    """One programme item of ``n`` samples (Pa at 1 m), scaled to its level and faded in/out.

    Synthesised from ``seed``, or cut from a real recording under ``sources/<sound_type>/``.
    """
    rng = np.random.default_rng([seed, 0x17E])
    fn = {"sweep": _sweep, "lowfreq": _lowfreq, "music": _music,
          "speech1": lambda r, n, sr: _speech(r, n, sr, SPEAKERS[0]),
          "speech2": lambda r, n, sr: _speech(r, n, sr, SPEAKERS[1])}[sound_type]
    y = _from_sources(sources, sound_type, rng, n, sample_rate) if sources else None
    if y is None:
        y = fn(rng, n, sample_rate).astype(np.float64)
    rms = np.sqrt(np.mean(y * y)) + 1e-12
    level = LEVEL_DB_SPL[sound_type] + rng.uniform(-2.0, 2.0)
    y *= 20e-6 * 10 ** (level / 20) / rms
    nf = min(int(FADE_S * sample_rate), n // 2)
    ramp = np.sin(0.5 * np.pi * np.arange(nf) / nf) ** 2
    y[:nf] *= ramp
    y[n - nf :] *= ramp[::-1]
    y.flags.writeable = False  # shared through the cache
    return y


AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".aiff", ".aif")


def _from_sources(sources: str, sound_type: str, rng, n: int, sr: int) -> np.ndarray | None:
    """A random ``n``-sample stretch of a real recording in ``sources/<sound_type>/`` (None if none).

    The file and offset follow from the item's seed; multichannel files are averaged, other
    rates are resampled with soxr, short files are looped.
    """
    import os

    folder = os.path.join(sources, sound_type)
    if not os.path.isdir(folder):
        return None
    files = sorted(f for f in os.listdir(folder) if f.lower().endswith(AUDIO_EXTENSIONS))
    if not files:
        return None
    import soundfile as sf

    path = os.path.join(folder, files[int(rng.integers(len(files)))])
    info = sf.info(path)
    need = int(np.ceil(n * info.samplerate / sr)) + 16
    offset = int(rng.integers(0, max(1, info.frames - need)))
    y, fs = sf.read(path, start=offset, frames=need, dtype="float64", always_2d=True)
    y = y.mean(axis=1)
    if fs != sr:
        import soxr

        y = soxr.resample(y, fs, sr)
    if y.size == 0 or not np.any(y):
        return None
    return np.resize(y, n)


# --- helpers ----------------------------------------------------------------------------------------

def _band_noise(rng, n, sr, lo, hi, slope_db_oct=0.0):
    """Gaussian noise band-limited to [lo, hi] Hz with a spectral slope, via one FFT."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / sr)
    f[0] = 1.0
    g = ((f >= lo) & (f <= hi)) * (f / max(lo, 1.0)) ** (slope_db_oct / 6.02)
    return np.fft.irfft(spec * g, n)


def _adsr(n, sr, attack, release):
    env = np.ones(n)
    na, nr = min(n, int(attack * sr)), min(n, int(release * sr))
    if na:
        env[:na] = np.linspace(0, 1, na)
    if nr:
        env[n - nr :] *= np.linspace(1, 0, nr)
    return env


def _wavetable(harmonic_amps, size=2048):
    k = np.arange(1, len(harmonic_amps) + 1)
    ph = np.arange(size) / size
    return (np.asarray(harmonic_amps)[:, None] * np.sin(2 * np.pi * k[:, None] * ph)).sum(0)


def _osc(table, freq, n, sr, phase0=0.0):
    """Table-lookup oscillator (cheap; harmonics are limited by the caller)."""
    ph = (phase0 + freq * np.arange(n) / sr) % 1.0
    return table[(ph * table.size).astype(np.int64)]


# --- sweep -------------------------------------------------------------------------------------------

def _sweep(rng, n, sr):
    """Exponential swept sine 20 Hz - 20 kHz (Farina), 0.3 s of silence-free tail."""
    f1, f2 = 20.0, 20000.0
    T = n / sr
    t = np.arange(n) / sr
    L = T / np.log(f2 / f1)
    y = np.sin(2 * np.pi * f1 * L * (np.exp(t / L) - 1.0))
    nf = int(0.05 * sr)
    y[-nf:] *= np.linspace(1, 0, nf)
    return y


# --- low-frequency test track ---------------------------------------------------------------------------

def _lowfreq(rng, n, sr):
    """Loudspeaker low-end test: steady tones, low sweeps and band noise, all below ~300 Hz."""
    y = np.zeros(n)
    t0 = 0
    while t0 < n:
        m = min(n - t0, int(rng.uniform(1.5, 3.5) * sr))
        kind = rng.choice(["tone", "tone", "glide", "noise"])
        t = np.arange(m) / sr
        if kind == "tone":
            f = float(rng.choice([25, 31.5, 40, 50, 63, 80, 100, 125, 160, 200, 250]))
            seg = np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
        elif kind == "glide":
            fa, fb = 20.0, float(rng.uniform(150, 280))
            L = (m / sr) / np.log(fb / fa)
            seg = np.sin(2 * np.pi * fa * L * (np.exp(t / L) - 1.0))
        else:
            seg = _band_noise(rng, m, sr, 20.0, float(rng.uniform(120, 280)), -3.0)
            seg /= np.sqrt(np.mean(seg**2)) * np.sqrt(2) + 1e-12
        y[t0 : t0 + m] = seg * _adsr(m, sr, 0.05, 0.1)
        t0 += m
    return y


# --- music ----------------------------------------------------------------------------------------------

_BASS_TABLE = _wavetable([1.0, 0.5, 0.3, 0.15, 0.08, 0.04])
_PROGRESSIONS = ([0, 7, 9, 5], [0, 5, 7, 5], [9, 5, 0, 7], [0, 9, 5, 7])
#: Detuning of the three voices of a pad or lead note, cents (an ensemble / "supersaw" patch).
_DETUNE_CENTS = (-9.0, 0.0, 7.0)


def _midi(m):
    return 440.0 * 2 ** ((m - 69) / 12)


@lru_cache(maxsize=512)
def _saw_table(n_harmonics: int, tilt: float) -> np.ndarray:
    """Band-limited saw-like wavetable: harmonic ``k`` at ``k ** -tilt``."""
    k = np.arange(1, n_harmonics + 1)
    return _wavetable(tuple(k ** -tilt))


def _voice(freq, n, sr, rng, tilt, max_harmonics=60):
    """Three detuned band-limited saw voices (no partial above 0.45 x the sample rate)."""
    out = np.zeros(n)
    for c in _DETUNE_CENTS:
        f = freq * 2 ** (c / 1200)
        table = _saw_table(int(max(1, min(max_harmonics, 0.45 * sr // f))), tilt)
        out += _osc(table, f, n, sr, rng.uniform())
    return out / len(_DETUNE_CENTS)


def _music(rng, n, sr):
    """An electronic-music-like track: bass line, detuned saw pad and lead, kick, snare, hi-hat
    and a continuous shaker, with a reverb return.

    A produced mix is spectrally dense: pads and leads are rich in partials (saw-like, three
    detuned voices), percussion is noise, and the reverb fills the gaps in time.
    """
    bpm = rng.uniform(96, 132)
    beat = int(60.0 / bpm * sr)
    key = int(rng.integers(40, 52))  # bass root, MIDI
    prog = _PROGRESSIONS[int(rng.integers(len(_PROGRESSIONS)))]
    y = np.zeros(n + 4 * beat)
    kick = _kick(sr)
    snare = _snare(rng, sr)
    hat = _hat(rng, sr)
    shaker = _shaker(rng, sr, beat // 4)
    bar = 0
    while bar * 4 * beat < n:
        root = key + prog[bar % 4]
        minor = prog[bar % 4] == 9
        b0 = bar * 4 * beat
        chord = [root + 12, root + 12 + (3 if minor else 4), root + 19, root + 24]
        pad = sum(_voice(_midi(m), 4 * beat, sr, rng, tilt=1.3) for m in chord)
        y[b0 : b0 + 4 * beat] += 0.12 * pad * _adsr(4 * beat, sr, 0.2, 0.3)
        for k in range(4):
            s = b0 + k * beat
            note = root + (12 if k == 2 else 0)
            y[s : s + beat] += 0.5 * _osc(_BASS_TABLE, _midi(note), beat, sr) * np.exp(-np.arange(beat) / (0.25 * sr))
            if k in (0, 2):
                y[s : s + kick.size] += 0.9 * kick
            else:
                y[s : s + snare.size] += 0.5 * snare
            for h in (0, beat // 2):
                y[s + h : s + h + hat.size] += 0.15 * hat * rng.uniform(0.6, 1.0)
            for q in range(4):
                y[s + q * shaker.size : s + (q + 1) * shaker.size] += 0.05 * shaker * rng.uniform(0.5, 1.0)
            if rng.uniform() < 0.6:  # lead
                m = root + 24 + int(rng.choice([0, 3, 5, 7, 10, 12]))
                y[s : s + beat] += 0.08 * _voice(_midi(m), beat, sr, rng, tilt=1.0) * _adsr(beat, sr, 0.01, 0.08)
        bar += 1
    y = y[:n]
    # Diffuse reverb return (exponentially decaying noise, RT ~1.2 s): fills the gaps in time.
    m = int(1.2 * sr)
    ir = rng.standard_normal(m) * np.exp(-6.9 * np.arange(m) / m)
    wet = fftconvolve(y, ir)[:n]
    wet *= 10 ** (-6.0 / 20) * np.sqrt(np.mean(y * y) / (np.mean(wet * wet) + 1e-30))
    return y + wet


def _shaker(rng, sr, m):
    """One sixteenth-note shaker hit: broadband noise 3-16 kHz with a soft attack."""
    t = np.arange(m) / sr
    noise = _band_noise(rng, m, sr, 3000, 16000)
    noise /= np.abs(noise).max() + 1e-12
    return noise * np.sin(np.pi * t / t[-1]) ** 2


def _kick(sr):
    m = int(0.35 * sr)
    t = np.arange(m) / sr
    f = 45 + 90 * np.exp(-t / 0.04)
    return np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-t / 0.12)


def _snare(rng, sr):
    m = int(0.25 * sr)
    t = np.arange(m) / sr
    noise = _band_noise(rng, m, sr, 800, 12000)
    noise /= np.abs(noise).max() + 1e-12
    return (0.8 * noise + 0.5 * np.sin(2 * np.pi * 185 * t)) * np.exp(-t / 0.06)


def _hat(rng, sr):
    m = int(0.08 * sr)
    t = np.arange(m) / sr
    noise = _band_noise(rng, m, sr, 6000, 18000)
    noise /= np.abs(noise).max() + 1e-12
    return noise * np.exp(-t / 0.02)


# --- speech ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Speaker:
    f0: float            # mean fundamental, Hz
    f0_range: float      # intonation range, semitones
    formant_scale: float  # vocal-tract length scaling of formants
    rate: float          # syllables per second
    breathiness: float   # aspiration noise mixed into voiced frames


SPEAKERS = (Speaker(f0=112.0, f0_range=4.0, formant_scale=1.0, rate=4.6, breathiness=0.04),
            Speaker(f0=205.0, f0_range=6.0, formant_scale=1.17, rate=4.0, breathiness=0.08))

#: (F1, F2, F3) of a few vowels for an adult male voice, Hz.
_VOWELS = np.array([[730, 1090, 2440], [270, 2290, 3010], [300, 870, 2240], [530, 1840, 2480],
                    [660, 1720, 2410], [570, 840, 2410], [440, 1020, 2240], [490, 1350, 1690]], float)
_N_FFT, _HOP = 1024, 512


def _speech(rng, n, sr, spk: Speaker):
    """Source-filter speech: glottal pulses and noise through moving formants (STFT domain).

    Phrases of syllables (optional noise consonant + voiced vowel) separated by short pauses;
    formants glide between vowel targets and f0 follows a declining phrase contour.
    """
    n_frames = n // _HOP + 1
    ft = np.arange(n_frames) * _HOP / sr  # frame times
    voiced = np.zeros(n_frames)
    unvoiced = np.zeros(n_frames)
    fric_fc = np.full(n_frames, 4000.0)
    formants = np.zeros((n_frames, 3))
    f0_fr = np.full(n_frames, spk.f0)
    t, vowel = 0.0, _VOWELS[0]
    T = n / sr
    while t < T:
        phrase = rng.uniform(1.2, 3.5)
        t_end = min(T, t + phrase)
        t_phrase = t
        while t < t_end:
            syl = rng.exponential(1.0 / spk.rate) * 0.5 + 0.5 / spk.rate
            cons = rng.uniform(0.03, 0.09) if rng.uniform() < 0.65 else 0.0
            i0, i1, i2 = (np.searchsorted(ft, x) for x in (t, t + cons, min(t + syl, t_end)))
            if cons:
                unvoiced[i0:i1] = rng.uniform(0.15, 0.4)
                fric_fc[i0:i1] = rng.uniform(2500, 7500)
            new = _VOWELS[rng.integers(len(_VOWELS))] * rng.uniform(0.93, 1.07, 3)
            w = np.linspace(0, 1, max(i2 - i1, 1))[:, None] ** 0.5
            formants[i1:i2] = (1 - w) * vowel + w * new
            formants[i0:i1] = vowel
            env = np.sin(np.pi * np.linspace(0, 1, max(i2 - i1, 1))) ** 0.6
            voiced[i1:i2] = env * rng.uniform(0.6, 1.0)
            vowel = new
            t += syl
        sel = (ft >= t_phrase) & (ft < t_end)
        decl = spk.f0 * 2 ** ((spk.f0_range / 12) * (0.5 - (ft[sel] - t_phrase) / phrase))
        f0_fr[sel] = decl * (1 + 0.03 * np.sin(2 * np.pi * rng.uniform(2, 5) * ft[sel] + rng.uniform(0, 6)))
        t = t_end + rng.uniform(0.25, 0.8)  # pause (source keeps a faint breath noise off)
    formants[formants == 0] = np.broadcast_to(_VOWELS[7], formants.shape)[formants == 0]
    formants *= spk.formant_scale
    # Glottal excitation (Rosenberg pulse, differentiated for lip radiation) at the f0 contour.
    f0 = np.interp(np.arange(n, dtype=np.float32), np.arange(n_frames, dtype=np.float32) * _HOP,
                   f0_fr.astype(np.float32))
    phase = np.cumsum(f0 / np.float32(sr), dtype=np.float64).astype(np.float32) % np.float32(1.0)
    glottal = np.where(phase < 0.4, 0.5 - 0.5 * np.cos(np.float32(np.pi / 0.4) * phase),
                       np.maximum(np.cos(np.float32(0.5 * np.pi / 0.2) * (phase - np.float32(0.4))), 0.0)
                       * (phase < 0.6))
    exc_v = np.diff(glottal, prepend=np.float32(0.0)) * np.float32(sr / spk.f0 * 0.05)
    # STFT-domain filtering with per-frame envelopes; noise excitation is drawn as white spectra.
    f = np.fft.rfftfreq(_N_FFT, 1.0 / sr).astype(np.float32)
    win = np.sqrt(np.hanning(_N_FFT + 1)[:-1]).astype(np.float32)  # sqrt-Hann in and out, 50 % overlap
    Ev = _stft(exc_v, win)
    nfr = Ev.shape[0]
    fr = np.minimum(np.arange(nfr), n_frames - 1)
    En = (rng.standard_normal((nfr, f.size), dtype=np.float32)
          + 1j * rng.standard_normal((nfr, f.size), dtype=np.float32)) * np.float32(0.05 * np.sqrt(_N_FFT / 4))
    env_v = _formant_env(f, formants[fr].astype(np.float32), spk.formant_scale)
    fc = fric_fc[fr, None].astype(np.float32)
    fric = np.exp(np.float32(-0.5 / 0.36) * np.log2(np.maximum(f[None, :], 1.0) / fc) ** 2) + np.float32(0.05)
    v = voiced[fr, None].astype(np.float32)
    spec = Ev * (env_v * v) + En * (env_v * (spk.breathiness * v) + fric * (3.0 * unvoiced[fr, None]).astype(np.float32))
    return _istft(spec, win, n)


def _formant_env(f, formants, scale):
    """Cascade of three 2-pole resonances plus a fixed fourth formant, (frames, bins)."""
    inv = np.ones((formants.shape[0], f.size), np.float32)
    for F in [formants[:, k : k + 1] for k in range(3)] + [np.float32(3500.0 * scale)]:
        B = np.float32(60.0) + np.float32(0.06) * F
        x = f / F
        inv *= (1 - x * x) ** 2 + (f * B / (F * F)) ** 2
    return 1.0 / np.sqrt(inv)


def _stft(x, win):
    pad = np.concatenate([np.zeros(_N_FFT, x.dtype), x, np.zeros(_N_FFT, x.dtype)])
    frames = sliding_window_view(pad, _N_FFT)[::_HOP]
    return np.fft.rfft(frames * win, axis=1)


def _istft(spec, win, n):
    frames = np.fft.irfft(spec, _N_FFT, axis=1).astype(np.float32) * win
    R = _N_FFT // _HOP
    nf = frames.shape[0]
    chunks = frames.reshape(nf, R, _HOP)
    out = np.zeros((nf + R, _HOP), np.float32)
    for r in range(R):
        out[r : r + nf] += chunks[:, r]
    y = out.ravel()  # sqrt-Hann x sqrt-Hann at 50 % overlap sums to one
    return y[_N_FFT : _N_FFT + n]
