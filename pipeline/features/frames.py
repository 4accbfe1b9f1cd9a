"""Frame-level feature kernels: pure numpy, no dask, no I/O.

Frames are *not* centred: frame ``i`` covers samples ``[i * hop, i * hop + n_fft)``.
That makes a block of frames computable from any slice of the signal that contains
those samples, so a blockwise computation equals a whole-signal one exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.fft as sfft
from numpy.lib.stride_tricks import sliding_window_view

#: Floor added before every log, in power units relative to full scale (-100 dBFS).
#: A fixed global reference, unlike librosa's per-call ``ref=np.max``/``top_db``.
AMIN = 1e-10

#: Octave band edges of the spectral-contrast feature (librosa's defaults: fmin 200 Hz, 6 bands).
CONTRAST_FMIN = 200.0
CONTRAST_BANDS = 6
CONTRAST_QUANTILE = 0.02


@dataclass(frozen=True)
class FrameSettings:
    """How audio is cut into frames and which frame features are computed.

    Parameters
    ----------
    sample_rate : int
        Audio sample rate in Hz (all recordings of a store share it).
    n_fft, hop : int
        Window length and hop in samples (not centred).
    n_mels, n_mfcc : int
        Log-mel bands and cepstral coefficients.
    fmin, fmax : float
        Frequency range of the mel and long-term-spectrum band layouts.
    bands_per_octave : int
        Resolution of the long-term average spectrum (LTAS) band layout.
    """

    sample_rate: int = 48000
    n_fft: int = 2048
    hop: int = 512
    n_mels: int = 64
    n_mfcc: int = 20
    fmin: float = 20.0
    fmax: float = 20000.0
    bands_per_octave: int = 6

    def __post_init__(self):
        if self.hop <= 0 or self.n_fft < self.hop:
            raise ValueError(f"need 0 < hop <= n_fft, got hop={self.hop}, n_fft={self.n_fft}")
        if not 0 < self.fmin < self.fmax <= self.sample_rate / 2:
            raise ValueError(
                f"need 0 < fmin < fmax <= sample_rate/2, got {self.fmin}, {self.fmax}, {self.sample_rate}"
            )

    def n_frames(self, n_samples: int) -> int:
        """Number of whole frames in a signal of ``n_samples``."""
        return max(0, (n_samples - self.n_fft) // self.hop + 1)

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop

    @cached_property
    def freqs(self) -> np.ndarray:
        return np.fft.rfftfreq(self.n_fft, 1.0 / self.sample_rate).astype(np.float32)

    @cached_property
    def window(self) -> np.ndarray:
        return np.hanning(self.n_fft).astype(np.float32)

    @cached_property
    def band_edges(self) -> np.ndarray:
        """LTAS band edges in Hz: fractional-octave bands from fmin to fmax."""
        n = int(np.floor(np.log2(self.fmax / self.fmin) * self.bands_per_octave))
        return self.fmin * 2.0 ** (np.arange(n + 1) / self.bands_per_octave)

    @cached_property
    def ltas_matrix(self) -> np.ndarray:
        """(n_bins, n_bands) averaging matrix; each band holds at least one bin."""
        f = self.freqs
        edges = self.band_edges
        m = np.zeros((f.size, edges.size - 1), np.float32)
        centres = np.sqrt(edges[:-1] * edges[1:])
        for b, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
            sel = (f >= lo) & (f < hi)
            if not sel.any():  # narrow low bands: take the bin nearest the band centre
                sel = np.zeros_like(sel)
                sel[np.argmin(np.abs(f - centres[b]))] = True
            m[sel, b] = 1.0 / sel.sum()
        return m

    @cached_property
    def mel_matrix(self) -> np.ndarray:
        import librosa

        mel = librosa.filters.mel(
            sr=self.sample_rate, n_fft=self.n_fft, n_mels=self.n_mels, fmin=self.fmin, fmax=self.fmax
        )
        return np.ascontiguousarray(mel.T.astype(np.float32))

    @cached_property
    def dct_matrix(self) -> np.ndarray:
        """Orthonormal DCT-II, (n_mels, n_mfcc): MFCC = log-mel (dB) @ dct (as librosa)."""
        return np.ascontiguousarray(
            sfft.dct(np.eye(self.n_mels), type=2, norm="ortho", axis=0)[:, : self.n_mfcc].astype(np.float32)
        )

    @cached_property
    def band_matrix(self) -> np.ndarray:
        """Mel and LTAS layouts side by side, so one matrix product gives both."""
        return np.ascontiguousarray(np.concatenate([self.mel_matrix, self.ltas_matrix], axis=1))

    @cached_property
    def contrast_slices(self) -> list[slice]:
        """Bin ranges of the octave bands used for spectral contrast."""
        f = self.freqs
        edges = [0.0] + [CONTRAST_FMIN * 2.0**k for k in range(CONTRAST_BANDS)] + [self.sample_rate / 2 + 1]
        out = []
        for lo, hi in zip(edges[:-1], edges[1:]):
            idx = np.flatnonzero((f >= lo) & (f < hi))
            out.append(slice(int(idx[0]), int(idx[-1]) + 1))
        return out

    @cached_property
    def feature_names(self) -> tuple[str, ...]:
        names = ["rms_db", "zcr48", "centroid", "bandwidth", "rolloff", "flatness_db", "hnr_db"]
        names += [f"contrast_{i}" for i in range(CONTRAST_BANDS + 1)]
        names += [f"mfcc48_{i:02d}" for i in range(self.n_mfcc)]
        names += [f"logmel_{i:02d}" for i in range(self.n_mels)]
        names += [f"ltas_{i:02d}" for i in range(self.band_edges.size - 1)]
        return tuple(names)

    def index(self, prefix: str) -> np.ndarray:
        """Column indices of the frame features whose name starts with ``prefix``."""
        return np.array([i for i, n in enumerate(self.feature_names) if n.startswith(prefix)])


def to_float(samples: np.ndarray) -> np.ndarray:
    """PCM integers to float32 in [-1, 1); floats pass through as float32."""
    if np.issubdtype(samples.dtype, np.integer):
        return samples.astype(np.float32) / np.float32(np.iinfo(samples.dtype).max + 1)
    return samples.astype(np.float32, copy=False)


def frame_view(y: np.ndarray, s: FrameSettings) -> np.ndarray:
    """Read-only (n_frames, n_fft) view of ``y``."""
    n = s.n_frames(y.size)
    if n == 0:
        return np.zeros((0, s.n_fft), y.dtype)
    return sliding_window_view(y[: (n - 1) * s.hop + s.n_fft], s.n_fft)[:: s.hop]


def power_spectrum(frames: np.ndarray, s: FrameSettings) -> np.ndarray:
    """Hann-windowed power spectrum, (n_frames, n_fft // 2 + 1), float32."""
    spec = sfft.rfft(frames * s.window, axis=1)
    return (spec.real**2 + spec.imag**2).astype(np.float32, copy=False)


def _db(x: np.ndarray) -> np.ndarray:
    return (10.0 * np.log10(np.maximum(x, AMIN))).astype(np.float32, copy=False)


def frame_features(y: np.ndarray, s: FrameSettings, *, frames_per_call: int = 2048) -> np.ndarray:
    """All frame features of a signal, (n_frames, len(s.feature_names)), float32.

    Parameters
    ----------
    y : ndarray
        1-D signal (PCM integers or float in [-1, 1)).
    s : FrameSettings
    frames_per_call : int
        Frames processed at once; bounds the working memory (~ frames x n_fft x 16 B).
    """
    y = to_float(np.asarray(y).ravel())
    n = s.n_frames(y.size)
    out = np.empty((n, len(s.feature_names)), np.float32)
    for a in range(0, n, frames_per_call):
        b = min(n, a + frames_per_call)
        out[a:b] = _features_block(y[a * s.hop : (b - 1) * s.hop + s.n_fft], s)
    return out


def _features_block(y: np.ndarray, s: FrameSettings) -> np.ndarray:
    frames = frame_view(y, s)
    n = frames.shape[0]
    power = power_spectrum(frames, s)
    mag = np.sqrt(power)
    f = s.freqs
    # Normalise the window's energy so RMS and band powers are in dB re full-scale sine-ish units.
    wnorm = np.float32(1.0 / (s.window**2).sum())

    mean_sq = np.einsum("ij,ij->i", frames, frames) / np.float32(s.n_fft)
    rms_db = _db(mean_sq)
    signs = np.signbit(frames)
    zcr = np.count_nonzero(signs[:, 1:] != signs[:, :-1], axis=1).astype(np.float32) / np.float32(s.n_fft)

    msum = mag.sum(axis=1) + np.float32(1e-12)
    centroid = (mag @ f) / msum
    bandwidth = np.sqrt(np.maximum((mag @ (f * f)) / msum - centroid**2, 0.0))
    psum = power.sum(axis=1)
    cum = np.cumsum(power, axis=1)
    rolloff = f[np.minimum((cum < 0.85 * psum[:, None]).sum(axis=1), f.size - 1)]
    log_power = np.log(power + np.float32(AMIN))
    flatness_db = (10.0 / np.log(10.0)) * (log_power.mean(axis=1) - np.log(power.mean(axis=1) + np.float32(AMIN)))

    bands = _db((power * wnorm) @ s.band_matrix)
    logmel = bands[:, : s.n_mels]
    ltas = bands[:, s.n_mels :]
    mfcc = logmel @ s.dct_matrix

    contrast = np.empty((n, len(s.contrast_slices)), np.float32)
    for k, sl in enumerate(s.contrast_slices):
        sub = np.sort(power[:, sl], axis=1)
        q = max(1, int(round(CONTRAST_QUANTILE * sub.shape[1])))
        contrast[:, k] = _db(sub[:, -q:].mean(axis=1)) - _db(sub[:, :q].mean(axis=1))

    hnr = harmonic_to_noise(power, s)
    cols = [rms_db, zcr, centroid, bandwidth, rolloff, flatness_db, hnr]
    return np.concatenate([np.stack(cols, axis=1).astype(np.float32), contrast, mfcc, logmel, ltas], axis=1)


def harmonic_to_noise(power: np.ndarray, s: FrameSettings, fmax: float = 6000.0) -> np.ndarray:
    """Autocorrelation harmonic-to-noise ratio in dB per frame (pitch 60-500 Hz).

    The autocorrelation comes from the power spectrum below ``fmax`` (Wiener-Khinchin),
    which avoids a second full-length FFT: HNR = 10 log10(r / (1 - r)) with ``r`` the
    normalised autocorrelation peak.
    """
    nb = int(np.searchsorted(s.freqs, fmax))
    ac = sfft.irfft(power[:, :nb], axis=1)
    lag_rate = 2 * (nb - 1) * s.sample_rate / s.n_fft  # samples per second of the lag axis
    lo, hi = int(lag_rate / 500.0), int(lag_rate / 60.0)
    r = ac[:, lo : hi + 1].max(axis=1) / (ac[:, 0] + np.float32(1e-12))
    r = np.clip(r, 1e-4, 1 - 1e-4)
    return (10.0 * np.log10(r / (1.0 - r))).astype(np.float32)
