"""Clip lengths (``clip_seconds``): parsed, checked, compared and converted here only.

A clip length is a float number of seconds. The feature stage cuts clips of
:func:`samples` samples; the cube stores the nominal length in its ``clip_seconds``
coordinate (0 for silence-split clips), and everything that later selects clips of one
length (evaluation cells, training, the workflow's grid, the report) compares lengths with
:func:`same`, which tolerates the rounding of a length that went through JSON, NetCDF or
Zarr and back.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError


def parse(text: str) -> tuple[float, ...]:
    """Clip lengths from comma-separated numbers (``"0.5,1,2"``), in the order given.

    Raises
    ------
    ConfigError
        A part is not a number (one line naming the text).
    """
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ConfigError(f"expected comma-separated numbers, got {text!r}") from None


def shortest(frame) -> float:
    """The shortest clip length, in seconds, that holds one analysis frame of ``frame`` (FrameSettings)."""
    return frame.n_fft / frame.sample_rate


def check(lengths, frame) -> None:
    """Every length is finite, positive and holds at least one analysis frame.

    Parameters
    ----------
    lengths : sequence of float
    frame : FrameSettings
        The frame settings the clips are analysed with.

    Raises
    ------
    ConfigError
        For the first bad length.
    """
    min_len = shortest(frame)
    for c in lengths:
        if not math.isfinite(c) or c <= 0:
            raise ConfigError(f"clip length must be positive, got {c}")
        if c < min_len:
            raise ConfigError(f"clip length {c} s is shorter than one analysis frame ({min_len:.3f} s)")


def longer_than(lengths, seconds: float) -> list[float]:
    """The lengths (in their order) longer than ``seconds``: no clip of them fits a recording that long."""
    return [c for c in lengths if c > seconds]


def samples(seconds: float, sample_rate: int) -> int:
    """Samples in a clip of ``seconds`` at ``sample_rate`` (rounded to the nearest sample)."""
    return int(round(seconds * sample_rate))


def same(a, b):
    """Whether clip lengths ``a`` and ``b`` are the same length (elementwise for arrays).

    Tolerant (:func:`numpy.isclose`): a length read back from a stored cube or results set
    equals the configured one.
    """
    return np.isclose(a, b)


def contains(lengths, length: float) -> bool:
    """Whether ``length`` is one of ``lengths`` (by :func:`same`)."""
    return bool(np.asarray(same(np.asarray(lengths, dtype=np.float64), length)).any())


def missing(wanted, have) -> list[float]:
    """The lengths of ``wanted`` (sorted, each once) that are not in ``have`` (by :func:`same`)."""
    return sorted({float(c) for c in wanted if not contains(have, c)})
