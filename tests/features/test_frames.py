"""Frame kernels: blockwise equals whole-signal, and each feature means what it says."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.features import lowband
from pipeline.features.frames import FrameSettings, frame_features, power_spectrum, frame_view, to_float

S = FrameSettings()


def tone(freq, seconds=1.0, amp=0.5, sr=48000):
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_shapes_and_names():
    y = tone(1000)
    f = frame_features(y, S)
    assert f.shape == (S.n_frames(y.size), len(S.feature_names))
    assert f.dtype == np.float32
    # the long frames of the low LTAS bands (lowband.py) are NaN where the signal ends before them
    low = S.index("ltaslo_")
    fits = np.arange(f.shape[0]) * S.hop + lowband.layout(S).span <= y.size
    assert np.isfinite(np.delete(f, low, axis=1)).all() and np.isfinite(f[fits][:, low]).all()
    assert np.isnan(f[~fits][:, low]).all()
    assert len(set(S.feature_names)) == len(S.feature_names)


@settings(max_examples=15, deadline=None)
@given(n=st.integers(min_value=2048, max_value=40000), split=st.integers(min_value=1, max_value=60),
       per_call=st.sampled_from([3, 64, 2048]))
def test_blockwise_equals_whole(n, split, per_call):
    """Any tiling of the frames, read from the slices that hold them (through their long frames,
    as the frame stage reads them), equals the whole signal."""
    y = (np.random.default_rng(n).standard_normal(n) * 3000).astype(np.int16)
    whole = frame_features(y, S)
    k = min(split, whole.shape[0])
    parts = []
    for f0 in range(0, whole.shape[0], k):
        f1 = min(whole.shape[0], f0 + k)
        parts.append(frame_features(y[f0 * S.hop : (f1 - 1) * S.hop + max(S.n_fft, lowband.layout(S).span)], S,
                                    frames_per_call=per_call, n_frames=f1 - f0))
    np.testing.assert_allclose(np.concatenate(parts), whole, rtol=1e-4, atol=1e-3)


def test_tone_features():
    f = frame_features(tone(3000), S)
    names = S.feature_names
    col = {n: i for i, n in enumerate(names)}
    assert np.median(f[:, col["centroid"]]) == pytest.approx(3000, rel=0.05)
    # A 0.5-amplitude sine has mean square 0.125: -9.03 dBFS.
    assert np.median(f[:, col["rms_db"]]) == pytest.approx(10 * np.log10(0.125), abs=0.1)
    # Zero crossings: 2 per period.
    assert np.median(f[:, col["zcr48"]]) == pytest.approx(2 * 3000 / 48000, rel=0.02)
    # The LTAS band holding 3 kHz is the loudest.
    ltas = f[:, S.index("ltas_")].mean(axis=0)
    lo, hi = S.band_edges[np.argmax(ltas)], S.band_edges[np.argmax(ltas) + 1]
    assert lo <= 3000 < hi


def test_flatness_and_hnr_order():
    noise = np.random.default_rng(0).standard_normal(48000).astype(np.float32) * 0.1
    t = np.arange(48000) / 48000
    voiced = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 20)).astype(np.float32) * 0.1
    fn, fv = frame_features(noise, S), frame_features(voiced, S)
    col = {n: i for i, n in enumerate(S.feature_names)}
    assert fn[:, col["flatness_db"]].mean() > fv[:, col["flatness_db"]].mean() + 10
    assert fv[:, col["hnr_db"]].mean() > fn[:, col["hnr_db"]].mean() + 10


def test_global_db_reference_on_quiet_audio():
    """Quiet audio gives low absolute levels (no per-chunk normalisation to the chunk's maximum)."""
    loud, quiet = tone(1000, amp=0.5), tone(1000, amp=0.005)
    d = frame_features(loud, S)[:, S.index("logmel_")].max() - frame_features(quiet, S)[:, S.index("logmel_")].max()
    assert d == pytest.approx(40.0, abs=0.1)


def test_power_spectrum_parseval():
    y = np.random.default_rng(3).standard_normal(8192).astype(np.float32)
    fr = frame_view(y, S)
    p = power_spectrum(fr, S)
    w = fr * S.window
    energy = (w**2).sum(axis=1)
    spec_energy = (2 * p.sum(axis=1) - p[:, 0] - p[:, -1]) / S.n_fft
    np.testing.assert_allclose(spec_energy, energy, rtol=1e-4)


def test_short_signal_has_no_frames():
    assert frame_features(np.zeros(100, np.int16), S).shape == (0, len(S.feature_names))


def test_to_float_scales_pcm():
    assert to_float(np.array([-32768, 16384], np.int16)).tolist() == [-1.0, 0.5]


def test_settings_validated():
    with pytest.raises(ValueError):
        FrameSettings(hop=0)
    with pytest.raises(ValueError):
        FrameSettings(fmax=30000)


# -- the fast kernel equals the direct definitions of its features --------------------------
def _direct(y, s):
    """Per-frame reference computations of the features the kernel computes indirectly."""
    fr = frame_view(to_float(y), s)
    p = power_spectrum(fr, s).astype(np.float64)
    cum = np.cumsum(p, axis=1)
    rolloff = s.freqs[np.minimum((cum < 0.85 * cum[:, -1:]).sum(axis=1), s.freqs.size - 1)]
    contrast = []
    for sl in s.contrast_slices:
        sub = np.sort(p[:, sl], axis=1)
        q = max(1, int(round(0.02 * sub.shape[1])))
        contrast.append(10 * np.log10(np.maximum(sub[:, -q:].mean(1), 1e-10) / np.maximum(sub[:, :q].mean(1), 1e-10)))
    signs = np.signbit(fr)
    zcr = np.count_nonzero(signs[:, 1:] != signs[:, :-1], axis=1) / s.n_fft
    rms_db = 10 * np.log10(np.maximum((fr.astype(np.float64) ** 2).mean(axis=1), 1e-10))
    return rolloff, np.stack(contrast, axis=1), zcr, rms_db


@pytest.mark.parametrize("settings_", [S, FrameSettings(n_fft=1000, hop=300, n_mels=40)])
def test_kernel_equals_direct_definitions(settings_):
    s = settings_
    rng = np.random.default_rng(5)
    t = np.arange(3 * s.sample_rate) / s.sample_rate
    y = (0.2 * np.sin(2 * np.pi * 440 * t) * (t % 1 < 0.6) + 0.01 * rng.standard_normal(t.size)) * 32767
    y = y.astype(np.int16)
    y[: s.sample_rate // 4] = 0  # digital silence: every bin at the floor
    f = frame_features(y, s)
    col = {n: i for i, n in enumerate(s.feature_names)}
    rolloff, contrast, zcr, rms_db = _direct(y, s)
    # Roll-off is a bin frequency: allow one bin where float rounding sits on the threshold.
    assert np.mean(f[:, col["rolloff"]] == rolloff) > 0.99
    assert np.abs(f[:, col["rolloff"]] - rolloff).max() <= s.freqs[1] + 1e-3
    np.testing.assert_allclose(f[:, s.index("contrast_")], contrast, atol=1e-2)
    np.testing.assert_allclose(f[:, col["zcr48"]], zcr, atol=1e-7)
    np.testing.assert_allclose(f[:, col["rms_db"]], rms_db, atol=1e-3)


def test_blockwise_equals_whole_when_hop_does_not_divide_n_fft():
    s = FrameSettings(n_fft=1000, hop=300, n_mels=40)
    y = (np.random.default_rng(9).standard_normal(20000) * 3000).astype(np.int16)
    whole = frame_features(y, s)
    part = frame_features(y[7 * s.hop :], s, frames_per_call=5)
    np.testing.assert_allclose(part, whole[7:], rtol=1e-4, atol=1e-3)


def test_pcm_level_and_crossings_are_exact_blockwise():
    """RMS and ZCR come from per-hop sums that do not depend on where a block starts."""
    y = (np.random.default_rng(4).standard_normal(48000) * 3000).astype(np.int16)
    whole = frame_features(y, S)
    part = frame_features(y[5 * S.hop :], S, frames_per_call=7)
    np.testing.assert_array_equal(part[:, :2], whole[5:, :2])


def test_settings_pickle_without_cached_tables():
    import pickle

    s = FrameSettings()
    s.analysis_matrix, s.mel_matrix  # build the cached tables
    blob = pickle.dumps(s)
    assert len(blob) < 2000  # the settings, not megabytes of matrices, travel with each task
    s2 = pickle.loads(blob)
    assert s2 == s and s2.feature_names == s.feature_names


def test_settings_unpickle_to_one_shared_instance_without_their_tables():
    import pickle

    from pipeline.features.frames import FrameSettings

    fs = FrameSettings(n_mels=40)
    fs.mel_matrix  # noqa: B018 - fills the cached table
    blob = pickle.dumps(fs)
    assert len(blob) < 300  # the settings only, not the tables
    a, b = pickle.loads(blob), pickle.loads(blob)
    assert a == fs and a is b  # tasks share one instance (and its tables) per process


def test_mfcc48_is_the_dct_ii_of_the_log_mel_bands():
    """The 48 kHz MFCCs are librosa's: the orthonormal DCT-II of each frame's log-mel bands (the
    matrix was once transposed, which computed the inverse DCT, DCT-III)."""
    import scipy.fft as sfft

    from pipeline.features.frames import FrameSettings

    s = FrameSettings()
    bands = np.random.default_rng(0).standard_normal((7, s.n_mels)).astype(np.float32)
    want = sfft.dct(bands, type=2, norm="ortho", axis=1)[:, : s.n_mfcc]
    np.testing.assert_allclose(bands @ s.dct_matrix, want, rtol=1e-4, atol=1e-4)
