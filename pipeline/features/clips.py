"""Clip-level kernels: cut a stretch of frames into clips and reduce frames to clip features.

Pure numpy. A clip is a half-open sample range; its frames are those lying wholly inside it,
so clip features never mix audio from either side of a clip (or sound-type) boundary.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .frames import FrameSettings


@dataclass(frozen=True)
class SilenceSettings:
    """The thesis's silence split (pydub ``split_on_silence``), on frame RMS.

    Parameters
    ----------
    threshold_db : float
        Frames quieter than this (dBFS RMS) are silent.
    min_silence_s : float
        Only silences at least this long split clips.
    min_clip_s : float
        Drop non-silent pieces shorter than this.
    max_clip_s : float
        Cut longer pieces into pieces of this length (0 = never).
    """

    threshold_db: float = -60.0
    min_silence_s: float = 1.1
    min_clip_s: float = 0.5
    max_clip_s: float = 0.0


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
                  percentiles: tuple[float, ...] = ()) -> dict[str, np.ndarray]:
    """Mean, standard deviation and percentiles of frame rows ``[f0, f1)`` per clip.

    Parameters
    ----------
    frames : ndarray
        (n_frames, n_features) frame features starting at frame ``frame0``.
    f0, f1 : ndarray
        Per clip, the first and end (exclusive) frame; every clip needs at least one frame.

    Returns
    -------
    dict
        ``"mean"``, ``"std"`` and ``"p<q>"``: arrays of shape (n_clips, n_features), float32.
    """
    f0 = np.asarray(f0, np.int64) - frame0
    f1 = np.asarray(f1, np.int64) - frame0
    n_clips, n_feat = f0.size, frames.shape[1]
    out = {"mean": np.zeros((n_clips, n_feat), np.float32), "std": np.zeros((n_clips, n_feat), np.float32)}
    for q in percentiles:
        out[f"p{q:g}"] = np.zeros((n_clips, n_feat), np.float32)
    if n_clips == 0:
        return out
    if np.any(f1 <= f0) or f0.min() < 0 or f1.max() > frames.shape[0]:
        raise ValueError("every clip needs at least one frame inside the given frame block")
    # Cumulative sums in float64 give every window's mean and variance in O(n).
    x = frames.astype(np.float64)
    c1 = np.vstack([np.zeros((1, n_feat)), np.cumsum(x, axis=0)])
    c2 = np.vstack([np.zeros((1, n_feat)), np.cumsum(x * x, axis=0)])
    n = (f1 - f0)[:, None].astype(np.float64)
    mean = (c1[f1] - c1[f0]) / n
    var = np.maximum((c2[f1] - c2[f0]) / n - mean * mean, 0.0)
    out["mean"][:] = mean
    out["std"][:] = np.sqrt(var)
    if percentiles:
        lengths = f1 - f0
        for m in np.unique(lengths):
            idx = np.flatnonzero(lengths == m)
            rows = f0[idx, None] + np.arange(m)[None, :]
            vals = np.percentile(frames[rows], percentiles, axis=1)
            for q, v in zip(percentiles, vals):
                out[f"p{q:g}"][idx] = v
    return out
