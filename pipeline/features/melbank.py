"""librosa's mel filter bank (``librosa.filters.mel``: Slaney's mel scale and area norm) in numpy.

The workers' only use of librosa was this table; importing librosa loads its numba functions,
which cost each worker ~0.7 s before its first frame (measured: ``librosa.filters.mel`` in a
fresh process 0.74 s, this function 2 ms). Same operations in the same order as librosa 0.11,
so the table is librosa's to the last bit (``tests/features/test_melbank.py`` compares them).
"""

from __future__ import annotations

import warnings

import numpy as np

#: Slaney's scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above (6.4 per 27 mels).
_F_SP = 200.0 / 3
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = np.log(6.4) / 27.0


def hz_to_mel(hz: float) -> float:
    """Slaney's mel of a frequency in Hz (librosa's ``hz_to_mel``, ``htk=False``)."""
    if hz >= _MIN_LOG_HZ:
        return _MIN_LOG_MEL + np.log(hz / _MIN_LOG_HZ) / _LOGSTEP
    return hz / _F_SP


def mel_to_hz(mels: np.ndarray) -> np.ndarray:
    """Frequencies in Hz of Slaney mels (librosa's ``mel_to_hz``, ``htk=False``)."""
    mels = np.asarray(mels, np.float64)
    freqs = _F_SP * mels
    log_t = mels >= _MIN_LOG_MEL
    freqs[log_t] = _MIN_LOG_HZ * np.exp(_LOGSTEP * (mels[log_t] - _MIN_LOG_MEL))
    return freqs


def mel_filters(sr: float, n_fft: int, n_mels: int = 128, fmin: float = 0.0, fmax: float | None = None
                ) -> np.ndarray:
    """(n_mels, 1 + n_fft // 2) float32 triangular filters, Slaney-normalised: ``librosa.filters.mel``.

    Warns as librosa does when a filter is empty (too many bands for the frequency resolution).
    """
    fmax = float(sr) / 2 if fmax is None else fmax
    weights = np.zeros((n_mels, 1 + n_fft // 2), np.float32)
    fftfreqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sr)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, np.newaxis]
    if not np.all((mel_f[:-2] == 0) | (weights.max(axis=1) > 0)):
        warnings.warn("Empty filters detected in mel frequency basis: some mel bands will be empty; "
                      "use fewer bands (n_mels) or a longer n_fft", UserWarning, stacklevel=2)
    return weights
