"""Low-frequency resolution of the LTAS: long frames for the bands below 320 Hz."""

import numpy as np
import pytest
import scipy.signal
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.features import lowband
from pipeline.features.clip_stats import clip_stats
from pipeline.features import sets as fsets
from pipeline.features.frames import FrameSettings, frame_features

S = FrameSettings()
NB = S.band_edges.size - 1


def _channel_ltas(y, s=S):
    fr = frame_features(y, s)
    stats = clip_stats(fr, np.array([0]), np.array([y.size]), s, percentiles=(fsets.QUIET_PERCENTILE,))
    return fsets.from_frame_stats("channel", stats, s)[0, :NB]


def test_layout_covers_the_narrow_bands():
    lay = lowband.layout(S)
    assert lay.factor == 32 and lay.n_fft * lay.factor == 16384
    assert S.band_edges[lay.bands[-1] + 1] <= lowband.LOW_FMAX + 1e-6
    # every band narrower than one bin of the frame FFT (a staircase step) is measured on long frames
    width = np.diff(S.band_edges)
    assert set(np.flatnonzero(width < S.sample_rate / S.n_fft)) <= set(lay.bands)
    # each long-analysis band averages its own bins: no two bands share one
    assert (np.count_nonzero(lay.matrix, axis=0) >= 1).all()
    assert (np.count_nonzero(lay.matrix, axis=1) <= 1).all()


def test_no_staircase_on_broadband_noise():
    """Before: the 2048-point FFT gave several low bands one bin each, so adjacent columns were equal."""
    y = np.random.default_rng(3).standard_normal(48000 * 4).astype(np.float32) * 0.1
    ltas = _channel_ltas(y)
    assert np.all(np.abs(np.diff(ltas)) > 1e-4), np.flatnonzero(np.abs(np.diff(ltas)) <= 1e-4)
    # white noise is flat: the low bands agree with the level of the others within a few dB
    assert abs(np.median(ltas[:24]) - np.median(ltas[24:])) < 2.0


@pytest.mark.parametrize("band", [0, 3, 7, 12, 17, 21, 23, 24, 30])
def test_a_sinusoid_lands_in_its_band(band):
    """A tone at a band's centre: that band is the loudest, the bands beyond its neighbours far below."""
    freq = S.band_centres[band]
    t = np.arange(48000 * 3) / 48000
    y = (0.1 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    ltas = _channel_ltas(y)
    assert int(np.argmax(ltas)) == band
    others = np.delete(ltas, [band - 1, band, band + 1])
    assert ltas[band] - others.max() > 15.0


def test_decimation_equals_the_polyphase_filter():
    lay = lowband.layout(S)
    y = np.random.default_rng(4).standard_normal(48000).astype(np.float32)
    d = np.empty(600, np.float32)
    lowband._decimate_kernel(y, lay.taps, lay.factor, d)
    k = (lay.taps.size - 1) // lay.factor
    ref = scipy.signal.upfirdn(lay.taps.astype(np.float64), y, down=lay.factor)[k : k + d.size]
    np.testing.assert_allclose(d, ref, atol=1e-5)


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 300), st.integers(1, 200))
def test_long_frames_tile_like_frames(first, count):
    """Frames [first, first + count) computed from a slice equal the whole-signal ones (the frame stage's blocks)."""
    y = np.random.default_rng(5).standard_normal(48000 * 5).astype(np.float32) * 0.05
    whole = frame_features(y, S)
    cols = S.index("ltaslo_")
    part = frame_features(y[first * S.hop : (first + count - 1) * S.hop + lowband.layout(S).span], S,
                          n_frames=count)
    ref = whole[first : first + count][:, cols]
    got = part[:, cols]
    assert np.array_equal(np.isnan(ref), np.isnan(got))
    np.testing.assert_allclose(got, ref, atol=1e-3)


def test_short_clips_keep_the_frame_fft_bands():
    y = np.random.default_rng(6).standard_normal(48000).astype(np.float32) * 0.1
    fr = frame_features(y, S)
    stats = clip_stats(fr, np.array([0, 0]), np.array([12000, 48000]), S)
    lo, short = S.index("ltaslo_"), S.index("ltas_")[lowband.layout(S).bands]
    np.testing.assert_array_equal(stats["mean"][0, lo], stats["mean"][0, short])  # 0.25 s: no long frame fits
    assert np.isfinite(stats["mean"][1, lo]).all() and not np.array_equal(stats["mean"][1, lo], stats["mean"][1, short])
