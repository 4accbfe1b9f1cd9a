"""Degradation kernels for the robustness study: added noise at an SNR, lossy codec round trips.

Pure numpy + soundfile, no Dask and no I/O beyond in-memory buffers. The Dask stage that
applies them to whole recordings is :mod:`pipeline.robustness.stage`.

Signals are float32 in [-1, 1) here; :func:`to_pcm` converts back to the store's sample type.
Codecs are what libsndfile (inside the ``soundfile`` wheel) encodes: MP3 (LAME, constant bit
rate), Ogg Vorbis and Ogg Opus (both variable bit rate). libsndfile takes a ``compression_level``
in [0, 1], not a bit rate, so a requested bit rate is reached by calibrating the level on the
material itself (:func:`calibrate_level`); the bit rate actually produced is measured from the
encoded bytes and reported, never assumed.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError

#: codec name -> (soundfile format, subtype)
CODECS = {"mp3": ("MP3", "MPEG_LAYER_III"), "vorbis": ("OGG", "VORBIS"), "opus": ("OGG", "OPUS")}
#: Sample rates the Opus encoder accepts.
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
#: libsndfile refuses compression level 1.0 for MP3 (LAME's lowest rate needs < 1).
_MAX_LEVEL = {"mp3": 0.99, "vorbis": 1.0, "opus": 1.0}
#: Samples handed to the encoder per write call.
ENCODE_BLOCK = 65536
#: Seconds of material a bit rate is calibrated on (spread over the test recordings).
CALIBRATION_SECONDS = 40.0


@dataclass(frozen=True)
class Degradation:
    """One robustness condition applied to test material.

    Parameters
    ----------
    kind : str
        ``"noise"`` (white Gaussian noise at ``snr_db`` relative to the recording's mean power)
        or ``"codec"`` (an encode/decode round trip through ``codec`` at about ``kbps``).
    snr_db : float, optional
        Signal-to-noise ratio of the added noise, dB.
    codec : str, optional
        ``mp3``, ``vorbis`` or ``opus``.
    kbps : float, optional
        Requested bit rate in kbit/s.
    seed : int
        Seed of the noise (combined with the recording and shard, so noise never repeats).
    """

    kind: str
    snr_db: float | None = None
    codec: str | None = None
    kbps: float | None = None
    seed: int = 0

    def __post_init__(self):
        if self.kind == "noise":
            if self.snr_db is None or not math.isfinite(self.snr_db):
                raise ConfigError(f"noise condition needs a finite SNR in dB, got {self.snr_db!r}")
        elif self.kind == "codec":
            if self.codec not in CODECS:
                raise ConfigError(f"unknown codec {self.codec!r}; choose from {', '.join(CODECS)}")
            if self.kbps is None or not math.isfinite(self.kbps) or self.kbps <= 0:
                raise ConfigError(f"codec {self.codec} needs a positive bit rate in kbps, got {self.kbps!r}")
        else:
            raise ConfigError(f"unknown degradation {self.kind!r}; choose noise or codec")

    @property
    def name(self) -> str:
        """The condition's name in results: ``noise-20dB``, ``mp3-64k``."""
        if self.kind == "noise":
            return f"noise-{self.snr_db:g}dB"
        return f"{self.codec}-{self.kbps:g}k"

    def check(self, sample_rate: int) -> None:
        """Raise :class:`ConfigError` if this machine's libsndfile cannot apply the condition."""
        if self.kind == "codec":
            check_codec(self.codec, sample_rate)


def check_codec(codec: str, sample_rate: int) -> None:
    """Fail clearly when the installed libsndfile cannot encode ``codec`` at ``sample_rate``."""
    import soundfile as sf

    if codec not in CODECS:
        raise ConfigError(f"unknown codec {codec!r}; choose from {', '.join(CODECS)}")
    fmt, subtype = CODECS[codec]
    if fmt not in sf.available_formats() or subtype not in sf.available_subtypes(fmt):
        raise ConfigError(f"codec {codec} is not available in this libsndfile ({sf.__libsndfile_version__}); "
                          "install a soundfile wheel with MP3/Vorbis/Opus support or drop the condition")
    if codec == "opus" and sample_rate not in OPUS_RATES:
        raise ConfigError(f"opus needs a sample rate of {', '.join(map(str, OPUS_RATES))} Hz, "
                          f"the audio is at {sample_rate} Hz")


# -- noise -----------------------------------------------------------------------------------
def add_noise(x: np.ndarray, snr_db: float, signal_power: float, rng: np.random.Generator) -> np.ndarray:
    """``x`` plus white Gaussian noise whose power is ``signal_power / 10**(snr_db / 10)``.

    ``signal_power`` is passed in (the whole recording's mean square) so that every block of a
    recording gets noise at the same level, whatever its own loudness.
    """
    x = np.asarray(x, dtype=np.float32)
    sigma = math.sqrt(max(float(signal_power), 0.0) / 10.0 ** (snr_db / 10.0))
    return x + rng.standard_normal(x.size).astype(np.float32).reshape(x.shape) * np.float32(sigma)


# -- codecs ----------------------------------------------------------------------------------
def encode(x: np.ndarray, sample_rate: int, codec: str, level: float) -> bytes:
    """Encode mono float audio with ``codec`` at libsndfile compression ``level`` (0 best .. 1)."""
    import soundfile as sf

    fmt, subtype = CODECS[codec]
    kw = {"compression_level": float(level)}
    if codec == "mp3":
        kw["bitrate_mode"] = "CONSTANT"  # CBR: the rate does not depend on the content
    x = np.clip(np.asarray(x, np.float32), -1.0, 1.0)
    buf = io.BytesIO()
    # Written in blocks: libsndfile's Vorbis encoder crashes the process (segfault) when handed
    # minutes of audio in one write call.
    with sf.SoundFile(buf, "w", sample_rate, 1, format=fmt, subtype=subtype, **kw) as f:
        for i in range(0, x.size, ENCODE_BLOCK):
            f.write(x[i : i + ENCODE_BLOCK])
    return buf.getvalue()


def decode(data: bytes, n: int) -> np.ndarray:
    """Decode encoded bytes to float32, trimmed or zero-padded to ``n`` samples."""
    import soundfile as sf

    y, _ = sf.read(io.BytesIO(data), dtype="float32", always_2d=False)
    y = y if y.ndim == 1 else y[:, 0]
    if y.size >= n:
        return y[:n]
    return np.concatenate([y, np.zeros(n - y.size, np.float32)])


def round_trip(x: np.ndarray, sample_rate: int, codec: str, level: float) -> tuple[np.ndarray, int]:
    """Encode and decode ``x``; returns the decoded signal and the encoded size in bytes."""
    data = encode(x, sample_rate, codec, level)
    return decode(data, np.asarray(x).size), len(data)


def kbps_of(n_bytes: int, n_samples: int, sample_rate: int) -> float:
    """Bit rate in kbit/s of ``n_bytes`` of encoded audio lasting ``n_samples``."""
    return n_bytes * 8.0 / (n_samples / sample_rate) / 1000.0


def calibrate_level(x: np.ndarray, sample_rate: int, codec: str, kbps: float, *,
                    iterations: int = 7) -> tuple[float, float]:
    """The compression level whose encoding of ``x`` comes closest to ``kbps``.

    The bit rate falls monotonically with the level, so a bisection finds it; every level tried
    is measured and the closest measured one wins. Returns ``(level, measured kbps)``. A rate the
    codec cannot reach (below its floor, above its ceiling) yields the nearest it can.
    """
    x = np.asarray(x, np.float32)
    lo, hi = 0.0, _MAX_LEVEL[codec]
    tried: dict[float, float] = {}

    def measure(level: float) -> float:
        if level not in tried:
            tried[level] = kbps_of(len(encode(x, sample_rate, codec, level)), x.size, sample_rate)
        return tried[level]

    if measure(hi) >= kbps:
        return hi, tried[hi]
    if measure(lo) <= kbps:
        return lo, tried[lo]
    for _ in range(iterations):
        mid = round((lo + hi) / 2, 4)
        if measure(mid) > kbps:
            lo = mid
        else:
            hi = mid
    level = min(tried, key=lambda lv: (abs(tried[lv] - kbps), lv))
    return level, tried[level]


# -- sample types ----------------------------------------------------------------------------
def to_float(x: np.ndarray) -> np.ndarray:
    """PCM integers to float32 in [-1, 1); float input unchanged (as the frame kernel does)."""
    from ..features.frames import to_float as _to_float

    return _to_float(np.asarray(x))


def to_pcm(y: np.ndarray, dtype: str) -> np.ndarray:
    """Float audio back to the store's sample type, clipped to full scale (rounded, not truncated)."""
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return np.clip(y, -1.0, 1.0).astype(dt)
    info = np.iinfo(dt)
    scaled = np.round(np.asarray(y, np.float64) * (info.max + 1))
    return np.clip(scaled, info.min, info.max).astype(dt)


def apply(x: np.ndarray, sample_rate: int, deg: Degradation, *, signal_power: float = 0.0,
          level: float | None = None, rng: np.random.Generator | None = None) -> tuple[np.ndarray, int]:
    """Apply one degradation to PCM or float samples; returns (samples of the same dtype, bytes).

    ``bytes`` is the encoded size for a codec (0 for noise), from which the bit rate is measured.
    """
    dtype = np.asarray(x).dtype
    y = to_float(x)
    n_bytes = 0
    if deg.kind == "noise":
        y = add_noise(y, deg.snr_db, signal_power, rng or np.random.default_rng(deg.seed))
    else:
        if level is None:
            raise ValueError("a codec degradation needs its calibrated compression level")
        y, n_bytes = round_trip(y, sample_rate, deg.codec, level)
    return to_pcm(y, dtype.name), n_bytes
