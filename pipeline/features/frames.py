"""Frame-level feature kernels: numpy plus a few numba-compiled loops, no dask, no I/O.

Frames are *not* centred: frame ``i`` covers samples ``[i * hop, i * hop + n_fft)``.
That makes a block of frames computable from any slice of the signal that contains
those samples, so a blockwise computation equals a whole-signal one exactly.

Speed: the kernel is meant to run at close to the rate of a bare STFT (see
``benchmarks/bench_kernel.py``). Frames are processed in cache-sized batches whose work
arrays are allocated once per call; after the FFT, one compiled pass gives the power
spectrum and the spectral moments, and one sparse product gives the mel and LTAS band powers
plus coarse partial sums for the roll-off search; RMS and zero crossings are summed once per
hop of signal instead of once per (4x overlapping) frame; contrast sorts short pieces of its
wide bands; the HNR autocorrelation is a type-I DCT of fast length. Estimators are unchanged
except where noted in the function docs. The compiled loops are cached on disk (``cache=True``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cached_property, lru_cache

import numba
import numpy as np
import scipy.fft as sfft
from numpy.lib.stride_tricks import as_strided

from . import lowband
from .melbank import mel_filters

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

#: Longest row sorted whole in spectral contrast: numpy's SIMD sort handles rows up to a few
#: hundred values in registers, at well under the cost per value of longer rows.
SORT_PIECE = 256

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

    def __reduce__(self):
        # Pickle the settings only, not the cached tables derived from them (settings travel
        # with every task), and unpickle to one shared instance per process and settings: a
        # worker keeps each finished task's arguments while its future lives, so a fresh
        # instance per task would also keep a fresh ~1 MB of tables per task.
        return _shared_settings, tuple(getattr(self, f.name) for f in fields(self))

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
    def band_centres(self) -> np.ndarray:
        """LTAS band centre frequencies in Hz: the geometric mean of each band's edges."""
        edges = self.band_edges
        return np.sqrt(edges[:-1] * edges[1:])

    @cached_property
    def ltas_matrix(self) -> np.ndarray:
        """(n_bins, n_bands) averaging matrix; each band holds at least one bin."""
        f = self.freqs
        edges = self.band_edges
        m = np.zeros((f.size, edges.size - 1), np.float32)
        centres = self.band_centres
        for b, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
            sel = (f >= lo) & (f < hi)
            if not sel.any():  # narrow low bands: take the bin nearest the band centre
                sel = np.zeros_like(sel)
                sel[np.argmin(np.abs(f - centres[b]))] = True
            m[sel, b] = 1.0 / sel.sum()
        return m

    @cached_property
    def mel_matrix(self) -> np.ndarray:
        mel = mel_filters(self.sample_rate, self.n_fft, self.n_mels, self.fmin, self.fmax)  # librosa's
        return np.ascontiguousarray(mel.T.astype(np.float32))

    @cached_property
    def dct_matrix(self) -> np.ndarray:
        """Orthonormal DCT-II, (n_mels, n_mfcc): MFCC = log-mel (dB) @ dct (as librosa)."""
        return np.ascontiguousarray(
            sfft.dct(np.eye(self.n_mels), type=2, norm="ortho", axis=1)[:, : self.n_mfcc].astype(np.float32)
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
        return tuple(names + lowband.names(self))  # the low LTAS bands again, from long frames

    def index(self, prefix: str) -> np.ndarray:
        """Column indices of the frame features whose name starts with ``prefix``."""
        return np.array([i for i, n in enumerate(self.feature_names) if n.startswith(prefix)])


@lru_cache(maxsize=16)
def _shared_settings(*values) -> FrameSettings:
    """The process's one :class:`FrameSettings` with these field values (see ``__reduce__``)."""
    return FrameSettings(*values)


def to_float(samples: np.ndarray) -> np.ndarray:
    """PCM integers to float32 in [-1, 1); floats pass through as float32."""
    if np.issubdtype(samples.dtype, np.integer):
        # One pass (cast inside the multiply); the scale is a power of two, so x * (1 / 2^k)
        # equals x / 2^k exactly.
        out = np.empty(samples.shape, np.float32)
        return np.multiply(samples, np.float32(1.0 / (np.iinfo(samples.dtype).max + 1)), out=out,
                           dtype=np.float32, casting="unsafe")
    return samples.astype(np.float32, copy=False)


def frame_view(y: np.ndarray, s: FrameSettings) -> np.ndarray:
    """Read-only (n_frames, n_fft) view of ``y``."""
    n = s.n_frames(y.size)
    if n == 0:
        return np.zeros((0, s.n_fft), y.dtype)
    # as_strided directly: sliding_window_view's checks cost as much as a small batch's window.
    return as_strided(y, shape=(n, s.n_fft), strides=(s.hop * y.strides[0], y.strides[0]), writeable=False)


def power_spectrum(frames: np.ndarray, s: FrameSettings) -> np.ndarray:
    """Hann-windowed power spectrum, (n_frames, n_fft // 2 + 1), float32."""
    buf = _Buffers(frames.shape[0], s)
    return _power_and_moments(_spectrum(frames, s, buf), s, buf)[0]


class _Buffers:
    """Work arrays for batches of up to ``n`` frames, allocated once per call and reused.

    Fresh multi-megabyte arrays per batch cost page faults and cache misses; reusing
    these keeps every batch's passes over the spectrum in warm memory.
    """

    def __init__(self, n: int, s: FrameSettings):
        nb = s.n_fft // 2 + 1
        # The windowed frames are dead once transformed: the power spectrum and the log
        # scratch reuse their memory, so fewer cache lines are in play.
        mem = np.empty(n * max(s.n_fft, 2 * nb), np.float32)
        self.windowed = mem[: n * s.n_fft].reshape(n, s.n_fft)
        self.power = mem[: n * nb].reshape(n, nb)
        self.scratch = mem[n * nb : 2 * n * nb].reshape(n, nb)


def _spectrum(frames: np.ndarray, s: FrameSettings, buf: _Buffers) -> np.ndarray:
    """Complex spectrum of the Hann-windowed frames, (n_frames, n_fft // 2 + 1) complex64."""
    windowed = buf.windowed[: frames.shape[0]]
    _apply_window(frames, s.window, windowed)
    return sfft.rfft(windowed, axis=1)


def _power_and_moments(spec: np.ndarray, s: FrameSettings, buf: _Buffers) -> tuple[np.ndarray, ...]:
    """Power spectrum, power + ``AMIN`` (for logs), and the spectral moments of each frame.

    Returns views into ``buf``: ``power``, ``floored`` (n_frames, n_bins) and ``moments``
    (n_frames, 3), the sums of ``|X|``, ``|X| f`` and ``|X| f^2``. One compiled pass over the
    spectrum replaces five numpy passes (abs, square, add, and the moment products).
    """
    n = spec.shape[0]
    power, floored = buf.power[:n], buf.scratch[:n]
    moments = np.empty((n, 3), np.float32)
    _power_kernel(spec, s.freqs, np.float32(AMIN), power, floored, moments)
    return power, floored, moments


@numba.njit(cache=True, nogil=True, fastmath={"reassoc"})
def _power_kernel(spec, f, amin, power, floored, moments):  # pragma: no cover - compiled
    """Per frame: ``|X|^2``, ``|X|^2 + amin`` and the sums of ``|X| f^k`` for k = 0, 1, 2.

    Reassociation lets the sums vectorise; every frame is summed in the same order, so
    results do not depend on the batch a frame is in.
    """
    for i in range(spec.shape[0]):
        s0 = s1 = s2 = np.float32(0.0)
        for j in range(spec.shape[1]):
            z = spec[i, j]
            p = z.real * z.real + z.imag * z.imag
            power[i, j] = p
            floored[i, j] = p + amin
            m = np.sqrt(p)
            s0 += m
            s1 += m * f[j]
            s2 += m * f[j] * f[j]
        moments[i, 0], moments[i, 1], moments[i, 2] = s0, s1, s2


@numba.njit(cache=True, nogil=True)
def _apply_window(frames, window, out):  # pragma: no cover - compiled
    """``out[:] = frames * window``; compiled, as numpy's broadcast multiply of the
    overlapping frame view runs at a fraction of memory speed."""
    for i in range(frames.shape[0]):
        f, o = frames[i], out[i]
        for j in range(window.size):
            o[j] = f[j] * window[j]


def _row_means(x: np.ndarray) -> np.ndarray:
    """Mean of each row; a BLAS matrix-vector product, several times faster than ``x.mean(1)``."""
    return x @ np.full(x.shape[1], 1.0 / x.shape[1], x.dtype)


def _db(x: np.ndarray) -> np.ndarray:
    return (10.0 * np.log10(np.maximum(x, AMIN))).astype(np.float32, copy=False)


def frame_features(y: np.ndarray, s: FrameSettings, *, frames_per_call: int = FRAMES_PER_CALL,
                   n_frames: int | None = None) -> np.ndarray:
    """All frame features of a signal, (n_frames, len(s.feature_names)), float32.

    Columns (see ``s.feature_names``): RMS level (dBFS), zero-crossing rate, spectral
    centroid and bandwidth (Hz, magnitude-weighted), roll-off (Hz, 85 % of the power),
    flatness (dB), harmonic-to-noise ratio (dB), spectral contrast per octave band (dB,
    mean of the band's top 2 % of bin powers over its bottom 2 %), 48 kHz MFCCs, log-mel
    band powers and the long-term-spectrum (LTAS) band powers (dB re full scale), then the
    low LTAS bands measured on long frames (``ltaslo_k``, :mod:`.lowband`; NaN where ``y`` ends
    before the long frame).

    Every feature of a frame depends only on that frame's samples (a long frame's, for the
    ``ltaslo_k``), so the result for any tiling of the frames equals the whole-signal result
    (up to float rounding).

    Parameters
    ----------
    y : ndarray
        1-D signal (PCM integers or float in [-1, 1)).
    s : FrameSettings
    frames_per_call : int
        Frames processed at once; bounds the working memory (~ frames x n_fft x 10 B) and
        is sized for the CPU cache.
    n_frames : int, optional
        Compute only the first ``n_frames`` frames (``y`` may run on, for their long frames).
    """
    y = to_float(np.asarray(y).ravel())
    n = s.n_frames(y.size) if n_frames is None else min(n_frames, s.n_frames(y.size))
    out = np.empty((n, len(s.feature_names)), np.float32)
    k = len(s.feature_names) - len(lowband.names(s))
    buf = _Buffers(min(n, frames_per_call), s)
    for a in range(0, n, frames_per_call):
        b = min(n, a + frames_per_call)
        _features_block(y[a * s.hop : (b - 1) * s.hop + s.n_fft], s, out[a:b, :k], buf)
    out[:, k:] = lowband.band_levels(y, s, n, AMIN)
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
    hops = y.reshape(-1, s.hop)
    sq = np.einsum("ij,ij->i", hops, hops)  # one fused pass; same order for each hop wherever it lies
    neg = np.signbit(y)
    change = np.empty(y.size, bool)  # change[i]: a crossing between samples i and i + 1
    np.not_equal(neg[1:], neg[:-1], out=change[:-1])
    change[-1] = False
    # Integer row sums of the bytes: twice as fast as count_nonzero along an axis.
    cross = change.view(np.uint8).reshape(-1, s.hop).sum(axis=1, dtype=np.int32)
    mean_sq, count = sq[:n].copy(), cross[:n].copy()
    for k in range(1, r):
        mean_sq += sq[k : n + k]
        count += cross[k : n + k]
    count -= change[np.arange(r, n + r) * s.hop - 1]  # a frame's last sample pairs with the next frame's
    return mean_sq / np.float32(s.n_fft), count.astype(np.float32) / np.float32(s.n_fft)


def _features_block(y: np.ndarray, s: FrameSettings, out: np.ndarray, buf: _Buffers) -> None:
    """Frame features of the frames of ``y`` into ``out`` (n_frames, n_features)."""
    frames = frame_view(y, s)
    nm, nl = s.n_mels, s.band_edges.size - 1
    power, log_power, moments = _power_and_moments(_spectrum(frames, s, buf), s, buf)
    f = s.freqs

    mean_sq, zcr = _time_features(y, frames, s)
    out[:, 0] = _db(mean_sq)
    out[:, 1] = zcr

    msum = moments[:, 0] + np.float32(1e-12)
    centroid = moments[:, 1] / msum
    out[:, 2] = centroid
    out[:, 3] = np.sqrt(np.maximum(moments[:, 2] / msum - centroid**2, 0.0))

    prod = _band_products(power, s)  # mel | LTAS | roll-off block sums
    blocks = prod[:, nm + nl :]
    out[:, 4] = f[_rolloff_bin(power, blocks)]
    psum = blocks.sum(axis=1)
    np.log2(log_power, out=log_power)  # log2 is the fastest vectorised log
    out[:, 5] = (10.0 * np.log10(2.0)) * (_row_means(log_power) - np.log2(psum / power.shape[1] + np.float32(AMIN)))
    out[:, 6] = harmonic_to_noise(power, s)

    _contrast(power, s, out[:, 7 : 7 + len(s.contrast_slices)])
    k = 7 + len(s.contrast_slices)
    bands = _db(prod[:, : nm + nl])
    out[:, k : k + s.n_mfcc] = bands[:, :nm] @ s.dct_matrix
    out[:, k + s.n_mfcc :] = bands


def _band_products(power: np.ndarray, s: FrameSettings) -> np.ndarray:
    """``power @ s.analysis_matrix.T``, (n_frames, n_columns) float32.

    The product runs over a frames-last copy of the power (scipy makes the same copy), so
    that each stored weight scales one contiguous row of frames; compiled, it is about twice
    as fast as scipy's sparse product, with the same arithmetic in the same order.
    """
    a = s.analysis_matrix
    out = np.empty((a.shape[0], power.shape[0]), np.float32)
    _csr_dense_kernel(a.indptr, a.indices, a.data, np.ascontiguousarray(power.T), out)
    return out.T


@numba.njit(cache=True, nogil=True)
def _csr_dense_kernel(indptr, indices, data, x, out):  # pragma: no cover - compiled
    """``out = A @ x`` for a CSR matrix ``A`` (indptr, indices, data) and a dense ``x``."""
    for c in range(indptr.size - 1):
        o = out[c]
        o[:] = 0.0
        for k in range(indptr[c], indptr[c + 1]):
            w, row = data[k], x[indices[k]]
            for i in range(o.size):
                o[i] += w * row[i]


def _contrast(power: np.ndarray, s: FrameSettings, out: np.ndarray) -> None:
    """Spectral contrast per band into ``out``: dB of the mean of the top over the bottom q bins."""
    slices, qs = s.contrast_slices, s.contrast_q
    lo = np.empty((power.shape[0], len(qs)), np.float32)
    hi = np.empty_like(lo)
    # Bands with q = 1 (the band's maximum over its minimum): one compiled pass over them all.
    narrow = [k for k, q in enumerate(qs) if q == 1]
    if narrow:
        starts = np.array([slices[k].start for k in narrow])
        stops = np.array([slices[k].stop for k in narrow])
        _band_extremes(power, starts, stops, np.array(narrow), lo, hi)
    for k, q in enumerate(qs):
        if q > 1:
            lo[:, k], hi[:, k] = _end_means(power[:, slices[k]], q)
    out[:] = _db(hi) - _db(lo)


def _end_means(x: np.ndarray, q: int) -> tuple[np.ndarray, np.ndarray]:
    """Means of the ``q`` smallest and of the ``q`` largest values in each row of ``x``.

    Sorting (SIMD in numpy) beats every selection tried, np.partition included. Long rows
    are sorted as pieces of at most ``SORT_PIECE`` values, which numpy sorts much faster per
    value; the row's q extremes are then the q extremes of the pieces' q extremes (plus any
    values left over), so the result is exact.
    """
    n, m = x.shape
    k = -(-m // SORT_PIECE)
    size = m // k
    if k == 1 or size < q:
        srt = np.sort(x, axis=1)
        return srt[:, :q].sum(axis=1) / np.float32(q), srt[:, -q:].sum(axis=1) / np.float32(q)
    pieces = np.empty((n, k, size), x.dtype)
    pieces[:] = x[:, : k * size].reshape(n, k, size)
    pieces.reshape(n * k, size).sort(axis=1)
    rest = x[:, k * size :]
    cand = np.empty((n, 2, k * q + rest.shape[1]), x.dtype)  # [the pieces' q smallest, q largest] + rest
    cand[:, 0, : k * q] = pieces[:, :, :q].reshape(n, k * q)
    cand[:, 1, : k * q] = pieces[:, :, -q:].reshape(n, k * q)
    cand[:, :, k * q :] = rest[:, None, :]
    cand.sort(axis=2)
    return cand[:, 0, :q].sum(axis=1) / np.float32(q), cand[:, 1, -q:].sum(axis=1) / np.float32(q)


@numba.njit(cache=True, nogil=True)
def _band_extremes(power, starts, stops, cols, lo, hi):  # pragma: no cover - compiled
    """Minimum and maximum of ``power[:, starts[k]:stops[k]]`` into ``lo``/``hi[:, cols[k]]``."""
    for i in range(power.shape[0]):
        row = power[i]
        for k in range(starts.size):
            mn = row[starts[k]]
            mx = mn
            for j in range(starts[k] + 1, stops[k]):
                mn = min(mn, row[j])
                mx = max(mx, row[j])
            lo[i, cols[k]] = mn
            hi[i, cols[k]] = mx


def _rolloff_bin(power: np.ndarray, blocks: np.ndarray) -> np.ndarray:
    """Index of the first bin at which the cumulative power reaches ``ROLLOFF_FRACTION``.

    Two-level search instead of a full cumulative sum over every bin: find the coarse block
    in which the running total crosses the threshold, then scan only that block's bins.
    """
    out = np.empty(power.shape[0], np.int64)
    _rolloff_kernel(power, np.ascontiguousarray(blocks), ROLLOFF_BLOCK, np.float32(ROLLOFF_FRACTION), out)
    return out


@numba.njit(cache=True, nogil=True)
def _rolloff_kernel(power, blocks, block, fraction, out):  # pragma: no cover - compiled
    """Per row: the first bin at which the running power sum reaches ``fraction`` of the total.

    ``blocks[i, b]`` is the power sum of bins ``[b * block, (b + 1) * block)`` of row ``i``.
    """
    nb, nblk = power.shape[1], blocks.shape[1]
    for i in range(power.shape[0]):
        bl = blocks[i]
        total = np.float32(0.0)
        for b in range(nblk):
            total += bl[b]
        thr = fraction * total
        cum = np.float32(0.0)
        b = 0
        while b < nblk - 1 and cum + bl[b] < thr:  # the block in which the running sum crosses
            cum += bl[b]
            b += 1
        j, stop = b * block, min(nb, (b + 1) * block)
        while j < stop:
            cum += power[i, j]
            if cum >= thr:
                break
            j += 1
        out[i] = min(j, nb - 1)


def harmonic_to_noise(power: np.ndarray, s: FrameSettings, fmax: float = 6000.0) -> np.ndarray:
    """Autocorrelation harmonic-to-noise ratio in dB per frame (pitch 60-500 Hz).

    The autocorrelation comes from the power spectrum below ``fmax`` (Wiener-Khinchin),
    which avoids a second full-length FFT: HNR = 10 log10(r / (1 - r)) with ``r`` the
    normalised autocorrelation peak. The bins used run up to ``fmax`` or a little above,
    so that the inverse FFT has a fast length. The power spectrum is real and even, so its
    inverse FFT is a type-I DCT (up to a constant factor, which cancels in ``r``); the DCT
    skips the complex input and the mirrored half of the lags.
    """
    nb, lo, hi = _hnr_layout(s, fmax)
    ac = sfft.dct(power[:, :nb], type=1, axis=1)  # = 2 (nb - 1) x the circular autocorrelation
    r = ac[:, lo : hi + 1].max(axis=1) / (ac[:, 0] + np.float32(2 * (nb - 1) * 1e-12))
    r = np.clip(r, 1e-4, 1 - 1e-4)
    return (10.0 * np.log10(r / (1.0 - r))).astype(np.float32)


@lru_cache(maxsize=16)
def _hnr_layout(s: FrameSettings, fmax: float) -> tuple[int, int, int]:
    """Bins ``nb`` used by :func:`harmonic_to_noise` and its lag range ``[lo, hi]`` in DCT lags.

    The circular autocorrelation has period ``2 (nb - 1)`` and is even; the DCT gives lags
    ``0 ... nb - 1``, so pitch lags beyond are folded back (an interval of lags folds onto
    an interval); lags past one period are not used.
    """
    nb = int(np.searchsorted(s.freqs, fmax, side="right"))
    nb = min(s.freqs.size, sfft.next_fast_len(2 * (nb - 1), real=True) // 2 + 1)
    period = 2 * (nb - 1)
    lag_rate = period * s.sample_rate / s.n_fft  # samples per second of the lag axis
    lags = np.arange(int(lag_rate / 500.0), min(int(lag_rate / 60.0), period - 1) + 1)
    folded = np.minimum(lags, period - lags)
    return nb, int(folded.min()), int(folded.max())
