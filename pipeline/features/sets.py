"""Named feature sets: which clip features each holds and how they come from frame statistics.

- ``thesis``: exactly the thesis (clip resampled to 22,050 Hz by librosa, mean of 20 MFCCs,
  mean zero-crossing rate, mean RMS; librosa defaults, including its per-call ``top_db``).
- ``spectral``: mean and standard deviation over frames of level, ZCR, centroid, bandwidth,
  roll-off, flatness, harmonic-to-noise ratio, spectral contrast and 20 MFCCs at 48 kHz.
- ``channel``: the long-term average log spectrum in 1/6-octave bands (those up to 320 Hz from
  long frames, :mod:`pipeline.features.lowband`), normalised for level
  (gain settings differ between microphones), its band-to-band differences, and the quiet-frame
  spectrum (10th percentile of each band's log power, same level reference) that carries
  self-noise.
- ``session-relative``: the channel set's level-normalised LTAS and quiet-frame spectrum and the
  spectral-shape means, each minus the mean over the session's microphones at the same moment
  (:mod:`pipeline.features.relative`); needs every microphone of a session, so it is computed in
  the cube stage only (not for a single file) and is not part of ``all``.
- ``all``: the union of ``thesis``, ``spectral`` and ``channel``.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from . import lowband, relative
from .frames import FrameSettings

FEATURE_SETS = ("thesis", "spectral", "channel", "session-relative", "all")
#: Sets computed from one clip alone (``all`` expands to these).
SINGLE_SETS = ("thesis", "spectral", "channel")
#: Spectral-shape statistics whose clip means the session-relative set also holds.
SHAPE_PREFIXES = ("centroid", "bandwidth", "rolloff", "flatness_db", "contrast_")
SPECTRAL_PREFIXES = ("rms_db", "zcr48", "centroid", "bandwidth", "rolloff", "flatness_db", "hnr_db",
                     "contrast_", "mfcc48_")
QUIET_PERCENTILE = 10.0
THESIS_SR = 22050
THESIS_N_MFCC = 20


#: What ``micfp features`` and the demo compute unless told otherwise: every single-clip set and the
#: session-relative one (cheap, and what micfp_auto weighs against the others when a session's
#: microphones all recorded the same sound).
DEFAULT_FEATURE_SETS = ("all", "session-relative")


def expand(sets) -> tuple[str, ...]:
    """Validate set names and expand ``all``; order is stable (thesis, spectral, channel, session-relative)."""
    sets = (sets,) if isinstance(sets, str) else tuple(sets)
    for s in sets:
        if s not in FEATURE_SETS:
            raise ConfigError(f"unknown feature set {s!r}; choose from {', '.join(FEATURE_SETS)}")
    if "all" in sets:
        sets = SINGLE_SETS + sets
    return tuple(s for s in FEATURE_SETS[:-1] if s in sets)


def _spectral_cols(s: FrameSettings, prefixes=SPECTRAL_PREFIXES) -> np.ndarray:
    return np.array([i for i, n in enumerate(s.feature_names) if n.startswith(prefixes)])


def _channel_names(s: FrameSettings, diff: bool = True) -> list[str]:
    nb = s.band_edges.size - 1
    return ([f"ltas_mean_{k:02d}" for k in range(nb)] + ([f"ltas_diff_{k:02d}" for k in range(nb - 1)] if diff else [])
            + [f"ltas_p10_{k:02d}" for k in range(nb)])


def relative_bands(s: FrameSettings) -> np.ndarray:
    """The LTAS bands of the session-relative set: centres from :data:`relative.MIN_HZ` up."""
    return np.flatnonzero(s.band_centres >= relative.MIN_HZ)


def _relative_names(s: FrameSettings) -> list[str]:
    bands = relative_bands(s)
    shape = [f"{s.feature_names[i]}_mean" for i in _spectral_cols(s, SHAPE_PREFIXES)]
    return [f"{relative.PREFIX}{n}" for n in
            [f"ltas_mean_{k:02d}" for k in bands] + [f"ltas_p10_{k:02d}" for k in bands] + shape]


def set_names(name: str, s: FrameSettings) -> list[str]:
    """Feature names of one (expanded) set."""
    if name == "thesis":
        return [f"mfcc_mean_{i:02d}" for i in range(THESIS_N_MFCC)] + ["zcr_mean", "rms_mean"]
    if name == "spectral":
        base = [s.feature_names[i] for i in _spectral_cols(s)]
        return [f"{b}_mean" for b in base] + [f"{b}_std" for b in base]
    if name == "channel":
        return _channel_names(s)
    if name == "session-relative":
        return _relative_names(s)
    raise ConfigError(f"unknown feature set {name!r}")


def feature_layout(sets, s: FrameSettings) -> tuple[list[str], list[str]]:
    """(feature names, owning set per feature) for the cube's ``feature`` dimension."""
    names, owner = [], []
    for name in expand(sets):
        n = set_names(name, s)
        names += n
        owner += [name] * len(n)
    return names, owner


