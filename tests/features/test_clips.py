"""Clip kernels: windowed reductions equal direct ones; clips stay inside their segment."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.features.clips import SilenceSettings, clip_frame_range, fixed_clips, reduce_frames, silence_clips
from pipeline.features.frames import FrameSettings

S = FrameSettings()


@settings(max_examples=25, deadline=None)
@given(n=st.integers(5, 300), m=st.integers(1, 40), seed=st.integers(0, 1000))
def test_reduce_frames_matches_direct(n, m, seed):
    rng = np.random.default_rng(seed)
    frames = rng.normal(size=(n, 3)).astype(np.float32) * 10 + 50
    f0 = rng.integers(0, n - 1, size=m)
    f1 = np.minimum(n, f0 + rng.integers(1, 20, size=m))
    out = reduce_frames(frames, f0, f1, percentiles=(10.0,))
    for i in range(m):
        block = frames[f0[i] : f1[i]].astype(np.float64)
        np.testing.assert_allclose(out["mean"][i], block.mean(0), rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(out["std"][i], block.std(0), rtol=1e-3, atol=1e-3)
        np.testing.assert_allclose(out["p10"][i], np.percentile(block, 10, axis=0), rtol=1e-5, atol=1e-4)


@pytest.mark.faults
def test_reduce_frames_rejects_empty_clip():
    with pytest.raises(ValueError):
        reduce_frames(np.zeros((10, 2)), [3], [3])


def test_clip_frames_inside_clip():
    start, stop = np.array([1000, 48000]), np.array([1000 + 96000, 48000 + 24000])
    f0, f1 = clip_frame_range(start, stop, S)
    assert np.all(f0 * S.hop >= start)
    assert np.all((f1 - 1) * S.hop + S.n_fft <= stop)
    assert np.all(f1 * S.hop + S.n_fft > stop)  # no whole frame left out


def test_fixed_clips_tile_segment():
    st_ = fixed_clips(1000, 1000 + 10 * 4800 + 100, 4800)
    assert st_.tolist() == [1000 + 4800 * k for k in range(10)]
    assert fixed_clips(0, 100, 4800).size == 0


def test_silence_split_finds_loud_runs():
    fr = S.frame_rate
    rms = np.full(int(20 * fr), -90.0, np.float32)
    rms[int(2 * fr) : int(6 * fr)] = -20  # 4 s loud
    rms[int(6.3 * fr) : int(7 * fr)] = -90  # 0.7 s gap: too short to split
    rms[int(10 * fr) : int(13 * fr)] = -20  # after a long silence
    n = (rms.size - 1) * S.hop + S.n_fft
    pieces = silence_clips(rms, 0, 0, n, S, SilenceSettings(threshold_db=-60, min_silence_s=1.1, min_clip_s=0.5))
    assert pieces.shape == (2, 2)
    secs = pieces / S.sample_rate
    assert secs[0, 0] == pytest.approx(2.0, abs=0.05) and secs[0, 1] == pytest.approx(6.0, abs=0.1)
    assert secs[1, 0] == pytest.approx(10.0, abs=0.05) and secs[1, 1] == pytest.approx(13.0, abs=0.1)


def test_silence_split_respects_segment_and_max_length():
    fr = S.frame_rate
    rms = np.full(int(20 * fr), -20.0, np.float32)
    a, b = 3 * 48000, 9 * 48000
    pieces = silence_clips(rms, 0, a, b, S, SilenceSettings(max_clip_s=2.0))
    assert pieces[:, 0].min() >= a and pieces[:, 1].max() <= b
    assert np.all(pieces[:, 1] - pieces[:, 0] <= 2 * 48000)
