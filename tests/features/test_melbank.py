"""micfp's mel filter bank is librosa's, bit for bit (the workers no longer import librosa for it)."""

import librosa
import numpy as np
import pytest

from pipeline.features.frames import FrameSettings
from pipeline.features.melbank import mel_filters


@pytest.mark.parametrize("sr, n_fft, n_mels, fmin, fmax", [
    (22050, 2048, 128, 0.0, None),  # the thesis set's
    (48000, 2048, 64, 20.0, 20000.0),  # the 48 kHz frame features' defaults
    (44100, 1024, 40, 300.0, 8000.0),
    (16000, 512, 26, 0.0, 999.0),  # wholly below the log region's 1 kHz
])
def test_equals_librosa(sr, n_fft, n_mels, fmin, fmax):
    ours = mel_filters(sr, n_fft, n_mels, fmin, fmax)
    ref = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    assert ours.dtype == ref.dtype == np.float32
    np.testing.assert_array_equal(ours, ref)


def test_frame_settings_use_it():
    s = FrameSettings()
    np.testing.assert_array_equal(s.mel_matrix, mel_filters(s.sample_rate, s.n_fft, s.n_mels, s.fmin, s.fmax).T)


def test_empty_filters_warn_as_librosa():
    with pytest.warns(UserWarning, match="Empty filters"):
        ref = librosa.filters.mel(sr=8000, n_fft=64, n_mels=128)
    with pytest.warns(UserWarning, match="Empty filters"):
        np.testing.assert_array_equal(mel_filters(8000, 64, 128), ref)
