"""Frame-level feature kernels: pure numpy, no dask, no I/O.

Frames are *not* centred: frame ``i`` covers samples ``[i * hop, i * hop + n_fft)``.
That makes a block of frames computable from any slice of the signal that contains
those samples, so a blockwise computation equals a whole-signal one exactly.

Speed: the kernel is meant to run at close to the rate of a bare STFT (see
``benchmarks/bench_kernel.py``). Frames are processed in cache-sized batches; after the FFT,
one sparse product gives the mel and LTAS band powers plus coarse partial sums for the
roll-off search; RMS and zero crossings are summed once per hop of signal instead of once per
(4x overlapping) frame; narrow contrast bands use one max/min ``reduceat``; the HNR inverse
FFT has a fast length. Estimators are unchanged except where noted in the function docs.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
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

#: Spectral roll-off: the frequency below which this fraction of the frame's power lies.
ROLLOFF_FRACTION = 0.85
#: Bins per coarse block of the roll-off search (coarse sums come free with the band product).
ROLLOFF_BLOCK = 32

#: Frames per batch: the batch's windows, spectrum and power (~ frames x n_fft x 10 B) stay
#: in the CPU's L2/L3 cache; measured best on the development machine (benchmarks/).
FRAMES_PER_CALL = 256


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

    def __getstate__(self):
        # Pickle the settings only, not the cached tables derived from them: settings travel
        # with every task, and the tables are cheap to rebuild where they are used.
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def __setstate__(self, state):
        for k, v in state.items():
            object.__setattr__(self, k, v)

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
    def window_norm(self) -> np.float32:
        """1 / window energy: band powers in dB re a full-scale signal, independent of n_fft."""
        return np.float32(1.0 / (self.window.astype(np.float64) ** 2).sum())

    @cached_property
    def rolloff_blocks(self) -> np.ndarray:
        """(n_bins, n_blocks) 0/1 matrix summing consecutive runs of ``ROLLOFF_BLOCK`` bins."""
        nb = self.freqs.size
        blk = np.arange(nb) // ROLLOFF_BLOCK
        m = np.zeros((nb, blk[-1] + 1), np.float32)
        m[np.arange(nb), blk] = 1.0
        return m

    @cached_property
    def analysis_matrix(self):
        """Sparse (n_bins, n_columns): ``power @ it`` = [mel bands, LTAS bands, roll-off block sums].

        Band columns carry the window normalisation, so one product does all the
        band-type work after the FFT. Each bin feeds at most four columns, so a sparse
        product does a few percent of a dense one's arithmetic (and adds in a fixed order
        per frame, whatever the batch size).
        """
        import scipy.sparse

        dense = np.concatenate([self.band_matrix * self.window_norm, self.rolloff_blocks], axis=1)
        return scipy.sparse.csr_matrix(dense.T.astype(np.float32))

    @cached_property
    def contrast_q(self) -> tuple[int, ...]:
        """Bins averaged at each end of each contrast band (the band's 2 % extremes, at least 1)."""
        return tuple(max(1, int(round(CONTRAST_QUANTILE * (sl.stop - sl.start)))) for sl in self.contrast_slices)

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
    return _power(frames, s)[1]


def _power(frames: np.ndarray, s: FrameSettings) -> tuple[np.ndarray, np.ndarray]:
    """Magnitude and power spectrum of a batch of frames (float32).

    ``np.abs`` on the complex spectrum is vectorised and reads it once; ``re**2 + im**2``
    would read two strided views of it and be slower.
    """
    windowed = np.multiply(frames, s.window, dtype=np.float32)
    mag = np.abs(sfft.rfft(windowed, axis=1, overwrite_x=True))
    return mag, np.square(mag)


def _db(x: np.ndarray) -> np.ndarray:
    return (10.0 * np.log10(np.maximum(x, AMIN))).astype(np.float32, copy=False)


def frame_features(y: np.ndarray, s: FrameSettings, *, frames_per_call: int = FRAMES_PER_CALL) -> np.ndarray:
    """All frame features of a signal, (n_frames, len(s.feature_names)), float32.

    Columns (see ``s.feature_names``): RMS level (dBFS), zero-crossing rate, spectral
    centroid and bandwidth (Hz, magnitude-weighted), roll-off (Hz, 85 % of the power),
    flatness (dB), harmonic-to-noise ratio (dB), spectral contrast per octave band (dB,
    mean of the band's top 2 % of bin powers over its bottom 2 %), 48 kHz MFCCs, log-mel
    band powers and the long-term-spectrum (LTAS) band powers (dB re full scale).

    Every feature of a frame depends only on that frame's samples, so the result for any
    tiling of the frames equals the whole-signal result (up to float rounding).

    Parameters
    ----------
    y : ndarray
        1-D signal (PCM integers or float in [-1, 1)).
    s : FrameSettings
    frames_per_call : int
        Frames processed at once; bounds the working memory (~ frames x n_fft x 10 B) and
        is sized for the CPU cache.
    """
    y = to_float(np.asarray(y).ravel())
    n = s.n_frames(y.size)
    out = np.empty((n, len(s.feature_names)), np.float32)
    for a in range(0, n, frames_per_call):
        b = min(n, a + frames_per_call)
        _features_block(y[a * s.hop : (b - 1) * s.hop + s.n_fft], s, out[a:b])
    return out


def _time_features(y: np.ndarray, frames: np.ndarray, s: FrameSettings) -> tuple[np.ndarray, np.ndarray]:
    """Mean square and zero-crossing rate of each frame of ``y``.

    Frames overlap ``n_fft / hop`` times, so when the hop divides ``n_fft`` the sums are
    taken once per hop of signal and added over the hops a frame spans. Per-hop sums do
    not depend on where a block starts, so blockwise results equal whole-signal ones.
    """
    n = frames.shape[0]
    if s.n_fft % s.hop:
        mean_sq = np.einsum("ij,ij->i", frames, frames) / np.float32(s.n_fft)
        neg = np.signbit(frames)
        return mean_sq, np.count_nonzero(neg[:, 1:] != neg[:, :-1], axis=1).astype(np.float32) / np.float32(s.n_fft)
    r = s.n_fft // s.hop
    y = y[: (n - 1 + r) * s.hop]
    sq = np.square(y).reshape(-1, s.hop).sum(axis=1)
    neg = np.signbit(y)
    change = np.empty(y.size, bool)  # change[i]: a crossing between samples i and i + 1
    np.not_equal(neg[1:], neg[:-1], out=change[:-1])
    change[-1] = False
    cross = np.count_nonzero(change.reshape(-1, s.hop), axis=1)
    mean_sq, count = sq[:n].copy(), cross[:n].copy()
    for k in range(1, r):
        mean_sq += sq[k : n + k]
        count += cross[k : n + k]
    count -= change[np.arange(r, n + r) * s.hop - 1]  # a frame's last sample pairs with the next frame's
    return mean_sq / np.float32(s.n_fft), count.astype(np.float32) / np.float32(s.n_fft)


def _features_block(y: np.ndarray, s: FrameSettings, out: np.ndarray) -> None:
    """Frame features of the frames of ``y`` into ``out`` (n_frames, n_features)."""
    frames = frame_view(y, s)
    n = frames.shape[0]
    nm, nl = s.n_mels, s.band_edges.size - 1
    mag, power = _power(frames, s)
    f = s.freqs

    mean_sq, zcr = _time_features(y, frames, s)
    out[:, 0] = _db(mean_sq)
    out[:, 1] = zcr

    msum = mag.sum(axis=1) + np.float32(1e-12)
    centroid = (mag @ f) / msum
    out[:, 2] = centroid
    out[:, 3] = np.sqrt(np.maximum((mag @ (f * f)) / msum - centroid**2, 0.0))

    prod = (s.analysis_matrix @ power.T).T  # mel | LTAS | roll-off block sums
    blocks = prod[:, nm + nl :]
    out[:, 4] = f[_rolloff_bin(power, blocks)]
    psum = blocks.sum(axis=1)
    log_power = np.add(power, np.float32(AMIN))
    np.log2(log_power, out=log_power)  # log2 is the fastest vectorised log
    out[:, 5] = (10.0 * np.log10(2.0)) * (log_power.mean(axis=1) - np.log2(psum / power.shape[1] + np.float32(AMIN)))
    out[:, 6] = harmonic_to_noise(power, s)

    _contrast(power, s, out[:, 7 : 7 + len(s.contrast_slices)])
    k = 7 + len(s.contrast_slices)
    bands = _db(prod[:, : nm + nl])
    out[:, k : k + s.n_mfcc] = bands[:, :nm] @ s.dct_matrix
    out[:, k + s.n_mfcc :] = bands


def _contrast(power: np.ndarray, s: FrameSettings, out: np.ndarray) -> None:
    """Spectral contrast per band into ``out``: dB of the mean of the top over the bottom q bins."""
    slices, qs = s.contrast_slices, s.contrast_q
    # Narrow bands (q = 1: the band's maximum over its minimum) are contiguous from bin 0;
    # one reduceat each for max and min handles them all.
    m = next((i for i, q in enumerate(qs) if q > 1), len(qs))
    if m:
        starts = [sl.start for sl in slices[:m]]
        sub = power[:, : slices[m - 1].stop]
        out[:, :m] = _db(np.maximum.reduceat(sub, starts, axis=1)) - _db(np.minimum.reduceat(sub, starts, axis=1))
    for k in range(m, len(qs)):
        q = qs[k]
        sub = np.sort(power[:, slices[k]], axis=1)
        out[:, k] = _db(sub[:, -q:].sum(axis=1) / np.float32(q)) - _db(sub[:, :q].sum(axis=1) / np.float32(q))


def _rolloff_bin(power: np.ndarray, blocks: np.ndarray) -> np.ndarray:
    """Index of the first bin at which the cumulative power reaches ``ROLLOFF_FRACTION``.

    Two-level search instead of a full cumulative sum over every bin: find the coarse block
    in which the running total crosses the threshold, then scan only that block's bins.
    """
    n, nbins = power.shape
    cum = np.cumsum(blocks, axis=1)
    thr = np.float32(ROLLOFF_FRACTION) * cum[:, -1]
    kb = np.minimum((cum < thr[:, None]).sum(axis=1), blocks.shape[1] - 1)
    rows = np.arange(n)
    before = np.where(kb > 0, cum[rows, np.maximum(kb - 1, 0)], np.float32(0.0))
    idx = np.minimum(kb[:, None] * ROLLOFF_BLOCK + np.arange(ROLLOFF_BLOCK), nbins - 1)
    inner = np.cumsum(power[rows[:, None], idx], axis=1) + before[:, None]
    # Bins past the end of a short last block repeat the last bin; count each bin once.
    valid = kb[:, None] * ROLLOFF_BLOCK + np.arange(ROLLOFF_BLOCK) < nbins
    return np.minimum(kb * ROLLOFF_BLOCK + ((inner < thr[:, None]) & valid).sum(axis=1), nbins - 1)


def harmonic_to_noise(power: np.ndarray, s: FrameSettings, fmax: float = 6000.0) -> np.ndarray:
    """Autocorrelation harmonic-to-noise ratio in dB per frame (pitch 60-500 Hz).

    The autocorrelation comes from the power spectrum below ``fmax`` (Wiener-Khinchin),
    which avoids a second full-length FFT: HNR = 10 log10(r / (1 - r)) with ``r`` the
    normalised autocorrelation peak. The bins used run up to ``fmax`` or a little above,
    so that the inverse FFT has a fast length.
    """
    nb = int(np.searchsorted(s.freqs, fmax, side="right"))
    nb = min(s.freqs.size, sfft.next_fast_len(2 * (nb - 1), real=True) // 2 + 1)
    ac = sfft.irfft(power[:, :nb], axis=1)
    lag_rate = 2 * (nb - 1) * s.sample_rate / s.n_fft  # samples per second of the lag axis
    lo, hi = int(lag_rate / 500.0), int(lag_rate / 60.0)
    r = ac[:, lo : hi + 1].max(axis=1) / (ac[:, 0] + np.float32(1e-12))
    r = np.clip(r, 1e-4, 1 - 1e-4)
    return (10.0 * np.log10(r / (1.0 - r))).astype(np.float32)
