"""Clip-level kernels: cut a stretch of frames into clips and reduce frames to clip features.

No dask, no I/O: numpy, plus numba-compiled loops for the per-clip reductions (running sums
and order statistics), which numpy can only do with full sorts or float64 copies of every
column. A clip is a half-open sample range; its frames are those lying wholly inside it,
so clip features never mix audio from either side of a clip (or sound-type) boundary.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numba
import numpy as np

from .frames import FrameSettings


@dataclass(frozen=True)
class SilenceSettings:
    """The thesis's silence split (pydub ``split_on_silence``), on frame RMS.

    Parameters
    ----------
    threshold_db : float
        Frames quieter than this (dBFS RMS) are silent; below 0 dBFS (full scale). The thesis
        used -55 to -80 dBFS.
    min_silence_s : float
        Only silences at least this long split clips; positive. The thesis used 1.1 to 1.4 s.
    min_clip_s : float
        Drop non-silent pieces shorter than this.
    max_clip_s : float
        Cut longer pieces into pieces of this length (0 = never).

    Raises
    ------
    ValueError
        A setting out of range (one line naming it), when the settings are made: before any compute.
    """

    threshold_db: float = -60.0
    min_silence_s: float = 1.1
    min_clip_s: float = 0.5
    max_clip_s: float = 0.0

    def __post_init__(self):
        checks = (("threshold_db", lambda v: v < 0,
                   "must be below 0 dBFS (full scale); the thesis used -55 to -80 dBFS"),
                  ("min_silence_s", lambda v: v > 0, "must be positive; the thesis used 1.1 to 1.4 s"),
                  ("min_clip_s", lambda v: v >= 0, "must be 0 or more"),
                  ("max_clip_s", lambda v: v >= 0, "must be 0 (never cut) or more"))
        for name, ok, rule in checks:
            value = getattr(self, name)
            # a NaN passes no comparison; a string or None would fail later, inside a task
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) \
                    or not ok(value):
                raise ValueError(f"silence {name} {rule}, got {value!r}")


def clip_frame_range(start: np.ndarray, stop: np.ndarray, s: FrameSettings) -> tuple[np.ndarray, np.ndarray]:
    """First frame and end frame (exclusive) of the frames wholly inside sample ranges."""
    start = np.asarray(start, np.int64)
    stop = np.asarray(stop, np.int64)
    f0 = -(-start // s.hop)
    f1 = np.maximum(f0, (stop - s.n_fft) // s.hop + 1)
    return f0, f1


def fixed_clips(seg_start: int, seg_stop: int, clip_samples: int) -> np.ndarray:
    """Starts (samples) of consecutive whole clips of ``clip_samples`` in ``[seg_start, seg_stop)``."""
    n = max(0, (seg_stop - seg_start) // clip_samples)
    return seg_start + clip_samples * np.arange(n, dtype=np.int64)


def silence_clips(rms_db: np.ndarray, frame0: int, seg_start: int, seg_stop: int, s: FrameSettings,
                  sil: SilenceSettings) -> np.ndarray:
    """Non-silent pieces of a segment as an (n, 2) array of sample ranges.

    Parameters
    ----------
    rms_db : ndarray
        Frame RMS in dBFS for frames ``frame0, frame0 + 1, ...``; must cover the segment.
    frame0 : int
        Index of the first frame in ``rms_db``.
    seg_start, seg_stop : int
        The segment's sample range.
    """
    f0, f1 = clip_frame_range(seg_start, seg_stop, s)
    f0, f1 = int(f0), int(f1)
    loud = rms_db[f0 - frame0 : f1 - frame0] > sil.threshold_db
    if loud.size == 0:
        return np.zeros((0, 2), np.int64)
    # Runs of equal values: boundaries where loudness flips.
    edges = np.flatnonzero(np.diff(loud.astype(np.int8))) + 1
    starts = np.concatenate([[0], edges])
    stops = np.concatenate([edges, [loud.size]])
    min_sil = int(np.ceil(sil.min_silence_s * s.frame_rate))
    pieces = []
    cur = None
    for a, b in zip(starts, stops):
        if loud[a]:
            cur = [a, b] if cur is None else [cur[0], b]
        elif b - a >= min_sil or cur is None:
            if cur is not None:
                pieces.append(cur)
            cur = None
        # short silences are bridged: the next loud run extends cur
    if cur is not None:
        pieces.append(cur)
    out = []
    for a, b in pieces:
        sa = max(seg_start, (f0 + a) * s.hop)
        sb = min(seg_stop, (f0 + b - 1) * s.hop + s.n_fft)
        if sil.max_clip_s > 0:
            step = int(round(sil.max_clip_s * s.sample_rate))
            for c in range(sa, sb, step):
                out.append((c, min(sb, c + step)))
        else:
            out.append((sa, sb))
    min_len = int(round(sil.min_clip_s * s.sample_rate))
    arr = np.array([p for p in out if p[1] - p[0] >= max(min_len, s.n_fft)], np.int64).reshape(-1, 2)
    return arr


def reduce_frames(frames: np.ndarray, f0: np.ndarray, f1: np.ndarray, frame0: int = 0,
                  percentiles: tuple[float, ...] = (), columns: dict[str, np.ndarray] | None = None
                  ) -> dict[str, np.ndarray]:
    """Mean, standard deviation and percentiles of frame rows ``[f0, f1)`` per clip.

    Parameters
    ----------
    frames : ndarray
        (n_frames, n_features) frame features starting at frame ``frame0``.
    f0, f1 : ndarray
        Per clip, the first and end (exclusive) frame; every clip needs at least one frame.
    percentiles : tuple of float
        Percentiles (0-100, numpy's linear interpolation) to compute.
    columns : dict, optional
        Per statistic (``"mean"``, ``"std"``, ``"p<q>"``), the feature columns to compute;
        the other columns are NaN. Default: every column (see :func:`used_columns`).

    Returns
    -------
    dict
        ``"mean"``, ``"std"`` and ``"p<q>"``: arrays of shape (n_clips, n_features), float32.
    """
    f0 = np.asarray(f0, np.int64) - frame0
    f1 = np.asarray(f1, np.int64) - frame0
    n_clips, n_feat = f0.size, frames.shape[1]
    keys = ["mean", "std"] + [f"p{q:g}" for q in percentiles]
    every = np.arange(n_feat)
    cols = {k: np.asarray(every if columns is None else columns.get(k, every[:0]), np.int64) for k in keys}
    out = {k: np.full((n_clips, n_feat), np.nan, np.float32) for k in keys}
    if n_clips == 0:
        return out
    if np.any(f1 <= f0) or f0.min() < 0 or f1.max() > frames.shape[0]:
        raise ValueError("every clip needs at least one frame inside the given frame block")
    frames = np.ascontiguousarray(frames, dtype=np.float32)
    mcols = np.union1d(cols["mean"], cols["std"])
    if mcols.size:
        mean = np.empty((n_clips, mcols.size))
        std = np.empty((n_clips, cols["std"].size))
        _moments_kernel(frames, mcols, np.searchsorted(mcols, cols["std"]), f0, f1, mean, std)
        out["mean"][:, mcols] = mean
        out["std"][:, cols["std"]] = std
    for q in percentiles:
        pc = cols[f"p{q:g}"]
        if pc.size:
            out[f"p{q:g}"][:, pc] = _percentile(frames[:, pc], f0, f1, float(q))
    return out


# The reductions are compiled with numba (a dependency of librosa): numpy would need a full
# float64 running sum per column and a sort per clip, several times the frame pass itself.
@numba.njit(cache=True, nogil=True)
def _moments_kernel(frames, mcols, scols, f0, f1, mean, std):  # pragma: no cover - compiled
    """Per clip: mean of columns ``mcols`` and standard deviation of ``mcols[scols]``.

    Running sums in float64 over the frame block (each window's sum is a difference of two
    running sums), so the cost is one pass over the block whatever the clip lengths.
    """
    lo, hi = f0.min(), f1.max()
    nm, ns = mcols.size, scols.size
    c1 = np.zeros((hi - lo + 1, nm))
    c2 = np.zeros((hi - lo + 1, ns))
    for i in range(lo, hi):
        r = i - lo
        for j in range(nm):
            c1[r + 1, j] = c1[r, j] + frames[i, mcols[j]]
        for j in range(ns):
            v = np.float64(frames[i, mcols[scols[j]]])
            c2[r + 1, j] = c2[r, j] + v * v
    for c in range(f0.size):
        a, b = f0[c] - lo, f1[c] - lo
        n = b - a
        for j in range(nm):
            mean[c, j] = (c1[b, j] - c1[a, j]) / n
        for j in range(ns):
            m = mean[c, scols[j]]
            std[c, j] = np.sqrt(max((c2[b, j] - c2[a, j]) / n - m * m, 0.0))


@numba.njit(cache=True, nogil=True)
def _select(a, n, kth):  # pragma: no cover - compiled
    """Quickselect: reorder ``a[:n]`` so that ``a[kth]`` is its kth smallest value and no
    value before it is larger (median-of-three pivots, insertion sort for short ranges)."""
    lo, hi = 0, n - 1
    while hi > lo:
        if hi - lo < 16:
            for i in range(lo + 1, hi + 1):
                v = a[i]
                j = i - 1
                while j >= lo and a[j] > v:
                    a[j + 1] = a[j]
                    j -= 1
                a[j + 1] = v
            return
        mid = (lo + hi) // 2
        if a[mid] < a[lo]:
            a[mid], a[lo] = a[lo], a[mid]
        if a[hi] < a[lo]:
            a[hi], a[lo] = a[lo], a[hi]
        if a[hi] < a[mid]:
            a[hi], a[mid] = a[mid], a[hi]
        pivot = a[mid]
        i, j = lo, hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
        if kth <= j:
            hi = j
        elif kth >= i:
            lo = i
        else:
            return


@numba.njit(cache=True, nogil=True)
def _order_pair(x, start, m, lo, hi, buf, work):  # pragma: no cover - compiled
    """Order statistics ``lo`` and ``hi`` (0-based, ``hi`` = ``lo`` or ``lo + 1``) of
    ``x[start : start + m]``.

    Long inputs are filtered first: a quickselect on every 8th value brackets the wanted
    ranks by ``[low, high]``; one pass counts the values below ``low`` and copies those in
    the bracket, and a quickselect on that short copy finishes. When the bracket misses
    (rare), a quickselect on a copy of everything does. Short inputs go straight to that.
    """
    if m >= 128:
        step = 8
        ms = (m + step - 1) // step
        for i in range(ms):
            work[i] = x[start + i * step]
        margin = 2 + int(3.0 * np.sqrt(lo / step + 1.0))
        rl = max(0, lo // step - margin)
        rh = min(ms - 1, hi // step + 1 + margin)
        _select(work, ms, rh)  # then the lower bracket end among the values below it
        high = work[rh]
        _select(work, rh + 1, rl)
        low = work[rl]
        below = 0
        nb = 0
        max_below = -np.inf
        for i in range(start, start + m):
            v = x[i]
            if v < low:
                below += 1
                if v > max_below:
                    max_below = v
            elif v <= high:
                buf[nb] = v
                nb += 1
        if below <= lo and below + nb > hi:
            k = hi - below
            _select(buf, nb, k)
            b = np.float64(buf[k])
            if hi == lo:
                return b, b
            if k == 0:
                return np.float64(max_below), b
            a = buf[0]
            for i in range(1, k):
                a = max(a, buf[i])
            return np.float64(a), b
    for i in range(m):
        buf[i] = x[start + i]
    _select(buf, m, hi)
    b = np.float64(buf[hi])
    a = b
    if hi > lo:  # the next smaller order statistic: the largest value before buf[hi]
        a = np.float64(buf[0])
        for i in range(1, hi):
            a = max(a, np.float64(buf[i]))
    return a, b


#: Clips whose percentile needs at most this many smallest values use the branch-free
#: running-minima kernel (vectorised across columns); others a per-column selection.
SMALL_K = 64


def _percentile(x: np.ndarray, f0: np.ndarray, f1: np.ndarray, q: float) -> np.ndarray:
    """Percentile ``q`` (numpy's linear interpolation) of rows ``[f0, f1)`` of ``x`` per clip."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    out = np.empty((f0.size, x.shape[1]), np.float32)
    m = f1 - f0
    k = np.minimum(np.floor(q / 100.0 * (m - 1)).astype(np.int64) + 2, m)
    small = k <= SMALL_K
    if small.any():
        idx = np.flatnonzero(small)
        res = np.empty((idx.size, x.shape[1]), np.float32)
        _percentile_small(x, f0[idx], f1[idx], q, res)
        out[idx] = res
    if not small.all():
        idx = np.flatnonzero(~small)
        res = np.empty((idx.size, x.shape[1]), np.float32)
        # Columns as contiguous rows: each clip's values of a column are read in sequence.
        _percentile_large(np.ascontiguousarray(x.T), f0[idx], f1[idx], q, res)
        out[idx] = res
    return out


@numba.njit(cache=True, nogil=True, inline="always")
def _ranks(q, m):  # pragma: no cover - compiled
    """numpy's 'linear' percentile position in ``m`` sorted values: (pos, lower rank, upper rank)."""
    pos = q / 100.0 * (m - 1)
    lo = int(np.floor(pos))
    return pos, lo, min(lo + 1, m - 1)


@numba.njit(cache=True, nogil=True, inline="always")
def _lerp(a, b, t):  # pragma: no cover - compiled
    """numpy's linear interpolation between order statistics (same rounding choice)."""
    d = np.float64(b) - np.float64(a)
    return np.float64(a) + d * t if t < 0.5 else np.float64(b) - d * (1.0 - t)


@numba.njit(cache=True, nogil=True)
def _percentile_small(x, f0, f1, q, out):  # pragma: no cover - compiled
    """Percentile per clip and column of ``x`` (n_frames, n_columns) for short clips.

    Keeps the ``k`` smallest values of every column sorted while streaming the clip's
    rows: each value is pushed through them with min/max pairs, no branches, and the
    loop over columns is contiguous, so it vectorises. O(m k) per clip and column.
    """
    nc = x.shape[1]
    kmax = 1
    for c in range(f0.size):
        kmax = max(kmax, _ranks(q, f1[c] - f0[c])[2] + 1)
    s = np.empty((kmax, nc), np.float32)
    v = np.empty(nc, np.float32)
    for c in range(f0.size):
        pos, lo, hi = _ranks(q, f1[c] - f0[c])
        k = hi + 1
        s[:k] = np.inf
        for i in range(f0[c], f1[c]):
            v[:] = x[i]
            for r in range(k):
                for j in range(nc):
                    a = s[r, j]
                    s[r, j] = min(a, v[j])
                    v[j] = max(a, v[j])
        for j in range(nc):
            out[c, j] = _lerp(s[lo, j], s[hi, j], pos - lo)


@numba.njit(cache=True, nogil=True)
def _percentile_large(xt, f0, f1, q, out):  # pragma: no cover - compiled
    """Percentile per clip and column for long clips; ``xt`` is (n_columns, n_frames).

    The two order statistics the interpolation needs come from :func:`_order_pair`
    (expected O(m), no sort); buffers are reused across clips.
    """
    mmax = max(1, (f1 - f0).max())
    buf = np.empty(mmax, np.float32)
    work = np.empty(mmax, np.float32)
    for c in range(f0.size):
        m = f1[c] - f0[c]
        pos, lo, hi = _ranks(q, m)
        for j in range(xt.shape[0]):
            a, b = _order_pair(xt[j], f0[c], m, lo, hi, buf, work)
            out[c, j] = _lerp(a, b, pos - lo)


def used_columns(reducer, n_feat: int, keys) -> dict[str, np.ndarray]:
    """Which columns of each statistic a row-wise reducer reads, found by NaN propagation.

    ``reducer(stats)`` maps a dict of (n_clips, n_feat) statistics to clip features, each
    clip's row from that clip's rows only (as the feature sets do). Feeding it, per key,
    an (n_feat, n_feat) block with NaN on the diagonal marks column ``i`` as read when row
    ``i`` of the result holds a NaN. Lets :func:`reduce_frames` skip unused columns.
    """
    out = {}
    probe = np.where(np.eye(n_feat, dtype=bool), np.float32(np.nan), np.float32(1.0)).astype(np.float32)
    for k in keys:
        stats = {j: (probe if j == k else np.ones((n_feat, n_feat), np.float32)) for j in keys}
        with np.errstate(invalid="ignore"):
            res = np.asarray(reducer(stats))
        out[k] = np.flatnonzero(np.isnan(res.reshape(n_feat, -1)).any(axis=1))
    return out