#: Feature-name prefixes of the per-band features (followed by the band number).
BAND_PREFIXES = ("ltas_mean_", "ltas_p10_", "rel_ltas_mean_", "rel_ltas_p10_")


def feature_frequencies(names, s: FrameSettings) -> np.ndarray:
    """Each feature's band centre in Hz (``ltas_mean_k``, ``ltas_p10_k``); NaN for other features.

    ``ltas_diff_k`` (band k+1 minus band k) lies between two bands and gets NaN too.
    """
    centres = s.band_centres
    out = np.full(len(names), np.nan)
    for i, name in enumerate(names):
        if name.startswith(BAND_PREFIXES):
            out[i] = centres[int(name.rsplit("_", 1)[1])]
    return out


def needs_percentiles(sets) -> tuple[float, ...]:
    return (QUIET_PERCENTILE,) if {"channel", "session-relative"} & set(expand(sets)) else ()


def _ltas(values: np.ndarray, s: FrameSettings) -> np.ndarray:
    """LTAS band levels of clip statistics ``values``: the frame FFT's bands, the low ones from long frames."""
    out = values[:, s.index("ltas_")]
    low = s.index("ltaslo_")
    if low.size:
        out[:, lowband.layout(s).bands] = values[:, low]
    return out


def from_frame_stats(name: str, stats: dict[str, np.ndarray], s: FrameSettings) -> np.ndarray:
    """Clip features of a frame-derived set from :func:`clips.reduce_frames` statistics."""
    if name == "spectral":
        cols = _spectral_cols(s)
        return np.concatenate([stats["mean"][:, cols], stats["std"][:, cols]], axis=1)
    if name in ("channel", "session-relative"):
        mean = _ltas(stats["mean"], s)
        quiet = _ltas(stats[f"p{QUIET_PERCENTILE:g}"], s)
        if name == "session-relative":  # its bands only, the level too (the low bands move with position)
            bands = relative_bands(s)
            mean, quiet = mean[:, bands], quiet[:, bands]
        level = mean.mean(axis=1, keepdims=True)
        if name == "channel":
            return np.concatenate([mean - level, np.diff(mean, axis=1), quiet - level], axis=1)
        # Absolute values; the cube stage subtracts the session's mean (features.relative).
        return np.concatenate([mean - level, quiet - level, stats["mean"][:, _spectral_cols(s, SHAPE_PREFIXES)]],
                              axis=1)
    raise ConfigError(f"feature set {name!r} is not derived from frames")


def thesis_features(clip: np.ndarray, sample_rate: int) -> np.ndarray:
    """The thesis's 22 features of one clip, computed as the thesis did (librosa defaults).

    ``clip`` is PCM or float audio at ``sample_rate``; it is resampled to 22,050 Hz the way
    ``librosa.load`` does (soxr_hq), then MFCC (20), ZCR and RMS are averaged over frames.
    """
    import librosa

    from .frames import to_float

    y = to_float(np.asarray(clip))
    if sample_rate != THESIS_SR:
        y = librosa.resample(y, orig_sr=sample_rate, target_sr=THESIS_SR, res_type="soxr_hq")
    mfcc = librosa.feature.mfcc(y=y, sr=THESIS_SR, n_mfcc=THESIS_N_MFCC).mean(axis=1)
    zcr = librosa.feature.zero_crossing_rate(y).mean()
    rms = librosa.feature.rms(y=y).mean()
    return np.concatenate([mfcc, [zcr, rms]]).astype(np.float32)
