"""Clip features of one in-memory signal, with the same kernels as the cube.

Used by ``micfp identify``: a file is cut into consecutive fixed-length clips exactly as the
cube's ``fixed`` segmentation cuts a segment, and each clip gets the features of the named
sets (frame features once over the whole signal, then :func:`clip_stats.clip_stats` and
:func:`sets.from_frame_stats`; the thesis set from the clips' audio, all clips at once).
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from . import clip_lengths, relative
from .clip_stats import clip_stats
from . import sets as fsets
from .clips import fixed_clips
from .frames import FrameSettings, frame_features
from .thesis_frames import thesis_clip_features


def clip_features(y: np.ndarray, clip_seconds: float, feature_sets, frame: FrameSettings
                  ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Features of every whole ``clip_seconds`` clip of ``y``.

    Parameters
    ----------
    y : ndarray
        1-D signal at ``frame.sample_rate`` (PCM integers or float in [-1, 1)).
    clip_seconds : float
        Clip length; a trailing part shorter than one clip is dropped.
    feature_sets : str or sequence of str
        Feature sets as for the cube (``thesis``, ``spectral``, ``channel``, ``all``).
    frame : FrameSettings

    Returns
    -------
    starts : ndarray
        Start of each clip in seconds.
    X : ndarray
        (n_clips, n_features) float32, columns in the cube's order for these sets.
    names : list of str
        The feature names.
    """
    if relative.SET_NAME in fsets.expand(feature_sets):
        raise ConfigError(relative.SINGLE_FILE_REASON)
    y = np.asarray(y).ravel()
    sr = frame.sample_rate
    n = clip_lengths.samples(clip_seconds, sr)
    names, _ = fsets.feature_layout(feature_sets, frame)
    starts = fixed_clips(0, y.size, n)
    if starts.size == 0:
        return np.zeros(0), np.zeros((0, len(names)), np.float32), names
    stops = starts + n
    frames = frame_features(y[: int(stops.max())], frame)
    stats = clip_stats(frames, starts, stops, frame, percentiles=fsets.needs_percentiles(feature_sets))
    blocks = []
    for name in fsets.expand(feature_sets):
        if name == "thesis":
            blocks.append(thesis_clip_features(y, 0, starts, stops, sr))
        else:
            blocks.append(fsets.from_frame_stats(name, stats, frame))
    return starts / sr, np.concatenate(blocks, axis=1).astype(np.float32), names
