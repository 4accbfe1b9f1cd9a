"""Feature sets: thesis parity with librosa, channel features free of level."""

import numpy as np
import pytest

from pipeline.features import sets as fsets
from pipeline.features.clips import reduce_frames
from pipeline.features.frames import FrameSettings, frame_features
from pipeline.errors import ConfigError

S = FrameSettings()


def test_thesis_features_equal_direct_librosa(tmp_path):
    """The thesis loads a clip with librosa.load(sr=22050) and averages mfcc, zcr and rms."""
    import librosa
    import soundfile as sf

    rng = np.random.default_rng(0)
    t = np.arange(48000 * 2) / 48000
    y = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.size)) * 32767
    clip = y.astype(np.int16)
    path = tmp_path / "clip.wav"
    sf.write(path, clip, 48000, subtype="PCM_16")
    ref_y, sr = librosa.load(path, sr=22050)
    ref = np.concatenate([librosa.feature.mfcc(y=ref_y, sr=sr, n_mfcc=20).mean(axis=1),
                          [librosa.feature.zero_crossing_rate(ref_y).mean(), librosa.feature.rms(y=ref_y).mean()]])
    np.testing.assert_allclose(fsets.thesis_features(clip, 48000), ref, rtol=1e-4, atol=1e-5)


def test_layout_names_match_values():
    names, owners = fsets.feature_layout(("all",), S)
    assert len(names) == len(set(names)) == len(owners)
    y = (np.random.default_rng(1).standard_normal(48000) * 1000).astype(np.int16)
    frames = frame_features(y, S)
    stats = reduce_frames(frames, [0], [frames.shape[0]], percentiles=fsets.needs_percentiles("channel"))
    for name in ("spectral", "channel"):
        assert fsets.from_frame_stats(name, stats, S).shape[1] == len(fsets.set_names(name, S))
    assert fsets.thesis_features(y, 48000).size == len(fsets.set_names("thesis", S))


def test_channel_features_ignore_gain():
    y = np.random.default_rng(2).standard_normal(48000).astype(np.float32) * 0.01
    feats = []
    for gain in (1.0, 8.0):
        fr = frame_features(y * gain, S)
        st = reduce_frames(fr, [0], [fr.shape[0]], percentiles=(10.0,))
        feats.append(fsets.from_frame_stats("channel", st, S))
    np.testing.assert_allclose(feats[0], feats[1], atol=1e-3)


@pytest.mark.faults
def test_unknown_set_is_config_error():
    with pytest.raises(ConfigError, match="unknown feature set 'mfcc'"):
        fsets.expand(("mfcc",))
    assert fsets.expand("all") == ("thesis", "spectral", "channel")
