"""soxr's one-shot resampling at a clip's ends, as fixed linear maps measured from soxr.

Resampling a clip on its own (``soxr.resample``, as ``librosa.load`` does) differs from
resampling a longer stretch holding it only near the clip's ends, where soxr's filter sees the
clip's edges. The one-shot is linear in its input; its first outputs depend only on the first
input samples, its last outputs only on the last ones and on where the output grid ends
relative to the last input (which repeats with the resampling period, up to soxr's rounding of
the output length). So the first and last ``EDGE`` outputs of any clip are fixed matrices
applied to its first and last ``TAPS`` inputs, measured once per process by resampling unit
impulses (one soxr call, one channel per impulse). A soxr call costs ~0.06 ms however short the
input, more than resampling a 0.1 s clip; the maps replace the per-clip calls by a matrix product.

Measured at 48 kHz: the first 256 outputs from the first 800 inputs reproduce soxr's one-shot
to 1.2e-7 of full scale (float rounding); every further input weighs less than 1e-7.
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

import numpy as np

from .frames import to_float

#: Outputs at each end of a clip given by the maps (further in, resampling a stretch holding the
#: clip gives the clip's own samples to float rounding: the differences fall below 1e-6 of full
#: scale within 80 outputs).
EDGE = 256
#: Inputs reaching those outputs.
TAPS = 800
#: Shortest probe: long enough that the probe's far end does not reach the outputs measured.
PROBE = 3200


def resample(x: np.ndarray, sample_rate: int, target: int) -> np.ndarray:
    """soxr_hq one-shot (``librosa.resample`` before its length fix) of float32 ``x`` (1-D, or
    2-D with one channel per column)."""
    import soxr

    return np.asarray(soxr.resample(x, sample_rate, target, quality="soxr_hq"), np.float32)


@lru_cache(maxsize=16)
def period(sample_rate: int, target: int) -> tuple[int, int]:
    """(input samples, output samples) of one period of the resampling (cached: called per clip)."""
    r = Fraction(int(target), int(sample_rate))
    return r.denominator, r.numerator


def soxr_length(n: int, sample_rate: int, target: int) -> int:
    """The one-shot's output length for ``n`` input samples, as soxr computes it.

    soxr rounds ``n p / q`` to the nearest integer; when that lands on a half sample (``n = 160``
    mod 320 at 48 kHz) it rounds up or down depending on ``n`` (floating point), so those lengths
    are asked of soxr (a call on zeros, cached).
    """
    q, p = period(sample_rate, target)
    if (2 * n * p) % (2 * q) != q:
        return (2 * n * p + q) // (2 * q)
    return _soxr_length(int(n), sample_rate, target)


@lru_cache(maxsize=4096)
def _soxr_length(n: int, sample_rate: int, target: int) -> int:
    return int(resample(np.zeros(n, np.float32), sample_rate, target).shape[0])


def length_excess(n: int, sample_rate: int, target: int) -> int:
    """How far soxr's output length for ``n`` inputs lies above ``floor(n p / q)`` (0 or 1)."""
    q, p = period(sample_rate, target)
    return soxr_length(n, sample_rate, target) - n * p // q


def lengths_and_excess(n: np.ndarray, sample_rate: int, target: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`soxr_length` and :func:`length_excess` of many input lengths (each distinct one once:
    clips of a task share a few lengths)."""
    q, p = period(sample_rate, target)
    uniq, inv = np.unique(np.asarray(n, np.int64), return_inverse=True)
    length = np.array([soxr_length(int(k), sample_rate, target) for k in uniq], np.int64)
    return length[inv.ravel()], (length - uniq * p // q)[inv.ravel()]


@lru_cache(maxsize=4)
def head_map(sample_rate: int, target: int) -> np.ndarray:
    """(TAPS, EDGE) float32: ``x[:TAPS] @ it`` = the first EDGE outputs of the one-shot of ``x``."""
    probe = np.zeros((PROBE, TAPS), np.float32)
    probe[np.arange(TAPS), np.arange(TAPS)] = 1.0
    return np.ascontiguousarray(resample(probe, sample_rate, target)[:EDGE].T)


@lru_cache(maxsize=64)
def tail_map(sample_rate: int, target: int, phase: int, excess: int) -> np.ndarray:
    """(TAPS, EDGE) float32: ``x[-TAPS:] @ it`` = the last EDGE outputs of the one-shot of any
    ``x`` of ``n`` samples with ``n % q == phase`` and ``length_excess(n) == excess``.

    Measured on a probe of such a length (the first at or above ``PROBE`` samples).
    """
    q, _ = period(sample_rate, target)
    n = PROBE + (phase - PROBE) % q
    while length_excess(n, sample_rate, target) != excess:
        n += q
        if n > PROBE + 64 * q:  # pragma: no cover - soxr's rounding changed beyond recognition
            raise RuntimeError(f"no probe length {phase} mod {q} with soxr's output rounding {excess}")
    probe = np.zeros((n, TAPS), np.float32)
    probe[n - TAPS + np.arange(TAPS), np.arange(TAPS)] = 1.0
    _measured.add((sample_rate, target, phase, excess))
    return np.ascontiguousarray(resample(probe, sample_rate, target)[-EDGE:].T)


def tail_map_cached(sample_rate: int, target: int, phase: int, excess: int) -> bool:
    """Whether :func:`tail_map` of these arguments is measured already in this process."""
    return (sample_rate, target, phase, excess) in _measured


_measured: set = set()


def edges(audio: np.ndarray, starts: np.ndarray, stops: np.ndarray, sample_rate: int, target: int
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first and last EDGE outputs of the one-shot of each clip ``audio[start:stop]``.

    ``audio`` is PCM or float; every clip must hold at least ``2 * TAPS`` samples.

    Returns
    -------
    head, tail : ndarray
        (n_clips, EDGE) float32 each.
    length : ndarray
        The one-shot's output length per clip (its last EDGE outputs end there).
    """
    q, _ = period(sample_rate, target)
    idx = np.arange(TAPS)
    # Clips of several lengths share starts (and stops): each distinct end is mapped once.
    u, inv = np.unique(starts, return_inverse=True)
    head = (to_float(audio[u[:, None] + idx]) @ head_map(sample_rate, target))[inv.ravel()]
    n = stops - starts
    length, excess = lengths_and_excess(n, sample_rate, target)
    tail = np.empty_like(head)
    keys = np.stack([n % q, excess])
    for v, e in np.unique(keys, axis=1).T:
        sel = np.flatnonzero((keys[0] == v) & (keys[1] == e))
        u, inv = np.unique(stops[sel], return_inverse=True)
        tail[sel] = (to_float(audio[u[:, None] - TAPS + idx]) @ tail_map(sample_rate, target, int(v), int(e)))[inv.ravel()]
    return head, tail, length
