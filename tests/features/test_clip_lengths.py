"""pipeline.features.clip_lengths: the one owner of ``clip_seconds``."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.errors import ConfigError
from pipeline.features import FeatureConfig, FrameSettings, clip_lengths
from pipeline.features.clips import clip_frame_range, fixed_clips

FRAME = FrameSettings()


def test_parse_keeps_order_and_skips_empty_parts():
    assert clip_lengths.parse("2, 0.5,,1") == (2.0, 0.5, 1.0)
    assert clip_lengths.parse("") == ()


@pytest.mark.faults
@pytest.mark.parametrize("text", ["1,two", "0.5;1", "1,,x"])
def test_parse_refuses_a_non_number_in_one_line(text):
    with pytest.raises(ConfigError) as exc:
        clip_lengths.parse(text)
    assert str(exc.value) == f"expected comma-separated numbers, got {text!r}"


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=1, max_size=6))
def test_parse_of_formatted_lengths_round_trips(values):
    assert clip_lengths.parse(",".join(repr(v) for v in values)) == tuple(values)


@pytest.mark.faults
@pytest.mark.parametrize("bad, message", [(0.0, "must be positive, got 0.0"), (-1.0, "must be positive, got -1.0"),
                                          (float("nan"), "must be positive, got nan"),
                                          (float("inf"), "must be positive, got inf"),
                                          (0.01, "shorter than one analysis frame")])
def test_check_refuses_bad_lengths(bad, message):
    with pytest.raises(ConfigError, match=message):
        clip_lengths.check((1.0, bad), FRAME)
    with pytest.raises(ConfigError, match=message):  # FeatureConfig holds its lengths through the owner
        FeatureConfig(clip_seconds=(1.0, bad))


def test_check_accepts_exactly_one_frame():
    one = clip_lengths.shortest(FRAME)
    clip_lengths.check((one, 2.0), FRAME)
    n = clip_lengths.samples(one, FRAME.sample_rate)
    f0, f1 = clip_frame_range(0, n, FRAME)
    assert int(f1 - f0) == 1


@given(st.integers(1, 10 * 48000), st.sampled_from([8000, 16000, 22050, 44100, 48000, 96000]))
def test_samples_round_trip(n, sr):
    """A length of ``n`` samples written as seconds converts back to exactly ``n`` samples."""
    assert clip_lengths.samples(n / sr, sr) == n


@given(st.floats(0.001, 600.0), st.sampled_from([16000, 44100, 48000]))
def test_samples_are_the_nearest_sample(seconds, sr):
    n = clip_lengths.samples(seconds, sr)
    assert abs(n - seconds * sr) <= 0.5 + 1e-9
    # whole clips of that length tile a stretch of audio as the cube cuts them
    starts = fixed_clips(0, 3 * n + n // 2, n)
    assert starts.tolist() == [0, n, 2 * n]


def test_same_tolerates_a_stored_round_trip_only():
    stored = np.float64(np.float32(0.1))  # a length kept as float32 somewhere on the way
    assert clip_lengths.same(stored, 0.1)
    assert not clip_lengths.same(0.1, 0.11)
    np.testing.assert_array_equal(clip_lengths.same(np.array([0.5, 1.0, 2.0]), 1.0), [False, True, False])


def test_contains_and_missing():
    assert clip_lengths.contains([0.5, 1.0 + 1e-12], 1.0)
    assert not clip_lengths.contains([], 1.0)
    assert not clip_lengths.contains([0.5, 2.0], 1.0)
    assert clip_lengths.missing([2.0, 0.5, 1.0, 2.0], [0.5, 1.0000000001]) == [2.0]
    assert clip_lengths.missing([], [1.0]) == []


def test_longer_than_keeps_order():
    assert clip_lengths.longer_than((5.0, 1.0, 3.0), 2.0) == [5.0, 3.0]
    assert clip_lengths.longer_than((1.0,), 1.0) == []


@pytest.mark.faults
def test_cli_refuses_a_bad_clip_length_in_one_line(tmp_path):
    res = subprocess.run([sys.executable, "-m", "pipeline.cli", "features", str(tmp_path / "a.zarr"),
                          str(tmp_path / "c.zarr"), "--clip-seconds", "1,two"], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 2
    assert "argument --clip-seconds: expected comma-separated numbers, got '1,two'" in res.stderr
