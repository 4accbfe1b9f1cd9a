"""The two window and filter designs the feature kernels take from ``scipy.signal``, in numpy.

Importing ``scipy.signal`` (it imports ``scipy.stats``) cost each worker ~0.5 s before its first
frame (measured in a fresh process: 0.5-0.67 s), for two small tables computed once per process.
Same operations as scipy 1.17 (``tests/features/test_windows.py`` compares them with scipy's).
"""

from __future__ import annotations

import numpy as np
from scipy.special import i0


def periodic_hann(n: int) -> np.ndarray:
    """``scipy.signal.get_window("hann", n, fftbins=True)`` (float64): librosa's STFT window."""
    fac = np.linspace(-np.pi, np.pi, n + 1)  # the symmetric window one longer, its last value dropped
    w = np.zeros(n + 1)
    for k, a in enumerate((0.5, 0.5)):
        w += a * np.cos(k * fac)
    return w[:-1]


def kaiser_lowpass(numtaps: int, cutoff: float, beta: float, fs: float) -> np.ndarray:
    """``scipy.signal.firwin(numtaps, cutoff, window=("kaiser", beta), fs=fs)``: a windowed-sinc
    low-pass, scaled to unit gain at 0 Hz (float64)."""
    if not 0 < cutoff < fs / 2:
        raise ValueError(f"cutoff {cutoff} Hz must lie between 0 and fs/2 = {fs / 2} Hz")
    c = cutoff / float(0.5 * fs)
    m = np.arange(0, numtaps, dtype=np.float64) - 0.5 * (numtaps - 1)
    alpha = (numtaps - 1) / 2.0
    h = c * np.sinc(c * m)
    h *= i0(beta * np.sqrt(1 - ((np.arange(numtaps) - alpha) / alpha) ** 2.0)) / i0(beta)  # Kaiser, symmetric
    return h / np.sum(h)
