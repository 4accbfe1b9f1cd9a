"""Clip statistics of frame features, the long frames of the low LTAS bands included.

The frame stage stores the low LTAS bands twice: from the frame FFT (``ltas_k``) and from long
frames (``ltaslo_k``, :mod:`pipeline.features.lowband`), which cover more samples than a frame.
A clip reduces the long-frame columns over the long frames lying wholly inside it only, so clip
features never mix audio from outside the clip.
"""

from __future__ import annotations

import numpy as np

from . import lowband
from .clips import clip_frame_range, reduce_frames


def clip_stats(frames: np.ndarray, starts: np.ndarray, stops: np.ndarray, s, *, frame0: int = 0,
               percentiles: tuple[float, ...] = (), columns: dict[str, np.ndarray] | None = None
               ) -> dict[str, np.ndarray]:
    """:func:`~pipeline.features.clips.reduce_frames` of clips ``[starts, stops)`` (samples), long frames included.

    Columns of the long analysis (``ltaslo_k``) are reduced over the long frames lying wholly
    inside each clip; a clip without one gets the short-FFT value of the same band (``ltas_k``).
    Every other column is reduced over the clip's frames as usual.
    """
    names_ = list(s.feature_names)
    lo_cols = np.array([names_.index(n) for n in lowband.names(s)], np.int64)
    short = s.index("ltas_")[lowband.layout(s).bands] if lo_cols.size else lo_cols
    keys = ["mean", "std"] + [f"p{q:g}" for q in percentiles]
    every = np.arange(len(names_))
    cols = {k: np.asarray(every if columns is None else columns.get(k, every[:0]), np.int64) for k in keys}
    c0, c1 = clip_frame_range(starts, stops, s)
    wanted = {k: np.isin(lo_cols, v) for k, v in cols.items()}
    # the short-FFT twins of wanted long columns are reduced too, for clips shorter than a long frame
    base = {k: np.union1d(np.setdiff1d(v, lo_cols), short[wanted[k]]) for k, v in cols.items()}
    stats = reduce_frames(frames, c0, c1, frame0=frame0, percentiles=percentiles, columns=base)
    if not any(w.any() for w in wanted.values()):
        return stats
    l1 = np.maximum(c0, (np.asarray(stops, np.int64) - lowband.layout(s).span) // s.hop + 1)
    ok = l1 > c0
    low = reduce_frames(frames, c0[ok], l1[ok], frame0=frame0, percentiles=percentiles,
                        columns={k: lo_cols[w] for k, w in wanted.items()})
    for k, w in wanted.items():
        if w.any():
            stats[k][np.ix_(ok, lo_cols[w])] = low[k][:, lo_cols[w]]
            stats[k][np.ix_(~ok, lo_cols[w])] = stats[k][np.ix_(~ok, short[w])]
    return stats
