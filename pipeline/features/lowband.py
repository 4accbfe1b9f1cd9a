"""Low-frequency resolution for the long-term spectrum: the low LTAS bands from a long analysis.

The 1/6-octave bands below about 200 Hz are narrower than the 23.4 Hz bins of the 2048-point
frame FFT at 48 kHz, so several of them would repeat one bin (a staircase). The bands whose upper
edge is at most :data:`LOW_FMAX` are therefore measured a second time with 2.9 Hz bins: the signal
is low-pass filtered and decimated (by 32 at 48 kHz, a compiled FIR that computes only the kept
samples) and cut into long frames, 16,384 input samples long with the frame hop, each transformed
by a 512-point FFT. That costs a fraction of the frame FFT, where a 16,384-point FFT per hop would
cost about eight of them.

Long frame ``i`` covers samples ``[i * hop, i * hop + span)`` (:func:`layout`), like frame ``i``
but longer, so the frame stage stores its band levels as extra frame columns (``ltaslo_k``, NaN
where the recording ends before the long frame does) and blockwise results still equal
whole-signal ones. A clip averages only the long frames lying wholly inside it
(:func:`pipeline.features.clip_stats.clip_stats`); a clip shorter than one long frame (``span``, about 0.35 s) keeps the
short-FFT values for those bands.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from math import gcd

import numba
import numpy as np
import scipy.fft as sfft
from numpy.lib.stride_tricks import as_strided

from .windows import kaiser_lowpass

#: Bands whose upper edge is at or below this frequency (Hz) come from the long analysis.
LOW_FMAX = 320.0
#: Decimated rate aimed at (Hz): alias-free up to ``LOW_FMAX`` with a short filter.
LOW_RATE = 1500.0
#: Bin spacing of the long analysis (Hz): finer than the narrowest band (2.4 Hz wide at 20 Hz) allows
#: at a power-of-two length (16,384 samples at 48 kHz).
LOW_RESOLUTION = 2.93
#: Anti-alias filter: Kaiser-windowed FIR, 0.001 dB ripple below 320 Hz, >= 88 dB from 1180 Hz at 48 kHz.
FILTER_BETA = 8.0
FILTER_TAPS_PER_FACTOR = 9


@dataclass(frozen=True)
class LowLayout:
    """The long analysis for one frame setting (see :func:`layout`)."""

    factor: int          # decimation factor (divides the hop)
    n_fft: int           # long frame, in decimated samples
    hop: int             # frame hop, in decimated samples
    span: int            # long frame, in input samples (filter included)
    taps: np.ndarray     # anti-alias filter (odd length, symmetric, (len - 1) % factor == 0)
    window: np.ndarray   # Hann window of n_fft
    bands: np.ndarray    # LTAS band indices measured by the long analysis
    matrix: np.ndarray   # (bins used, len(bands)) bin averages, window-normalised, x factor


@lru_cache(maxsize=16)
def layout(s) -> LowLayout:
    """The long analysis of :class:`~pipeline.features.frames.FrameSettings` ``s`` (cached per settings)."""
    want = max(1, int(2 ** np.floor(np.log2(s.sample_rate / LOW_RATE))))
    factor = gcd(want, s.hop)
    rate = s.sample_rate / factor
    n_fft = int(2 ** np.round(np.log2(rate / LOW_RESOLUTION)))
    n_taps = FILTER_TAPS_PER_FACTOR * factor + 1
    taps = kaiser_lowpass(n_taps, rate / 2, FILTER_BETA, s.sample_rate)  # scipy.signal.firwin's
    edges = s.band_edges
    bands = np.flatnonzero(edges[1:] <= min(LOW_FMAX, rate / 2 - LOW_FMAX) * (1 + 1e-9))
    f = np.fft.rfftfreq(n_fft, 1.0 / rate)
    window = np.hanning(n_fft)
    m = np.zeros((f.size, bands.size))
    for j, b in enumerate(bands):
        sel = (f >= edges[b]) & (f < edges[b + 1])
        if not sel.any():  # no bin in the band: the one nearest its centre
            sel = np.abs(f - s.band_centres[b]) == np.abs(f - s.band_centres[b]).min()
        m[sel, j] = 1.0 / sel.sum()
    # Same scale as the frame LTAS: power per bin over the window energy; decimation divides the
    # power per bin of a broadband signal by the factor, so it is multiplied back.
    m *= factor / (window**2).sum()
    m = m[: np.flatnonzero(m.any(axis=1)).max() + 1 if bands.size else 0]  # bins above the last band: unused
    return LowLayout(factor, n_fft, s.hop // factor, factor * (n_fft - 1) + n_taps,
                     taps.astype(np.float32), window.astype(np.float32), bands, m.astype(np.float32))


def names(s) -> list[str]:
    """Frame-feature names of the long analysis's band levels."""
    return [f"ltaslo_{b:02d}" for b in layout(s).bands]


@numba.njit(cache=True, nogil=True, fastmath={"reassoc"})
def _decimate_kernel(y, taps, factor, out):  # pragma: no cover - compiled
    """``out[m] = sum_t taps[t] y[factor m + t]``: the low-pass filter at the kept samples only.

    Each output sums the same taps in the same order wherever it lies, so blockwise results
    equal whole-signal ones; about ten times faster than ``scipy.signal.upfirdn`` (float64).
    """
    n = taps.size
    for m in range(out.size):
        # A view with indices from 0: the loop vectorises (6x faster than indexing y[m * factor
        # + t], measured 0.15 -> 0.024 ms per s of 48 kHz audio; the same sums, bit for bit).
        seg = y[m * factor : m * factor + n]
        acc = np.float32(0.0)
        for t in range(n):
            acc += taps[t] * seg[t]
        out[m] = acc


def band_levels(y: np.ndarray, s, n_frames: int, amin: float) -> np.ndarray:
    """Long-analysis LTAS band levels (dB re full scale) of frames ``0 .. n_frames - 1`` of ``y``.

    ``y`` (float32) starts at frame 0's first sample; frames whose long frame runs past its end are NaN.
    ``amin``: the floor added before the log (``frames.AMIN``). Returns (n_frames, number of low
    bands) float32.
    """
    lay = layout(s)
    out = np.full((n_frames, lay.bands.size), np.nan, np.float32)
    n_dec = (y.size - lay.taps.size) // lay.factor + 1 if y.size >= lay.taps.size else 0
    n_long = min(n_frames, max(0, (n_dec - lay.n_fft) // lay.hop + 1))
    if n_long == 0 or lay.bands.size == 0:
        return out
    d = np.empty((n_long - 1) * lay.hop + lay.n_fft, np.float32)
    _decimate_kernel(np.ascontiguousarray(y, dtype=np.float32), lay.taps, lay.factor, d)
    frames = as_strided(d, shape=(n_long, lay.n_fft), strides=(lay.hop * d.strides[0], d.strides[0]), writeable=False)
    spec = sfft.rfft(frames * lay.window, axis=1)[:, : lay.matrix.shape[0]]
    power = spec.real**2 + spec.imag**2
    out[:n_long] = 10.0 * np.log10(np.maximum(power @ lay.matrix, amin))
    return out
